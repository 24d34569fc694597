"""The fault ledger: what was injected stays known until reverted, across crashes and parallel workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.guards.ledger import Entry, Ledger

ROLLBACKS = [
    {
        "type": "action",
        "name": "delete-latency",
        "provider": {
            "type": "python",
            "module": "chaosk8s.chaosmesh.network.actions",
            "func": "delete_network_fault",
            "arguments": {"name": "mnops-latency"},
        },
    }
]


def _inject(ledger: Ledger, scenario: str = "high-latency", namespace: str = "drills", **extra: Any) -> Entry:
    return ledger.record_injection(
        scenario=scenario,
        test=f"suites/drills/test_{scenario}.py::test_it",
        configuration={"namespace": namespace, "app": "demo", **extra},
        rollbacks=ROLLBACKS,
    )


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_missing_ledger_has_nothing_pending(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "nowhere" / "ledger.jsonl")
    assert ledger.pending() == []
    assert ledger.recover(lambda entry: None, how="test") == []
    assert not ledger.path.exists()


def test_record_creates_the_directory_and_writes_one_json_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / ".mnops" / "ledger.jsonl")
    entry = _inject(ledger)
    [record] = _records(ledger.path)
    assert record["event"] == "injected"
    assert record["id"] == entry.id and len(entry.id) == 32
    assert record["pid"] == os.getpid() == entry.pid
    assert record["scenario"] == "high-latency"
    assert record["configuration"] == {"namespace": "drills", "app": "demo"}
    assert record["rollbacks"] == ROLLBACKS


def test_pending_until_reverted(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    first = _inject(ledger, "pod-failure")
    second = _inject(ledger, "high-latency")
    assert [e.id for e in ledger.pending()] == [first.id, second.id]
    assert ledger.pending()[0] == first  # a round trip through JSON gives the same entry
    ledger.record_reverted(first.id, how="chaoslib rollbacks")
    assert [e.id for e in ledger.pending()] == [second.id]
    ledger.record_reverted(second.id, how="runner after chaoslib")
    assert ledger.pending() == []
    events = [(r["event"], r.get("how")) for r in _records(ledger.path)]
    assert events == [
        ("injected", None),
        ("injected", None),
        ("reverted", "chaoslib rollbacks"),
        ("reverted", "runner after chaoslib"),
    ]


def test_pending_is_oldest_first_and_a_second_revert_is_harmless(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    entries = [_inject(ledger, f"s{i}") for i in range(3)]
    ledger.record_reverted(entries[1].id, how="a")
    ledger.record_reverted(entries[1].id, how="again")
    ledger.record_reverted("0" * 32, how="unknown id")
    assert [e.scenario for e in ledger.pending()] == ["s0", "s2"]
    assert all(a.at <= b.at for a, b in zip(ledger.pending(), ledger.pending()[1:], strict=False))


def test_describe_names_scenario_namespace_test_and_rollbacks(tmp_path: Path) -> None:
    entry = _inject(Ledger(tmp_path / "ledger.jsonl"))
    text = entry.describe()
    assert "high-latency in namespace drills" in text
    assert "test suites/drills/test_high-latency.py::test_it" in text
    assert f"pid {os.getpid()}" in text
    assert text.endswith("revert with delete-latency")


def test_lines_are_canonical_json_in_any_new_directory(tmp_path: Path) -> None:
    """Sorted keys: the same event is the same line, whichever worker wrote it (and diffs of ledgers read)."""
    ledger = Ledger(tmp_path / "a" / "b" / "ledger.jsonl")
    entry = _inject(ledger)
    before = time.time()
    ledger.record_reverted(entry.id, how="test")
    injected, reverted = ledger.path.read_text().splitlines()
    assert injected == json.dumps(json.loads(injected), sort_keys=True)
    assert list(json.loads(reverted)) == ["at", "event", "how", "id"]
    assert before <= json.loads(reverted)["at"] <= time.time()


def test_describe_lists_every_rollback_and_says_what_it_does_not_know() -> None:
    entry = Entry(id="i", scenario="s", test="", at=0.0, pid=7, configuration={}, rollbacks=[{"name": "a"}, {}])
    assert entry.describe() == "s in namespace ? (test -, pid 7): revert with a, ?"


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    kept = _inject(ledger, "pod-failure")
    full = json.dumps(
        {
            "event": "injected",
            "id": "f" * 32,
            "scenario": "cut",
            "test": "",
            "at": 1.0,
            "pid": 1,
            "configuration": {},
            "rollbacks": [],
        }
    )
    with ledger.path.open("a") as out:
        out.write(full[: len(full) // 2])  # the process died in the middle of this write
    assert [e.id for e in ledger.pending()] == [kept.id]


def test_an_append_after_a_torn_line_is_not_lost(tmp_path: Path) -> None:
    """The next run appends after the torn fragment: its records must still be readable."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with ledger.path.open("w") as out:
        out.write('{"event": "injected", "id": "abc')
    after = _inject(ledger, "pod-failure")
    assert [e.id for e in ledger.pending()] == [after.id]
    ledger.record_reverted(after.id, how="test")
    assert ledger.pending() == []


def test_blank_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    entry = _inject(ledger)
    with ledger.path.open("a") as out:
        out.write("\n   \n" + json.dumps({"event": "note", "text": "operator looked"}) + "\n")
    later = _inject(ledger, "pod-failure")
    assert [e.id for e in ledger.pending()] == [entry.id, later.id]


def test_what_recover_needs_comes_back_from_the_file(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    hypothesis = {"title": "app serves", "probes": [{"name": "ready-pods"}]}
    ledger.record_injection(
        scenario="secret-rotation",
        test="t",
        configuration={"namespace": "drills"},
        rollbacks=[],
        secrets={"old_value_ref": "drills/app-secret#previous"},
        hypothesis=hypothesis,
    )
    _inject(ledger)
    rotation, latency = ledger.pending()
    assert rotation.secrets == {"old_value_ref": "drills/app-secret#previous"}
    assert rotation.hypothesis == hypothesis
    assert (latency.secrets, latency.hypothesis) == ({}, None)
    assert rotation.describe().endswith("revert with its steady state coming back (self-healing)")


def test_recover_reverts_pending_entries_and_keeps_a_failing_one(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    done = _inject(ledger, "pod-failure")
    ledger.record_reverted(done.id, how="chaoslib rollbacks")
    ok = _inject(ledger, "high-latency")
    broken = _inject(ledger, "resource-exhaustion")
    later = _inject(ledger, "canary-failure")
    seen: list[str] = []

    def revert(entry: Entry) -> None:
        seen.append(entry.scenario)
        if entry.id == broken.id:
            raise RuntimeError("apiserver unreachable")

    outcome = ledger.recover(revert, how="mnops recover")
    assert seen == ["high-latency", "resource-exhaustion", "canary-failure"]  # one failure stops nothing
    assert [(e.id, err) for e, err in outcome] == [
        (ok.id, None),
        (broken.id, "RuntimeError: apiserver unreachable"),
        (later.id, None),
    ]
    assert [e.id for e in ledger.pending()] == [broken.id]
    hows = [r["how"] for r in _records(ledger.path) if r["event"] == "reverted"]
    assert hows == ["chaoslib rollbacks", "mnops recover", "mnops recover"]
    # a second recover retries only what is still pending
    assert [(e.id, err) for e, err in ledger.recover(lambda e: None, how="retry")] == [(broken.id, None)]
    assert ledger.pending() == []


def test_recover_lets_keyboard_interrupt_through(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    entry = _inject(ledger)

    def revert(entry: Entry) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ledger.recover(revert, how="test")
    assert [e.id for e in ledger.pending()] == [entry.id]


WORKERS, PER_WORKER = 4, 40
# Long enough that one record is several filesystem blocks' worth of interleaving chances.
PADDING = "x" * 5000


def _append_many(path: str, worker: int, start: Any) -> None:
    start.wait()
    ledger = Ledger(Path(path))
    for index in range(PER_WORKER):
        entry = _inject(ledger, f"w{worker}", padding=PADDING, index=index)
        if index % 2:
            ledger.record_reverted(entry.id, how=f"w{worker}")


def test_concurrent_appends_from_several_processes_all_land_intact(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "ledger.jsonl"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_append_many, args=(str(path), w, start)) for w in range(WORKERS)]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=60)
    assert [p.exitcode for p in workers] == [0] * WORKERS
    records = _records(path)  # every line parses: no interleaved or torn writes
    injected = [r for r in records if r["event"] == "injected"]
    reverted = [r for r in records if r["event"] == "reverted"]
    assert len(injected) == WORKERS * PER_WORKER
    assert len(reverted) == WORKERS * PER_WORKER // 2
    assert all(r["configuration"]["padding"] == PADDING for r in injected)
    assert len({r["pid"] for r in injected}) == WORKERS
    for worker in range(WORKERS):
        mine = [r["configuration"]["index"] for r in injected if r["scenario"] == f"w{worker}"]
        assert mine == list(range(PER_WORKER))  # each writer's records are in its own order
    pending = Ledger(path).pending()
    assert len(pending) == WORKERS * PER_WORKER // 2
    assert all(e.configuration["index"] % 2 == 0 for e in pending)
