"""Stop conditions and the manual stop: where a drill's conditions come from, what holds, and that a condition
holding mid-method interrupts a real chaoslib run, whose rollbacks still play."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from chaoslib.exit import exit_gracefully
from chaoslib.experiment import run_experiment

from pytest_mnops.chaos import engine
from pytest_mnops.chaos.engine import SETTINGS, StopEvents
from pytest_mnops.chaos.runner import SETTLED_PROBE, ChaosRunner, Handoff
from pytest_mnops.errors import ClusterError, ConfigError, MonitoringUnreachable
from pytest_mnops.guards import stop
from pytest_mnops.timeline import Timeline

CONFIGURATION = {"namespace": "drills", "app": "demo", "time_scale": 0.5}
MODULE = __name__


class FakePrometheus:
    """Answers each query with the first of ``answers`` whose key is in it: a list of samples or an exception."""

    def __init__(self, answers: dict[str, Any] | None = None, *, after_s: float = 0.0) -> None:
        self.answers, self.after = answers or {}, time.monotonic() + after_s
        self.queries: list[str] = []

    def query(self, expr: str) -> list[dict[str, Any]]:
        self.queries.append(expr)
        for key, answer in self.answers.items():
            if key in expr:
                if isinstance(answer, Exception):
                    raise answer
                return answer if time.monotonic() >= self.after else []
        return []


def _watch(conditions: list[str], prometheus: FakePrometheus, tmp_path: Path) -> stop.StopWatch:
    return stop.StopWatch(
        [stop.Condition(c, "test") for c in conditions],
        prometheus=prometheus,  # type: ignore[arg-type]
        configuration=dict(CONFIGURATION),
        manual=stop.ManualStop(tmp_path / "STOP"),
        interrupt=exit_gracefully,
        poll_s=0.1,
    )


def test_conditions_come_from_option_marker_and_defaults_off_the_sandbox() -> None:
    experiment = {"method": [{"provider": {"arguments": {"alertname": "HighLatencyP95"}}}], "rollbacks": []}

    rate = 'sum(rate(checkout_requests_total{status!~"5.."}[5s])) / sum(rate(checkout_requests_total[5s]))'

    def sources(defaults: str, sandbox: bool, success_rate: str | None = rate) -> list[str]:
        found = stop.conditions_for(
            option=["up == 0"],
            marker=("x > 1",),
            defaults=defaults,
            sandbox=sandbox,
            experiment=experiment,
            success_rate=success_rate,
        )
        return [c.source for c in found]

    assert sources("auto", sandbox=True) == ["--mnops-stop-when", "marker stop_when"]
    assert len(sources("auto", sandbox=False)) == 4
    assert len(sources("on", sandbox=True)) == 4
    assert len(sources("off", sandbox=False)) == 2
    # the success rate is the app profile's own query (already at the target's time scale), none without one
    floor, alert = stop.conditions_for(
        option=[], marker=(), defaults="on", sandbox=True, experiment=experiment, success_rate=rate
    )
    assert (floor.expr, floor.scaled) == (f"({rate}) < 0.5", True)
    assert sources("auto", sandbox=False, success_rate=None) == ["--mnops-stop-when", "marker stop_when", alert.source]
    assert 'alertname!~"HighLatencyP95"' in alert.expr and 'severity="critical"' in alert.expr


def test_a_condition_that_never_holds_lets_the_drill_run(tmp_path: Path) -> None:
    prometheus = FakePrometheus()
    watch = _watch(['sum(rate(errors{namespace="${namespace}"}[1m])) > 10'], prometheus, tmp_path)
    watch.check_before()
    assert watch.stopped is None
    # ${namespace} filled in, range selectors scaled to the target's time scale, as the drills' own probes are
    assert prometheus.queries[-1] == 'sum(rate(errors{namespace="drills"}[30s])) > 10'
    # an app profile's SLO query is at the target's time scale already: not scaled twice
    watch.conditions = [stop.Condition('sum(rate(errors{namespace="drills"}[30s])) > 10', "default", scaled=True)]
    watch.check_before()
    assert prometheus.queries[-1] == 'sum(rate(errors{namespace="drills"}[30s])) > 10'


def test_a_condition_holding_before_injection_stops_with_nothing_injected(tmp_path: Path) -> None:
    sample = [{"metric": {"__name__": "", "pod": "demo-1"}, "value": [0, "0.31"]}]
    watch = _watch(["success_rate < 0.5"], FakePrometheus({"success_rate": sample}), tmp_path)
    with pytest.raises(
        stop.DrillStopped,
        match=r"STOPPED: stop condition `success_rate < 0.5` \(test\) held, value "
        r"0.31 \{'pod': 'demo-1'\}, at .* UTC; nothing was injected",
    ):
        watch.check_before()


def test_a_malformed_condition_is_a_config_error_naming_it(tmp_path: Path) -> None:
    watch = _watch(["rate(x[1m]"], FakePrometheus({"rate(": ClusterError("400 bad_data: parse error")}), tmp_path)
    with pytest.raises(ConfigError, match=r"stop condition `rate\(x\[1m\]` \(test\) does not evaluate: 400"):
        watch.check_before()


def test_a_condition_that_cannot_be_evaluated_stops_the_drill(tmp_path: Path) -> None:
    down = MonitoringUnreachable("Prometheus at http://127.0.0.1:1 is unreachable: connection refused")
    watch = _watch(["up == 0"], FakePrometheus({"up": down}), tmp_path)
    with pytest.raises(stop.DrillStopped, match=r"cannot be evaluated: Prometheus at http://127\.0\.0\.1:1"):
        watch.check_before()


def test_the_stop_file_stops_every_drill_until_removed(tmp_path: Path) -> None:
    (tmp_path / "STOP").touch()
    with pytest.raises(stop.DrillStopped, match=r"manual stop: .*STOP exists"):
        _watch([], FakePrometheus(), tmp_path).check_before()
    (tmp_path / "STOP").unlink()
    _watch([], FakePrometheus(), tmp_path).check_before()


def test_sigusr1_between_drills_is_the_manual_stop(tmp_path: Path) -> None:
    manual = stop.ManualStop(tmp_path / "STOP")
    manual.install()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.1)
    finally:
        manual.uninstall()
    assert manual.pulled() == "manual stop: SIGUSR1 received"


# -- a real chaoslib run, interrupted -------------------------------------------------------------------------


def hold(seconds: float) -> str:
    time.sleep(seconds)
    return "held"


def revert(marker: str) -> bool:
    Path(marker).write_text("reverted")
    return True


def _experiment(marker: Path) -> dict[str, Any]:
    return {
        "title": "hold a fault",
        "description": "stop-condition test",
        "method": [
            {
                "type": "action",
                "name": "inject",
                "provider": {"type": "python", "module": MODULE, "func": "hold", "arguments": {"seconds": 30}},
            },
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "revert",
                "provider": {
                    "type": "python",
                    "module": MODULE,
                    "func": "revert",
                    "arguments": {"marker": str(marker)},
                },
            },
        ],
    }


def test_a_condition_holding_mid_method_interrupts_it_and_the_rollbacks_play(tmp_path: Path) -> None:
    marker = tmp_path / "reverted"
    sample = [{"metric": {}, "value": [0, "1"]}]
    watch = _watch(["errors > 0"], FakePrometheus({"errors": sample}, after_s=1.0), tmp_path)
    watch.check_before()
    started = time.monotonic()
    with watch:
        journal = run_experiment(_experiment(marker), settings=SETTINGS, event_handlers=[StopEvents(watch)])
    assert time.monotonic() - started < 10, "the 30 s fault must be interrupted within seconds"
    assert journal["status"] == "interrupted"
    assert marker.read_text() == "reverted"
    with pytest.raises(stop.DrillStopped, match="interrupted and its faults reverted"):
        watch.raise_if_stopped()


def test_a_condition_that_never_holds_leaves_the_run_alone(tmp_path: Path) -> None:
    marker = tmp_path / "reverted"
    experiment = _experiment(marker)
    experiment["method"][0]["provider"]["arguments"]["seconds"] = 0.5
    watch = _watch(["errors > 0"], FakePrometheus(), tmp_path)
    with watch:
        journal = run_experiment(experiment, settings=SETTINGS, event_handlers=[StopEvents(watch)])
    assert journal["status"] == "completed" and watch.stopped is None
    assert journal["run"][0]["output"] == "held"


class ApiServer:
    """Answers /version as told: each False in ``answers`` is one request it does not answer."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)

    def version(self) -> None:
        if not self.answers.pop(0):
            raise ClusterError("GET https://127.0.0.1:1/version: the API server did not answer")


@pytest.mark.parametrize(("answers", "stops"), [((False, False), True), ((False, True), False), ((True,), False)])
def test_an_api_server_that_stops_answering_stops_the_drill(
    answers: tuple[bool, ...], stops: bool, tmp_path: Path
) -> None:
    watch = stop.StopWatch(
        [],
        prometheus=None,
        configuration=dict(CONFIGURATION),
        manual=stop.ManualStop(tmp_path / "STOP"),
        checks=(stop.api_server_answers(ApiServer(*answers).version),),
    )
    if stops:
        with pytest.raises(stop.DrillStopped, match=r"API server stopped answering mid-drill \(GET .*did not answer"):
            watch.check_before()
    else:
        watch.check_before()  # one unanswered request is a blip: asked again, it answers
        assert watch.stopped is None


def test_a_stopped_drill_names_what_it_interrupted_and_a_silent_controller_not_detection() -> None:
    from pytest_mnops.chaos.journal import DrillJournal

    def run(name: str, **fields: Any) -> dict[str, Any]:
        return {"activity": {"name": name, "type": "probe"}, **fields}

    down = "pytest_mnops.errors.ControllerDown: the Argo Rollouts controller is not reconciling Rollout d/app"
    journal = DrillJournal.from_journal(
        "canary-failure",
        {
            "status": "interrupted",
            "run": [run("analysis-failed", status="failed", exception=[down]), run("rollout-aborted")],
        },
        {"analysis-failed": "detected", "rollout-aborted": "detected"},
    )
    problems = journal.problems()
    assert problems[0] == f"CONTROLLER DOWN: analysis-failed: {down}"
    assert problems[1] == "INTERRUPTED: rollout-aborted (the drill was stopped while it ran)"
    assert not any("NOT DETECTED" in p for p in problems)


def fails(message: str) -> None:
    raise AssertionError(message)


def test_the_first_failed_activity_ends_the_method_and_the_rollbacks_still_play(tmp_path: Path) -> None:
    marker = tmp_path / "reverted"

    def call(func: str, name: str, **arguments: Any) -> dict[str, Any]:
        return {
            "type": "probe",
            "name": name,
            "provider": {"type": "python", "module": MODULE, "func": func, "arguments": arguments},
        }

    experiment = {
        "title": "first failure",
        "description": "a probe fails: nothing after it in the method runs, the rollbacks do",
        "steady-state-hypothesis": {"title": "ok", "probes": [{**call("hold", "ok", seconds=0), "tolerance": "held"}]},
        "method": [
            call("hold", "first", seconds=0),
            call("fails", "second", message="not detected"),
            call("hold", "third", seconds=30),
        ],
        "rollbacks": [{**call("revert", "restore", marker=str(marker)), "type": "action"}],
    }
    started = time.monotonic()
    journal = engine.run(experiment, [])
    assert time.monotonic() - started < 10, "the 30 s probe after the failure must not run"
    assert [(r["activity"]["name"], r["status"]) for r in journal["run"]] == [
        ("first", "succeeded"),
        ("second", "failed"),
    ]
    assert journal["status"] == "aborted"
    assert "after" not in journal["steady_states"] or not journal["steady_states"]["after"]
    assert marker.read_text() == "reverted"


def terminated_inside_a_broad_except() -> str:
    """SIGTERM arrives where the code around it catches Exception, as a log handler and chaoslib's event registry
    do: chaoslib's own handler raised InterruptExecution there, and the run went on to a pass."""
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    except Exception:
        pass
    return "swallowed"


def test_sigterm_interrupts_the_run_like_ctrl_c_even_inside_a_broad_except(tmp_path: Path) -> None:
    marker = tmp_path / "reverted"
    experiment = _experiment(marker)
    experiment["method"][0]["provider"].update(func="terminated_inside_a_broad_except", arguments={})
    later = {"type": "python", "module": MODULE, "func": "hold", "arguments": {"seconds": 30}}
    experiment["method"].append({"type": "action", "name": "later", "provider": later})
    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    journal = engine.run(experiment, [])
    assert time.monotonic() - started < 10, "the run must end at the signal, not run the 30 s activity after it"
    assert journal["status"] == "interrupted"
    assert [r["activity"]["name"] for r in journal["run"]] == ["inject"]
    assert marker.read_text() == "reverted"
    assert signal.getsignal(signal.SIGTERM) == before, "the handler the run found is put back"


WINDOW = {"faulty_samples": 0}  # what a windowed query still holds of the fault, in evaluations


def fault_leaves_samples(evaluations: int) -> str:
    WINDOW["faulty_samples"] = evaluations
    return "injected"


def window_clear() -> bool:
    clear = WINDOW["faulty_samples"] == 0
    WINDOW["faulty_samples"] = max(0, WINDOW["faulty_samples"] - 1)
    return clear


@pytest.mark.parametrize("settled", [True, False], ids=["settled-probe", "hypothesis-once"])
def test_the_hypothesis_after_waits_for_a_window_that_still_holds_the_fault(settled: bool) -> None:
    probe = {"type": "python", "module": MODULE, "func": "window_clear"}
    inject = {"type": "python", "module": MODULE, "func": "fault_leaves_samples", "arguments": {"evaluations": 2}}
    experiment: dict[str, Any] = {
        "title": "a window query",
        "description": "the error rate over the last minute still counts the fault's errors after it is gone",
        "configuration": {"handoff": Handoff()},
        "steady-state-hypothesis": {
            "title": "ok",
            "probes": [{"type": "probe", "name": "clear", "tolerance": True, "provider": probe}],
        },
        "method": [{"type": "action", "name": "inject", "provider": inject}],
    }
    runner = ChaosRunner(
        kube=SimpleNamespace(),  # type: ignore[arg-type]
        target=SimpleNamespace(time_scale=1 / 12),  # type: ignore[arg-type]
        timeline=Timeline(),
        ledger=SimpleNamespace(),  # type: ignore[arg-type]
        guards=SimpleNamespace(),  # type: ignore[arg-type]
    )
    if settled:
        experiment["configuration"]["handoff"][engine.STEADY_STATE_KEY] = (experiment, {})
        experiment["method"].append(runner._steady_state_probe(recovery=False))
    journal = engine.run(experiment, [])
    assert journal["deviated"] is not settled
    if settled:
        settling = journal["run"][-1]
        assert (settling["activity"]["name"], settling["status"]) == (SETTLED_PROBE, "succeeded")
        assert settling["activity"]["provider"]["arguments"] == {"timeout_s": engine.MIN_BUDGET_S}
