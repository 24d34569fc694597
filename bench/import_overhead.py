"""`pytest --collect-only` with and without the plugin on the same suite: median of 7 each.

.venv/bin/python bench/import_overhead.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report

TEST = "def test_one():\n    pass\n\ndef test_two():\n    pass\n"


def collect(directory: Path, *extra: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra],
        cwd=directory,
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "test_sample.py").write_text(TEST)
        with_plugin = [collect(directory) for _ in range(7)]
        without = [collect(directory, "-p", "no:mnops") for _ in range(7)]
    a = report("collect-only with pytest-mnops", with_plugin)
    b = report("collect-only without (-p no:mnops)", without)
    print(f"{'plugin overhead':<44} median {1000 * (a - b):8.1f} ms   target <= 150 ms")


if __name__ == "__main__":
    main()
