"""Back on the stable revision: the recovery probe several drills share (every Ready pod on stable) and the
revert of a bad rollout."""

from __future__ import annotations

import time
from typing import Any

from pytest_mnops.chaos.activities._shared import Configuration, _rollout, _selector, budget
from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import pod_ready, resources
from pytest_mnops.names import ROLLOUT_HASH_LABEL
from pytest_mnops.rollouts import read_status


def wait_for_stable_serving(configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    """Every Ready pod of the app runs the stable revision and the desired count is Ready: 100% on stable."""
    rollout = _rollout(configuration)
    desired = int(rollout.get()["spec"].get("replicas", 1))

    def all_stable(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
        stable = read_status(rollout.get()).stable_hash
        ready = [p for p in pods if pod_ready(p)]
        hashes = {p["metadata"].get("labels", {}).get(ROLLOUT_HASH_LABEL) for p in ready}
        if stable and hashes == {stable} and len(ready) >= desired:
            return {"stable": stable, "ready": len(ready), "recovered_at": time.time()}
        return None

    return rollout.kube.wait(
        resources.POD,
        all_stable,
        namespace=rollout.namespace,
        label_selector=_selector(configuration),
        timeout_s=budget(configuration, timeout_s),
        what="all Ready pods on the stable revision",
    )


def restore_stable_version(configuration: Configuration) -> dict[str, Any]:
    """Revert a bad rollout: put the stable ReplicaSet's template back and clear the abort flag."""
    rollout = _rollout(configuration)
    status = rollout.status()
    if not status.stable_is_current:
        stable = next(
            (
                rs
                for rs in rollout.replica_sets()
                if rs["metadata"].get("labels", {}).get(ROLLOUT_HASH_LABEL) == status.stable_hash
            ),
            None,
        )
        if stable is None:
            raise ClusterError(f"{rollout!r}: no ReplicaSet for stable hash {status.stable_hash!r} to restore")
        revision = int(stable["metadata"]["annotations"]["rollout.argoproj.io/revision"])
        rollout.undo(revision)
    if rollout.status().aborted:
        rollout.retry()
    rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=budget(configuration, 600))
    return {"stable": rollout.status().stable_hash}
