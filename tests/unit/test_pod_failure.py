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

    def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        assert (resource, name, namespace) == (resources.ROLLOUT, "demo", "drills")
        return self.rollouts[0]

    def wait(self, resource: Resource, predicate: Any, *, what: str, **kwargs: Any) -> Any:
        self.waited[what] = time.time()
        objects = [[o] for o in self.rollouts] if resource is resources.ROLLOUT else self.states
        if resource is resources.POD:
            self.selectors.append(kwargs.get("label_selector"))
        for index, objs in enumerate(objects):
            if result := predicate(objs):
                if resource is resources.ROLLOUT:
                    self.rollouts = self.rollouts[index:]
                return result
        raise WaitTimeout(f"timed out waiting for {what}")


def _watch(monkeypatch: pytest.MonkeyPatch, kube: FakeKube, kill_percent: float) -> dict[str, Any]:
    # pods looks _kube up for the pods, and _shared._rollout for the Rollout's status after the kill.
    for module in (pods, _shared):
        monkeypatch.setattr(module, "_kube", lambda configuration: kube)
    return pods.watch_pod_replacements(kill_percent, 300, dict(CONFIGURATION))


@pytest.mark.parametrize(
    ("replicas", "percent", "expected"), [(10, 30, 3), (1000, 10, 100), (3, 10, 1), (1000, 0.05, 1), (7, 50, 4)]
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


def test_watch_times_out_naming_the_count_it_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    old = [_pod(f"old-{i}") for i in range(1000)]
    partly = [*old[100:], *(_pod(f"new-{i}") for i in range(99))]  # one replacement short
    with pytest.raises(WaitTimeout, match=r"100 replacement pods \(10% of 1000\) and 1000 Ready replicas"):
        _watch(monkeypatch, FakeKube(1000, [old, partly]), 10)


def test_a_kill_percent_that_kills_nothing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ClusterError, match="kill_percent 0 of 10 replicas terminates no pod"):
        _watch(monkeypatch, FakeKube(10, [[_pod("a")]]), 0)


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
