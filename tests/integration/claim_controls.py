"""A negative control per claim: for each thing a drill says it proved, a switch that breaks exactly that, and the
message the drill must then fail with (docs/drilling-your-own-app.md, "What each drill proves").

negative_controls.py switches detection off drill by drill; the switches here are narrower: a receiver that loses
only the expected alert, a silence that does not hold, a consumer that keeps accepting the old credential, a
notification of an earlier rollback only. The drill must still fail, naming the claim. Two modules run them:
test_claim_controls (switches sandbox-wide: the nodes, the receivers, Alertmanager's silences, on a sandbox of its own)
and test_claim_controls_app (switches on the app in its own namespace of the shared sandbox).
"""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Callable, Iterator

import requests

from pytest_mnops import app
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.profile.versions import RUN_ANNOTATION
from pytest_mnops.rollback.result import rollback_of
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.standins.traffic.model import CONSUMERS, NEVER_REVOKE, STALE
from tests.integration.conftest import REFERENCE_SECRET as SECRET
from tests.integration.conftest import REFERENCE_SECRET_KEY as SECRET_KEY
from tests.integration.negative_controls import ClaimControl


@contextlib.contextmanager
def receivers_dropping(sandbox: SandboxSettings, containing: str, channel: str | None = None) -> Iterator[None]:
    """The receivers acknowledge, then lose, every notification containing ``containing``."""
    rule = {"containing": containing, **({"channel": channel} if channel else {})}
    requests.post(f"{sandbox.receivers_url}/drops", json=rule, timeout=10).raise_for_status()
    try:
        yield
    finally:
        requests.delete(f"{sandbox.receivers_url}/drops", timeout=10).raise_for_status()


@contextlib.contextmanager
def meanwhile(action: Callable[[threading.Event], None]) -> Iterator[None]:
    """``action`` runs in a thread beside the drill until the block ends (it gets the event that says so)."""
    done = threading.Event()
    thread = threading.Thread(target=action, args=(done,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=30)


def silences_expired(sandbox: SandboxSettings, alertname: str) -> contextlib.AbstractContextManager[None]:
    """Every silence on ``alertname`` is expired as soon as Alertmanager holds it: a silence that does not hold."""

    def expire(done: threading.Event) -> None:
        api = f"{sandbox.alertmanager_url}/api/v2"
        while not done.wait(0.2):
            for silence in requests.get(f"{api}/silences", timeout=10).json():
                names = {m["value"] for m in silence["matchers"] if m["name"] == "alertname"}
                if silence["status"]["state"] == "active" and alertname in names:
                    requests.delete(f"{api}/silence/{silence['id']}", timeout=10)

    return meanwhile(expire)


@contextlib.contextmanager
def earlier_rollback_notice_only(kube: Kube, sandbox: SandboxSettings, namespace: str) -> Iterator[None]:
    """Once the drill's canary exists, this run's rollback notification is lost on every channel, and a
    notification of an earlier rollback of the same app arrives instead (after the run started)."""
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    target = f"{namespace}/{app.APP_NAME}"

    def swap(done: threading.Event) -> None:
        while not done.wait(0.2):
            canary = [r for r, rs in rollout.revisions().items() if RUN_ANNOTATION in _template_annotations(rs)]
            if canary:
                this_run = max(canary)
                rule = {"containing": rollback_of(target, this_run)}
                requests.post(f"{sandbox.receivers_url}/drops", json=rule, timeout=10).raise_for_status()
                earlier = {"text": f"[mnops] Rollback verified: {rollback_of(target, this_run - 2)}{this_run - 3}"}
                for channel in ("slack", "email"):
                    requests.post(f"{sandbox.receivers_url}/{channel}", json=earlier, timeout=10).raise_for_status()
                return

    with meanwhile(swap):
        try:
            yield
        finally:
            requests.delete(f"{sandbox.receivers_url}/drops", timeout=10).raise_for_status()


def _template_annotations(replica_set: dict) -> dict:
    return replica_set["spec"]["template"]["metadata"].get("annotations") or {}


@contextlib.contextmanager
def consumers_of_secret(kube: Kube, namespace: str, behaviour: str) -> Iterator[None]:
    """The app's credential consumers misbehave as the traffic stand-in's CONSUMERS annotation says, from a value
    the Secret holds before the rotation (a fresh namespace has none)."""
    before = base64.b64encode(b"before-the-rotation").decode()
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": namespace},
            "data": {SECRET_KEY: before},
        }
    )

    def annotate(value: str | None) -> None:
        # A merge patch, not an apply: the rotation's server-side apply of the key must leave it in place.
        kube.patch(resources.SECRET, SECRET, {"metadata": {"annotations": {CONSUMERS: value}}}, namespace=namespace)

    annotate(behaviour)
    try:
        yield
    finally:
        annotate(None)


@contextlib.contextmanager
def nodes_cordoned(kube: Kube) -> Iterator[None]:
    """Every node unschedulable (`kubectl cordon`): replacement pods are created but stay Pending, never Ready."""
    nodes, _ = kube.list(resources.NODE)
    for node in nodes:
        kube.patch(resources.NODE, node["metadata"]["name"], {"spec": {"unschedulable": True}})
    try:
        yield
    finally:
        for node in nodes:
            kube.patch(resources.NODE, node["metadata"]["name"], {"spec": {"unschedulable": None}})


@contextlib.contextmanager
def stray_ready_pod(kube: Kube, namespace: str) -> Iterator[None]:
    """A Ready pod of the app that no revision owns (a leftover of an old version): stable cannot serve 100%."""
    template = Rollout(kube, namespace=namespace, name=app.APP_NAME).get()["spec"]["template"]
    name = f"{app.APP_NAME}-stray"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**template["metadata"]["labels"], "rollouts-pod-template-hash": "stray"},
        },
        "spec": {"containers": [{"name": c["name"], "image": c["image"]} for c in template["spec"]["containers"]]},
    }
    kube.apply(pod)
    kube.wait(
        resources.POD,
        lambda pods: True if pods and pods[0].get("status", {}).get("phase") == "Running" else None,
        namespace=namespace,
        field_selector=f"metadata.name={name}",
        timeout_s=60,
        what=f"pod {name} Running",
    )
    try:
        yield
    finally:
        kube.delete(resources.POD, name, namespace=namespace)


SANDBOX_WIDE = (
    ClaimControl(
        "pod-failure",
        "the replacements of the killed pods became Ready",
        lambda k, s, ns: nodes_cordoned(k),
        ("NOT RECOVERED: watch-replacements", "Ready replicas"),
    ),
    ClaimControl(
        "high-latency",
        "the alert's notification reached its receiver",
        lambda k, s, ns: receivers_dropping(s, "HighLatencyP95"),
        ("NOT DETECTED: p95-alert-firing", "HighLatencyP95", "'slack'"),
    ),
    ClaimControl(
        "monitoring-alerts",
        "every synthetic alert reached its receiver",
        lambda k, s, ns: receivers_dropping(s, '"alertname": "RolloutAborted"', channel="pager"),
        ("NOT DETECTED: all-reached-receivers", "RolloutAborted"),
    ),
    ClaimControl(
        "monitoring-alerts",
        "the silence held: nothing silenced was delivered",
        lambda k, s, ns: silences_expired(s, "MnopsDrillSilenceCheck"),
        ("FAILED: silence-suppresses-delivery", "MnopsDrillSilenceCheck"),
    ),
    ClaimControl(
        "emergency-rollback",
        "the notification of this run's rollback reached every channel",
        earlier_rollback_notice_only,
        ("FAILED: rollback-notified", "no notification of this run's rollback"),
    ),
)
IN_THE_APP = (
    ClaimControl(
        "secret-rotation",
        "every consumer accepts the new credential",
        lambda k, s, ns: consumers_of_secret(k, ns, STALE),
        ("NOT RECOVERED: consumers-use-new-value", "the new credential was not accepted by every consumer"),
    ),
    ClaimControl(
        "secret-rotation",
        "no consumer accepts the old credential",
        lambda k, s, ns: consumers_of_secret(k, ns, NEVER_REVOKE),
        ("NOT RECOVERED: consumers-use-new-value", "the old credential is still accepted"),
    ),
    ClaimControl(
        "canary-failure",
        "after the abort, stable serves 100%: every Ready pod runs the stable revision",
        lambda k, s, ns: stray_ready_pod(k, ns),
        ("NOT RECOVERED: stable-serving-100", "all Ready pods on the stable revision"),
    ),
)


def control_id(control: ClaimControl) -> str:
    return f"{control.drill}: {control.claim}"
