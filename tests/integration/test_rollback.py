"""Rollback against the real sandbox: a canary of the reference app in a namespace of its own.

The sandbox must be running (`mnops sandbox up`); CI always runs one, so a missing sandbox is an error here,
never a skip. Namespace `default` is left alone: every module deploys its own copy of the app.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_mnops import app, cli, profile
from pytest_mnops.k8s import Kube, pod_ready, resources
from pytest_mnops.names import ROLLOUT_HASH_LABEL
from pytest_mnops.notify import Notifier
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.rollback import RollbackHelper, RollbackResult
from pytest_mnops.rollouts import Rollout, RolloutStatus
from pytest_mnops.sandbox.settings import SandboxSettings

pytestmark = pytest.mark.integration

IMAGE = "ghcr.io/machinenativeops/machine-native-ops:{}"
GOOD = {"traffic.mnops.dev/error-ratio": "0", "traffic.mnops.dev/latency-ms": "40"}
BAD = {"traffic.mnops.dev/error-ratio": "0.5", "traffic.mnops.dev/latency-ms": "40"}
VERSIONS = (f"1.{n}.0" for n in itertools.count(1))


@pytest.fixture
def rollout(kube: Kube, namespace: str) -> Rollout:
    return Rollout(kube, namespace=namespace, name=app.APP_NAME)


@pytest.fixture
def helper(kube: Kube, namespace: str, sandbox: SandboxSettings, tmp_path: Path) -> RollbackHelper:
    return RollbackHelper(
        kube,
        namespace=namespace,
        name=app.APP_NAME,
        prometheus=Prometheus(sandbox.prometheus_url),
        snapshot_dir=tmp_path,
        notifier=Notifier.for_sandbox(sandbox),
        # The app's SLOs as its profile discovers them: its AnalysisTemplates' queries, app-wide.
        slos=profile.resolve(kube, namespace=namespace, app=app.APP_NAME, file=None).slos(),
    )


def start_canary(rollout: Rollout, annotations: dict[str, str]) -> RolloutStatus:
    """Start a new version and return once the canary pauses part-way (step pause or analysis pause)."""
    stable = rollout.wait_for(phase="Healthy").stable_hash
    rollout.set_image(IMAGE.format(next(VERSIONS)), annotations=annotations)

    return rollout.wait_status(
        lambda status: status.paused and status.current_hash not in ("", stable),
        timeout_s=60,
        what="the canary to pause part-way",
    )


def resource_versions(rollout: Rollout) -> dict[str, str]:
    """The Rollout's and its ReplicaSets' resourceVersions: any write to them changes one."""
    versions = {rs["metadata"]["name"]: rs["metadata"]["resourceVersion"] for rs in rollout.replica_sets()}
    return {"rollout": rollout.get()["metadata"]["resourceVersion"], **versions}


def received(sandbox: SandboxSettings, channel: str, match: Callable[[Any], bool], *, since: float) -> list[Any]:
    resp = requests.get(f"{sandbox.receivers_url}/received", params={"channel": channel}, timeout=10)
    resp.raise_for_status()
    return [i["payload"] for i in resp.json() if i["received_at"] >= since and match(i["payload"])]


def assert_stable_serves_everything(rollout: Rollout, result: RollbackResult, stable_hash: str) -> None:
    assert result.verified, result.summary()
    assert result.plan.to_hash == stable_hash
    status = rollout.status()
    assert status.trusted and status.phase == "Healthy"
    assert status.stable_hash == status.current_hash == stable_hash
    assert not rollout.get()["status"].get("abort")
    pods, _ = rollout.kube.list(resources.POD, namespace=rollout.namespace, label_selector=f"app={app.APP_NAME}")
    ready = [p for p in pods if pod_ready(p)]
    assert ready and {p["metadata"]["labels"][ROLLOUT_HASH_LABEL] for p in ready} == {stable_hash}


def test_rollback_mid_canary_restores_stable_and_notifies(
    rollout: Rollout,
    helper: RollbackHelper,
    sandbox: SandboxSettings,
    namespace: str,
    record_property: Callable[[str, object], None],
) -> None:
    canary = start_canary(rollout, GOOD)
    started = time.time()
    result = helper.rollback("integration test: emergency rollback mid-canary")
    record_property("rollback_duration_s", round(result.duration_s, 2))
    print(f"rollback duration: {result.duration_s:.2f}s")

    assert_stable_serves_everything(rollout, result, canary.stable_hash)
    assert result.plan.abort and result.attempts == 1
    snapshot = json.loads(result.snapshot.read_text())
    assert snapshot["rollout"]["status"]["currentPodHash"] == canary.current_hash
    hashes = {rs["pod_template_hash"] for rs in snapshot["replica_sets"]}
    assert {canary.stable_hash, canary.current_hash} <= hashes

    assert [(d.channel, d.ok) for d in result.notifications] == [("slack", True), ("email", True)]
    target = f"{namespace}/{app.APP_NAME}"
    assert received(sandbox, "slack", lambda p: target in p.get("text", "") and "verified" in p["text"], since=started)
    assert received(sandbox, "email", lambda p: target in p["subject"] and "Duration:" in p["body"], since=started)


def test_dry_run_changes_nothing_then_a_paused_canary_is_rolled_back(rollout: Rollout, helper: RollbackHelper) -> None:
    canary = start_canary(rollout, GOOD)
    # Freeze the canary (spec.paused) so the controller stops moving the object while we compare versions.
    rollout.pause()
    rollout.wait_for(phase="Paused")
    before = resource_versions(rollout)

    rehearsal = helper.rollback("integration test: rehearsal", dry_run=True)

    assert resource_versions(rollout) == before
    assert rehearsal.dry_run and rehearsal.notifications == () and rehearsal.attempts == 0
    assert rehearsal.plan.abort and rehearsal.plan.resume and rehearsal.plan.to_hash == canary.stable_hash
    assert json.loads(rehearsal.snapshot.read_text())["rollout"]["spec"]["paused"] is True
    result = helper.rollback("integration test: roll back the paused canary")
    assert_stable_serves_everything(rollout, result, canary.stable_hash)
    assert not rollout.get()["spec"].get("paused")


def test_cli_dry_run_then_rollback(
    rollout: Rollout, namespace: str, sandbox: SandboxSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "rollback",
        "--sandbox",
        "--sandbox-dir",
        str(sandbox.state_dir),
        "--namespace",
        namespace,
        "--snapshot-dir",
        str(tmp_path),
    ]
    rollout.wait_for(phase="Healthy")
    before = resource_versions(rollout)
    assert cli.main([*argv, "--dry-run"]) == 0
    assert resource_versions(rollout) == before
    assert "DRY RUN, nothing changed" in capsys.readouterr().out

    canary = start_canary(rollout, GOOD)
    assert cli.main([*argv, "--reason", "integration test: CLI rollback"]) == 0
    out = capsys.readouterr().out
    assert f"Rollback of {namespace}/{app.APP_NAME}: VERIFIED" in out and "notify: email" in out
    assert rollout.status().stable_hash == canary.stable_hash
    assert len(list(tmp_path.glob("rollback-*.json"))) == 2


def test_watch_rolls_back_a_failing_canary(rollout: Rollout, helper: RollbackHelper) -> None:
    stable = rollout.wait_for(phase="Healthy").stable_hash
    rollout.set_image(IMAGE.format(next(VERSIONS)), annotations=BAD)
    reports: list[str] = []

    result = helper.watch(
        interval_s=1, unhealthy_for_s=3, max_duration_s=120, on_check=lambda report: reports.append(report.describe())
    )

    assert result is not None, f"no rollback; last health: {reports[-3:]}"
    assert result.reason.startswith("automatic: ")
    assert_stable_serves_everything(rollout, result, stable)
