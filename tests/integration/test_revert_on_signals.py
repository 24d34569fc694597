"""A chaos tool must always revert: on Ctrl-C and SIGTERM by itself, after SIGKILL through `mnops recover`, for
every kind of fault the drills inject."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_mnops import app
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube, pod_ready, resources
from pytest_mnops.profile import RUN_ANNOTATION
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import REFERENCE_SECRET as SECRET
from tests.integration.conftest import REFERENCE_SECRET_KEY as SECRET_KEY
from tests.integration.conftest import ROOT, drill_argv, in_namespace, mnops_recover

LATENCY_FAULT = "mnops-high-latency"


def as_in_a_terminal() -> None:
    """SIGINT at its default, as for a pytest in the foreground of a terminal, where Ctrl-C comes from. A shell
    starts background jobs (a CI step run with `&`) with SIGINT ignored, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_drill(drill: str, namespace: str, sandbox: SandboxSettings, ledger: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        drill_argv(sandbox, ledger, "--drill", drill, *in_namespace(namespace)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_in_a_terminal,
    )


def wait_until(condition: Any, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def latency_fault(kube: Kube, namespace: str) -> dict[str, Any] | None:
    return kube.find(resources.NETWORK_CHAOS, LATENCY_FAULT, namespace=namespace)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_mid_fault_reverts(
    signum: int, kube: Kube, namespace: str, sandbox: SandboxSettings, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    assert latency_fault(kube, namespace) is None
    drill = start_drill("high-latency", namespace, sandbox, ledger)
    try:
        wait_until(lambda: latency_fault(kube, namespace) is not None, timeout_s=120, what="the injected fault")
        assert len(Ledger(ledger).pending()) == 1, "the ledger must hold the fault before it is injected"
        os.kill(drill.pid, signum)
        output, _ = drill.communicate(timeout=120)
    finally:
        if drill.poll() is None:
            drill.kill()
    assert drill.returncode != 0, output
    assert latency_fault(kube, namespace) is None, f"fault left behind after {signal.Signals(signum).name}:\n{output}"
    assert Ledger(ledger).pending() == []


CHAOS = (resources.NETWORK_CHAOS, resources.STRESS_CHAOS)


def cluster_state(kube: Kube, namespace: str) -> dict[str, Any]:
    """What a fault changes, without the bookkeeping every write changes (resourceVersion, generation, status):
    the Rollout's spec (a restart's restartAt aside: replacing pods is how a rotation reaches them), the chaos
    objects present, the app Secret's keys and the Ready pods."""
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    spec = {k: v for k, v in rollout.get()["spec"].items() if k != "restartAt"}
    chaos = sorted(o["metadata"]["name"] for r in CHAOS for o in kube.list(r, namespace=namespace)[0])
    secret = kube.find(resources.SECRET, SECRET, namespace=namespace) or {}
    pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=f"app={app.APP_NAME}")
    ready = [p for p in pods if pod_ready(p) and not p["metadata"].get("deletionTimestamp")]
    return {"spec": spec, "chaos": chaos, "secret_keys": sorted(secret.get("data") or {}), "ready": len(ready)}


@dataclass(frozen=True)
class Fault:
    drill: str
    # True once the drill's fault is in the cluster, given the state before and the namespace.
    injected: Callable[[Kube, str, dict[str, Any]], bool]


def _pod_uids(kube: Kube, namespace: str) -> set[str]:
    pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=f"app={app.APP_NAME}")
    return {p["metadata"]["uid"] for p in pods}


def _pods_replaced(kube: Kube, namespace: str, before: dict[str, Any]) -> bool:
    # KWOK replaces a pod in a fraction of a second: a pod of before gone is the evidence, not a dip in Ready.
    return not before["uids"] <= _pod_uids(kube, namespace)


def _chaos_present(kube: Kube, namespace: str, before: dict[str, Any]) -> bool:
    return bool(cluster_state(kube, namespace)["chaos"])


def _canary_deployed(kube: Kube, namespace: str, before: dict[str, Any]) -> bool:
    template = Rollout(kube, namespace=namespace, name=app.APP_NAME).get()["spec"]["template"]
    return RUN_ANNOTATION in (template["metadata"].get("annotations") or {})


def _secret_rotated(kube: Kube, namespace: str, before: dict[str, Any]) -> bool:
    # The rotation restarts the consumers once the Secret holds the new value.
    return Rollout(kube, namespace=namespace, name=app.APP_NAME).get()["spec"].get("restartAt") != before["restart_at"]


FAULTS = [
    Fault("pod-failure", _pods_replaced),
    Fault("high-latency", _chaos_present),
    Fault("resource-exhaustion", _chaos_present),
    Fault("canary-failure", _canary_deployed),
    Fault("secret-rotation", _secret_rotated),
]


@pytest.mark.parametrize("fault", FAULTS, ids=["pod kill", "NetworkChaos", "StressChaos", "canary version", "Secret"])
def test_sigkill_mid_fault_is_reverted_by_mnops_recover(
    fault: Fault, kube: Kube, namespace: str, sandbox: SandboxSettings, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    with_credential(kube, rollout)
    rollout.wait_settled(timeout_s=180)
    before = cluster_state(kube, namespace)
    baseline = {**before, "uids": _pod_uids(kube, namespace), "restart_at": rollout.get()["spec"].get("restartAt")}
    drill = start_drill(fault.drill, namespace, sandbox, ledger)
    try:
        wait_until(lambda: fault.injected(kube, namespace, baseline), timeout_s=180, what=f"{fault.drill}'s fault")
    except AssertionError as exc:
        drill.kill()
        raise AssertionError(f"{exc}; the drill's output:\n{drill.communicate(timeout=30)[0]}") from None
    drill.kill()  # SIGKILL: no handler, no rollback, no ledger update
    output, _ = drill.communicate(timeout=30)
    assert len(Ledger(ledger).pending()) == 1, output
    assert fault.injected(kube, namespace, baseline), (
        "the fault must still be there after SIGKILL, or this proves nothing"
    )

    recover = mnops_recover(ledger)
    assert recover.returncode == 0, recover.stdout + recover.stderr
    assert f"reverted {fault.drill}" in recover.stdout
    after = rollout.wait_settled(timeout_s=180)
    after_state = cluster_state(kube, namespace)
    # An undo puts back the ReplicaSet's copy of the template, which the API server filled with pod defaults
    # (terminationMessagePath, dnsPolicy...): what was there before must be there again, defaults aside.
    template, before_template = after_state["spec"].pop("template"), dict(before["spec"]).pop("template")
    assert holds(template, before_template), f"pod template not restored: {template} vs {before_template}"
    assert after_state == {**before, "spec": {k: v for k, v in before["spec"].items() if k != "template"}}
    assert not after.aborted
    assert Ledger(ledger).pending() == []
    assert consumers_accept_current_secret(kube, sandbox, namespace), "a consumer holds another credential"


def holds(value: Any, expected: Any) -> bool:
    """``value`` has everything ``expected`` has (mappings may hold more: server-side defaults)."""
    if isinstance(expected, dict):
        return isinstance(value, dict) and all(k in value and holds(value[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(value, list) and len(value) == len(expected) and all(map(holds, value, expected))
    return bool(value == expected)


def with_credential(kube: Kube, rollout: Rollout) -> None:
    """The app's Secret exists and its consumers loaded it, as in a deployed app (a fresh namespace has none)."""
    if kube.find(resources.SECRET, SECRET, namespace=rollout.namespace) is None:
        value = base64.b64encode(os.urandom(18)).decode()
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}, "stringData": {SECRET_KEY: value}}
        kube.create(resources.SECRET, body, namespace=rollout.namespace)
        rollout.restart()


def consumers_accept_current_secret(kube: Kube, sandbox: SandboxSettings, namespace: str) -> bool:
    """Every sampled request through the app accepts the Secret's current value: no consumer left on another."""
    data = kube.get(resources.SECRET, SECRET, namespace=namespace)["data"]
    token = base64.b64decode(data[SECRET_KEY]).decode()
    url = f"{sandbox.traffic_url}/svc/{namespace}/{app.APP_NAME}/auth"
    headers = {"Authorization": f"Bearer {token}"}
    return {requests.get(url, headers=headers, timeout=10).status_code for _ in range(30)} == {200}
