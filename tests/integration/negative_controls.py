"""Each of the seven drills FAILS with detection disabled: the switches, the claims they break, and the check.

A drill that cannot fail proves nothing: every negative control below switches off the one thing the drill
claims to detect (an alert rule, the canary analysis, a controller, a route, a receiver) and requires the
drill to fail naming what was not detected or recovered; claim_controls.py adds narrower switches, a claim
each. Each switch here is sandbox-wide, hence own sandboxes: two of them (test_negative_controls and
test_negative_controls_monitoring), each waiting out its drills' detection timeouts at the same time as the other.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from pytest_mnops import app
from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.observability import rules
from pytest_mnops.profile import analysis_template_refs
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.cluster import Sandbox
from pytest_mnops.sandbox.components import CONTROLLER_MANAGER, RECEIVERS
from pytest_mnops.sandbox.processes import Supervisor
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import REFERENCE_SECRET as SECRET
from tests.integration.conftest import alertmanager_config_edited, in_namespace, run_drills


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
    """The analyses can no longer fail (failureLimit out of reach); the SLOs they define stay discoverable."""
    for ref, _ in analysis_template_refs(Rollout(kube, namespace=namespace, name=app.APP_NAME).get()):
        template = kube.get(resources.ANALYSIS_TEMPLATE, ref["templateName"], namespace=namespace)
        kube.patch(
            resources.ANALYSIS_TEMPLATE,
            ref["templateName"],
            [
                {"op": "replace", "path": f"/spec/metrics/{i}/failureLimit", "value": 100000}
                for i, _ in enumerate(template["spec"]["metrics"])
            ],
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
                    "expression": f"object.metadata.name != '{SECRET}'",
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
        "metadata": {"name": SECRET, "namespace": namespace},
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


Switch = Callable[[Kube, SandboxSettings, str], contextlib.AbstractContextManager[None]]


@dataclass(frozen=True)
class ClaimControl:
    """A claim a drill makes, the switch that breaks exactly it, and what the drill's failure must then say."""

    drill: str
    claim: str  # as docs/drilling-your-own-app.md words it ("What each drill proves")
    switch: Switch
    expected: tuple[str, ...]  # the failed activity as the verdict names it, then words its line must hold


DETECTION_OFF = (
    ClaimControl(
        "pod-failure",
        "the killed pods were replaced",
        lambda k, s, ns: without_component(s, CONTROLLER_MANAGER.name),
        ("NOT RECOVERED: watch-replacements",),
    ),
    ClaimControl(
        "high-latency",
        "the latency alert fired",
        lambda k, s, ns: without_alert_rule(s, "HighLatencyP95"),
        ("FAILED: p95-alert-pending", "HighLatencyP95"),
    ),
    ClaimControl(
        "resource-exhaustion",
        "the memory alert fired",
        lambda k, s, ns: without_alert_rule(s, "HighMemoryUsage"),
        ("NOT DETECTED: memory-alert-firing", "HighMemoryUsage"),
    ),
    ClaimControl(
        "canary-failure",
        "the canary analysis failed and Argo Rollouts aborted the canary",
        without_canary_analysis,
        ("FAILED: rollout-aborted", "{'aborted': True}"),
    ),
    ClaimControl(
        "secret-rotation",
        "the new credential reached the app's Secret",
        lambda k, s, ns: with_secret_frozen(k, ns),
        ("FAILED: rotate-app-secret", "negative control: the app's credentials are frozen"),
    ),
    ClaimControl(
        "emergency-rollback",
        "every channel acknowledged the rollback notification",
        lambda k, s, ns: without_component(s, RECEIVERS.name),
        ("FAILED: rollback-notified", "not accepted by"),
    ),
    ClaimControl(
        "monitoring-alerts",
        "every synthetic alert was routed to its receiver",
        lambda k, s, ns: without_pager_route(s),
        ("NOT DETECTED: all-reached-receivers", "'pager'"),
    ),
)
DETECTION_OFF_BY_DRILL = {control.drill: control for control in DETECTION_OFF}


# Which module runs which drill's control, by what the switch breaks: the cluster (the canary analysis, the
# controller-manager, an admission policy on the Secret) or monitoring and delivery (rules, routes, receivers).
IN_THE_CLUSTER = ("canary-failure", "pod-failure", "secret-rotation")
IN_MONITORING = ("emergency-rollback", "high-latency", "monitoring-alerts", "resource-exhaustion")


def drill_fails_on_the_broken_claim(
    control: ClaimControl, kube: Kube, sandbox: SandboxSettings, namespace: str, tmp_path: Path
) -> None:
    Rollout(kube, namespace=namespace, name=app.APP_NAME).wait_settled(timeout_s=180)
    with control.switch(kube, sandbox, namespace):
        result = run_drills(sandbox, tmp_path, "--drill", control.drill, *in_namespace(namespace))
    verdict = "\n".join(line for line in result.stdout.splitlines() if line.startswith(("E  ", "FAILED", "ERROR")))
    assert result.returncode == 1, verdict or result.stdout[-3000:]
    assert "did not prove detection and recovery" in result.stdout, verdict
    failure = next((line for line in verdict.splitlines() if control.expected[0] in line), "")
    assert failure, f"the drill did not fail on {control.expected[0]!r}:\n{verdict}"
    missing = [words for words in control.expected[1:] if words not in failure]
    assert not missing, f"{control.expected[0]} does not say {missing}:\n{failure}"
