"""After `make coverage`: the per-module report, the least covered modules named, and a failure for any at 0%.

A module no test runs at all is one whose every claim is untested; partial coverage is for reading, not gating.
With ``source = ["pytest_mnops"]`` (pyproject.toml) coverage.py reports modules no test imported as 0% too.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[1]
LOW = 50.0  # below this a module is named in the summary


def main() -> int:
    cov = coverage.Coverage(data_file=str(ROOT / ".coverage"))
    cov.combine()  # the drill subprocesses' data files, next to the test run's
    cov.save()
    total = cov.report(skip_covered=False)
    cov.html_report(directory=str(ROOT / "htmlcov"))
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cov.json_report(outfile=out.name)
        files = json.loads(Path(out.name).read_text())["files"]
    percents = {name: entry["summary"]["percent_covered"] for name, entry in files.items()}
    low = sorted((pc, name) for name, pc in percents.items() if 0 < pc < LOW)
    zero = sorted(name for name, pc in percents.items() if pc == 0)
    print(f"\ntotal {total:.1f}% (HTML: htmlcov/index.html)")
    if low:
        print(f"modules below {LOW:.0f}%: " + ", ".join(f"{name} ({pc:.0f}%)" for pc, name in low))
    if zero:
        print(f"modules at 0% (no test runs them): {', '.join(zero)}")
        return 1
    print("no module at 0%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
