"""The platform's own faults, on a sandbox of this module's own (its components are stopped here): the
kube-apiserver going away mid-fault and coming back, the Argo Rollouts controller down during canary-failure,
Prometheus down during validation and Alertmanager down during the alert drill. Each run fails naming the
outage, and nothing stays injected."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_mnops import app
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.components import ALERTMANAGER, APISERVER, PROMETHEUS, ROLLOUTS, Component
from pytest_mnops.sandbox.processes import Supervisor
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, drill_argv, mnops_recover, start_component
from tests.integration.test_revert_on_signals import latency_fault, start_drill, wait_until

pytestmark = pytest.mark.own_sandbox("control-plane")


@contextmanager
def stopped(sandbox: SandboxSettings, component: Component) -> Iterator[None]:
    Supervisor(sandbox.layout.processes).stop(component.name)
    try:
        yield
    finally:
        start_component(sandbox, component)


def _finish(drill: subprocess.Popen[str]) -> str:
    try:
        return drill.communicate(timeout=900)[0]
    finally:
        if drill.poll() is None:
            drill.kill()


def test_rollouts_controller_down_during_canary_failure_names_the_controller(
    sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rollout = Rollout(kube, namespace="default", name=app.APP_NAME)
    stable = rollout.wait_settled(timeout_s=300).stable_hash
    with stopped(sandbox, ROLLOUTS):
        output = _finish(start_drill("canary-failure", "default", sandbox, ledger))
    assert "the Argo Rollouts controller is not reconciling Rollout default/machine-native-ops" in output, output
    assert "NOT DETECTED" not in output, output
    # A revert that needed the controller to finish is still in the ledger, and `mnops recover` completes it now
    # that the controller is back: the stable revision runs again (the template it restores is the stable
    # ReplicaSet's, API defaults filled in, so it is compared by revision, not field by field).
    recover = mnops_recover(ledger)
    assert recover.returncode == 0, recover.stdout + recover.stderr
    after = rollout.wait_settled(timeout_s=300)
    assert (after.stable_hash, after.current_hash) == (stable, stable)
    assert not after.aborted
    assert Ledger(ledger).pending() == []


def test_prometheus_down_fails_every_check_that_needs_it_naming_the_url(sandbox: SandboxSettings, kube: Kube) -> None:
    Rollout(kube, namespace="default", name=app.APP_NAME).wait_settled(timeout_s=300)
    validation = [sys.executable, "-m", "pytest", "suites/validation", "-p", "no:cacheprovider", "-q", "-rf"]
    with stopped(sandbox, PROMETHEUS):
        started = time.monotonic()
        run = subprocess.run(
            [*validation, "--mnops-sandbox", "--mnops-sandbox-dir", sandbox.state_dir],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        took = time.monotonic() - started
    print(f"validation with Prometheus down: {took:.1f}s")  # the figure for the notes; bench/ has the target
    assert run.returncode == 1, run.stdout
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED ")]
    assert failed and all("test_monitoring.py" in line for line in failed), run.stdout
    assert f"Prometheus at {sandbox.prometheus_url} is unreachable" in run.stdout, run.stdout


def test_alertmanager_down_fails_the_alert_drill_naming_it(sandbox: SandboxSettings, tmp_path: Path) -> None:
    with stopped(sandbox, ALERTMANAGER):
        run = subprocess.run(
            drill_argv(sandbox, tmp_path / "ledger.jsonl", "--drill", "monitoring-alerts"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert run.returncode == 1, run.stdout
    assert f"Alertmanager at {sandbox.alertmanager_url}" in run.stdout, run.stdout
    assert "1 failed" in run.stdout, run.stdout


# Last in the module: while the apiserver is away the node leases lapse, the node controller marks every pod
# NotReady, and KWOK (which plays a pod's stages once) does not make them Ready again.
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
