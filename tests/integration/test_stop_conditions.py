"""Stop conditions and the manual stop on the sandbox: a drill whose condition holds mid-fault ends STOPPED with
its fault gone from the API and the run failing; a condition that never holds changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, drill_argv, in_namespace
from tests.integration.test_revert_on_signals import as_in_a_terminal, latency_fault, wait_until

# Holds once the drill's 800 ms delay shows in the p95, seconds after injection and long before the alert fires.
P95_ABOVE_300MS = (
    'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="${namespace}",'
    'app="${app}"}[1m]))) > 0.3'
)


def _drill(drill: str, namespace: str, sandbox: SandboxSettings, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    argv = drill_argv(
        sandbox,
        tmp_path / "ledger.jsonl",
        "--drill",
        drill,
        *in_namespace(namespace),
        "--mnops-report-json",
        str(tmp_path / "drills.json"),
        "--mnops-stop-file",
        str(tmp_path / "STOP"),
        *args,
    )
    return subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=as_in_a_terminal
    )


def _finish(drill: subprocess.Popen[str]) -> str:
    try:
        output, _ = drill.communicate(timeout=600)
    finally:
        if drill.poll() is None:
            drill.kill()
    return output


def _result(tmp_path: Path) -> dict[str, Any]:
    (result,) = json.loads((tmp_path / "drills.json").read_text())["drills"]
    return result


def test_a_condition_holding_mid_fault_stops_the_drill_and_reverts(
    kube: Kube, namespace: str, sandbox: SandboxSettings, tmp_path: Path
) -> None:
    assert latency_fault(kube, namespace) is None
    drill = _drill("high-latency", namespace, sandbox, tmp_path, "--mnops-stop-when", P95_ABOVE_300MS)
    output = _finish(drill)
    assert drill.returncode == 1, output
    assert "STOPPED: stop condition `histogram_quantile" in output and "held, value" in output, output
    assert latency_fault(kube, namespace) is None, f"the NetworkChaos was left behind:\n{output}"
    assert Ledger(tmp_path / "ledger.jsonl").pending() == []
    result = _result(tmp_path)
    assert result["verdict"] == "STOPPED", output


@pytest.mark.parametrize("how", ["stop file", "SIGUSR1"])
def test_the_manual_stop_ends_a_running_drill_and_reverts(
    how: str, kube: Kube, namespace: str, sandbox: SandboxSettings, tmp_path: Path
) -> None:
    drill = _drill("high-latency", namespace, sandbox, tmp_path)
    try:
        wait_until(lambda: latency_fault(kube, namespace) is not None, timeout_s=180, what="the injected fault")
    except AssertionError as exc:
        drill.kill()
        raise AssertionError(f"{exc}; the drill's output:\n{drill.communicate()[0]}") from None
    if how == "stop file":
        (tmp_path / "STOP").touch()
    else:
        os.kill(drill.pid, signal.SIGUSR1)
    output = _finish(drill)
    assert drill.returncode == 1, output
    assert "STOPPED: manual stop" in output, output
    assert latency_fault(kube, namespace) is None, f"the NetworkChaos was left behind:\n{output}"
    assert Ledger(tmp_path / "ledger.jsonl").pending() == []
    assert _result(tmp_path)["verdict"] == "STOPPED"


def test_a_condition_that_never_holds_changes_nothing(namespace: str, sandbox: SandboxSettings, tmp_path: Path) -> None:
    drill = _drill("pod-failure", namespace, sandbox, tmp_path, "--mnops-stop-when", "vector(1) > 2")
    output = _finish(drill)
    assert drill.returncode == 0, output
    assert _result(tmp_path)["verdict"] == "proved"
