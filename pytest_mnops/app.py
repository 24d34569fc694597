"""The reference application from charts/ (or any app's manifests): render it for a namespace and deploy it."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from pytest_mnops import assets
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.timescale import scale_tree

Obj = dict[str, Any]
APP_NAME = "machine-native-ops"
PROMETHEUS_ARG = "prometheus-address"
NAMESPACE_DELETE_TIMEOUT_S = 120.0


def prometheus_args(docs: list[Obj]) -> set[str]:
    """The analysis args that carry the Prometheus address: those the templates' ``address`` reads."""
    names = set()
    for doc in docs:
        if doc.get("kind") == "AnalysisTemplate":
            for metric in doc["spec"].get("metrics") or []:
                address = ((metric.get("provider") or {}).get("prometheus") or {}).get("address", "")
                names.update(re.findall(r"\{\{\s*args\.([\w-]+)\s*\}\}", address))
    return names or {PROMETHEUS_ARG}


def render(
    namespace: str,
    *,
    prometheus_address: str,
    time_scale: float = 1.0,
    replicas: int | None = None,
    documents: list[Obj] | None = None,
) -> list[Obj]:
    """charts/ (or ``documents``) for one namespace, analyses pointed at ``prometheus_address``, durations scaled."""
    source = assets.chart_documents() if documents is None else documents
    address_args = prometheus_args(source)
    docs = []
    for doc in source:
        doc = scale_tree(copy.deepcopy(doc), time_scale)
        doc["metadata"]["namespace"] = namespace
        args: list[Obj] = []
        if doc["kind"] == "Rollout":
            args = ((doc["spec"]["strategy"].get("canary") or {}).get("analysis") or {}).get("args") or []
            if replicas is not None:
                doc["spec"]["replicas"] = replicas
        if doc["kind"] == "AnalysisTemplate":
            args = doc["spec"].get("args") or []
        for arg in args:
            if arg["name"] in address_args:
                arg["value"] = prometheus_address
        docs.append(doc)
    return docs


def manifests(directory: Path) -> list[Obj]:
    """The Kubernetes objects among a directory's YAML files (an app profile or rule file is not one)."""
    docs = [d for f in sorted(directory.glob("*.yaml")) for d in assets.load_yaml_documents(f)]
    return [d for d in docs if "apiVersion" in d and "kind" in d]


def ensure_namespace(kube: Kube, namespace: str, labels: dict[str, str] | None = None) -> None:
    found = kube.find(resources.NAMESPACE, namespace)
    if found is not None and found["metadata"].get("deletionTimestamp"):
        _wait_gone(kube, namespace)  # nothing can be created in a namespace being deleted
        found = None
    if found is None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels or {}}}
        kube.create(resources.NAMESPACE, body)


def remove_namespaces(kube: Kube, namespaces: list[str], *, wait: bool) -> None:
    """Delete the namespaces and everything in them; with ``wait``, return once every one is gone.

    The namespace controller empties them side by side, each in about 10 s (a fixed 5 s grace, then the pods,
    then the rest): all are deleted before the first wait.
    """
    deleted = [namespace for namespace in namespaces if kube.delete(resources.NAMESPACE, namespace)]
    for namespace in deleted if wait else ():
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
    documents: list[Obj] | None = None,
) -> list[Obj]:
    ensure_namespace(kube, namespace, labels)
    docs = render(
        namespace, prometheus_address=prometheus_address, time_scale=time_scale, replicas=replicas, documents=documents
    )
    return [kube.apply(doc) for doc in docs]
