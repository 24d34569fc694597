"""A chaos tool must always revert: on Ctrl-C and SIGTERM by itself, after SIGKILL through `mnops recover`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops import app
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.cluster import SandboxSettings
from tests.integration.conftest import ROOT, drill_argv, in_namespace

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


def test_sigkill_mid_fault_is_reverted_by_mnops_recover(
    kube: Kube, namespace: str, sandbox: SandboxSettings, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120)
    before = rollout.get()["spec"]["template"]

    def injected() -> bool:
        return rollout.get()["spec"]["template"]["metadata"]["annotations"] != before["metadata"]["annotations"]

    drill = start_drill("canary-failure", namespace, sandbox, ledger)
    try:
        wait_until(injected, timeout_s=120, what="the faulty version to be rolled out")
    finally:
        drill.kill()  # SIGKILL: no handler, no rollback, no ledger update
        drill.communicate(timeout=30)
    assert len(Ledger(ledger).pending()) == 1
    assert injected(), "the fault must still be there after SIGKILL, or this test proves nothing"

    recover = subprocess.run(
        [sys.executable, "-m", "pytest_mnops.cli", "recover", "--ledger", str(ledger)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert recover.returncode == 0, recover.stdout + recover.stderr
    assert "reverted canary-failure" in recover.stdout
    after = rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120)
    template = rollout.get()["spec"]["template"]
    assert template["metadata"]["annotations"] == before["metadata"]["annotations"]
    assert [c["image"] for c in template["spec"]["containers"]] == [c["image"] for c in before["spec"]["containers"]]
    assert not after.aborted
    assert Ledger(ledger).pending() == []
