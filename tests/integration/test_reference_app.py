"""charts/ on the sandbox: a good version walks all five canary steps; a faulty one is aborted by its analysis."""

from __future__ import annotations

import time
from typing import Any

from pytest_mnops import app
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.rollouts import Rollout, read_status

IMAGE = "ghcr.io/machinenativeops/machine-native-ops:{}"
WEIGHTS = [10, 30, 50, 80, 100]


def test_a_good_version_walks_every_step_and_ends_healthy(kube: Kube, namespace: str) -> None:
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    before = rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120).stable_hash
    steps = rollout.get()["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == WEIGHTS
    rollout.set_image(IMAGE.format("2.0.0"), annotations={"traffic.mnops.dev/error-ratio": "0"})
    seen: set[int] = set()

    def promoted(objs: list[dict[str, Any]]) -> bool:
        status = read_status(objs[0])
        if status.step_index is not None:
            seen.add(status.step_index)
        return (
            status.trusted and status.phase == "Healthy" and status.stable_is_current and status.stable_hash != before
        )

    kube.wait(
        resources.ROLLOUT,
        promoted,
        name=app.APP_NAME,
        namespace=namespace,
        timeout_s=300,
        what="the good version fully promoted",
    )
    assert seen >= set(range(1, len(steps) + 1)), f"steps seen: {sorted(seen)}"
    current = rollout.status().stable_hash

    def judged(runs: list[dict[str, Any]]) -> bool:
        return any(
            r["metadata"]["labels"].get("rollouts-pod-template-hash") == current
            and (r.get("status") or {}).get("phase") == "Successful"
            for r in runs
        )

    # The background analysis of the promoted version ends Successful once the rollout completes.
    kube.wait(resources.ANALYSIS_RUN, judged, namespace=namespace, timeout_s=60, what="a Successful AnalysisRun")


def test_a_faulty_version_is_aborted_by_its_analysis_within_a_minute(kube: Kube, namespace: str) -> None:
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    stable = rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120).stable_hash
    started = time.monotonic()
    rollout.set_image(IMAGE.format("2.1.0-faulty"), annotations={"traffic.mnops.dev/error-ratio": "0.1"})
    status = rollout.wait_for(aborted=True, timeout_s=120)
    took = time.monotonic() - started
    print(f"time from the faulty version to the abort: {took:.1f}s")
    assert took <= 60 and status.stable_hash == stable and status.phase == "Degraded"
    failed = [r for r in rollout.analysis_runs() if r["status"].get("phase") in ("Failed", "Error")]
    assert failed, "the abort must come from a failed AnalysisRun"
    revision = next(
        r for r, rs in rollout.revisions().items() if rs["metadata"]["labels"]["rollouts-pod-template-hash"] == stable
    )
    rollout.undo(revision)
    rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120)
