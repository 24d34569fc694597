"""The reference application from charts/: render it for a namespace and deploy it."""

from __future__ import annotations

import copy
from typing import Any

from pytest_mnops import assets
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.timescale import scale_tree

Obj = dict[str, Any]
APP_NAME = "machine-native-ops"
PROMETHEUS_ARG = "prometheus-address"
NAMESPACE_DELETE_TIMEOUT_S = 120.0


def render(
    namespace: str, *, prometheus_address: str, time_scale: float = 1.0, replicas: int | None = None
) -> list[Obj]:
    """charts/ for one namespace, pointing its analyses at ``prometheus_address``, durations scaled."""
    docs = []
    for doc in assets.chart_documents():
        doc = scale_tree(copy.deepcopy(doc), time_scale)
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "Rollout":
            for arg in doc["spec"]["strategy"]["canary"]["analysis"]["args"]:
                if arg["name"] == PROMETHEUS_ARG:
                    arg["value"] = prometheus_address
            if replicas is not None:
                doc["spec"]["replicas"] = replicas
        if doc["kind"] == "AnalysisTemplate":
            for arg in doc["spec"]["args"]:
                if arg["name"] == PROMETHEUS_ARG:
                    arg["value"] = prometheus_address
        docs.append(doc)
    return docs


def ensure_namespace(kube: Kube, namespace: str, labels: dict[str, str] | None = None) -> None:
    found = kube.find(resources.NAMESPACE, namespace)
    if found is not None and found["metadata"].get("deletionTimestamp"):
        _wait_gone(kube, namespace)  # nothing can be created in a namespace being deleted
        found = None
    if found is None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels or {}}}
        kube.create(resources.NAMESPACE, body)


def remove_namespace(kube: Kube, namespace: str) -> None:
    """Delete the namespace and everything in it, and return once it is gone."""
    if kube.delete(resources.NAMESPACE, namespace):
        _wait_gone(kube, namespace)


def _wait_gone(kube: Kube, namespace: str) -> None:
    kube.wait(
        resources.NAMESPACE,
        lambda found: not found or None,
        name=namespace,
        timeout_s=NAMESPACE_DELETE_TIMEOUT_S,
        what=f"namespace {namespace!r} deleted",
    )


def deploy(
    kube: Kube,
    namespace: str,
    *,
    prometheus_address: str,
    time_scale: float = 1.0,
    replicas: int | None = None,
    labels: dict[str, str] | None = None,
) -> list[Obj]:
    ensure_namespace(kube, namespace, labels)
    docs = render(namespace, prometheus_address=prometheus_address, time_scale=time_scale, replicas=replicas)
    return [kube.apply(doc) for doc in docs]
