"""The terminal scorecard, line for line and colour for colour, from results built here."""

from __future__ import annotations

from typing import Any

from pytest_mnops.reporting.results import DrillResult
from pytest_mnops.reporting.scorecard import overall_score, weakest, write_scorecard
from pytest_mnops.timeline import DETECTED, INJECT, RECOVERED, Event

T0 = 1_700_000_000.0


class Reporter:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.lines.append((f"{sep} {title}", {}))

    def write_line(self, line: str, **markup: Any) -> None:
        self.lines.append((line, markup))


def _result(name: str, outcome: str, mttd: float | None, mttr: float | None, **facts: Any) -> DrillResult:
    events = [Event(INJECT, T0)]
    events += [Event(DETECTED, T0 + mttd)] if mttd is not None else []
    events += [Event(RECOVERED, T0 + mttr)] if mttr is not None else []
    return DrillResult(name, f"t::{name}", outcome, "sandbox: d/a", mttd, mttr, events, facts, T0)


RESULTS = [
    _result(
        "pod-failure",
        "passed",
        2.5,
        30.04,
        abort_s=1.25,
        rollback_s=3.5,
        human_response_s=12.0,
        alerts=["PodRestarting", "HighErrorRate"],
    ),
    _result("high-latency", "failed", 4.0, None),
    _result("secret-rotation", "skipped", None, None),
]
HEADER = (
    f"{'drill':<22}{'verdict':<9}{'MTTD':>8}{'MTTR':>8}{'abort':>8}{'rollback':>10}{'trainee':>9}{'score':>7}  alerts"
)


def test_scorecard_rows_gate_and_validation_counts() -> None:
    reporter = Reporter()
    validation = [
        ("a", "monitoring", "repo", "passed"),
        ("b", "monitoring", "repo", "failed"),
        ("c", "monitoring", "repo", "passed"),
        ("d", "deployment", "cluster", "skipped"),
    ]
    write_scorecard(reporter, RESULTS, validation, fail_under=80)  # type: ignore[arg-type]
    assert reporter.lines == [
        ("= mnops drill scorecard", {}),
        (HEADER, {}),
        (
            f"{'pod-failure':<22}{'proved':<9}{'2.5s':>8}{'30.0s':>8}{'1.2s':>8}{'3.5s':>10}{'12.0s':>9}{'100':>7}"
            "  PodRestarting,HighErrorRate",
            {"red": False, "green": True},
        ),
        (
            f"{'high-latency':<22}{'failed':<9}{'4.0s':>8}{'-':>8}{'-':>8}{'-':>10}{'-':>9}{'40':>7}  ",
            {"red": True, "green": False},
        ),
        (
            f"{'secret-rotation':<22}{'skipped':<9}{'-':>8}{'-':>8}{'-':>8}{'-':>10}{'-':>9}{'0':>7}  ",
            {"red": False, "green": False},
        ),
        ("resilience score: 70/100 over 3 drills (gate: --mnops-fail-under 80)", {}),
        ("- mnops validation", {}),
        (f"{'deployment (cluster)':<34}1 skipped", {}),
        (f"{'monitoring (repo)':<34}2 passed, 1 failed", {}),
    ]


def test_scorecard_without_gate_validation_or_drills() -> None:
    reporter = Reporter()
    write_scorecard(reporter, RESULTS[:1], [], fail_under=None)  # type: ignore[arg-type]
    assert reporter.lines[-1] == ("resilience score: 100/100 over 1 drills", {})
    assert not any("validation" in line for line, _ in reporter.lines)
    reporter = Reporter()
    write_scorecard(reporter, [], [("a", "automation", "repo", "passed")], fail_under=50)  # type: ignore[arg-type]
    assert reporter.lines == [("- mnops validation", {}), (f"{'automation (repo)':<34}1 passed", {})]
    reporter = Reporter()
    write_scorecard(reporter, [], [], fail_under=None)  # type: ignore[arg-type]
    assert reporter.lines == []


def test_overall_and_weakest() -> None:
    assert overall_score(RESULTS) == 70.0
    assert weakest(RESULTS).name == "secret-rotation"
    assert weakest(RESULTS[:2]).name == "high-latency"
    assert overall_score([RESULTS[2]]) == 0.0 and overall_score([]) == 0.0


def test_a_regression_is_named_under_the_score_in_bold_red() -> None:
    reporter = Reporter()
    slower = _result("pod-failure", "passed", 2.5, 30.0, regression="MTTR 30.0s, was 10.0s over the last 5 runs")
    write_scorecard(reporter, [slower, RESULTS[1]], [], fail_under=None)  # type: ignore[arg-type]
    assert reporter.lines[-2:] == [
        ("resilience score: 70/100 over 2 drills", {}),
        ("REGRESSION pod-failure: MTTR 30.0s, was 10.0s over the last 5 runs", {"red": True, "bold": True}),
    ]
