"""From a state change in the API to the waiter returning: our watch-based wait vs a chaostoolkit probe loop.

The state change is a pod of a one-replica Deployment becoming Ready after the previous one was deleted
(KWOK makes it Ready at once). A reference watch records the moment the API shows it Ready; each waiter's
latency is its return time minus that moment. Median of 20 each, on the running sandbox.

    .venv/bin/python bench/detection_latency.py [--runs 20]
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from _common import report, running_sandbox, runs_option

from pytest_mnops.chaos.engine import kube_environment
from pytest_mnops.k8s import Kube, pod_ready, resources

LABEL = "bench-detect"
# chaostoolkit checks a probe, pauses, checks again: one second is the usual pause between checks.
PROBE_PAUSE_S = 1.0


def ready_seen_at(kube: Kube, namespace: str, rv: str, known: set[str], box: dict[str, float]) -> None:
    for kind, obj in kube.watch(
        resources.POD, resource_version=rv, namespace=namespace, label_selector=f"app={LABEL}", timeout_s=30
    ):
        if kind != "BOOKMARK" and obj["metadata"]["uid"] not in known and pod_ready(obj):
            box["changed"] = time.time()
            return


def one_run(kube: Kube, namespace: str, waiter: Callable[[set[str]], None]) -> float:
    pods, rv = kube.list(resources.POD, namespace=namespace, label_selector=f"app={LABEL}")
    known = {p["metadata"]["uid"] for p in pods}
    box: dict[str, float] = {}
    reference = threading.Thread(target=ready_seen_at, args=(kube, namespace, rv, known, box))
    reference.start()
    time.sleep(0.2)  # both watches open before the change
    for pod in pods:
        kube.delete(resources.POD, pod["metadata"]["name"], namespace=namespace, grace_period_s=0)
    waiter(known)
    returned = time.time()
    reference.join()
    return returned - box["changed"]


def main() -> None:
    runs = runs_option(__doc__, 20)
    settings = running_sandbox()
    kube = Kube(kubeconfig=str(settings.layout.kubeconfig))
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kube.create(resources.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kube.wait(resources.SERVICE_ACCOUNT, bool, name="default", namespace=namespace, timeout_s=30, what="SA")
    kube.create(
        resources.DEPLOYMENT,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": LABEL},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": LABEL}},
                "template": {
                    "metadata": {"labels": {"app": LABEL}},
                    "spec": {"containers": [{"name": "c", "image": "registry.example/c:1"}]},
                },
            },
        },
        namespace=namespace,
    )

    def new_ready(known: set[str]) -> Callable[[list[dict[str, Any]]], bool]:
        return lambda pods: any(pod_ready(p) and p["metadata"]["uid"] not in known for p in pods)

    def watch_waiter(known: set[str]) -> None:
        kube.wait(
            resources.POD,
            new_ready(known),
            namespace=namespace,
            label_selector=f"app={LABEL}",
            timeout_s=30,
            what="a new Ready pod",
        )

    def probe_loop(known: set[str]) -> None:
        from chaosk8s.pod.probes import pods_in_phase

        with kube_environment({"kubeconfig": str(settings.layout.kubeconfig)}):
            while True:
                if pods_in_phase(
                    label_selector=f"app={LABEL}", phase="Running", ns=namespace, raise_on_invalid_phase=False
                ):
                    pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=f"app={LABEL}")
                    if new_ready(known)(pods):
                        return
                time.sleep(PROBE_PAUSE_S)

    try:
        kube.wait(
            resources.POD,
            lambda pods: any(pod_ready(p) for p in pods),
            namespace=namespace,
            label_selector=f"app={LABEL}",
            timeout_s=60,
            what="the first pod",
        )
        ours = [one_run(kube, namespace, watch_waiter) for _ in range(runs)]
        theirs = [one_run(kube, namespace, probe_loop) for _ in range(runs)]
    finally:
        kube.delete(resources.NAMESPACE, namespace)
    report("pytest-mnops watch-based wait", ours, target="<= 0.2 s")
    report(f"chaosk8s probe loop (pods_in_phase, {PROBE_PAUSE_S:.0f}s pause)", theirs)


if __name__ == "__main__":
    main()
