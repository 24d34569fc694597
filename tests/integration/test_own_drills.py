"""A team's own drills on the sandbox: the docs' worked example as written, and a public chaostoolkit experiment
run as it is - proved, refused by the guards before any pod is touched, and recovered after a SIGKILL.

Each runs `pytest` in a subprocess from a project directory of its own, as a user would; the target is chosen
through MNOPS_* variables only, so the documented command and files stay exactly as the docs have them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_mnops import cli
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, deploy_app

DOC = ROOT / "docs" / "write-your-own-drill.md"
EXAMPLE = re.compile(r"<!-- mnops:example (\S+) -->\n```\w*\n(.*?)```", re.DOTALL)
COMMAND = re.compile(r"<!-- mnops:example-command -->\n```\w*\n(.*?)```", re.DOTALL)
PUBLIC = Path(__file__).parent / "experiments" / "terminate-pod.yaml"
SELECTOR = "app=machine-native-ops"
RUN_TIMEOUT_S = 600
PUBLIC_TEST = """
import os

import pytest


@pytest.mark.drill("public-pod-kill", budget_s=300)
def test_public_experiment(chaos):
    chaos.prove(chaos.run(os.environ["EXPERIMENT"]))
"""


@pytest.fixture(scope="module")
def other_namespace(kube: Kube, sandbox: SandboxSettings) -> Iterator[str]:
    """A second copy of the app, in a namespace no drill here is allowed to touch."""
    yield from deploy_app(kube, sandbox, "mnops-it-other")


def _env(sandbox: SandboxSettings, namespace: str, ledger: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNOPS_", "CHAOS_", "PYTEST_"))}
    env.update(
        MNOPS_SANDBOX_DIR=sandbox.state_dir,
        MNOPS_NAMESPACE=namespace,
        MNOPS_ALLOW_NAMESPACE=namespace,
        MNOPS_LEDGER=str(ledger),
        **extra,
    )
    return env


def _uids(kube: Kube, namespace: str) -> set[str]:
    pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=SELECTOR)
    return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def _properties(junit: Path) -> dict[str, dict[str, str]]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return {c.get("name", ""): {p.get("name", ""): p.get("value", "") for p in c.iter("property")} for c in cases}


def test_the_docs_worked_example_runs_as_written(sandbox: SandboxSettings, namespace: str, tmp_path: Path) -> None:
    text = DOC.read_text()
    files = EXAMPLE.findall(text)
    assert {name for name, _ in files} == {
        "chaos/checkout-pod-kill.yaml",
        "tests/test_checkout_drills.py",
        "pytest.ini",
    }
    for name, content in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    [command] = COMMAND.findall(text)
    argv = shlex.split(command)
    assert argv[0] == "pytest"
    proc = subprocess.run(
        [sys.executable, "-m", *argv, "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=_env(sandbox, namespace, tmp_path / "ledger.jsonl"),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "2 items / 1 deselected / 1 selected" in out, out  # --drill selected the team's drill only
    assert re.search(r"^checkout-pod-kill\s+proved\s", out, re.MULTILINE), out  # its scorecard row
    properties = _properties(tmp_path / "junit.xml")
    drill = properties["test_checkout_survives_losing_two_pods"]
    assert drill["drill"] == "checkout-pod-kill" and drill["verdict"] == "proved" and float(drill["score"]) > 0
    assert drill["phases"].startswith("declared")
    assert "test_checkout_experiment_is_valid" not in properties
    assert not Ledger(tmp_path / "ledger.jsonl").pending()


def _public(
    sandbox: SandboxSettings, namespace: str, tmp_path: Path, *args: str, **chaos_env: str
) -> subprocess.Popen[str]:
    (tmp_path / "test_public.py").write_text(PUBLIC_TEST)
    env = _env(
        sandbox,
        namespace,
        tmp_path / "ledger.jsonl",
        EXPERIMENT=str(PUBLIC),
        CHAOS_POD_SELECTOR=SELECTOR,
        CHAOS_EXPECTED_PODS="10",
        CHAOS_SERVICE_URL=f"{sandbox.traffic_url}/svc/{namespace}/machine-native-ops",
        **chaos_env,
    )
    argv = [sys.executable, "-m", "pytest", "test_public.py", "--mnops-sandbox", "-p", "no:cacheprovider", "-rA"]
    return subprocess.Popen(
        [*argv, "--junitxml=junit.xml", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    return proc.returncode, out


def test_a_public_experiment_runs_as_it_is_and_is_proved(
    sandbox: SandboxSettings, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    before = _uids(kube, namespace)
    rc, out = _finish(_public(sandbox, namespace, tmp_path, CHAOS_NS=namespace, CHAOS_PODS_TO_KILL="2"))
    assert rc == 0, out
    after = _uids(kube, namespace)
    assert len(before - after) == 2, "exactly the two terminated pods are gone"
    assert len(after) == len(before), "and were replaced"
    drill = _properties(tmp_path / "junit.xml")["test_public_experiment"]
    assert drill["verdict"] == "proved" and drill["drill"] == "public-pod-kill"
    assert drill["phases"] == (
        "inferred: inject = first action 'terminate-pods'; recovered = steady state met again after the method"
    )
    [entry] = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()][:1]
    # the ledger holds the experiment's own resolved configuration, not the runner's alone
    assert entry["configuration"]["pod_label_selector"] == SELECTOR and entry["configuration"]["ns"] == namespace
    assert not Ledger(tmp_path / "ledger.jsonl").pending()


def test_the_same_experiment_aimed_outside_the_allowlist_is_refused_before_any_pod_is_deleted(
    sandbox: SandboxSettings, kube: Kube, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    before = _uids(kube, other_namespace)
    rc, out = _finish(_public(sandbox, namespace, tmp_path, CHAOS_NS=other_namespace))
    assert rc == 1, out
    assert (
        f"action 'terminate-pods' (chaosk8s.pod.actions.terminate_pods): namespace '{other_namespace}' is outside "
        f"the allowlist ({namespace}); nothing was changed. Fix: --mnops-allow-namespace={other_namespace}."
    ) in out, out
    assert _uids(kube, other_namespace) == before
    assert not (tmp_path / "ledger.jsonl").exists(), "nothing was injected, so nothing was ledgered"


def test_the_same_experiment_sized_over_the_cap_is_refused_before_any_pod_is_deleted(
    sandbox: SandboxSettings, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    before = _uids(kube, namespace)
    rc, out = _finish(
        _public(sandbox, namespace, tmp_path, "--mnops-max-pods=3", CHAOS_NS=namespace, CHAOS_PODS_TO_KILL="4")
    )
    assert rc == 1, out
    assert "action 'terminate-pods' (chaosk8s.pod.actions.terminate_pods): would touch 4 pods" in out, out
    assert "over the cap of 3; nothing was changed" in out, out
    assert _uids(kube, namespace) == before
    assert not (tmp_path / "ledger.jsonl").exists()


def test_its_ledger_entry_is_recovered_after_a_sigkill(
    sandbox: SandboxSettings,
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    proc = _public(sandbox, namespace, tmp_path, CHAOS_NS=namespace, CHAOS_PODS_TO_KILL="3")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    # The entry is written just before the pods are terminated: kill the runner the moment it appears.
    while not ledger.pending() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    [entry] = ledger.pending()
    assert entry.scenario == "terminate-pod" and entry.rollbacks == [] and entry.hypothesis, out
    # No environment: the entry alone says where to look (${ns}, ${pod_label_selector}, ${service_url} filled).
    for key in [k for k in os.environ if k.startswith(("CHAOS_", "MNOPS_"))]:
        monkeypatch.delenv(key)
    assert cli.main(["recover", "--ledger", str(ledger.path)]) == 0, capsys.readouterr().out
    assert f"reverted terminate-pod ({entry.id[:8]})" in capsys.readouterr().out
    assert not ledger.pending()
    pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=SELECTOR)
    assert len([p for p in pods if not p["metadata"].get("deletionTimestamp")]) == 10
