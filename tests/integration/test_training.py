"""Training mode: the drill waits for the trainee's own `mnops rollback`, then judges, measures and scores it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from pytest_mnops import app
from pytest_mnops.k8s import Kube
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, drill_argv, in_namespace

THINKING_S = 2.0


def trainee(kube: Kube, namespace: str, sandbox: SandboxSettings, done: dict[str, object]) -> None:
    """Waits for the canary's first step (when the drill prompts), thinks, then does what the narration asks."""
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    deadline = time.monotonic() + 120
    while not ((status := rollout.status()).step_index or 0) >= 1 or status.stable_is_current:
        assert time.monotonic() < deadline, f"the canary never reached its first step: {status.describe()}"
        time.sleep(0.1)
    time.sleep(THINKING_S)
    done["rollback"] = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_mnops.cli",
            "rollback",
            "--sandbox",
            "--sandbox-dir",
            sandbox.state_dir,
            "--namespace",
            namespace,
            "--app",
            app.APP_NAME,
            "--reason",
            "trainee: canary looked wrong",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_trainee_rollback_is_awaited_measured_and_scored(
    kube: Kube, namespace: str, sandbox: SandboxSettings, tmp_path: Path
) -> None:
    summary = tmp_path / "drills.json"
    done: dict[str, object] = {}
    helper = threading.Thread(target=trainee, args=(kube, namespace, sandbox, done))
    helper.start()
    argv = drill_argv(
        sandbox,
        tmp_path / "ledger.jsonl",
        "--drill",
        "emergency-rollback",
        *in_namespace(namespace),
        "--mnops-training",
        "--mnops-trainee-timeout",
        "90",
        f"--mnops-report-json={summary}",
    )
    drill = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    helper.join(timeout=120)
    assert drill.returncode == 0, drill.stdout[-4000:]
    assert "Your move" in drill.stdout and "the operator acted" in drill.stdout
    rollback = done["rollback"]
    assert isinstance(rollback, subprocess.CompletedProcess) and rollback.returncode == 0, rollback
    figures = json.loads(summary.read_text())["drills"][0]
    assert figures["human_response_s"] >= THINKING_S
    assert figures["verdict"] == "proved"
    # Judged by its effect; the audit log names the admin certificate `mnops sandbox env` uses, and the tool.
    (step,) = figures["human_steps"]
    assert (step["step"], step["verdict"], step["tool"]) == ("operator-rollback", "right", "mnops"), step
    assert step["action"] == "abort" and step["by"] == "kubernetes-admin", step
    assert step["response_s"] == figures["human_response_s"] and step["stable_restored_s"] is not None
    line = next(line for line in drill.stdout.splitlines() if line.startswith("emergency-rollback"))
    assert f"{figures['human_response_s']:.1f}s" in line, line
