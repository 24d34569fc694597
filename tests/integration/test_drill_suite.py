"""The seven drills on the sandbox: all prove detection and recovery, and each FAILS with detection disabled.

A drill that cannot fail proves nothing: every negative control below switches off the one thing the drill
claims to detect (an alert rule, the canary analysis, a controller, a route, a receiver) and requires the
drill to fail naming what was not detected or recovered.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from pytest_mnops import app
from pytest_mnops.errors import ClusterError
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.markers import DRILLS
from pytest_mnops.observability import rules
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.cluster import CONTROLLER_MANAGER, RECEIVERS, Sandbox, SandboxSettings
from pytest_mnops.sandbox.processes import Supervisor
from tests.integration.conftest import ROOT, alertmanager_config_edited, drill_argv, in_namespace

PROPERTIES = ("drill", "scenario", "mttr_s", "verdict", "score")


def run_drills(sandbox: SandboxSettings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        drill_argv(sandbox, tmp_path / "ledger.jsonl", *args), cwd=ROOT, capture_output=True, text=True, timeout=1800
    )


def test_all_seven_drills_prove_detection_and_recovery_with_reports(sandbox: SandboxSettings, tmp_path: Path) -> None:
    junit, html, summary = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "drills.json"
    result = run_drills(
        sandbox,
        tmp_path,
        "-m",
        "drill",
        f"--junitxml={junit}",
        f"--html={html}",
        "--self-contained-html",
        f"--mnops-report-json={summary}",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "resilience score: 100/100 over 7 drills" in result.stdout

    cases = ET.parse(junit).getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert sorted(p["drill"] for p in properties) == sorted(DRILLS)
    for props in properties:
        assert set(PROPERTIES) <= set(props), props
        # Recovered after the injection and within the drill's budget (the verdict holds it to it).
        assert props["verdict"] == "proved" and 0 < float(props["mttr_s"]) <= float(props["budget_s"]), props
    report = html.read_text()
    assert report.count('<svg class="mnops-figure-svg"') == len(DRILLS)  # one timeline figure per drill
    figures = json.loads(summary.read_text())
    assert figures["resilience_score"] == 100
    by_name = {d["drill"]: d for d in figures["drills"]}
    for name, drill in by_name.items():
        assert drill["mttd_s"] is None or 0 <= drill["mttd_s"] <= drill["mttr_s"], (name, drill)
        assert drill["problems"] == [], (name, drill["problems"])
    assert 0 < by_name["canary-failure"]["abort_s"] <= by_name["canary-failure"]["mttr_s"]
    assert "HighLatencyP95" in by_name["high-latency"]["alerts"]
    # Every drill injected its fault through the ledger, and every fault was reverted: nothing pending.
    ledger = Ledger(tmp_path / "ledger.jsonl")
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    injected = {r["id"]: r["scenario"] for r in records if r["event"] == "injected"}
    assert sorted(injected.values()) == sorted(DRILLS)
    assert {r["id"] for r in records if r["event"] == "reverted"} == set(injected)
    assert ledger.pending() == []


# -- negative controls: detection disabled -> the drill fails, saying what was not detected -------------------


@contextlib.contextmanager
def without_alert_rule(sandbox: SandboxSettings, alert: str) -> Iterator[None]:
    directory = sandbox.layout.config / "rules"
    groups = [
        {**g, "rules": [r for r in g["rules"] if r.get("alert") != alert]}
        for g in rules.rule_groups(sandbox.time_scale)
    ]
    (directory / rules.RULES_FILE).write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    rules.reload_prometheus(sandbox.prometheus_url)
    try:
        yield
    finally:
        rules.write_rules(directory, time_scale=sandbox.time_scale)
        rules.reload_prometheus(sandbox.prometheus_url)


def without_pager_route(sandbox: SandboxSettings) -> contextlib.AbstractContextManager[None]:
    def disable(config: dict) -> None:
        for receiver in config["receivers"]:
            if receiver["name"] == "pager":
                receiver["webhook_configs"] = [{"url": "http://127.0.0.1:9/disabled", "send_resolved": True}]

    return alertmanager_config_edited(sandbox, disable)


@contextlib.contextmanager
def without_component(sandbox: SandboxSettings, name: str) -> Iterator[None]:
    Supervisor(sandbox.layout.processes).stop(name)
    try:
        yield
    finally:
        Sandbox(sandbox, progress=lambda _: None).up()


@contextlib.contextmanager
def without_canary_analysis(kube: Kube, sandbox: SandboxSettings, namespace: str) -> Iterator[None]:
    kube.patch(
        resources.ROLLOUT,
        app.APP_NAME,
        [{"op": "remove", "path": "/spec/strategy/canary/analysis"}],
        namespace=namespace,
        patch_type="json",
    )
    try:
        yield
    finally:
        app.deploy(kube, namespace, prometheus_address=sandbox.prometheus_url, time_scale=sandbox.time_scale)


@contextlib.contextmanager
def with_secret_frozen(kube: Kube, namespace: str) -> Iterator[None]:
    """A ValidatingAdmissionPolicy (CEL, evaluated by the real apiserver) refuses any write to the app's Secret."""
    name = f"mnops-freeze-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["secrets"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "object.metadata.name != 'machine-native-ops-credentials'",
                    "message": "negative control: the app's credentials are frozen",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    kube.apply(policy)
    kube.apply(binding)
    probe = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "machine-native-ops-credentials", "namespace": namespace},
        "data": {},
    }
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the policy is compiled asynchronously: wait until it bites
        try:
            kube.apply(probe, dry_run=True)
        except ClusterError:
            break
        time.sleep(0.5)
    try:
        yield
    finally:
        for kind, body in (("ValidatingAdmissionPolicyBinding", binding), ("ValidatingAdmissionPolicy", policy)):
            resource = kube.resource_for(body["apiVersion"], kind)
            kube.delete(resource, name)


Disable = Callable[[Kube, SandboxSettings, str], contextlib.AbstractContextManager[None]]
NEGATIVE_CONTROLS: dict[str, tuple[Disable, str]] = {
    "pod-failure": (
        lambda k, s, ns: without_component(s, CONTROLLER_MANAGER.name),
        "NOT RECOVERED: watch-replacements",
    ),
    "high-latency": (lambda k, s, ns: without_alert_rule(s, "HighLatencyP95"), "NOT DETECTED: p95-alert-firing"),
    "resource-exhaustion": (
        lambda k, s, ns: without_alert_rule(s, "HighMemoryUsage"),
        "NOT DETECTED: memory-alert-firing",
    ),
    "canary-failure": (without_canary_analysis, "NOT DETECTED: analysis-failed"),
    "secret-rotation": (lambda k, s, ns: with_secret_frozen(k, ns), "NOT RECOVERED: consumers-use-new-value"),
    "emergency-rollback": (lambda k, s, ns: without_component(s, RECEIVERS.name), "FAILED: rollback-notified"),
    "monitoring-alerts": (lambda k, s, ns: without_pager_route(s), "NOT DETECTED: all-reached-receivers"),
}


@pytest.mark.parametrize("drill", sorted(NEGATIVE_CONTROLS))
def test_drill_fails_when_detection_is_disabled(
    drill: str, kube: Kube, sandbox: SandboxSettings, namespace: str, tmp_path: Path
) -> None:
    disable, expected = NEGATIVE_CONTROLS[drill]
    Rollout(kube, namespace=namespace, name=app.APP_NAME).wait_for(
        phase="Healthy", stable_is_current=True, timeout_s=180
    )
    with disable(kube, sandbox, namespace):
        result = run_drills(sandbox, tmp_path, "--drill", drill, *in_namespace(namespace))
    verdict = "\n".join(line for line in result.stdout.splitlines() if line.startswith(("E  ", "FAILED", "ERROR")))
    assert result.returncode == 1, verdict or result.stdout[-3000:]
    assert "did not prove detection and recovery" in result.stdout, verdict
    assert expected in result.stdout, verdict
