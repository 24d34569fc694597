"""Warm `mnops sandbox up` to all-ready (binaries cached): median of 5, on its own state dir and ports.

.venv/bin/python bench/sandbox_up.py [--runs 5]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

from _common import ROOT, report, runs_option

STATE = ROOT / ".mnops" / "bench-sandbox"
PORT_BASE = "23000"


def mnops(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest_mnops.cli", "sandbox", "--state-dir", str(STATE), *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )


def main() -> None:
    runs = runs_option(__doc__, 5)
    samples = []
    for _ in range(runs):
        shutil.rmtree(STATE, ignore_errors=True)
        started = time.monotonic()
        mnops("up", "--port-base", PORT_BASE)
        samples.append(time.monotonic() - started)
        mnops("down")
    report("mnops sandbox up (warm, to all-ready)", samples, target="<= 20 s")
    print(
        "kwokctl: not measured — `kwokctl create cluster --runtime binary` downloads release binaries, "
        "which this network cannot reach; see docs/sandbox.md"
    )


if __name__ == "__main__":
    main()
