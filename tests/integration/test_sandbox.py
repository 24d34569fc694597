"""The sandbox is a real control plane: scheduling, ReplicaSets, CRD schemas, Argo Rollouts, monitoring."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import Kube, condition_true, pod_ready, resources
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.settings import SandboxSettings

LABELS = {"app": "sandbox-probe"}


@pytest.fixture
def scratch(kube: Kube) -> Iterator[str]:
    name = f"mnops-sb-{uuid.uuid4().hex[:6]}"
    kube.create(resources.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    # Pods are admitted only once the serviceaccount controller created the namespace's default account.
    kube.wait(
        resources.SERVICE_ACCOUNT, bool, name="default", namespace=name, timeout_s=30, what="ServiceAccount default"
    )
    yield name
    kube.delete(resources.NAMESPACE, name)


def pod_template() -> dict[str, Any]:
    return {
        "metadata": {"labels": LABELS},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
    }


def ready_pods(kube: Kube, namespace: str, count: int) -> list[dict[str, Any]]:
    def enough(pods: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        ready = [p for p in pods if pod_ready(p)]
        return ready if len(ready) == count and len(pods) == count else None

    return kube.wait(
        resources.POD,
        enough,
        namespace=namespace,
        label_selector="app=sandbox-probe",
        timeout_s=60,
        what=f"{count} pods Ready",
    )


def test_at_least_three_nodes_ready(kube: Kube) -> None:
    nodes, _ = kube.list(resources.NODE)
    assert sum(condition_true(n, "Ready") for n in nodes) >= 3
    assert kube.server_version()["gitVersion"] == f"v{binaries.KUBE_VERSION}"


def test_deployment_reaches_five_ready_and_a_deleted_pod_is_replaced(kube: Kube, scratch: str) -> None:
    kube.create(
        resources.DEPLOYMENT,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "probe"},
            "spec": {"replicas": 5, "selector": {"matchLabels": LABELS}, "template": pod_template()},
        },
        namespace=scratch,
    )
    pods = ready_pods(kube, scratch, 5)
    victim = pods[0]
    kube.delete(resources.POD, victim["metadata"]["name"], namespace=scratch)
    after = ready_pods(kube, scratch, 5)
    assert victim["metadata"]["uid"] not in {p["metadata"]["uid"] for p in after}
    owners = {o["kind"] for p in after for o in p["metadata"]["ownerReferences"]}
    assert owners == {"ReplicaSet"}, "the replacement must come from the real ReplicaSet controller"


def test_rollout_violating_the_crd_schema_is_rejected(kube: Kube, scratch: str) -> None:
    bad = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "bad"},
        "spec": {"replicas": "ten", "selector": {"matchLabels": LABELS}, "template": pod_template()},
    }
    with pytest.raises(ClusterError) as error:
        kube.create(resources.ROLLOUT, bad, namespace=scratch)
    assert "422" in str(error.value) and "spec.replicas" in str(error.value)


def test_argo_rollouts_reconciles_a_trivial_rollout_to_healthy(kube: Kube, scratch: str) -> None:
    kube.create(
        resources.ROLLOUT,
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "trivial"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": LABELS},
                "template": pod_template(),
                "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}},
            },
        },
        namespace=scratch,
    )
    status = Rollout(kube, namespace=scratch, name="trivial").wait_for(phase="Healthy", timeout_s=60)
    assert status.available == 2 and status.stable_is_current


def test_prometheus_scrapes_what_the_sandbox_runs(sandbox: SandboxSettings) -> None:
    resp = requests.get(f"{sandbox.prometheus_url}/api/v1/query", params={"query": "up"}, timeout=10).json()
    up = {s["metric"]["job"]: s["value"][1] for s in resp["data"]["result"]}
    assert up.get("kube-apiserver") == "1" and up.get("argo-rollouts") == "1" and up.get("app") == "1", up
    assert up.get("pushgateway") == "1", up


def test_alertmanager_accepts_an_alert_from_amtool(sandbox: SandboxSettings) -> None:
    name = f"SandboxProbe{uuid.uuid4().hex[:6]}"
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    subprocess.run(
        [
            str(binaries.require("amtool")),
            "alert",
            "add",
            name,
            "severity=none",
            f"--alertmanager.url={sandbox.alertmanager_url}",
            f"--end={ends}",
        ],
        check=True,
        timeout=30,
    )
    alerts = requests.get(
        f"{sandbox.alertmanager_url}/api/v2/alerts", params={"filter": f'alertname="{name}"'}, timeout=10
    ).json()
    assert [a["labels"]["alertname"] for a in alerts] == [name]


def test_cli_status_and_env(sandbox: SandboxSettings) -> None:
    def mnops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest_mnops.cli", "sandbox", "--state-dir", sandbox.state_dir, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    status = mnops("status")
    assert status.returncode == 0, status.stdout
    names = ("etcd", "kube-apiserver", "argo-rollouts", "prometheus", "pushgateway")
    assert all(f"{name} " in status.stdout for name in names)
    env = mnops("env").stdout
    assert "export KUBECONFIG=" in env and f"MNOPS_PROMETHEUS_URL={sandbox.prometheus_url}" in env
    assert f"MNOPS_PUSHGATEWAY_URL={sandbox.pushgateway_url}" in env


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_mnops.cli", "sandbox", "--state-dir", str(tmp_path), "down"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "nothing to stop" in result.stdout
