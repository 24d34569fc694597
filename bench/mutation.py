"""Mutation testing (mutmut) of the code that decides verdicts and guards: can each check fail?

Every target below is mutated on its own, in a throwaway copy of the repository, and only its focused unit tests
run against each mutant (the whole suite would take hours on two cores). Prints killed/survived per target and
lists every survivor with its diff. Not in CI: it is slow (minutes per target).

.venv/bin/python bench/mutation.py                 # every target
.venv/bin/python bench/mutation.py journal ledger  # some of them
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT

GOAL = 0.90  # killed share the project requires of every target


@dataclass(frozen=True)
class Target:
    label: str
    file: str
    tests: tuple[str, ...]
    # mutmut names a mutant `module.x_function__mutmut_N` (methods: `module.xǁClassǁmethod__mutmut_N`);
    # a target that is one function of a larger module mutates only that function. mutmut leaves decorated
    # functions (properties, such as DrillResult.score) unmutated: those are not targets.
    mutants: tuple[str, ...] = ("*",)


TARGETS = (
    Target("journal", "pytest_mnops/chaos/journal.py", ("tests/unit/test_verdict.py",)),
    Target(
        "runner-proof",
        "pytest_mnops/chaos/runner.py",
        ("tests/unit/test_verdict.py",),
        ("pytest_mnops.chaos.runner.xǁChaosRunnerǁprove__mutmut_*",),
    ),
    Target(
        "policy",
        "pytest_mnops/guards/policy.py",
        ("tests/unit/test_plugin_guards.py", "tests/unit/test_guard_limits.py"),
    ),
    Target("ledger", "pytest_mnops/guards/ledger.py", ("tests/unit/test_ledger.py",)),
    Target(
        "scorecard",
        "pytest_mnops/reporting/scorecard.py",
        ("tests/unit/test_scorecard.py", "tests/unit/test_reporting.py"),
    ),
    Target(
        "alert-matching",
        "pytest_mnops/observability/alerts.py",
        ("tests/unit/test_observability.py",),
        (
            "pytest_mnops.observability.alerts.x_notifies__mutmut_*",
            "pytest_mnops.observability.alerts.x__selector__mutmut_*",
            "pytest_mnops.observability.alerts.xǁAlertsǁstate__mutmut_*",
            "pytest_mnops.observability.alerts.xǁAlertsǁwait_for__mutmut_*",
            "pytest_mnops.observability.alerts.xǁAlertsǁfiring__mutmut_*",
            "pytest_mnops.observability.alerts.xǁAlertsǁwait_delivered__mutmut_*",
        ),
    ),
    Target(
        "notification-matching",
        "pytest_mnops/chaos/activities/synthetic_alerts.py",
        ("tests/unit/test_drill_checks.py",),
        tuple(
            f"pytest_mnops.chaos.activities.synthetic_alerts.x_{name}__mutmut_*"
            for name in ("wait_for_message", "wait_all_delivered", "silence_and_check", "wait_for_notification")
        ),
    ),
    Target(
        "consumer-check",
        "pytest_mnops/chaos/activities/secret_rotation.py",
        ("tests/unit/test_drill_checks.py", "tests/unit/test_secret_rotation.py"),
        ("pytest_mnops.chaos.activities.secret_rotation.x_verify_rotated_credentials__mutmut_*",),
    ),
    Target(
        "replacement-check",
        "pytest_mnops/chaos/activities/pods.py",
        ("tests/unit/test_pod_failure.py",),
        tuple(
            f"pytest_mnops.chaos.activities.pods.x_{name}__mutmut_*"
            for name in ("watch_pod_replacements", "replacements_expected", "_wait_rollout_settled")
        ),
    ),
)
# The copy needs what the tests read besides the package: charts, rules, scenarios, docs.
ALSO_COPY = ("conftest.py", "charts", "monitoring", "scenarios", "suites", "docs")


def copy_of_repo(into: Path) -> None:
    """The tracked files and the uncommitted ones, as the worktree has them (a benchmark of what is here)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def configure(copy: Path, target: Target) -> None:
    tests = [t for t in target.tests if (copy / t).is_file()]
    settings = {
        "source_paths": ["pytest_mnops"],
        "only_mutate": [target.file],
        "also_copy": list(ALSO_COPY),
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-p", "no:xdist", "-q"],
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {_toml(value)}" for key, value in settings.items()]
    with (copy / "pyproject.toml").open("a") as out:
        out.write("\n".join(lines) + "\n")


def _toml(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def mutmut(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([str(tool), *args], cwd=copy, capture_output=True, text=True, env=env, check=False)


def run_target(target: Target, workdir: Path, children: int) -> tuple[dict[str, str], dict[str, str]]:
    """Statuses of the target's mutants, and the diff of each survivor."""
    copy = workdir / target.label
    copy.mkdir()
    copy_of_repo(copy)
    configure(copy, target)
    ran = mutmut(copy, "run", "--max-children", str(children), *target.mutants)
    if ran.returncode != 0:
        raise SystemExit(f"mutmut run failed for {target.label}:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}")
    statuses = {}
    for line in mutmut(copy, "results", "--all", "true").stdout.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and any(fnmatch.fnmatchcase(name, pattern) for pattern in target.mutants):
            statuses[name] = status
    survivors = {n: mutmut(copy, "show", n).stdout for n, s in statuses.items() if s != "killed"}
    return statuses, survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help=f"labels: {', '.join(t.label for t in TARGETS)} (default: all)")
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutants (the machine's cores)")
    parser.add_argument("--keep", action="store_true", help="keep the copies (to `mutmut browse` one)")
    args = parser.parse_args()
    unknown = set(args.targets) - {t.label for t in TARGETS}
    if unknown:
        parser.error(f"unknown targets {', '.join(sorted(unknown))}")
    chosen = [t for t in TARGETS if not args.targets or t.label in args.targets]
    workdir = Path(tempfile.mkdtemp(prefix="mnops-mutation-"))
    rows, all_survivors, total = [], {}, {"killed": 0, "all": 0}
    try:
        for target in chosen:
            started = time.monotonic()
            statuses, survivors = run_target(target, workdir, args.max_children)
            killed = sum(1 for s in statuses.values() if s == "killed")
            total["killed"] += killed
            total["all"] += len(statuses)
            share = killed / len(statuses) if statuses else 0.0
            rows.append((target, killed, len(statuses) - killed, share, time.monotonic() - started))
            all_survivors.update({name: (statuses[name], diff) for name, diff in survivors.items()})
            print(
                f"{target.label:<24}{killed:>5} killed {len(statuses) - killed:>4} survived  {100 * share:5.1f}%"
                f"  ({time.monotonic() - started:.0f}s)",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"copies kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"{'target':<24}{'killed':>7}{'survived':>10}{'score':>8}  file")
    for target, killed, survived, share, _ in rows:
        flag = "" if share >= GOAL else f"   BELOW {100 * GOAL:.0f}%"
        print(f"{target.label:<24}{killed:>7}{survived:>10}{100 * share:>7.1f}%  {target.file}{flag}")
    overall = total["killed"] / total["all"] if total["all"] else 0.0
    print(f"{'all':<24}{total['killed']:>7}{total['all'] - total['killed']:>10}{100 * overall:>7.1f}%")
    if all_survivors:
        print(f"\n{len(all_survivors)} surviving mutants:")
        for name, (status, diff) in all_survivors.items():
            print(f"\n## {name} ({status})\n{diff.strip()}")
    if any(share < GOAL for *_, share, _ in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
