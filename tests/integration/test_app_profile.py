"""Drilling an app that is not the reference one, through its profile (examples/checkout), on the sandbox.

checkout is shaped unlike machine-native-ops on purpose: app.kubernetes.io/* labels only, an envoy sidecar
before the app container, images pinned by digest, a three-step canary, analyses over checkout_requests_total
with a `status` label, and alert rules of its own. All seven drills must prove it, with delivery proven from
Alertmanager alone (proof=alertmanager); each negative control must fail naming what is missing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from pytest_mnops import app
from pytest_mnops.drills import DRILLS
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.names import SANDBOX_CONTEXT
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, alertmanager_config_edited, drill_argv, in_namespace

CHECKOUT = ROOT / "examples" / "checkout"
PROFILE = CHECKOUT / "profile.yaml"
SLO_DRILLS = ("pod-failure", "high-latency", "canary-failure")
# Its negative controls edit the sandbox's Alertmanager routes: sandbox-wide.
pytestmark = pytest.mark.own_sandbox("app-profile")


def deploy_checkout(kube: Kube, sandbox: SandboxSettings) -> Iterator[str]:
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    try:
        app.deploy(
            kube,
            namespace,
            prometheus_address=sandbox.prometheus_url,
            time_scale=sandbox.time_scale,
            documents=app.manifests(CHECKOUT),
        )
        Rollout(kube, namespace=namespace, name="checkout").wait_for(phase="Healthy", timeout_s=180)
        yield namespace
    finally:
        kube.delete(resources.NAMESPACE, namespace)


@pytest.fixture
def checkout(kube: Kube, sandbox: SandboxSettings) -> Iterator[str]:
    yield from deploy_checkout(kube, sandbox)


def run(sandbox: SandboxSettings, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    argv = drill_argv(sandbox, tmp_path / "ledger.jsonl", *args)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MNOPS_")}
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800, env={**clean, **(env or {})})
    return f"rc={result.returncode}\n{result.stdout}"


def checkout_args(namespace: str, profile: Path = PROFILE) -> tuple[str, ...]:
    return (*in_namespace(namespace), "--mnops-app", "checkout", "--mnops-profile", str(profile))


def off_sandbox(sandbox: SandboxSettings, argv: list[str]) -> list[str]:
    """The same run as against a real cluster: the sandbox's addresses given explicitly, no --mnops-sandbox."""
    at = argv.index("--mnops-sandbox")
    target = ("--mnops-kubeconfig", str(sandbox.layout.kubeconfig.resolve()), "--mnops-context", SANDBOX_CONTEXT)
    return [*argv[:at], *target, "--mnops-allow-context", SANDBOX_CONTEXT, *argv[at + 1 :]]


def test_all_seven_drills_prove_checkout_through_its_profile_with_alertmanager_proof(
    sandbox: SandboxSettings, checkout: str, tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    out = run(
        sandbox,
        tmp_path,
        "-m",
        "drill",
        *checkout_args(checkout),
        "--mnops-proof",
        "alertmanager",
        f"--junitxml={junit}",
    )
    assert out.startswith("rc=0"), out[-6000:]
    assert "resilience score: 100/100 over 7 drills" in out
    cases = ET.parse(junit).getroot().iter("testcase")
    properties = {
        props["drill"]: props for props in ({p.get("name"): p.get("value") for p in c.iter("property")} for c in cases)
    }
    assert sorted(properties) == sorted(DRILLS)
    for name in ("high-latency", "canary-failure", "resource-exhaustion", "monitoring-alerts"):
        assert properties[name]["proof"] == "alertmanager", properties[name]
    assert properties["emergency-rollback"]["proof"] == "notifier"
    assert "CheckoutLatencyHigh" in properties["high-latency"]["alerts"]
    print(
        {
            name: {k: props.get(k) for k in ("mttd_s", "mttr_s", "abort_s", "rollback_s")}
            for name, props in properties.items()
        }
    )


def test_checkout_without_its_metrics_fails_every_slo_drill_with_no_data(
    sandbox: SandboxSettings, checkout: str, tmp_path: Path
) -> None:
    # The same app, its profile without the `traffic` declaration: the stand-in exports no checkout_* series.
    raw = yaml.safe_load(PROFILE.read_text())
    del raw["traffic"]
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({**raw, "rule_files": [str(CHECKOUT / "rules.yaml")]}))
    drills = [arg for name in SLO_DRILLS for arg in ("--drill", name)]
    out = run(sandbox, tmp_path, *drills, *checkout_args(checkout, profile))
    assert out.startswith("rc=1"), out[-4000:]
    assert out.count("no data for ") >= len(SLO_DRILLS), out[-6000:]
    assert "checkout_requests_total" in out and "profile key slo.error_rate" in out
    assert "NOT DETECTED" not in out


def test_a_selector_matching_nothing_fails_naming_it_even_in_a_dry_run(
    sandbox: SandboxSettings, checkout: str, tmp_path: Path
) -> None:
    raw = yaml.safe_load(PROFILE.read_text())
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({**raw, "selector": {"app.kubernetes.io/name": "nothing-here"}}))
    out = run(sandbox, tmp_path, "--drill", "pod-failure", "--mnops-dry-run", *checkout_args(checkout, profile))
    assert out.startswith("rc=1"), out[-4000:]
    assert "selector app.kubernetes.io/name=nothing-here" in out and "matches no pods" in out


def test_a_real_cluster_without_prometheus_url_fails_at_setup_naming_the_option(
    sandbox: SandboxSettings, tmp_path: Path
) -> None:
    argv = off_sandbox(sandbox, drill_argv(sandbox, tmp_path / "ledger.jsonl", "--drill", "pod-failure"))
    result = subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("MNOPS_")},
    )
    assert result.returncode == 1, result.stdout[-4000:]
    assert "--mnops-prometheus-url" in result.stdout and " ERROR at setup " in result.stdout
    assert "127.0.0.1" not in "".join(line for line in result.stdout.splitlines() if "prometheus" in line.lower())


def test_monitoring_alerts_refuses_to_post_where_no_route_takes_the_drill_label(
    sandbox: SandboxSettings, tmp_path: Path
) -> None:
    argv = off_sandbox(
        sandbox,
        drill_argv(
            sandbox,
            tmp_path / "ledger.jsonl",
            "--drill",
            "monitoring-alerts",
            "--mnops-prometheus-url",
            sandbox.prometheus_url,
            "--mnops-alertmanager-url",
            sandbox.alertmanager_url,
            "--mnops-profile",
            str(ROOT / "charts" / "mnops-profile.yaml"),
        ),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNOPS_")}
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 1, result.stdout[-4000:]
    assert "refusing to post synthetic alerts" in result.stdout and "mnops_drill" in result.stdout
    held = requests.get(f"{sandbox.alertmanager_url}/api/v2/alerts", params={"filter": 'mnops_drill=~".+"'}, timeout=10)
    assert [a for a in held.json() if a["status"]["state"] == "active"] == []


def without_route_to(sandbox: SandboxSettings, receiver: str) -> contextlib.AbstractContextManager[None]:
    def drop(config: dict) -> None:
        config["route"]["routes"] = [r for r in config["route"]["routes"] if r["receiver"] != receiver]

    return alertmanager_config_edited(sandbox, drop)


def test_alertmanager_proof_fails_naming_the_receiver_whose_route_was_removed(
    sandbox: SandboxSettings, checkout: str, tmp_path: Path
) -> None:
    with without_route_to(sandbox, "pager"):
        out = run(
            sandbox, tmp_path, "--drill", "monitoring-alerts", *checkout_args(checkout), "--mnops-proof", "alertmanager"
        )
    assert out.startswith("rc=1"), out[-4000:]
    assert "not receiver 'pager'" in out, out[-6000:]
