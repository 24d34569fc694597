"""The drill verdict, from journals built here: every problem DrillJournal.problems() and ChaosRunner.prove()
can report, word for word, and the budget each drill is held to.

A verdict check that can be switched off without a test noticing proves nothing: each message below is the
one a user reads when exactly that went wrong.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pytest_mnops.chaos.engine import MIN_BUDGET_S
from pytest_mnops.chaos.journal import ActivityRun, DrillJournal, timestamp
from pytest_mnops.chaos.runner import ChaosRunner, DrillTest
from pytest_mnops.drills import DrillSpec
from pytest_mnops.timeline import DETECTED, INJECT, RECOVERED, Timeline

T0 = 1_700_000_000.0
PHASES = {"kill-pods": INJECT, "alert-fired": DETECTED, "replicas-ready": RECOVERED, "restore": "rollback"}


def _run(name: str, status: str = "succeeded", *, exception: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "activity": {"name": name, "type": "probe" if name != "kill-pods" else "action"},
        "status": status,
        "start": "2023-11-14T22:13:20+00:00",
        "end": "2023-11-14T22:13:22.500000+00:00",
        "output": None,
        **extra,
    }
    if exception is not None:
        run["exception"] = exception
    return run


def _journal(
    *,
    status: str = "completed",
    deviated: bool = False,
    before: bool | None = True,
    after: bool | None = True,
    run: list[dict[str, Any]] | None = None,
    rollbacks: list[dict[str, Any]] | None = None,
) -> DrillJournal:
    steady: dict[str, Any] = {}
    if before is not None:
        steady["before"] = {"steady_state_met": before, "probes": []}
    if after is not None:
        steady["after"] = {"steady_state_met": after, "probes": []}
    raw = {
        "status": status,
        "deviated": deviated,
        "steady_states": steady,
        "run": [_run("kill-pods"), _run("alert-fired"), _run("replicas-ready")] if run is None else run,
        "rollbacks": [_run("restore")] if rollbacks is None else rollbacks,
    }
    return DrillJournal.from_journal("pod-failure", raw, PHASES)


# -- DrillJournal.problems -------------------------------------------------------------------------------


def test_a_clean_journal_has_no_problems() -> None:
    assert _journal().problems() == []


@pytest.mark.parametrize("status", ["completed", "deviated", "failed"])
def test_statuses_chaoslib_ends_with_are_not_problems_by_themselves(status: str) -> None:
    assert _journal(status=status).problems() == []


def test_steady_state_not_met_before() -> None:
    assert _journal(before=False).problems() == [
        "steady state was not met before injection (the system was not healthy to begin with)"
    ]


def test_steady_state_not_back_after_the_fault() -> None:
    message = "steady state did not come back after the fault (hypothesis after the method deviated)"
    assert _journal(after=False).problems() == [message]
    assert _journal(deviated=True).problems() == [message]
    assert _journal(deviated=True, after=False).problems() == [message]  # said once


def test_no_hypothesis_run_is_not_a_problem_of_its_own() -> None:
    """chaoslib leaves a hypothesis out when the experiment has none; the activities still decide."""
    journal = _journal(before=None, after=None)
    assert (journal.steady_state_before, journal.steady_state_after) == (None, None)
    assert journal.problems() == []


def test_a_failed_detection_probe_is_not_detected_with_its_error() -> None:
    run = [
        _run("kill-pods"),
        _run("alert-fired", "failed", exception=["Traceback...\n", "WaitTimeout: alert PodCrashLooping not firing\n"]),
        _run("replicas-ready"),
    ]
    assert _journal(run=run).problems() == ["NOT DETECTED: alert-fired: WaitTimeout: alert PodCrashLooping not firing"]


def test_a_failed_recovery_probe_is_not_recovered() -> None:
    run = [_run("kill-pods"), _run("alert-fired"), _run("replicas-ready", "failed", exception=["  pods not Ready  "])]
    assert _journal(run=run).problems() == ["NOT RECOVERED: replicas-ready: pods not Ready"]


def test_a_failed_activity_of_another_phase_is_failed_with_its_status_when_it_has_no_error() -> None:
    run = [_run("kill-pods", "failed"), _run("unphased", "failed", exception=[])]
    assert _journal(run=run).problems() == ["FAILED: kill-pods: failed", "FAILED: unphased: failed"]


def test_a_failed_revert_says_run_mnops_recover() -> None:
    rollbacks = [_run("restore", "failed", exception=["ClusterError: 403 Forbidden"]), _run("second")]
    assert _journal(rollbacks=rollbacks).problems() == [
        "REVERT FAILED: restore: ClusterError: 403 Forbidden — run `mnops recover`"
    ]


def test_an_unexpected_experiment_status_is_named() -> None:
    assert _journal(status="aborted").problems() == ["experiment ended with status 'aborted'"]
    assert _journal(status="interrupted").problems() == ["experiment ended with status 'interrupted'"]


def test_every_problem_at_once_in_the_order_a_reader_follows() -> None:
    journal = _journal(
        status="interrupted",
        before=False,
        after=False,
        run=[_run("alert-fired", "failed", exception=["no alert"]), _run("replicas-ready", "failed")],
        rollbacks=[_run("restore", "failed", exception=["gone"])],
    )
    assert journal.problems() == [
        "steady state was not met before injection (the system was not healthy to begin with)",
        "NOT DETECTED: alert-fired: no alert",
        "NOT RECOVERED: replicas-ready: failed",
        "steady state did not come back after the fault (hypothesis after the method deviated)",
        "REVERT FAILED: restore: gone — run `mnops recover`",
        "experiment ended with status 'interrupted'",
    ]


def test_a_method_ended_by_its_first_failure_names_what_did_not_run() -> None:
    run = [_run("kill-pods"), _run("alert-fired", "failed", exception=["no alert"])]
    journal = _journal(status="aborted", after=None, run=run)
    journal.raw["experiment"] = {"method": [{"name": n} for n in ("kill-pods", "alert-fired", "replicas-ready", "x")]}
    assert journal.problems() == [
        "NOT DETECTED: alert-fired: no alert",
        "not run after the first failure: replicas-ready, x",
    ]


def test_a_method_ended_by_its_last_activity_failing_names_only_that() -> None:
    run = [_run("kill-pods"), _run("alert-fired", "failed", exception=["no alert"])]
    journal = _journal(status="aborted", after=None, run=run)
    journal.raw["experiment"] = {"method": [{"name": "kill-pods"}, {"name": "alert-fired"}]}
    assert journal.problems() == ["NOT DETECTED: alert-fired: no alert"]


def test_a_journal_missing_its_keys_reads_as_unknown_never_as_passed() -> None:
    journal = DrillJournal.from_journal("x", {}, {})
    assert (journal.status, journal.deviated, journal.activities, journal.rollbacks) == ("?", False, [], [])
    assert journal.problems() == ["experiment ended with status '?'"]
    bare = ActivityRun.from_run({}, {})
    assert (bare.name, bare.type, bare.phase, bare.status, bare.start, bare.end, bare.error) == (
        "?",
        "?",
        None,
        "?",
        None,
        None,
        "",
    )


def test_activity_runs_carry_phase_times_and_last_exception_line() -> None:
    journal = _journal(run=[_run("alert-fired", exception=["first\n", " last \n"], output={"detected_at": 1.0})])
    run = journal.activity("alert-fired")
    assert run == ActivityRun(
        name="alert-fired",
        type="probe",
        phase=DETECTED,
        status="succeeded",
        start=T0,
        end=T0 + 2.5,
        output={"detected_at": 1.0},
        error="last",
    )
    with pytest.raises(KeyError, match="scenario pod-failure: no activity 'nope' ran"):
        journal.activity("nope")
    assert timestamp(None) is None and timestamp("") is None


def test_summary_rows_leave_outputs_out() -> None:
    unphased = _run("settle", end="2023-11-14T22:13:21.234567+00:00")
    rows = _journal(
        run=[_run("kill-pods", output={"secret": "hunter2"}), unphased],
        rollbacks=[{"activity": {"name": "restore", "type": "action"}, "status": "succeeded"}],
    ).summary()
    assert rows == [
        {"name": "kill-pods", "type": "action", "phase": INJECT, "status": "succeeded", "duration_s": 2.5, "error": ""},
        {"name": "settle", "type": "probe", "phase": "", "status": "succeeded", "duration_s": 1.235, "error": ""},
        {"name": "restore", "type": "action", "phase": "rollback", "status": "succeeded", "duration_s": 0, "error": ""},
    ]
    assert "hunter2" not in str(rows)


def test_the_raw_journal_is_kept_for_the_reports() -> None:
    raw = {"status": "completed", "run": []}
    assert DrillJournal.from_journal("x", raw, {}).raw is raw


# -- ChaosRunner.prove -----------------------------------------------------------------------------------


def _drill_test(**marker: Any) -> DrillTest:
    """What prove() knows of the test: its drill marker (as the pytest layer parses it) and its report facts."""
    return DrillTest(test_id="suites/drills/test_drills.py::test_pod_failure", spec=DrillSpec("pod-failure", **marker))


def _runner(item: DrillTest, *, mttr_s: float | None = 10.0, time_scale: float = 1.0) -> ChaosRunner:
    timeline = Timeline(started=T0)
    timeline.mark(INJECT, at=T0 + 5)
    if mttr_s is not None:
        timeline.mark(RECOVERED, at=T0 + 5 + mttr_s)
    return ChaosRunner(
        kube=SimpleNamespace(),  # type: ignore[arg-type]
        target=SimpleNamespace(time_scale=time_scale),  # type: ignore[arg-type]
        timeline=timeline,
        ledger=SimpleNamespace(),  # type: ignore[arg-type]
        guards=SimpleNamespace(),  # type: ignore[arg-type]
        test=item,
    )


def _failure(runner: ChaosRunner, journal: DrillJournal) -> str:
    with pytest.raises(AssertionError) as failed:
        runner.prove(journal)
    return str(failed.value)


def test_prove_passes_a_clean_journal_within_budget_and_records_the_budget() -> None:
    item = _drill_test(budget_s=300)
    _runner(item, mttr_s=299.9).prove(_journal())
    assert item.facts["budget_s"] == 300.0


def test_prove_names_every_problem_under_one_headline() -> None:
    run = [_run("alert-fired", "failed", exception=["no alert"]), _run("replicas-ready", "failed")]
    assert _failure(_runner(_drill_test()), _journal(run=run)) == (
        "drill pod-failure did not prove detection and recovery:\n"
        "  - NOT DETECTED: alert-fired: no alert\n"
        "  - NOT RECOVERED: replicas-ready: failed"
    )


@pytest.mark.parametrize(
    "journal",
    [
        _journal(before=False),
        _journal(after=False),
        _journal(deviated=True),
        _journal(rollbacks=[_run("restore", "failed")]),
        _journal(status="aborted"),
    ],
    ids=["before", "after", "deviated", "revert", "status"],
)
def test_prove_fails_on_each_problem_alone(journal: DrillJournal) -> None:
    (problem,) = journal.problems()
    assert _failure(_runner(_drill_test()), journal).endswith(f"\n  - {problem}")


def test_prove_fails_when_the_runner_could_not_revert_a_leftover() -> None:
    item = _drill_test()
    item.facts["revert_error"] = "REVERT FAILED: pod-failure in namespace drills: boom. It stays in the ledger"
    assert _failure(_runner(item), _journal()) == (
        "drill pod-failure did not prove detection and recovery:\n"
        "  - REVERT FAILED: pod-failure in namespace drills: boom. It stays in the ledger"
    )


def test_prove_over_budget_names_recovery_budget_and_time_scale() -> None:
    item = _drill_test(budget_s=600)
    message = _failure(_runner(item, mttr_s=61.0, time_scale=1 / 12), _journal())
    assert message == (
        "drill pod-failure did not prove detection and recovery:\n"
        "  - OVER BUDGET: recovered after 61.0s, budget 50s (600s in production terms x time scale 0.083)"
    )
    assert item.facts["budget_s"] == 50.0


def test_the_recorded_budget_keeps_one_decimal() -> None:
    item = _drill_test(budget_s=601)
    _runner(item, time_scale=1 / 12).prove(_journal())
    assert item.facts["budget_s"] == 50.1  # 50.083 s


def test_prove_at_exactly_the_budget_passes() -> None:
    _runner(_drill_test(budget_s=120), mttr_s=120.0).prove(_journal())


def test_prove_never_holds_a_drill_to_less_than_the_fixed_costs() -> None:
    item = _drill_test(budget_s=60)
    runner = _runner(item, mttr_s=MIN_BUDGET_S, time_scale=0.01)  # 0.6 s scaled: the floor applies
    runner.prove(_journal())
    assert item.facts["budget_s"] == MIN_BUDGET_S
    message = _failure(_runner(_drill_test(budget_s=60), mttr_s=MIN_BUDGET_S + 0.1, time_scale=0.01), _journal())
    assert "OVER BUDGET: recovered after 30.1s, budget 30s (60s in production terms x time scale 0.010)" in message


def test_prove_without_budget_or_without_recovery_time_skips_the_budget() -> None:
    unbudgeted = _drill_test()
    _runner(unbudgeted, mttr_s=10_000.0).prove(_journal())
    assert "budget_s" not in unbudgeted.facts
    unmeasured = _drill_test(budget_s=10)
    _runner(unmeasured, mttr_s=None).prove(_journal())  # no recovery mark: the journal's problems decide
    assert "budget_s" not in unmeasured.facts


def test_prove_of_a_test_without_a_drill_marker_checks_the_journal_only() -> None:
    item = _drill_test()
    item.marker = None
    _runner(item, mttr_s=10_000.0).prove(_journal())
    assert "NOT DETECTED" in _failure(_runner(item), _journal(run=[_run("alert-fired", "failed")]))


def test_over_budget_comes_after_the_journal_problems() -> None:
    message = _failure(_runner(_drill_test(budget_s=30), mttr_s=90.0), _journal(after=False))
    assert message.splitlines()[1:] == [
        "  - steady state did not come back after the fault (hypothesis after the method deviated)",
        "  - OVER BUDGET: recovered after 90.0s, budget 30s (30s in production terms x time scale 1.000)",
    ]


def test_a_steady_state_not_met_before_names_each_probe_that_raised_with_its_reason() -> None:
    journal = _journal(before=False)
    journal.raw["steady_states"]["before"]["probes"] = [
        _run(
            "success-rate", "failed", exception=["Traceback...\n", "ClusterError: no data for up (profile key slo.x)\n"]
        ),
        _run("rollout-healthy"),  # met: no reason to name
    ]
    assert journal.problems() == [
        "steady state was not met before injection (the system was not healthy to begin with)",
        "  success-rate: ClusterError: no data for up (profile key slo.x)",
    ]


def test_an_activity_a_stop_ended_is_interrupted_and_the_stop_is_the_verdict() -> None:
    run = [_run("kill-pods"), _run("alert-fired", "interrupted")]
    assert _journal(run=run).problems() == ["INTERRUPTED: alert-fired (the drill was stopped while it ran)"]


def test_a_detection_that_failed_because_the_controller_was_down_says_so() -> None:
    run = [_run("alert-fired", "failed", exception=["ControllerDown: argo-rollouts left the spec unobserved for 20s"])]
    assert _journal(run=run).problems() == [
        "CONTROLLER DOWN: alert-fired: ControllerDown: argo-rollouts left the spec unobserved for 20s"
    ]


def test_activities_without_a_name_that_did_not_run_read_as_unknown() -> None:
    journal = _journal(status="aborted", after=None, run=[_run("kill-pods", "failed")])
    journal.raw["experiment"] = {"method": [{"name": "kill-pods"}, {"type": "probe"}]}
    assert journal.problems() == ["FAILED: kill-pods: failed", "not run after the first failure: ?"]
