"""The pod-failure drill at any size: the replacements it waits for follow from the replicas and kill_percent, a
Healthy Rollout status of before the kill does not end it, and the injection is timed from the start of the kill
(100 pods take seconds to delete)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.chaos.activities import _shared, pods
from pytest_mnops.chaos.engine import Recorder
from pytest_mnops.chaos.scenarios import load
from pytest_mnops.errors import ClusterError, WaitTimeout
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Resource, resources
from pytest_mnops.timeline import DETECTED, INJECT, RECOVERED, Timeline

CONFIGURATION = {
    "namespace": "drills",
    "app": "demo",
    "selector": "app=demo",
    "kubeconfig": "/nonexistent",
    "time_scale": 1.0,
}


def _rollout(version: str, phase: str = "Healthy", available: int = 20) -> dict[str, Any]:
    status = {"phase": phase, "availableReplicas": available, "stableRS": "abc", "currentPodHash": "abc"}
    status["observedGeneration"] = "1"
    spec = {"replicas": 20}
    return {"metadata": {"name": "demo", "resourceVersion": version, "generation": 1}, "spec": spec, "status": status}


def _pod(uid: str, *, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": f"demo-{uid}", "namespace": "drills", "uid": uid},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


class FakeKube:
    """A Rollout of ``replicas``. A wait on pods sees the lists in ``states`` (its first list, then one per
    event); a wait on the Rollout sees ``rollouts`` from the one it last stopped at, as a watch resumes."""

    def __init__(
        self, replicas: int, states: list[list[dict[str, Any]]], rollouts: list[dict[str, Any]] | None = None
    ) -> None:
        self.replicas, self.states = replicas, states
        self.rollouts = rollouts or [{**_rollout("1"), "spec": {"replicas": replicas}}]
        self.selectors: list[str | None] = []
        self.waited: dict[str, float] = {}  # what each wait was for, and when it began
        self.asked: dict[str, dict[str, Any]] = {}  # what each wait was for, and its other arguments

    def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        assert (resource, name, namespace) == (resources.ROLLOUT, "demo", "drills")
        return self.rollouts[0]

    def wait(self, resource: Resource, predicate: Any, *, what: str, **kwargs: Any) -> Any:
        self.waited[what] = time.time()
        self.asked[what] = kwargs
        objects = [[o] for o in self.rollouts] if resource is resources.ROLLOUT else self.states
        if resource is resources.POD:
            self.selectors.append(kwargs.get("label_selector"))
        for index, objs in enumerate(objects):
            if result := predicate(objs):
                if resource is resources.ROLLOUT:
                    self.rollouts = self.rollouts[index:]
                return result
        raise WaitTimeout(f"timed out waiting for {what}")


def _watch(monkeypatch: pytest.MonkeyPatch, kube: FakeKube, kill_percent: float, **target: Any) -> dict[str, Any]:
    # pods looks _kube up for the pods, and _shared._rollout for the Rollout's status after the kill.
    def kube_of(configuration: dict[str, Any]) -> FakeKube:
        assert configuration["kubeconfig"] == CONFIGURATION["kubeconfig"]  # the target's cluster
        return kube

    for module in (pods, _shared):
        monkeypatch.setattr(module, "_kube", kube_of)
    return pods.watch_pod_replacements(kill_percent, 300, {**CONFIGURATION, **target})


@pytest.mark.parametrize(
    ("replicas", "percent", "expected"),
    # an exact share (20% of 1000) is not rounded up
    [(10, 30, 3), (1000, 10, 100), (3, 10, 1), (1000, 0.05, 1), (7, 50, 4), (1000, 20, 200)],
)
def test_replacements_expected_round_up_like_the_kill(replicas: int, percent: float, expected: int) -> None:
    assert pods.replacements_expected(replicas, percent) == expected


def test_watch_waits_for_the_computed_replacements_and_every_replica_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    old = [_pod(f"old-{i}") for i in range(20)]
    survivors = old[2:]
    states = [
        old,
        survivors,  # two killed (10% of 20), no replacement yet
        [*survivors, _pod("new-0", ready=False)],  # detected: the first replacement exists
        [*survivors, _pod("new-0"), _pod("new-1", ready=False)],
        [*survivors, _pod("new-0"), _pod("new-1")],  # recovered
    ]
    # the Rollout's status of before the kill, then the controller catching up with it
    rollouts = [_rollout("1"), _rollout("2", "Progressing", 18), _rollout("3")]
    kube = FakeKube(20, states, rollouts)
    result = _watch(monkeypatch, kube, 10)
    assert result["expected"] == 2 and result["replaced"] == 2 and result["ready"] == 20
    assert result["detected_at"] <= result["recovered_at"]
    assert kube.selectors == ["app=demo"]  # one wait on pods, by label; no list of its own
    assert kube.rollouts == [_rollout("3")]  # settled on the status written after the kill, not the old one
    assert result["recovered_at"] >= kube.waited["Rollout 'demo' to settle"]


def test_a_kill_the_rollout_controller_never_saw_ends_with_the_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    """One pod healed in 0.1 s and the controller wrote nothing: the old Healthy status stands, and the
    recovery is when the pods were all Ready, not the catch-up wait after it."""
    old = [_pod(f"old-{i}") for i in range(20)]
    kube = FakeKube(20, [old, [*old[1:], _pod("new-0")]], [_rollout("1")])
    result = _watch(monkeypatch, kube, 5)
    assert result["replaced"] == 1 and result["expected"] == 1
    catch_up = kube.waited["Rollout 'demo' status written after the kill"]
    assert "Rollout 'demo' to settle" in kube.waited
    assert result["recovered_at"] <= catch_up


def test_a_rollout_status_not_rewritten_after_the_kill_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube(20, [], [_rollout("1")])
    monkeypatch.setattr(_shared, "_kube", lambda configuration: kube)
    assert pods._wait_rollout_settled(dict(CONFIGURATION), 10.0, before="1") is False
    kube = FakeKube(20, [], [_rollout("1"), _rollout("2")])
    monkeypatch.setattr(_shared, "_kube", lambda configuration: kube)
    assert pods._wait_rollout_settled(dict(CONFIGURATION), 10.0, before="1") is True


def test_watch_times_out_naming_the_count_it_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    old = [_pod(f"old-{i}") for i in range(1000)]
    partly = [*old[100:], *(_pod(f"new-{i}") for i in range(99))]  # one replacement short
    with pytest.raises(WaitTimeout, match=r"100 replacement pods \(10% of 1000\) and 1000 Ready replicas"):
        _watch(monkeypatch, FakeKube(1000, [old, partly]), 10)


def test_a_kill_percent_that_kills_nothing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ClusterError, match="kill_percent 0 of 10 replicas terminates no pod"):
        _watch(monkeypatch, FakeKube(10, [[_pod("a")]]), 0)


def test_the_waits_watch_this_app_for_the_time_scaled_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    old = [_pod(f"old-{i}") for i in range(20)]
    rollouts = [_rollout("1"), _rollout("2", "Progressing", 19), _rollout("3")]
    kube = FakeKube(20, [old, [*old[1:], _pod("new-0")]], rollouts)
    _watch(monkeypatch, kube, 5, time_scale=0.5)  # 300 production seconds: 150 on this target
    assert kube.asked["1 replacement pods (5% of 20) and 20 Ready replicas"] == {
        "namespace": "drills",
        "label_selector": "app=demo",
        "timeout_s": 150.0,
    }
    # The controller's catch-up is a short wait of its own; settling gets the drill's time-scaled timeout.
    assert kube.asked["Rollout 'demo' status written after the kill"] == {
        "name": "demo",
        "namespace": "drills",
        "timeout_s": pods.ROLLOUT_CATCH_UP_S,
    }
    settle = kube.asked["Rollout 'demo' to settle"]
    assert (settle["name"], settle["namespace"]) == ("demo", "drills")
    assert 149 < settle["timeout_s"] <= 150.0


def test_a_rollout_without_replicas_runs_one_as_kubernetes_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    rollout = _rollout("1", available=1)
    del rollout["spec"]["replicas"]
    kube = FakeKube(1, [[_pod("a")], [], [_pod("b", ready=False)], [_pod("b")]], [rollout])
    result = _watch(monkeypatch, kube, 100)
    assert (result["expected"], result["replaced"], result["ready"]) == (1, 1, 1)
    assert "1 replacement pods (100% of 1) and 1 Ready replicas" in kube.asked


def test_detection_is_the_first_replacement_and_recovery_the_rollout_settling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pinned to the clock: detected when the first new pod showed (not a later one), recovered when the
    Rollout's status after the kill said so (after the pods were Ready)."""
    ticks = iter(range(1000, 1100))
    monkeypatch.setattr(pods, "time", type("Clock", (), {"time": staticmethod(lambda: float(next(ticks)))}))
    old = [_pod(f"old-{i}") for i in range(20)]
    survivors = old[2:]
    states = [
        old,
        survivors,
        [*survivors, _pod("new-0", ready=False)],  # tick 1000: detected
        [*survivors, _pod("new-0"), _pod("new-1", ready=False)],
        [*survivors, _pod("new-0"), _pod("new-1")],  # tick 1001: every replica Ready
    ]
    rollouts = [_rollout("1"), _rollout("2", "Progressing", 18), _rollout("3")]
    result = _watch(monkeypatch, FakeKube(20, states, rollouts), 10)
    assert result == {"detected_at": 1000.0, "recovered_at": 1002.0, "expected": 2, "replaced": 2, "ready": 20}


def test_the_pods_time_out_with_the_exact_count_and_the_refusal_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    old = [_pod(f"old-{i}") for i in range(10)]
    with pytest.raises(WaitTimeout) as timed_out:
        _watch(monkeypatch, FakeKube(10, [old, [*old[3:], _pod("new-0"), _pod("new-1")]]), 30)
    assert str(timed_out.value) == "timed out waiting for 3 replacement pods (30% of 10) and 10 Ready replicas"
    with pytest.raises(ClusterError) as refused:
        _watch(monkeypatch, FakeKube(10, [old]), 0)
    assert str(refused.value) == "kill_percent 0 of 10 replicas terminates no pod: nothing to watch"


def test_the_injection_is_timed_from_the_start_of_the_kill(tmp_path: Path) -> None:
    scenario = load("pod-failure")
    timeline = Timeline()
    ledger = Ledger(tmp_path / "ledger.jsonl")
    recorder = Recorder(
        scenario.phases,
        timeline,
        ledger,
        lambda: ledger.record_injection(
            scenario="pod-failure", test="test_pod_failure", configuration={}, rollbacks=[]
        ),
    )
    start = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    kill = {"status": "succeeded", "start": start.isoformat(), "output": ["demo-1", "demo-2"]}
    kill["end"] = (start + dt.timedelta(seconds=16)).isoformat()
    recorder.activity_completed({"name": "terminate-app-pods"}, kill)
    watch = {"status": "succeeded", "output": {"detected_at": start.timestamp() + 0.2}}
    watch["output"]["recovered_at"] = start.timestamp() + 18
    recorder.activity_completed({"name": "watch-replacements"}, {**watch, "end": kill["end"]})
    assert [(e.phase, e.at - start.timestamp()) for e in timeline.events] == [
        (INJECT, 0.0),
        (DETECTED, pytest.approx(0.2)),
        (RECOVERED, 18.0),
    ]
    assert timeline.mttd_s == pytest.approx(0.2) and timeline.mttr_s == 18.0
