"""pod-failure followed directly by secret-rotation, N times in a row on the sandbox; prints the pass count.

The pair used to fail 2-3 times in 5 (`NOT RECOVERED: consumers-use-new-value ... answers: [200, 401]`).
Each round is one `pytest suites/drills --drill pod-failure --drill secret-rotation` process, as a user runs
it; the first failing round's output is shown.

    .venv/bin/python bench/rotation_after_kill.py [--runs 20]
"""

from __future__ import annotations

import subprocess
import sys
import time

from _common import ROOT, running_sandbox, runs_option

DRILLS = ("--drill", "pod-failure", "--drill", "secret-rotation")


def main() -> int:
    runs = runs_option(__doc__, 20)
    running_sandbox()
    argv = [sys.executable, "-m", "pytest", "suites/drills", "-q", "-p", "no:cacheprovider", "--mnops-sandbox", *DRILLS]
    passed, shown = 0, False
    for round_ in range(1, runs + 1):
        started = time.monotonic()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        ok = done.returncode == 0
        passed += ok
        print(f"round {round_:2d}: {'passed' if ok else 'FAILED'} in {time.monotonic() - started:5.1f} s", flush=True)
        if not ok and not shown:
            shown = True
            print(done.stdout[-4000:], flush=True)
    print(
        f"pod-failure then secret-rotation: {passed}/{runs} rounds passed in a row"
        if passed == runs
        else f"pod-failure then secret-rotation: {passed}/{runs} rounds passed, {runs - passed} failed"
    )
    return 0 if passed == runs else 1


if __name__ == "__main__":
    sys.exit(main())
