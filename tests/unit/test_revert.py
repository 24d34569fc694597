"""engine.revert: a failure with the API answering is the revert's own and is raised at once; while the API does
not answer, the revert is tried again (a restarting or failing-over control plane)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mnops.chaos import engine
from pytest_mnops.errors import ClusterError
from pytest_mnops.guards.ledger import Entry


def _entry() -> Entry:
    return Entry(id="e1", scenario="pod-failure", test="", at=0.0, pid=1, configuration={}, rollbacks=[])


def _revert(monkeypatch: pytest.MonkeyPatch, answers: list[bool], failures: int) -> list[str]:
    calls: list[str] = []

    def play(entry: Entry) -> None:
        calls.append("play")
        if calls.count("play") <= failures:
            raise ClusterError(f"attempt {calls.count('play')} failed")

    def answering(configuration: dict[str, Any]) -> bool:
        calls.append("ask")
        return answers.pop(0) if answers else True

    monkeypatch.setattr(engine, "_play_rollbacks", play)
    monkeypatch.setattr(engine, "_api_answers", answering)
    monkeypatch.setattr(engine, "REVERT_PAUSE_S", 0.0)
    return calls


def test_a_failure_with_the_api_answering_is_raised_after_one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _revert(monkeypatch, [True, True], failures=5)
    with pytest.raises(ClusterError, match="attempt 1 failed"):
        engine.revert(_entry())
    assert calls == ["ask", "play", "ask"]


def test_while_the_api_is_down_the_revert_is_tried_again_until_it_works(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _revert(monkeypatch, [False, False, True], failures=2)
    engine.revert(_entry())
    assert calls == ["ask", "play", "ask", "play", "ask", "play"]


def test_a_failure_right_after_the_api_came_back_gets_one_more_try(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _revert(monkeypatch, [False, True, True], failures=5)
    with pytest.raises(ClusterError, match="attempt 2 failed"):
        engine.revert(_entry())
    assert calls == ["ask", "play", "ask", "play", "ask"]


def test_retries_end_after_retry_s(monkeypatch: pytest.MonkeyPatch) -> None:
    _revert(monkeypatch, [False] * 1000, failures=10_000)
    with pytest.raises(ClusterError, match=r"still failing after 0s of retries"):
        engine.revert(_entry(), retry_s=0.0)
