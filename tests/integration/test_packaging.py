"""The plugin as a user installs it: the wheel `python -m build` makes, in a fresh virtualenv outside the checkout,
run from an empty directory against the sandbox - the packaged validation suite, and one packaged drill."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, in_namespace

BUILD_TIMEOUT_S = 600


def _run(*argv: str | Path, cwd: Path, timeout: float = BUILD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    # Nothing of the checkout may leak in: no MNOPS_* target, no PYTHONPATH to the sources.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNOPS_", "PYTEST_", "PYTHON", "VIRTUAL_ENV"))}
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0 or argv[1:3] == ("-m", "pytest"), f"{argv}: {proc.stdout}{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The python of a fresh virtualenv holding only the built wheel (and its dependencies)."""
    work = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", ROOT, cwd=work)
    [wheel] = (work / "dist").glob("pytest_mnops-*.whl")
    _run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    python = work / "venv" / "bin" / "python"
    # No bytecode for 300 MB of dependencies: a third of the install's time, and only imported modules need it.
    _run(python, "-m", "pip", "install", "--no-compile", "--progress-bar", "off", wheel, cwd=work)
    yield python


def _junit(path: Path) -> dict[str, str]:
    """testcase name -> outcome."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kind = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        outcomes[case.get("name", "")] = kind
    return outcomes


def test_the_wheel_carries_the_assets(installed: Path, tmp_path: Path) -> None:
    out = _run(installed, "-m", "pytest_mnops.cli", "assets", "suites", cwd=tmp_path).stdout.strip()
    suites = Path(out)
    assert ROOT not in suites.parents, f"{suites} is the checkout, not the installed package"
    assert (suites / "validation" / "test_rollouts.py").is_file() and (suites / "drills" / "test_drills.py").is_file()
    root = suites.parent
    assert sorted(p.name for p in (root / "scenarios").glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "scenarios").glob("*.yaml")
    )
    assert (root / "charts" / "argo-rollout.yaml").is_file() and (root / "monitoring" / "alertmanager.yml").is_file()


def test_the_packaged_validation_suite_and_a_drill_run_from_an_empty_directory(
    installed: Path, sandbox: SandboxSettings, namespace: str, tmp_path: Path
) -> None:
    target = ("--mnops-sandbox", "--mnops-sandbox-dir", sandbox.state_dir, *in_namespace(namespace))
    common = ("-p", "no:cacheprovider", "-rfEs", "--mnops-ledger", str(tmp_path / "ledger.jsonl"))
    validation = _run(
        installed,
        "-m",
        "pytest",
        "--pyargs",
        "pytest_mnops._assets.suites.validation",
        *target,
        *common,
        "--junitxml=validation.xml",
        cwd=tmp_path,
    )
    assert validation.returncode == 0, validation.stdout + validation.stderr
    outcomes = _junit(tmp_path / "validation.xml")
    assert outcomes and "failure" not in outcomes.values() and "error" not in outcomes.values()
    assert outcomes["test_alert_rules_loaded_and_healthy"] == "passed"
    # the installed package's own docs and CI script are not there to check: said, not failed
    assert outcomes["test_readme_commands_are_what_ci_runs"] == "skipped"
    suites = _run(installed, "-m", "pytest_mnops.cli", "assets", "suites", cwd=tmp_path).stdout.strip()
    drill = _run(
        installed,
        "-m",
        "pytest",
        f"{suites}/drills",
        "--drill",
        "pod-failure",
        *target,
        *common,
        "--junitxml=drill.xml",
        cwd=tmp_path,
    )
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert _junit(tmp_path / "drill.xml") == {"test_pod_failure_replacements_become_ready": "passed"}
    assert "pod-failure           proved" in drill.stdout
    # .mnops: the run history, kept where the user runs pytest
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mnops", "drill.xml", "ledger.jsonl", "validation.xml"]
