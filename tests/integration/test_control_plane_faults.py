"""The platform's own faults mid-drill, on a sandbox of this module's own (its components are stopped here):
the kube-apiserver going away and coming back, and the Argo Rollouts controller down during canary-failure.
Each drill fails naming the outage, and nothing stays injected."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_mnops import app
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.components import APISERVER, ROLLOUTS
from pytest_mnops.sandbox.processes import Supervisor
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, start_component
from tests.integration.test_revert_on_signals import latency_fault, start_drill, wait_until

pytestmark = pytest.mark.own_sandbox("control-plane")


def _finish(drill: subprocess.Popen[str]) -> str:
    try:
        return drill.communicate(timeout=900)[0]
    finally:
        if drill.poll() is None:
            drill.kill()


def test_apiserver_restart_mid_fault_fails_the_drill_and_the_revert_completes(
    sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    drill = start_drill("high-latency", "default", sandbox, ledger)
    try:
        wait_until(lambda: latency_fault(kube, "default") is not None, timeout_s=300, what="the injected fault")
    except AssertionError as exc:
        drill.kill()
        raise AssertionError(f"{exc}; the drill's output:\n{drill.communicate()[0]}") from None
    Supervisor(sandbox.layout.processes).stop(APISERVER.name)
    time.sleep(10)  # long enough for the drill to notice and its first reverts to fail against no API server
    start_component(sandbox, APISERVER)
    output = _finish(drill)
    assert drill.returncode == 1, output
    assert "the Kubernetes API server stopped answering mid-drill" in output, output
    assert latency_fault(kube, "default") is None, f"the NetworkChaos was left behind:\n{output}"
    assert Ledger(ledger).pending() == [], output


def test_rollouts_controller_down_during_canary_failure_names_the_controller(
    sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rollout = Rollout(kube, namespace="default", name=app.APP_NAME)
    stable = rollout.wait_for(settled=True, timeout_s=300).stable_hash
    Supervisor(sandbox.layout.processes).stop(ROLLOUTS.name)
    try:
        output = _finish(start_drill("canary-failure", "default", sandbox, ledger))
    finally:
        start_component(sandbox, ROLLOUTS)
    assert "the Argo Rollouts controller is not reconciling Rollout default/machine-native-ops" in output, output
    assert "NOT DETECTED" not in output, output
    # A revert that needed the controller to finish is still in the ledger, and `mnops recover` completes it now
    # that the controller is back: the stable revision runs again (the template it restores is the stable
    # ReplicaSet's, API defaults filled in, so it is compared by revision, not field by field).
    recover = subprocess.run(
        [sys.executable, "-m", "pytest_mnops.cli", "recover", "--ledger", str(ledger)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert recover.returncode == 0, recover.stdout + recover.stderr
    after = rollout.wait_for(settled=True, timeout_s=300)
    assert (after.stable_hash, after.current_hash) == (stable, stable)
    assert not after.aborted
    assert Ledger(ledger).pending() == []
