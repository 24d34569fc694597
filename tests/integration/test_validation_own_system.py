"""The validation suite against a system that is not the reference app: a second Rollout with other names,
labels, canary steps and AnalysisTemplates. It must report only what is really wrong there (here: a sidecar
without limits), naming that Rollout; and the reference expectation set must still pass on the reference app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.k8s import Kube, resources
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import run_validation

APP = "storefront"
LABELS = {"app.kubernetes.io/name": APP}
DIGEST = "sha256:" + "4f" * 32


def storefront(namespace: str, prometheus_url: str) -> list[dict[str, Any]]:
    """A Rollout shaped unlike the reference app: sidecar first, digest-pinned image, its own steps and template."""
    probe = {"httpGet": {"path": "/ready", "port": 9901}}
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "storefront-availability", "namespace": namespace},
        "spec": {
            "args": [{"name": "namespace"}],
            "metrics": [
                {
                    "name": "ready-pods",
                    "interval": "10s",
                    "count": 2,
                    "successCondition": "result[0] >= 1",
                    "provider": {
                        "prometheus": {
                            "address": prometheus_url,
                            "query": 'max(rollout_info{namespace="{{args.namespace}}",name="storefront"})',
                        }
                    },
                }
            ],
        },
    }
    analysis = {
        "templates": [{"templateName": "storefront-availability"}],
        "args": [{"name": "namespace", "value": namespace}],
    }
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [
                        # The real finding: the sidecar has no limits.
                        {
                            "name": "proxy",
                            "image": f"registry.example/envoy@{DIGEST}",
                            "readinessProbe": probe,
                            "livenessProbe": probe,
                        },
                        {
                            "name": "web",
                            "image": "registry.example/storefront:3.4.1",
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": probe,
                            "livenessProbe": probe,
                            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                        },
                    ],
                },
            },
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 20},
                        {"analysis": analysis},
                        {"setWeight": 60},
                        {"pause": {"duration": "30s"}},
                        {"analysis": analysis},
                    ]
                }
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"selector": LABELS, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return [template, rollout, service]


@pytest.fixture(scope="module")
def own_system(kube: Kube, sandbox: SandboxSettings) -> Iterator[str]:
    namespace = f"mnops-it-storefront-{uuid.uuid4().hex[:6]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        for doc in storefront(namespace, sandbox.prometheus_url):
            kube.apply(doc, namespace=namespace)
        Rollout(kube, namespace=namespace, name=APP).wait_for(phase="Healthy", timeout_s=180)
        yield namespace
    finally:
        kube.delete(resources.NAMESPACE, namespace)


def _failed(outcomes: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: message for name, (kind, message) in outcomes.items() if kind in ("failure", "error")}


def test_a_second_rollout_gets_only_its_real_problems(
    sandbox: SandboxSettings, own_system: str, tmp_path: Path
) -> None:
    outcomes, out = run_validation(sandbox, tmp_path, own_system, "--mnops-app", APP)
    failed = _failed(outcomes)
    assert set(failed) == {"test_containers_have_resource_limits"}, out
    # the properties were checked on it, not skipped
    for check in ("test_cluster_canary_steps_and_analysis", "test_analysis_templates_exist_and_providers_answer"):
        assert outcomes[check][0] == "passed", out
    message = failed["test_containers_have_resource_limits"]
    assert f"Rollout {own_system}/{APP}: container 'proxy' has no cpu and no memory limit" in message
    assert f"spec.template of Rollout {own_system}/{APP}" in message and "charts/" not in message


def test_the_reference_expectation_set_still_passes_on_the_reference_app(
    sandbox: SandboxSettings, namespace: str, tmp_path: Path
) -> None:
    outcomes, out = run_validation(sandbox, tmp_path, namespace, "--mnops-expect=reference")
    assert not _failed(outcomes), out
    for check in ("test_cluster_analysis_templates_and_thresholds", "test_dashboard_queries_return_data"):
        assert outcomes[check][0] == "passed", out  # the opt-in checks ran
