"""`pytest --collect-only` with and without the plugin on the same suite: the median of each, and the median of
the paired differences (the two runs of a pair back to back, so a busy moment hits both).

.venv/bin/python bench/import_overhead.py [--runs 21]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report, runs_option

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
    runs = runs_option(__doc__, 21)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "test_sample.py").write_text(TEST)
        pairs = [(collect(directory), collect(directory, "-p", "no:mnops")) for _ in range(runs)]
    report("collect-only with pytest-mnops", [w for w, _ in pairs])
    report("collect-only without (-p no:mnops)", [b for _, b in pairs])
    report("plugin overhead, paired", [1000 * (w - b) for w, b in pairs], unit="ms", target="<= 30 ms")


if __name__ == "__main__":
    main()
