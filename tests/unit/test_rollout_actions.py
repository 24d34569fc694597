"""The Rollout verbs as `kubectl argo rollouts` performs them: which object or subresource each one patches, with
what body, and what a wait on the Rollout accepts."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mnops.errors import ClusterError, NotFound, WaitTimeout
from pytest_mnops.k8s import Resource, resources
from pytest_mnops.names import ROLLOUT_HASH_LABEL
from pytest_mnops.rollouts import REVISION_ANNOTATION, SETTLED_HOLD_S, Rollout, read_status

STEPS = [{"setWeight": 10}, {"pause": {"duration": "5s"}}, {"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]


def _obj(**status: Any) -> dict[str, Any]:
    spec = {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "demo"}},
        "strategy": {"canary": {"steps": STEPS}},
        "template": {
            "metadata": {"labels": {"app": "demo"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}, {"name": "proxy", "image": "envoy:1"}]},
        },
    }
    meta = {"name": "demo", "namespace": "drills", "generation": 2, "uid": "u"}
    return {"metadata": meta, "spec": spec, "status": {"observedGeneration": "2", **status}}


def _rs(revision: int | None, pod_hash: str, owner: str = "demo") -> dict[str, Any]:
    annotations = {} if revision is None else {REVISION_ANNOTATION: str(revision)}
    return {
        "metadata": {
            "name": f"demo-{pod_hash}",
            "labels": {"app": "demo", ROLLOUT_HASH_LABEL: pod_hash},
            "annotations": annotations,
            "ownerReferences": [{"kind": "Rollout", "name": owner}],
        },
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "demo", ROLLOUT_HASH_LABEL: pod_hash}},
                "spec": {"image": pod_hash},
            }
        },
    }


class FakeKube:
    def __init__(self, obj: dict[str, Any], *, status_subresource: bool = True) -> None:
        self.obj, self.status_subresource = obj, status_subresource
        self.patches: list[tuple[str | None, Any, str, bool]] = []
        self.listed: dict[str, list[dict[str, Any]]] = {}
        self.lists: list[dict[str, Any]] = []

    def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        assert (resource, name, namespace) == (resources.ROLLOUT, "demo", "drills")
        if self.obj is None:
            raise NotFound("gone")
        return self.obj

    def patch(
        self,
        resource: Resource,
        name: str,
        body: Any,
        *,
        namespace: str,
        patch_type: str = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        if subresource == "status" and not self.status_subresource:
            raise NotFound("no status subresource")
        self.patches.append((subresource, body, patch_type, dry_run))
        if isinstance(body, dict) and "spec" in body and "paused" in body["spec"]:
            self.obj["spec"]["paused"] = body["spec"]["paused"]
        return self.obj

    def list(self, resource: Resource, *, namespace: str, label_selector: str | None = None) -> tuple[list[Any], str]:
        self.lists.append({"list": resource.plural, "selector": label_selector})
        return self.listed.get(resource.plural, []), "1"


def _rollout(**status: Any) -> tuple[Rollout, FakeKube]:
    kube = FakeKube(_obj(**status))
    return Rollout(kube, namespace="drills", name="demo"), kube  # type: ignore[arg-type]


def test_abort_retry_promote_full_patch_the_status_subresource() -> None:
    rollout, kube = _rollout()
    rollout.abort()
    rollout.retry()
    rollout.promote_full()
    assert kube.patches == [
        ("status", {"status": {"abort": True}}, "merge", False),
        ("status", {"status": {"abort": False}}, "merge", False),
        ("status", {"status": {"promoteFull": True}}, "merge", False),
    ]


def test_status_patches_fall_back_to_the_object_without_a_status_subresource() -> None:
    rollout, kube = _rollout()
    kube.status_subresource = False
    rollout.abort()
    assert kube.patches == [(None, {"status": {"abort": True}}, "merge", False)]


def test_pause_resume_and_restart_patch_the_spec() -> None:
    rollout, kube = _rollout()
    rollout.pause()
    rollout.resume()
    rollout.restart()
    (_, paused, _, _), (_, resumed, _, _), (_, restarted, _, _) = kube.patches
    assert (paused, resumed) == ({"spec": {"paused": True}}, {"spec": {"paused": False}})
    assert restarted["spec"]["restartAt"].endswith("Z") and len(restarted["spec"]["restartAt"]) == 20


def test_promote_at_a_pause_step_moves_to_the_next_step() -> None:
    rollout, kube = _rollout(currentStepIndex=1, pauseConditions=[{"reason": "CanaryPauseStep"}])
    rollout.promote()
    assert kube.patches == [("status", {"status": {"pauseConditions": None, "currentStepIndex": 2}}, "merge", False)]


def test_promote_of_a_manually_paused_rollout_resumes_it_first() -> None:
    rollout, kube = _rollout(currentStepIndex=3)
    kube.obj["spec"]["paused"] = True
    rollout.promote()
    assert kube.patches == [
        (None, {"spec": {"paused": False}}, "merge", False),
        ("status", {"status": {"pauseConditions": None, "currentStepIndex": 4}}, "merge", False),
    ]


@pytest.mark.parametrize("step", [None, 0, 2, 4, 5])
def test_promote_off_a_pause_step_only_clears_pause_conditions(step: int | None) -> None:
    rollout, kube = _rollout(**({} if step is None else {"currentStepIndex": step}))
    rollout.promote()
    assert kube.patches == [("status", {"status": {"pauseConditions": None}}, "merge", False)]


def test_set_image_replaces_one_container_and_adds_annotations() -> None:
    rollout, kube = _rollout()
    rollout.set_image("app:2", annotations={"a": "1"}, dry_run=True)
    rollout.set_image("envoy:2", container="proxy")
    (_, first, kind, dry), (_, second, _, _) = kube.patches
    assert (kind, dry) == ("merge", True)
    assert first == {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "app", "image": "app:2"}, {"name": "proxy", "image": "envoy:1"}]},
                "metadata": {"annotations": {"a": "1"}},
            }
        }
    }
    assert second["spec"]["template"] == {
        "spec": {"containers": [{"name": "app", "image": "app:1"}, {"name": "proxy", "image": "envoy:2"}]}
    }
    with pytest.raises(
        ClusterError, match=r"^Rollout\(drills/demo\) has no container 'db' \(containers: app, proxy\)\.$"
    ):
        rollout.set_image("x", container="db")


def test_replica_sets_are_the_rollouts_own_by_revision() -> None:
    rollout, kube = _rollout()
    kube.listed["replicasets"] = [_rs(3, "c"), _rs(1, "a"), _rs(2, "b", owner="other"), _rs(None, "z")]
    assert [rs["metadata"]["name"] for rs in rollout.replica_sets()] == ["demo-z", "demo-a", "demo-c"]
    assert kube.lists[-1] == {"list": "replicasets", "selector": "app=demo"}
    assert sorted(rollout.revisions()) == [1, 3]


def test_undo_restores_the_template_without_its_hash_label() -> None:
    rollout, kube = _rollout()
    kube.listed["replicasets"] = [_rs(1, "a"), _rs(2, "b"), _rs(3, "c")]
    rollout.undo()
    rollout.undo(1, dry_run=True)
    (_, previous, kind, _), (_, first, _, dry) = kube.patches
    assert kind == "json" and dry is True
    assert previous == [
        {
            "op": "replace",
            "path": "/spec/template",
            "value": {"metadata": {"labels": {"app": "demo"}}, "spec": {"image": "b"}},
        }
    ]
    assert first[0]["value"]["spec"] == {"image": "a"}


def test_undo_without_somewhere_to_go_says_why() -> None:
    rollout, kube = _rollout()
    with pytest.raises(ClusterError, match=r"^Rollout\(drills/demo\) has no ReplicaSet revisions to undo to\.$"):
        rollout.undo()
    kube.listed["replicasets"] = [_rs(4, "d")]
    with pytest.raises(ClusterError, match=r"^Rollout\(drills/demo\) has only revision 4; nothing to undo to\.$"):
        rollout.undo()
    with pytest.raises(ClusterError, match=r"^Rollout\(drills/demo\) has no revision 2 \(revisions: 4\)\.$"):
        rollout.undo(2)
    assert kube.patches == []


def test_a_missing_rollout_says_how_to_deploy_it() -> None:
    rollout, kube = _rollout()
    kube.obj = None  # type: ignore[assignment]
    with pytest.raises(ClusterError, match=r"^Rollout 'demo' not found in namespace 'drills'\. Fix: deploy charts/"):
        rollout.get()


def test_wait_for_accepts_only_a_trusted_status_meeting_every_expectation() -> None:
    rollout, kube = _rollout()
    untrusted = {**_obj(phase="Healthy"), "status": {"phase": "Healthy", "observedGeneration": "1"}}
    progressing = _obj(phase="Progressing", stableRS="a", currentPodHash="b")
    healthy = _obj(phase="Healthy", stableRS="a", currentPodHash="a", availableReplicas=3)
    kube.wait = lambda resource, predicate, **kw: next(  # type: ignore[method-assign]
        (r for objs in ([], [untrusted], [progressing], [healthy]) if (r := predicate(objs))), None
    )
    status = rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=1)
    assert status == read_status(healthy)
    assert rollout.wait_for(phase="Progressing", aborted=False) == read_status(progressing)
    assert rollout.wait_for(phase="Healthy", aborted=True) is None


def test_wait_settled_waits_again_when_a_settled_status_is_followed_by_an_unsettled_write() -> None:
    """After a restart the controller can write Healthy from a stale cache, then Progressing once it catches up."""
    rollout, kube = _rollout()
    settled = _obj(phase="Healthy", stableRS="a", currentPodHash="a", availableReplicas=3)
    stale_then_caught_up = [
        [settled],
        [_obj(phase="Progressing", stableRS="a", currentPodHash="a", availableReplicas=2)],
    ]
    watches = iter([[[settled]], stale_then_caught_up, [[settled]], [[settled]]])
    holds: list[float] = []

    def wait(resource: Resource, predicate: Any, *, timeout_s: float, what: str, **kw: Any) -> Any:
        holds.append(timeout_s)
        if result := next((r for objs in next(watches) if (r := predicate(objs))), None):
            return result
        raise WaitTimeout(what)

    kube.wait = wait  # type: ignore[method-assign]
    assert rollout.wait_settled(timeout_s=30) == read_status(settled)
    # settle, hold (moved), settle again, hold (quiet): four waits, the holds SETTLED_HOLD_S each
    assert holds[1::2] == [SETTLED_HOLD_S, SETTLED_HOLD_S]
    assert len(holds) == 4


def test_analysis_runs_are_the_rollouts_own_oldest_first() -> None:
    rollout, kube = _rollout()

    def run(name: str, created: str, owner: str = "demo", phase: str = "Running") -> dict[str, Any]:
        meta = {"name": name, "creationTimestamp": created, "ownerReferences": [{"name": owner}]}
        return {"metadata": meta, "status": {"phase": phase}}

    kube.listed["analysisruns"] = [
        run("b", "2026-01-01T00:00:02Z"),
        run("x", "2026-01-01T00:00:00Z", owner="other"),
        run("a", "2026-01-01T00:00:01Z"),
    ]
    assert [r["metadata"]["name"] for r in rollout.analysis_runs()] == ["a", "b"]
    runs = [run("old", "2026-01-01T00:00:00Z", phase="Failed"), run("other", "2026-01-01T00:00:05Z", "x", "Failed")]
    runs.append(run("new", "2026-01-01T00:00:05Z", phase="Failed"))
    kube.wait = lambda resource, predicate, **kw: predicate(runs)  # type: ignore[method-assign]
    assert rollout.wait_for_analysis("Failed", after="2026-01-01T00:00:01Z")["metadata"]["name"] == "new"
    assert rollout.wait_for_analysis("Failed")["metadata"]["name"] == "old"
    assert rollout.wait_for_analysis("Successful") is None
