"""Deployment: the Rollout is Healthy with every replica available, its pods are hardened (probes, non-root,
limits, pinned images), and its Services route to exactly the Ready pods."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from pytest_mnops import Kube, Resource, Rollout, pod_ready, read_status, resources

Obj = dict[str, Any]
ENDPOINT_SLICE = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
HASH_LABEL = "rollouts-pod-template-hash"
# The endpoint controllers follow pod changes within a second or two; give them that before judging.
ENDPOINTS_SETTLE_S = 5.0
DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


def _name(obj: Obj) -> str:
    return f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def _template_of(rollout: Obj) -> str:
    """Where the pod template of the user's Rollout is edited: the Rollout, or the Deployment it references."""
    meta, ref = rollout["metadata"], rollout["spec"].get("workloadRef") or {}
    if ref.get("name") and not rollout["spec"].get("template"):
        return f"spec.template of Deployment {meta['namespace']}/{ref['name']} (the Rollout's workloadRef)"
    return f"spec.template of {_name(rollout)} (`kubectl edit rollout {meta['name']} -n {meta['namespace']}`)"


def _containers(template: Obj) -> list[Obj]:
    return list(template["spec"].get("containers") or [])


@pytest.mark.validation("deployment", reads="cluster")
def test_rollout_exists_and_healthy(rollout: Rollout, argo_rollouts: None) -> None:
    rollout_obj = rollout.get()  # a missing Rollout fails here, named, with the fix (deploy charts/)
    status = read_status(rollout_obj)
    name, namespace = status.name, rollout_obj["metadata"]["namespace"]
    plugin = f"kubectl argo rollouts get rollout {name} -n {namespace}"
    if not status.trusted:
        observed = (rollout_obj.get("status") or {}).get("observedGeneration", "none")
        pytest.fail(
            f"Rollout {namespace}/{name}: status.observedGeneration {observed} != "
            f"metadata.generation {status.generation}: the Argo Rollouts controller has not "
            "processed the current spec, so its phase cannot be trusted. Fix: check the controller "
            "runs and read its log (`kubectl -n argo-rollouts logs deploy/argo-rollouts`).",
            pytrace=False,
        )
    fixes = {
        "Degraded": f"find the cause with `{plugin}`, then `kubectl argo rollouts retry rollout {name} -n "
        f"{namespace}` or roll back with `mnops rollback`",
        "Paused": f"promote (`kubectl argo rollouts promote {name} -n {namespace}`) or abort the canary",
        "Progressing": f"let the update finish or abort it; watch it with `{plugin} --watch`",
    }
    assert status.phase == "Healthy" and not status.aborted, (
        f"Rollout {namespace}/{name} is {status.phase or 'without phase'}"
        f"{' and aborted' if status.aborted else ''}: {status.message or 'no message'}. "
        f"Fix: {fixes.get(status.phase, f'inspect it with `{plugin}`')}."
    )


@pytest.mark.validation("deployment", reads="cluster")
def test_replicas_available(rollout_obj: Obj, app_pods: list[Obj]) -> None:
    status = read_status(rollout_obj)
    if status.available >= status.replicas:
        return
    namespace = rollout_obj["metadata"]["namespace"]
    unready = []
    for pod in app_pods:
        if pod_ready(pod):
            continue
        waiting = [
            s.get("state", {}).get("waiting", {}).get("reason")
            for s in (pod.get("status") or {}).get("containerStatuses") or []
        ]
        why = ", ".join(w for w in waiting if w) or (pod.get("status") or {}).get("phase", "unknown")
        unready.append(f"{pod['metadata']['name']} ({why})")
    pytest.fail(
        f"Rollout {namespace}/{status.name}: {status.available} of {status.replicas} desired "
        f"replicas available. Pods not Ready: {', '.join(unready) or 'none (not created yet)'}. "
        f"Fix: `kubectl describe pod POD -n {namespace}` names the cause (image, probe, resources, "
        "scheduling, node).",
        pytrace=False,
    )


@pytest.mark.validation("deployment", reads="cluster")
def test_containers_have_probes(rollout_obj: Obj, pod_template: Obj) -> None:
    problems = [
        f"container {c['name']!r} has no {probe}"
        for c in _containers(pod_template)
        for probe in ("readinessProbe", "livenessProbe")
        if not c.get(probe)
    ]
    assert not problems, (
        f"{_name(rollout_obj)}: {'; '.join(problems)}. Without a readiness probe a starting pod gets "
        "traffic; without a liveness probe a hung one is never restarted. Fix: add them to the container "
        f"in {_template_of(rollout_obj)}."
    )


@pytest.mark.validation("deployment", reads="cluster")
def test_containers_run_as_non_root(rollout_obj: Obj, pod_template: Obj) -> None:
    pod_ctx = pod_template["spec"].get("securityContext") or {}
    problems = []
    for container in _containers(pod_template):
        ctx = container.get("securityContext") or {}
        non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
        user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        if non_root is not True:
            problems.append(
                f"container {container['name']!r} does not set runAsNonRoot: true "
                f"({'set false' if non_root is False else 'unset'} at pod and container level)"
            )
        elif user == 0:
            problems.append(f"container {container['name']!r} sets runAsNonRoot but runAsUser: 0, so it cannot start")
    assert not problems, (
        f"{_name(rollout_obj)}: {'; '.join(problems)}. Fix: set securityContext {{runAsNonRoot: true, "
        f"runAsUser: 10001}} for the pod (or per container) in {_template_of(rollout_obj)}."
    )


@pytest.mark.validation("deployment", reads="cluster")
def test_containers_have_resource_limits(rollout_obj: Obj, pod_template: Obj) -> None:
    problems = []
    for container in _containers(pod_template):
        limits = (container.get("resources") or {}).get("limits") or {}
        missing = [r for r in ("cpu", "memory") if not limits.get(r)]
        if missing:
            problems.append(f"container {container['name']!r} has no {' and no '.join(missing)} limit")
    assert not problems, (
        f"{_name(rollout_obj)}: {'; '.join(problems)}. An unbounded container can starve its node, and the "
        f"resource alerts divide usage by the limit. Fix: set resources.limits.cpu and .memory in "
        f"{_template_of(rollout_obj)}."
    )


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None: it needs a digest, or a tag other than ``latest``."""
    name, _, digest = image.partition("@")
    if digest:
        return None if DIGEST.match(digest) else f"has a malformed digest {digest!r}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag, so it means :latest"
    if last.rsplit(":", 1)[1] == "latest":
        return "uses the moving tag :latest"
    return None


@pytest.mark.validation("deployment", reads="cluster")
def test_images_pinned(rollout_obj: Obj, pod_template: Obj) -> None:
    containers = _containers(pod_template) + list(pod_template["spec"].get("initContainers") or [])
    problems = [
        f"container {c['name']!r} image {c.get('image')!r} {why}"
        for c in containers
        if (why := image_problem(c.get("image") or ""))
    ]
    assert not problems, (
        f"{_name(rollout_obj)}: {'; '.join(problems)}: a restart can pull different code than was tested, "
        "and a rollback cannot name what to go back to. Fix: pin a version tag or a digest "
        f"(image@sha256:...) in {_template_of(rollout_obj)}."
    )


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _app_services(k8s: Kube, rollout_obj: Obj, template: Obj) -> list[Obj]:
    """Services routing to the app: the canary's stable/canary Services and any Service selecting its pods."""
    namespace = rollout_obj["metadata"]["namespace"]
    canary = (rollout_obj["spec"].get("strategy") or {}).get("canary") or {}
    named = {canary.get("stableService"), canary.get("canaryService")} - {None}
    labels = template["metadata"].get("labels") or {}
    services, _ = k8s.list(resources.SERVICE, namespace=namespace)
    chosen = []
    for svc in services:
        # Argo Rollouts adds the pod-template hash to the stable/canary selectors; the template lacks it.
        selector = {k: v for k, v in (svc["spec"].get("selector") or {}).items() if k != HASH_LABEL}
        if svc["metadata"]["name"] in named or _selects(selector, labels):
            chosen.append(svc)
    missing = named - {s["metadata"]["name"] for s in chosen}
    if missing:
        pytest.fail(
            f"{_name(rollout_obj)} names Service(s) {', '.join(sorted(missing))} in its canary "
            f"strategy, but they do not exist in namespace {namespace}. Fix: create them (Services selecting the "
            "Rollout's pods), or correct the names in its spec.strategy.canary.",
            pytrace=False,
        )
    return chosen


def _endpoint_ips(k8s: Kube, svc: Obj) -> set[str]:
    namespace, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    slices, _ = k8s.list(ENDPOINT_SLICE, namespace=namespace, label_selector=f"{SERVICE_NAME_LABEL}={name}")
    if slices:
        return {
            address
            for s in slices
            for ep in s.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready") is not False
            for address in ep.get("addresses") or []
        }
    endpoints = k8s.find(resources.ENDPOINTS, name, namespace=namespace) or {}
    return {a["ip"] for subset in endpoints.get("subsets") or [] for a in subset.get("addresses") or []}


def _endpoint_mismatches(k8s: Kube, services: list[Obj]) -> list[str]:
    problems = []
    for svc in services:
        namespace, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        selector = svc["spec"].get("selector") or {}
        pods, _ = k8s.list(
            resources.POD, namespace=namespace, label_selector=",".join(f"{k}={v}" for k, v in selector.items())
        )
        ready = {
            p["status"]["podIP"]: p["metadata"]["name"]
            for p in pods
            if pod_ready(p) and (p.get("status") or {}).get("podIP")
        }
        actual = _endpoint_ips(k8s, svc)
        stale, absent = actual - set(ready), set(ready) - actual
        if stale or absent:
            parts = []
            if absent:
                parts.append(
                    "Ready pods missing from its endpoints: "
                    + ", ".join(f"{ready[ip]} ({ip})" for ip in sorted(absent))
                )
            if stale:
                parts.append(f"endpoints that are no Ready pod: {', '.join(sorted(stale))}")
            problems.append(f"Service {namespace}/{name}: {'; '.join(parts)}")
    return problems


@pytest.mark.validation("deployment", reads="cluster")
def test_service_endpoints_match_ready_pods(k8s: Kube, rollout_obj: Obj, pod_template: Obj) -> None:
    services = _app_services(k8s, rollout_obj, pod_template)
    assert services, (
        f"no Service in namespace {rollout_obj['metadata']['namespace']} selects the pods of "
        f"{_name(rollout_obj)}, so nothing can reach them. Fix: create a Service whose selector matches the "
        "Rollout's pod labels."
    )
    deadline = time.monotonic() + ENDPOINTS_SETTLE_S
    while (problems := _endpoint_mismatches(k8s, services)) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not problems, (
        f"{'; '.join(problems)} (still after {ENDPOINTS_SETTLE_S:.0f}s). Traffic goes to pods that cannot "
        "serve, or Ready pods get none. Fix: check each Service's selector matches the pod labels, and that "
        "the endpoint-slice controller of kube-controller-manager runs (its log names the Service)."
    )
