"""At scale: 100 KWOK nodes and an app of 1000 pods, in a sandbox of the module's own (own_sandbox).

The pod-failure drill kills 10% of the pods (MNOPS_KILL_PERCENT=10), which the blast-radius guard refuses at
its default cap of 50 pods and allows at --mnops-max-pods 100; then 100 replacements must become Ready.
bench/scale.py measures the same drill (wall time, peak RSS, API requests).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube, condition_true, pod_ready, resources
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, drill_argv

NODES, REPLICAS, KILL_PERCENT = 100, 1000, 10
SELECTOR = "app=machine-native-ops"
pytestmark = pytest.mark.own_sandbox("scale", nodes=NODES, app_replicas=REPLICAS, release=False)


def run_pod_failure(sandbox: SandboxSettings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        drill_argv(sandbox, tmp_path / "ledger.jsonl", "--drill", "pod-failure", *args),
        cwd=ROOT,
        env={**os.environ, "MNOPS_KILL_PERCENT": str(KILL_PERCENT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def uids(kube: Kube) -> set[str]:
    pods, _ = kube.list(resources.POD, namespace="default", label_selector=SELECTOR)
    return {p["metadata"]["uid"] for p in pods}


def test_the_sandbox_runs_100_nodes_and_1000_pods(kube: Kube) -> None:
    nodes, _ = kube.list(resources.NODE, label_selector="type=kwok")
    assert sum(condition_true(n, "Ready") for n in nodes) == NODES
    pods, _ = kube.list(resources.POD, namespace="default", label_selector=SELECTOR)
    assert sum(pod_ready(p) for p in pods) == REPLICAS
    assert len({p["spec"]["nodeName"] for p in pods}) == NODES  # the scheduler spread them over every node


def test_killing_10_percent_is_refused_at_the_default_cap_and_nothing_changes(
    sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    before = uids(kube)
    result = run_pod_failure(sandbox, tmp_path)
    assert result.returncode != 0
    assert "100 pods" in result.stdout and "--mnops-max-pods" in result.stdout, result.stdout[-3000:]
    assert uids(kube) == before


def test_pod_failure_kills_100_of_1000_pods_and_all_come_back(
    sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    before = uids(kube)
    summary = tmp_path / "drills.json"
    result = run_pod_failure(sandbox, tmp_path, "--mnops-max-pods", "100", f"--mnops-report-json={summary}")
    assert result.returncode == 0, result.stdout[-4000:]
    drill = json.loads(summary.read_text())["drills"][0]
    assert drill["verdict"] == "proved" and drill["mttr_s"] is not None, drill
    pods, _ = kube.list(resources.POD, namespace="default", label_selector=SELECTOR)
    after = {p["metadata"]["uid"] for p in pods}
    killed = REPLICAS * KILL_PERCENT // 100
    assert (len(before - after), len(after - before)) == (killed, killed)  # 100 gone, 100 replacements
    assert sum(pod_ready(p) for p in pods) == REPLICAS
    assert Ledger(tmp_path / "ledger.jsonl").pending() == []
