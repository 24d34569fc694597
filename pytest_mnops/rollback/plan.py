"""Where a rollback goes and what was running before it (pure: computed from the objects alone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_mnops.errors import RollbackError
from pytest_mnops.names import ROLLOUT_HASH_LABEL
from pytest_mnops.rollouts import REVISION_ANNOTATION, read_status

Obj = dict[str, Any]
SNAPSHOT_KIND = "mnops.dev/rollback-snapshot"


@dataclass(frozen=True)
class RollbackPlan:
    namespace: str
    name: str
    from_revision: int | None
    from_hash: str
    to_revision: int
    to_hash: str
    abort: bool  # an update is in flight: send its traffic back to stable first
    resume: bool  # spec.paused is set: a manual pause would hold the rollback in phase Paused
    promote_full: bool  # the target is not the stable ReplicaSet: skip the canary steps towards it

    def steps(self) -> list[str]:
        steps = (
            [
                f"abort the update to revision {self.from_revision} (pod-template-hash {self.from_hash}): "
                "status.abort=true sends its traffic back to stable"
            ]
            if self.abort
            else []
        )
        steps.append(
            f"undo: spec.template := pod template of revision {self.to_revision} (pod-template-hash {self.to_hash})"
        )
        if self.resume:
            steps.append("resume: clear the manual pause (spec.paused=false)")
        if self.promote_full:
            steps.append(
                f"promote-full: revision {self.to_revision} is not the stable ReplicaSet, skip the canary steps"
            )
        return steps


def _revision(rs: Obj) -> int | None:
    raw = (rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
    return int(raw) if raw is not None else None


def _hash(rs: Obj) -> str:
    return (rs["metadata"].get("labels") or {}).get(ROLLOUT_HASH_LABEL, "")


def plan_rollback(rollout: Obj, replica_sets: list[Obj], *, to_revision: int | None = None) -> RollbackPlan:
    """Where a rollback would go: ``to_revision``, else the stable ReplicaSet, else the previous revision."""
    status = read_status(rollout)
    namespace, name = rollout["metadata"].get("namespace", ""), status.name
    where = f"Rollout {name!r} in namespace {namespace!r}"
    hashes = {rev: _hash(rs) for rs in replica_sets if (rev := _revision(rs)) is not None}
    by_hash = {h: rev for rev, h in hashes.items()}
    if not hashes:
        raise RollbackError(
            f"{where} has no ReplicaSet revisions. Fix: check the Rollout's selector matches "
            "its pods (`kubectl get rs -l <selector>`); there is nothing to roll back to."
        )
    from_revision = by_hash.get(status.current_hash)
    listed = ", ".join(map(str, sorted(hashes)))
    if to_revision is not None:
        if to_revision not in hashes:
            raise RollbackError(
                f"{where} has no revision {to_revision} (revisions: {listed}). "
                "Fix: pass --to-revision with one of them."
            )
        target = to_revision
    elif status.stable_hash in by_hash and status.stable_hash != status.current_hash:
        target = by_hash[status.stable_hash]
    else:
        older = [rev for rev in sorted(hashes) if from_revision is None or rev < from_revision]
        if not older:
            raise RollbackError(
                f"{where} runs revision {from_revision} and has no earlier one (revisions: "
                f"{listed}). Fix: nothing to roll back to; deploy a fixed version instead."
            )
        target = older[-1]
    if hashes[target] == status.current_hash:
        raise RollbackError(
            f"{where} already runs revision {target} (pod-template-hash {hashes[target]}). "
            "Fix: pick another --to-revision, or nothing needs rolling back."
        )
    update_in_flight = bool(status.current_hash) and status.current_hash != status.stable_hash
    return RollbackPlan(
        namespace=namespace,
        name=name,
        from_revision=from_revision,
        from_hash=status.current_hash,
        to_revision=target,
        to_hash=hashes[target],
        abort=update_in_flight and not status.aborted,
        resume=bool(rollout["spec"].get("paused")),
        promote_full=hashes[target] != status.stable_hash,
    )


def snapshot_document(rollout: Obj, replica_sets: list[Obj], *, taken_at: str) -> Obj:
    """The Rollout (spec + status) and its ReplicaSets, enough to see and redo what was running."""
    meta = rollout["metadata"]
    return {
        "kind": SNAPSHOT_KIND,
        "taken_at": taken_at,
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "rollout": {
            "metadata": {
                key: meta.get(key)
                for key in ("name", "namespace", "uid", "generation", "resourceVersion", "labels", "annotations")
            },
            "spec": rollout.get("spec"),
            "status": rollout.get("status"),
        },
        "replica_sets": [
            {
                "name": rs["metadata"]["name"],
                "revision": _revision(rs),
                "pod_template_hash": _hash(rs),
                "replicas": (rs.get("spec") or {}).get("replicas", 0),
                "ready_replicas": (rs.get("status") or {}).get("readyReplicas", 0),
                "images": [c.get("image") for c in rs["spec"]["template"]["spec"].get("containers", [])],
                "template": rs["spec"]["template"],
            }
            for rs in replica_sets
        ],
    }
