"""The rotated value never reaches the terminal, the HTML report, the JUnit XML, the JSON summary or the ledger."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from pytest_mnops.k8s import Kube, resources
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import REFERENCE_SECRET as SECRET
from tests.integration.conftest import REFERENCE_SECRET_KEY as KEY
from tests.integration.conftest import ROOT, drill_argv, in_namespace


def test_secret_rotation_drill_leaks_the_value_nowhere(
    kube: Kube, namespace: str, sandbox: SandboxSettings, tmp_path: Path
) -> None:
    outputs = [tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "drills.json", tmp_path / "ledger.jsonl"]
    argv = drill_argv(
        sandbox,
        outputs[3],
        "--drill",
        "secret-rotation",
        *in_namespace(namespace),
        f"--junitxml={outputs[0]}",
        f"--html={outputs[1]}",
        "--self-contained-html",
        f"--mnops-report-json={outputs[2]}",
        "-o",
        "log_cli=true",
        "-o",
        "log_cli_level=DEBUG",
    )
    drill = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert drill.returncode == 0, drill.stdout[-3000:]
    value = base64.b64decode(kube.get(resources.SECRET, SECRET, namespace=namespace)["data"][KEY]).decode()
    assert len(value) >= 20, "the drill must have rotated a real credential into the Secret"
    encoded = base64.b64encode(value.encode()).decode()
    texts = {"stdout": drill.stdout, "stderr": drill.stderr} | {p.name: p.read_text() for p in outputs}
    leaks = [name for name, text in texts.items() if value in text or encoded in text]
    assert leaks == [], f"the rotated value appears in: {', '.join(leaks)}"
