"""Argo Rollouts verbs on the Rollout custom resource, as the kubectl plugin performs them."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_mnops.errors import ClusterError, ControllerDown, NotFound, WaitTimeout
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.k8s.conditions import condition_true
from pytest_mnops.names import ROLLOUT_HASH_LABEL

Obj = dict[str, Any]
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
ANALYSIS_DONE = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
# The controller observes a spec change in well under a second; this long without, it is not reconciling.
CONTROLLER_GRACE_S = 20.0
# A settled status can come from a stale cache: a restart's last write (restartedAt) may still count the pod it
# just evicted, and the next write, once the ReplicaSet notices, says Progressing (17 ms later, measured).
SETTLED_HOLD_S = 1.0


@dataclass(frozen=True)
class RolloutStatus:
    """What a Rollout says about itself; ``phase`` is only meaningful when ``trusted``."""

    name: str
    generation: int
    trusted: bool
    phase: str
    message: str
    aborted: bool
    paused: bool
    step_index: int | None
    stable_hash: str
    current_hash: str
    available: int
    replicas: int
    # No restart asked (spec.restartAt), or the controller has replaced every pod older than it.
    restarted: bool

    @property
    def stable_is_current(self) -> bool:
        return bool(self.stable_hash) and self.stable_hash == self.current_hash

    @property
    def settled(self) -> bool:
        """Nothing moving: Healthy on the stable revision, every replica available, any restart finished.

        Healthy alone is not enough after a restart: the status that records it finished can still say
        Healthy while the last replaced pod is not yet available."""
        return (
            self.trusted
            and self.phase == "Healthy"
            and self.stable_is_current
            and self.available >= self.replicas
            and self.restarted
            and not self.aborted
        )

    def describe(self) -> str:
        trust = "" if self.trusted else " (status not yet observed for this generation)"
        return (
            f"Rollout {self.name!r}: phase={self.phase or '?'}{trust} step={self.step_index} "
            f"aborted={self.aborted} available={self.available}/{self.replicas} "
            f"stable={self.stable_hash} current={self.current_hash} {self.message}"
        ).strip()


def read_status(obj: Obj) -> RolloutStatus:
    status = obj.get("status") or {}
    generation = int(obj["metadata"].get("generation", 0))
    # Argo Rollouts stores observedGeneration as a string.
    observed = str(status.get("observedGeneration", ""))
    return RolloutStatus(
        name=obj["metadata"]["name"],
        generation=generation,
        trusted=observed == str(generation),
        phase=status.get("phase", ""),
        message=status.get("message", ""),
        aborted=bool(status.get("abort")),
        paused=bool(obj["spec"].get("paused")) or bool(status.get("pauseConditions")),
        step_index=status.get("currentStepIndex"),
        stable_hash=status.get("stableRS", ""),
        current_hash=status.get("currentPodHash", ""),
        available=int(status.get("availableReplicas", 0)),
        replicas=int(obj["spec"].get("replicas", 1)),
        restarted=status.get("restartedAt") == obj["spec"].get("restartAt"),
    )


class Rollout:
    """One Rollout: read its status, act on it, and wait (by watch) for the state a drill expects."""

    def __init__(self, kube: Kube, *, namespace: str, name: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name

    def __repr__(self) -> str:
        return f"Rollout({self.namespace}/{self.name})"

    def get(self) -> Obj:
        try:
            return self.kube.get(resources.ROLLOUT, self.name, namespace=self.namespace)
        except NotFound:
            raise ClusterError(
                f"Rollout {self.name!r} not found in namespace {self.namespace!r}. Fix: deploy charts/ "
                "(`kubectl apply -k charts/ -n NAMESPACE`) or pass --mnops-app/--mnops-namespace."
            ) from None

    def status(self) -> RolloutStatus:
        return read_status(self.get())

    # -- verbs ----------------------------------------------------------------------------------------
    def _patch_status(self, body: Obj) -> Obj:
        """The kubectl plugin patches the status subresource and falls back to the object on 404."""
        try:
            return self.kube.patch(resources.ROLLOUT, self.name, body, namespace=self.namespace, subresource="status")
        except NotFound:
            return self.kube.patch(resources.ROLLOUT, self.name, body, namespace=self.namespace)

    def _patch(self, body: Any, *, patch_type: str = "merge", dry_run: bool = False) -> Obj:
        return self.kube.patch(
            resources.ROLLOUT, self.name, body, namespace=self.namespace, patch_type=patch_type, dry_run=dry_run
        )

    def abort(self) -> Obj:
        return self._patch_status({"status": {"abort": True}})

    def retry(self) -> Obj:
        return self._patch_status({"status": {"abort": False}})

    def pause(self) -> Obj:
        return self._patch({"spec": {"paused": True}})

    def resume(self) -> Obj:
        """Clear a manual pause (`spec.paused`), which otherwise holds even a rollback in phase Paused."""
        return self._patch({"spec": {"paused": False}})

    def promote(self) -> Obj:
        """Skip the current pause step, like `kubectl argo rollouts promote`."""
        obj = self.get()
        if obj["spec"].get("paused"):
            obj = self.resume()
        body: Obj = {"status": {"pauseConditions": None}}
        step = (obj.get("status") or {}).get("currentStepIndex")
        steps = ((obj["spec"].get("strategy") or {}).get("canary") or {}).get("steps") or []
        if step is not None and step < len(steps) and "pause" in steps[step]:
            body["status"]["currentStepIndex"] = step + 1
        return self._patch_status(body)

    def promote_full(self) -> Obj:
        return self._patch_status({"status": {"promoteFull": True}})

    def restart(self) -> Obj:
        """Replace every pod that exists now, like `kubectl argo rollouts restart`, but at the next whole second.

        ``restartAt`` has one-second resolution and Argo Rollouts replaces only pods created *before* it. At "now"
        (truncated to the second), a pod created earlier in this same second, such as a replacement for a pod
        just killed, would be passed over and keep what it read at start: the old value of a rotated Secret.
        """
        at = dt.datetime.fromtimestamp(math.floor(time.time()) + 1, dt.UTC)
        return self._patch({"spec": {"restartAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")}})

    def set_image(
        self,
        image: str,
        *,
        container: str | None = None,
        annotations: dict[str, str] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Start a new revision: a container image, plus pod-template annotations if given."""
        containers = self.get()["spec"]["template"]["spec"]["containers"]
        names = [c["name"] for c in containers]
        target = container or names[0]
        if target not in names:
            raise ClusterError(f"{self!r} has no container {target!r} (containers: {', '.join(names)}).")
        # Strategic merge is not available for custom resources: a merge patch replaces the whole list.
        template: Obj = {
            "spec": {"containers": [dict(c, image=image) if c["name"] == target else c for c in containers]}
        }
        if annotations:
            template["metadata"] = {"annotations": annotations}
        return self._patch({"spec": {"template": template}}, dry_run=dry_run)

    def replica_sets(self) -> list[Obj]:
        selector = self.get()["spec"]["selector"]["matchLabels"]
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        items, _ = self.kube.list(resources.REPLICA_SET, namespace=self.namespace, label_selector=label_selector)
        owned = [
            rs
            for rs in items
            if any(
                o.get("kind") == "Rollout" and o.get("name") == self.name
                for o in rs["metadata"].get("ownerReferences") or []
            )
        ]
        return sorted(owned, key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION_ANNOTATION, 0)))

    def revisions(self) -> dict[int, Obj]:
        return {
            int(rs["metadata"]["annotations"][REVISION_ANNOTATION]): rs
            for rs in self.replica_sets()
            if REVISION_ANNOTATION in rs["metadata"].get("annotations", {})
        }

    def undo(self, to_revision: int | None = None, *, dry_run: bool = False) -> Obj:
        """Put the pod template of an earlier revision back (default: the one before the current)."""
        revisions = self.revisions()
        if not revisions:
            raise ClusterError(f"{self!r} has no ReplicaSet revisions to undo to.")
        if to_revision is None:
            older = sorted(revisions)[:-1]
            if not older:
                raise ClusterError(f"{self!r} has only revision {max(revisions)}; nothing to undo to.")
            to_revision = older[-1]
        if to_revision not in revisions:
            raise ClusterError(
                f"{self!r} has no revision {to_revision} (revisions: {', '.join(map(str, sorted(revisions)))})."
            )
        template = revisions[to_revision]["spec"]["template"]
        labels = {k: v for k, v in (template["metadata"].get("labels") or {}).items() if k != ROLLOUT_HASH_LABEL}
        restored = {**template, "metadata": {**template["metadata"], "labels": labels}}
        return self._patch(
            [{"op": "replace", "path": "/spec/template", "value": restored}], patch_type="json", dry_run=dry_run
        )

    # -- waits ----------------------------------------------------------------------------------------
    def wait_for(
        self,
        *,
        phase: str | None = None,
        condition: str | None = None,
        aborted: bool | None = None,
        stable_is_current: bool | None = None,
        timeout_s: float = 120,
    ) -> RolloutStatus:
        """Block (by watch) until every given expectation holds on a trusted status."""
        wanted = {
            k: v
            for k, v in dict(
                phase=phase,
                condition=condition,
                aborted=aborted,
                stable_is_current=stable_is_current,
            ).items()
            if v is not None
        }

        def satisfied(objs: list[Obj]) -> RolloutStatus | None:
            if not objs:
                return None
            obj = objs[0]
            st = read_status(obj)
            ok = (
                st.trusted
                and (phase is None or st.phase == phase)
                and (condition is None or condition_true(obj, condition))
                and (aborted is None or st.aborted == aborted)
                and (stable_is_current is None or st.stable_is_current == stable_is_current)
            )
            return st if ok else None

        return self.kube.wait(
            resources.ROLLOUT,
            satisfied,
            name=self.name,
            namespace=self.namespace,
            timeout_s=timeout_s,
            what=f"Rollout {self.name!r} to reach {wanted}",
        )

    def wait_status(self, holds: Callable[[RolloutStatus], bool], *, timeout_s: float, what: str) -> RolloutStatus:
        """Block (by watch) until ``holds`` is true of a trusted status: one written for the current spec."""

        def satisfied(objs: list[Obj]) -> RolloutStatus | None:
            status = read_status(objs[0]) if objs else None
            return status if status is not None and status.trusted and holds(status) else None

        return self.kube.wait(
            resources.ROLLOUT, satisfied, name=self.name, namespace=self.namespace, timeout_s=timeout_s, what=what
        )

    def wait_settled(self, timeout_s: float) -> RolloutStatus:
        """Block until the Rollout is settled and no write says otherwise for SETTLED_HOLD_S."""
        deadline = time.monotonic() + timeout_s
        what = f"Rollout {self.name!r} to settle"

        def moved(objs: list[Obj]) -> bool:
            return not objs or not read_status(objs[0]).settled

        while True:
            status = self.wait_status(lambda st: st.settled, timeout_s=max(deadline - time.monotonic(), 0.0), what=what)
            try:
                self.kube.wait(
                    resources.ROLLOUT,
                    moved,
                    name=self.name,
                    namespace=self.namespace,
                    timeout_s=SETTLED_HOLD_S,
                    what=f"Rollout {self.name!r} to move again",
                )
            except WaitTimeout:
                return status

    def wait_observed(self, timeout_s: float = CONTROLLER_GRACE_S) -> RolloutStatus:
        """The Argo Rollouts controller has seen the latest spec (``status.observedGeneration == generation``).

        A drill that waits for an analysis or an abort would otherwise time out as "not detected" when the
        controller that runs them is down.
        """
        try:
            return self.wait_status(
                lambda status: True,
                timeout_s=timeout_s,
                what=f"the Argo Rollouts controller to observe Rollout {self.name!r}",
            )
        except WaitTimeout:
            raise ControllerDown(self._not_reconciling(self.get(), timeout_s)) from None

    def reconciling_check(self, grace_s: float = CONTROLLER_GRACE_S) -> Callable[[], str | None]:
        """A check for a drill's stop watch: None while the controller keeps up with the spec, else why not."""
        unobserved_since: float | None = None

        def check() -> str | None:
            nonlocal unobserved_since
            obj = self.get()
            if read_status(obj).trusted:
                unobserved_since = None
                return None
            unobserved_since = unobserved_since or time.monotonic()
            lag = time.monotonic() - unobserved_since
            return self._not_reconciling(obj, lag) if lag > grace_s else None

        return check

    def _not_reconciling(self, obj: Obj, for_s: float) -> str:
        observed = (obj.get("status") or {}).get("observedGeneration", "none")
        return (
            f"the Argo Rollouts controller is not reconciling Rollout {self.namespace}/{self.name}: "
            f"metadata.generation {obj['metadata'].get('generation')} unobserved for {for_s:.0f}s "
            f"(status.observedGeneration {observed}). Fix: check the controller is running and watches this "
            "namespace (`kubectl -n argo-rollouts get pods`, its log; sandbox: `mnops sandbox status`)."
        )

    def analysis_runs(self) -> list[Obj]:
        items, _ = self.kube.list(resources.ANALYSIS_RUN, namespace=self.namespace)
        owned = [
            r for r in items if any(o.get("name") == self.name for o in r["metadata"].get("ownerReferences") or [])
        ]
        return sorted(owned, key=lambda r: r["metadata"]["creationTimestamp"])

    def wait_for_analysis(self, phase: str, *, timeout_s: float = 120, after: str | None = None) -> Obj:
        """The first AnalysisRun of this Rollout (created after ``after``, if given) reaching ``phase``."""

        def reached(runs: list[Obj]) -> Obj | None:
            for run in runs:
                mine = any(o.get("name") == self.name for o in run["metadata"].get("ownerReferences") or [])
                fresh = after is None or run["metadata"]["creationTimestamp"] >= after
                if mine and fresh and (run.get("status") or {}).get("phase") == phase:
                    return run
            return None

        return self.kube.wait(
            resources.ANALYSIS_RUN,
            reached,
            namespace=self.namespace,
            timeout_s=timeout_s,
            what=f"an AnalysisRun of Rollout {self.name!r} to reach phase {phase}",
        )
