"""canary-failure and emergency-rollback: a new version started as a canary, its steps, its AnalysisRun failing
and the Rollout aborting."""

from __future__ import annotations

import time
from typing import Any

from pytest_mnops.chaos.activities._shared import Configuration, _profile, _rollout, _run_started, budget
from pytest_mnops.k8s import resources
from pytest_mnops.profile.versions import version_patch
from pytest_mnops.rollouts import read_status


def deploy_version(version: str, configuration: Configuration) -> dict[str, Any]:
    """Start a canary of the profile's ``version`` (``faulty_version`` or ``rollout_version``).

    Without a ``rollout_version`` the new version is the current one with a new pod-template annotation: a
    harmless change that works on any app.
    """
    profile = _profile(configuration)
    spec = profile.need(version, "this drill") if version == "faulty_version" else profile.get(version) or {}
    rollout = _rollout(configuration)
    body = version_patch(
        rollout.get()["spec"]["template"],
        spec,
        container=profile.container,
        run_id=configuration["run_id"],
        sandbox=bool(configuration.get("sandbox")),
    )
    rollout.kube.patch(resources.ROLLOUT, rollout.name, body, namespace=rollout.namespace)
    image = next(c["image"] for c in body["spec"]["template"]["spec"]["containers"] if c["name"] == profile.container)
    return {"version": version, "image": image}


def wait_for_canary_step(step: int, configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    rollout = _rollout(configuration)

    def at_step(objs: list[dict[str, Any]]) -> int | None:
        status = read_status(objs[0]) if objs else None
        if status and status.trusted and (status.step_index or 0) >= step and not status.stable_is_current:
            return status.step_index
        return None

    reached = rollout.kube.wait(
        resources.ROLLOUT,
        at_step,
        name=rollout.name,
        namespace=rollout.namespace,
        timeout_s=budget(configuration, timeout_s),
        what=f"the canary at step {step}",
    )
    return {"step": reached}


def wait_for_analysis_failed(configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    """An AnalysisRun of this Rollout, created during this run, ends Failed or Error."""
    rollout = _rollout(configuration)
    rollout.wait_observed()  # no analysis runs without the controller: say so, not "not detected"
    # creationTimestamp has one-second resolution: allow the second the run started in.
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_run_started(configuration) - 1))

    def failed(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
        for run in runs:
            owners = {o.get("name") for o in run["metadata"].get("ownerReferences") or []}
            if (
                rollout.name in owners
                and run["metadata"]["creationTimestamp"] >= since
                and (run.get("status") or {}).get("phase") in ("Failed", "Error")
            ):
                return run
        return None

    run = rollout.kube.wait(
        resources.ANALYSIS_RUN,
        failed,
        namespace=rollout.namespace,
        timeout_s=budget(configuration, timeout_s),
        what=f"an AnalysisRun of Rollout {rollout.name!r} started by this drill to fail",
    )
    failed_metrics = [
        m["name"] for m in run["status"].get("metricResults", []) if m.get("phase") in ("Failed", "Error")
    ]
    return {"analysis_run": run["metadata"]["name"], "failed_metrics": failed_metrics, "detected_at": time.time()}


def wait_for_abort(configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    _rollout(configuration).wait_observed()
    status = _rollout(configuration).wait_for(aborted=True, timeout_s=budget(configuration, timeout_s))
    return {"phase": status.phase, "message": status.message, "aborted_at": time.time()}
