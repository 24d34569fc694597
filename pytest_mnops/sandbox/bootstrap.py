"""Objects the sandbox creates once its apiserver answers: CRDs, KWOK nodes, the reference app."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from pytest_mnops import app
from pytest_mnops.assets import load_yaml_documents
from pytest_mnops.errors import SandboxError
from pytest_mnops.k8s import Kube, condition_true, resources
from pytest_mnops.names import ARGO_NAMESPACE, FAKE_NODE_ANNOTATION, ROLLOUT_HASH_LABEL
from pytest_mnops.rollouts import ANALYSIS_DONE, Rollout
from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.layout import ASSETS
from pytest_mnops.sandbox.settings import SandboxSettings

Progress = Callable[[str], None]
Obj = dict[str, Any]
APP_NAMESPACE = "default"
READY_TIMEOUT_S = 120
# Pods are created and bound no faster than the controllers' request rate (cluster.API_QPS; 20 per second
# with the client defaults): the app's wait grows with its replicas, at the slowest of those rates.
POD_CREATE_PER_S = 20
# Every node the sandbox creates carries it; lists and waits ask for these nodes only.
FAKE_NODE_SELECTOR = "type=kwok"
# The pod-template annotation of the sandbox's release: a second revision, rolled out through the canary.
RELEASE_ANNOTATION = "mnops.dev/sandbox-release"
RELEASE = "2"
# The five canary steps and their analyses, at the sandbox's time scale, plus scheduling: well under this.
RELEASE_TIMEOUT_S = 300


def kube(settings: SandboxSettings) -> Kube:
    return Kube(kubeconfig=str(settings.layout.kubeconfig))


def crd_files() -> list[Path]:
    rollouts = binaries.source_dir(binaries.ROLLOUTS) / "manifests" / "crds"
    return [*sorted(p for p in rollouts.glob("*-crd.yaml")), ASSETS / "chaos-mesh-crds.yaml"]


def install_crds(k: Kube, progress: Progress) -> None:
    """Server-side apply: the Rollout CRD is larger than the client-side apply annotation allows."""
    names = []
    for file in crd_files():
        for doc in load_yaml_documents(file):
            k.apply(doc)
            names.append(doc["metadata"]["name"])

    def established(crds: list[Obj]) -> bool:
        ready = {c["metadata"]["name"] for c in crds if condition_true(c, "Established")}
        return set(names) <= ready

    k.wait(resources.CRD, established, timeout_s=READY_TIMEOUT_S, what=f"CRDs {', '.join(names)} Established")
    progress(f"[sandbox] {len(names)} CRDs established (Argo Rollouts, Chaos Mesh)")


def fake_node(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "node-role.kubernetes.io/agent": "",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


def ensure_nodes(k: Kube, count: int, progress: Progress) -> None:
    existing = {n["metadata"]["name"] for n in k.list(resources.NODE, label_selector=FAKE_NODE_SELECTOR)[0]}
    for index in range(count):
        name = f"kwok-node-{index}"
        if name not in existing:
            k.create(resources.NODE, fake_node(name))

    def enough_ready(nodes: list[Obj]) -> int | None:
        ready = sum(1 for n in nodes if condition_true(n, "Ready"))
        return ready if ready >= count else None

    ready = k.wait(
        resources.NODE,
        enough_ready,
        label_selector=FAKE_NODE_SELECTOR,
        timeout_s=READY_TIMEOUT_S,
        what=f"{count} KWOK nodes Ready",
    )
    progress(f"[sandbox] {ready} KWOK nodes Ready")


def ensure_base_objects(k: Kube) -> None:
    app.ensure_namespace(k, ARGO_NAMESPACE)

    def default_sa(accounts: list[Obj]) -> bool:
        return bool(accounts)

    # The serviceaccount controller creates it; pods cannot be admitted before it exists.
    k.wait(
        resources.SERVICE_ACCOUNT,
        default_sa,
        name="default",
        namespace=APP_NAMESPACE,
        timeout_s=READY_TIMEOUT_S,
        what="ServiceAccount 'default'",
    )


def deploy_reference_app(k: Kube, settings: SandboxSettings, progress: Progress) -> None:
    app.deploy(
        k,
        APP_NAMESPACE,
        prometheus_address=settings.prometheus_url,
        time_scale=settings.time_scale,
        replicas=settings.app_replicas,
    )
    progress(f"[sandbox] reference app {app.APP_NAME!r} applied in namespace {APP_NAMESPACE!r}")


def wait_ready(k: Kube, settings: SandboxSettings, progress: Progress) -> None:
    rollout = Rollout(k, namespace=APP_NAMESPACE, name=app.APP_NAME)
    rollout.wait_for(phase="Healthy", timeout_s=READY_TIMEOUT_S + settings.app_replicas / POD_CREATE_PER_S)
    progress(f"[sandbox] Rollout {app.APP_NAME!r} Healthy")
    _wait_targets_up(settings)
    progress("[sandbox] Prometheus: every scrape target up")


def _wait_targets_up(settings: SandboxSettings) -> None:
    """Prometheus' own view of its targets is the thing to wait for; it has no watch API, so poll it."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    down: list[str] = ["(no answer)"]
    while time.monotonic() < deadline:
        try:
            targets = requests.get(f"{settings.prometheus_url}/api/v1/targets", timeout=2).json()["data"]
        except (requests.RequestException, ValueError, KeyError):
            targets = None
        if targets is not None:
            active = targets["activeTargets"]
            down = [
                f"{t['labels'].get('job')} ({t.get('lastError') or t['health']})" for t in active if t["health"] != "up"
            ]
            if active and not down:
                return
        time.sleep(0.25)
    raise SandboxError(f"sandbox: Prometheus targets not up after {READY_TIMEOUT_S}s: {', '.join(down)}")


def _runs_of(rollout: Rollout, runs: list[Obj], pod_hash: str) -> list[Obj]:
    owned = [r for r in runs if any(o.get("name") == rollout.name for o in r["metadata"].get("ownerReferences") or [])]
    return [r for r in owned if (r["metadata"].get("labels") or {}).get(ROLLOUT_HASH_LABEL) == pod_hash]


def judged_stable(rollout: Rollout) -> bool:
    """The stable revision went live through a canary whose analyses all succeeded, and an older one exists."""
    status = rollout.status()
    runs = _runs_of(rollout, rollout.analysis_runs(), status.stable_hash)
    passed = bool(runs) and all((r.get("status") or {}).get("phase") == "Successful" for r in runs)
    return status.stable_is_current and passed and len(rollout.revisions()) >= 2


def release_through_analysis(k: Kube, settings: SandboxSettings, progress: Progress) -> None:
    """Bring the app to a second revision that went live through its canary steps and analyses.

    A first deployment skips the canary: without this, the stable revision was never analysed and there is no
    revision to roll back to, and the validation checks of both would have nothing to judge on a fresh
    sandbox. The release differs from charts/ only in a pod-template annotation that charts/ does not set, so
    re-applying charts/ on the next `up` keeps it (no new revision).
    """
    rollout = Rollout(k, namespace=APP_NAMESPACE, name=app.APP_NAME)
    if judged_stable(rollout):
        return
    image = rollout.get()["spec"]["template"]["spec"]["containers"][0]["image"]
    rollout.set_image(image, annotations={RELEASE_ANNOTATION: RELEASE})
    rollout.wait_for(stable_is_current=False, timeout_s=READY_TIMEOUT_S)
    status = rollout.wait_settled(timeout_s=RELEASE_TIMEOUT_S + settings.app_replicas / POD_CREATE_PER_S)

    def finished(runs: list[Obj]) -> list[Obj] | None:
        # Background analyses end a moment after the last step: the controller terminates them then.
        mine = _runs_of(rollout, runs, status.stable_hash)
        return mine if mine and all((r.get("status") or {}).get("phase") in ANALYSIS_DONE for r in mine) else None

    runs = k.wait(
        resources.ANALYSIS_RUN,
        finished,
        namespace=APP_NAMESPACE,
        timeout_s=READY_TIMEOUT_S,
        what=f"the analyses of revision {status.stable_hash} of Rollout {app.APP_NAME!r} to finish",
    )
    phases = {r["metadata"]["name"]: r["status"]["phase"] for r in runs}
    if set(phases.values()) != {"Successful"}:
        raise SandboxError(
            f"sandbox: the release of Rollout {app.APP_NAME!r} went live (stable {status.stable_hash}) but its "
            f"analyses did not all succeed: {phases}. Logs: {settings.layout.logs}"
        )
    progress(f"[sandbox] Rollout {app.APP_NAME!r} released through its canary analysis ({status.stable_hash})")
