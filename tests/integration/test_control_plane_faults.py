"""The platform's own faults mid-drill, on a sandbox of this module's own (its components are stopped here):
the kube-apiserver going away and coming back, and the Argo Rollouts controller down during canary-failure.
Each drill fails naming the outage, and nothing stays injected."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_mnops import app
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.cluster import CONTEXT, Sandbox, SandboxSettings
from tests.integration.conftest import ROOT, start
from tests.integration.test_revert_on_signals import latency_fault, start_drill, wait_until

# This worktree's sandboxes sit at 29000; tests that stop components get their own at 29000 + N*100.
PORT_BASE = 29100
STATE_DIR = ROOT / ".mnops" / "sandbox-control-plane"


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(SandboxSettings(state_dir=str(STATE_DIR), port_base=PORT_BASE), print)
    try:
        start(sandbox)
        yield sandbox
    finally:
        sandbox.down()


@pytest.fixture(scope="module")
def own_kube(box: Sandbox) -> Kube:
    return Kube(kubeconfig=str(box.layout.kubeconfig), context=CONTEXT)


def _finish(drill: subprocess.Popen[str]) -> str:
    try:
        return drill.communicate(timeout=900)[0]
    finally:
        if drill.poll() is None:
            drill.kill()


def test_apiserver_restart_mid_fault_fails_the_drill_and_the_revert_completes(
    box: Sandbox, own_kube: Kube, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    drill = start_drill("high-latency", "default", box.settings, ledger)
    try:
        wait_until(lambda: latency_fault(own_kube, "default") is not None, timeout_s=300, what="the injected fault")
    except AssertionError as exc:
        drill.kill()
        raise AssertionError(f"{exc}; the drill's output:\n{drill.communicate()[0]}") from None
    box.supervisor.stop("kube-apiserver")
    time.sleep(10)  # long enough for the drill to notice and its first reverts to fail against no API server
    start(box)  # `up` starts what is not running: the apiserver comes back on its port
    output = _finish(drill)
    assert drill.returncode == 1, output
    assert "the Kubernetes API server stopped answering mid-drill" in output, output
    assert latency_fault(own_kube, "default") is None, f"the NetworkChaos was left behind:\n{output}"
    assert Ledger(ledger).pending() == [], output


def test_rollouts_controller_down_during_canary_failure_names_the_controller(
    box: Sandbox, own_kube: Kube, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rollout = Rollout(own_kube, namespace="default", name=app.APP_NAME)
    rollout.wait_for(settled=True, timeout_s=300)
    before = rollout.get()["spec"]["template"]
    box.supervisor.stop("argo-rollouts")
    try:
        output = _finish(start_drill("canary-failure", "default", box.settings, ledger))
    finally:
        start(box)
    assert "the Argo Rollouts controller is not reconciling Rollout default/machine-native-ops" in output, output
    assert "NOT DETECTED" not in output, output
    # The spec is back to stable whatever the controller did; a revert that needed the controller to finish is
    # still in the ledger, and `mnops recover` completes it now that the controller is back.
    recover = subprocess.run(
        [sys.executable, "-m", "pytest_mnops.cli", "recover", "--ledger", str(ledger)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert recover.returncode == 0, recover.stdout + recover.stderr
    after = rollout.wait_for(settled=True, timeout_s=300)
    assert rollout.get()["spec"]["template"] == before
    assert not after.aborted
    assert Ledger(ledger).pending() == []
