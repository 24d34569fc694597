"""What the traffic stand-in plays, read from the API objects: a workload's pod with its fault profile (the
``traffic.mnops.dev/*`` annotations) and its containers' limits and credential, and a Chaos Mesh fault with
the pods it selects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pytest_mnops.k8s import pod_ready
from pytest_mnops.names import DEPLOYMENT_HASH_LABEL, ROLLOUT_HASH_LABEL
from pytest_mnops.timescale import seconds

ERROR_RATIO = "traffic.mnops.dev/error-ratio"
LATENCY_MS = "traffic.mnops.dev/latency-ms"
# On a Secret: how its consumers misbehave, for the negative controls of secret-rotation. "never-revoke": they
# accept every value it has held (a verifier that never revokes); "stale": they load the value it had when the
# annotation was first seen (a copy that is no longer synced).
CONSUMERS = "traffic.mnops.dev/consumers"
NEVER_REVOKE, STALE = "never-revoke", "stale"
HASH_LABELS = (ROLLOUT_HASH_LABEL, DEPLOYMENT_HASH_LABEL)
DEFAULT_LATENCY_MS = 20.0
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
}


def quantity(text: str | int | float) -> float:
    """A Kubernetes (or stress-ng) quantity as a number: '500m' -> 0.5, '256Mi' -> 268435456."""
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a quantity: {text!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


@dataclass(frozen=True)
class Container:
    name: str
    cpu_limit: float
    memory_limit: float
    credential_ref: tuple[str, str] | None  # (Secret name, key) the container reads at start


@dataclass
class Pod:
    namespace: str
    name: str
    app: str  # the Rollout or Deployment the pod belongs to
    template_hash: str
    ready: bool
    error_ratio: float
    latency_s: float
    containers: list[Container]
    labels: dict[str, str]
    credential: str | None = None  # what this pod loaded when it started: a restart picks up rotations
    cpu_seconds: float = 0.0
    app_container: str = ""  # the container its profile names (default: the first)

    @property
    def main(self) -> Container:
        return next((c for c in self.containers if c.name == self.app_container), self.containers[0])

    @property
    def cpu_limit(self) -> float:
        return self.main.cpu_limit

    @property
    def memory_limit(self) -> float:
        return self.main.memory_limit

    @property
    def credential_ref(self) -> tuple[str, str] | None:
        return self.main.credential_ref or next((c.credential_ref for c in self.containers if c.credential_ref), None)


@dataclass
class Chaos:
    kind: str
    namespace: str
    name: str
    spec: dict[str, Any]
    created: float
    chosen: list[str] = field(default_factory=list)

    def active(self, now: float) -> bool:
        duration = self.spec.get("duration")
        return not duration or now < self.created + seconds(duration)

    def selects(self, pod: Pod) -> bool:
        selector = self.spec.get("selector") or {}
        namespaces = selector.get("namespaces") or [self.namespace]
        labels = selector.get("labelSelectors") or {}
        return pod.namespace in namespaces and all(pod.labels.get(k) == v for k, v in labels.items())


def _container(spec: dict[str, Any]) -> Container:
    limits = (spec.get("resources") or {}).get("limits") or {}
    refs = [((e.get("valueFrom") or {}).get("secretKeyRef") or {}) for e in spec.get("env") or []]
    ref = next(((r["name"], r["key"]) for r in refs if r.get("name") and r.get("key")), None)
    return Container(spec["name"], quantity(limits.get("cpu", "1")), quantity(limits.get("memory", "1Gi")), ref)


def workload_of(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(workload name, pod-template hash) of a pod a ReplicaSet owns (a Rollout's or a Deployment's), else None.

    Both name their ReplicaSets ``<workload>-<pod-template hash>``.
    """
    meta = obj["metadata"]
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"), None)
    labels = meta.get("labels") or {}
    template_hash = next((labels[k] for k in HASH_LABELS if labels.get(k)), None)
    if owner is None or template_hash is None or not owner["name"].endswith(f"-{template_hash}"):
        return None
    return owner["name"][: -len(template_hash) - 1], template_hash


def pod_from_api(obj: dict[str, Any]) -> Pod | None:
    meta = obj["metadata"]
    annotations = meta.get("annotations") or {}
    owned = workload_of(obj)
    if owned is None:
        return None
    return Pod(
        namespace=meta["namespace"],
        name=meta["name"],
        app=owned[0],
        template_hash=owned[1],
        ready=pod_ready(obj),
        error_ratio=float(annotations.get(ERROR_RATIO, 0)),
        latency_s=float(annotations.get(LATENCY_MS, DEFAULT_LATENCY_MS)) / 1000,
        containers=[_container(c) for c in obj["spec"]["containers"]],
        labels=meta.get("labels") or {},
    )
