"""pod-failure: the replacements a kill of ``kill_percent`` calls for, watched from before the kill until every
replica is Ready and the Rollout Healthy again."""

from __future__ import annotations

import math
import time
from typing import Any

from pytest_mnops.chaos.activities._shared import Configuration, _kube, _rollout, _selector, budget
from pytest_mnops.errors import ClusterError, WaitTimeout
from pytest_mnops.k8s import pod_ready, resources
from pytest_mnops.rollouts import Rollout

# The Rollout controller writes its status milliseconds after the ReplicaSet's, or not at all when a kill healed
# before it looked. How long a loaded machine may take to write it, before the status of before the kill stands.
ROLLOUT_CATCH_UP_S = 5.0


def _wait_rollout_settled(configuration: Configuration, timeout_s: float, before: str) -> bool:
    """The Rollout itself reports Healthy with every replica available (its status lags the pods).

    A Healthy status of before the kill (resourceVersion ``before``) is not the answer while the controller may
    still write one: a one-pod kill heals in 0.1 s, before the controller turns Progressing. True when the
    controller wrote after the kill; False when it wrote nothing within ROLLOUT_CATCH_UP_S.
    """
    rollout = _rollout(configuration)

    def rewritten(objs: list[dict[str, Any]]) -> bool:
        return bool(objs) and objs[0]["metadata"]["resourceVersion"] != before

    try:
        rollout.kube.wait(
            resources.ROLLOUT,
            rewritten,
            name=rollout.name,
            namespace=rollout.namespace,
            timeout_s=ROLLOUT_CATCH_UP_S,
            what=f"Rollout {rollout.name!r} status written after the kill",
        )
        wrote = True
    except WaitTimeout:
        wrote = False
    rollout.wait_settled(timeout_s=timeout_s)
    return wrote


def replacements_expected(replicas: int, kill_percent: float) -> int:
    """Pods a kill of ``kill_percent`` terminates, rounded up as chaostoolkit-kubernetes and the blast guard do."""
    return math.ceil(replicas * float(kill_percent) / 100)


def watch_pod_replacements(kill_percent: float, timeout_s: float, configuration: Configuration) -> dict[str, Any]:
    """Run in the background across the injection: first replacement pod created, then all replicas Ready and
    the Rollout Healthy again.

    The replacements expected follow from the Rollout's replicas and the scenario's ``kill_percent``.
    """
    kube = _kube(configuration)
    namespace, selector = configuration["namespace"], _selector(configuration)
    app = Rollout(kube, namespace=namespace, name=configuration["app"]).get()
    desired = int(app["spec"].get("replicas", 1))
    expected = replacements_expected(desired, kill_percent)
    if expected < 1:
        raise ClusterError(f"kill_percent {kill_percent} of {desired} replicas terminates no pod: nothing to watch")
    known: set[str] | None = None
    marks: dict[str, float] = {}

    def healed(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
        nonlocal known
        # The wait's first list is the app before the kill (this probe starts first): its pods are the ones
        # to be replaced. Not a list of its own: at 1000 pods, each costs two requests and tens of MB.
        if known is None:
            known = {p["metadata"]["uid"] for p in pods}
            return None
        new = [p for p in pods if p["metadata"]["uid"] not in known]
        if new and "detected_at" not in marks:
            marks["detected_at"] = time.time()
        ready = [p for p in pods if pod_ready(p)]
        if len(new) >= expected and len(ready) >= desired:
            return {
                "detected_at": marks["detected_at"],
                "recovered_at": time.time(),
                "expected": expected,
                "replaced": len(new),
                "ready": len(ready),
            }
        return None

    result = kube.wait(
        resources.POD,
        healed,
        namespace=namespace,
        label_selector=selector,
        timeout_s=budget(configuration, timeout_s),
        what=f"{expected} replacement pods ({kill_percent}% of {desired}) and {desired} Ready replicas",
    )
    if _wait_rollout_settled(configuration, budget(configuration, timeout_s), app["metadata"]["resourceVersion"]):
        result["recovered_at"] = time.time()  # healed when the Rollout said so; else when the pods were
    return result
