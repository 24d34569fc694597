"""Wall time of the whole validation suite against a running sandbox, next to the seed's claim.

    .venv/bin/python bench/validation.py [--runs 5] [--sandbox-dir .mnops/sandbox] [-- extra pytest args]

Each run is a fresh `python -m pytest suites/validation` process (interpreter start, plugin load, every
check), timed from launch to exit. The seed (DELIVERY_SUMMARY, "Performance Metrics") claims ~3 minutes for
its validation script; the target here is a median of at most 10 s. The script prints figures only: the
checks' own verdicts are shown per run, but a failing check does not fail the benchmark.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0
SEED_CLAIM_S = 180.0  # "Validation Suite: ~3 minutes for all tests"
OUTCOME = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected)")


def _sandbox_running(state_dir: Path) -> str | None:
    """None when every component of the sandbox answers, else why not (nothing is started here)."""
    sys.path.insert(0, str(ROOT))
    from pytest_mnops.sandbox.cluster import Sandbox
    from pytest_mnops.sandbox.settings import SandboxSettings

    settings = SandboxSettings.load(state_dir)
    if settings is None:
        return f"no sandbox in {state_dir}"
    down = [name for name, state, _ in Sandbox(settings, lambda _: None).status() if state != "ready"]
    return f"components not ready: {', '.join(down)}" if down else None


def _outcome(output: str) -> str:
    lines = [line for line in output.splitlines() if OUTCOME.search(line) and " in " in line]
    if not lines:
        return "no summary line"
    return ", ".join(f"{n} {word}" for n, word in OUTCOME.findall(lines[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="how many times to run the suite (default 5)")
    parser.add_argument(
        "--sandbox-dir",
        type=Path,
        default=Path(".mnops/sandbox"),
        help="state dir of the running sandbox to validate (default .mnops/sandbox)",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    state_dir = args.sandbox_dir if args.sandbox_dir.is_absolute() else ROOT / args.sandbox_dir
    why = _sandbox_running(state_dir)
    if why is not None:
        # Timing a run that first boots the sandbox would measure the sandbox, not the suite.
        print(
            f"bench/validation.py: the sandbox is not running ({why}). "
            f"Fix: `mnops sandbox --state-dir {args.sandbox_dir} up`, then run this again.",
            file=sys.stderr,
        )
        return 2
    command = [
        sys.executable,
        "-m",
        "pytest",
        "suites/validation",
        "--mnops-sandbox",
        f"--mnops-sandbox-dir={state_dir}",
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        *args.pytest_args,
    ]
    print(f"validation suite, {args.runs} runs against the sandbox in {args.sandbox_dir}")
    print(f"  $ {' '.join(command[1:])}")
    times, broken = [], False
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        broken |= proc.returncode not in (0, 1)  # 0 all passed, 1 some checks failed: both are timings
        print(f"  run {run}: {elapsed:6.2f} s   exit {proc.returncode}   {_outcome(proc.stdout)}")
    median = statistics.median(times)
    verdict = "met" if median <= TARGET_S else "MISSED"
    print(f"  median {median:.2f} s (min {min(times):.2f}, max {max(times):.2f})")
    print()
    print(f"  {'':<36}{'wall time':>12}")
    print(f"  {'seed claim (ci-cd-validation.sh)':<36}{'~' + f'{SEED_CLAIM_S:.0f} s':>12}")
    print(f"  {'target':<36}{f'<= {TARGET_S:.0f} s':>12}")
    print(
        f"  {'pytest-mnops suites/validation':<36}{f'{median:.2f} s':>12}   target {verdict}, "
        f"{SEED_CLAIM_S / median:.0f}x faster than the claim"
    )
    if broken:
        print(
            "  warning: a run ended with an internal/usage error (exit >= 2); its time is not a suite time",
            file=sys.stderr,
        )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
