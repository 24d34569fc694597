"""Wall time of all seven drills on the sandbox (median of 3), one after the other and with `-n 4`, its ratio to
the inherent floor, every run and the spread, and where the time between drills goes.

The floor is what no implementation can beat at the sandbox's timings: for each alert a drill waits on, the
rule's `for:` plus one evaluation and one scrape; for the canary analysis, its initial delay plus
(failureLimit + 1) intervals; for a resolve, the rule's rate window. Everything is scaled as the sandbox runs it.
One after the other, the floor is the sum over the drills; in parallel, the slowest drill's (deploying the
workers' app instances comes on top).

Between drills, from each run's `--mnops-report-json` timelines: the time from the pytest process' start to the
first drill's steady state, and each gap from a drill's last event (its revert) to the next drill's injection
on the same app instance (teardown, setup, the settle, the steady-state probes).

    .venv/bin/python bench/drills.py [--runs 3]
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, report, running_sandbox, runs_option

from pytest_mnops import assets
from pytest_mnops.observability.rules import alert_rules
from pytest_mnops.timeline import INJECT
from pytest_mnops.timescale import seconds

SCRAPE_S = EVALUATION_S = 1.0
# (alerts each drill waits to fire, alerts it waits to resolve), from scenarios/.
WAITS = {
    "high-latency": (["HighLatencyP95"], ["HighLatencyP95"]),
    "resource-exhaustion": (["HighMemoryUsage", "HighCPUUsage"], ["HighMemoryUsage", "HighCPUUsage"]),
    "canary-failure": (["RolloutAborted"], []),
}


def drill_floors(scale: float) -> dict[str, float]:
    rules = {r["alert"]: r for r in alert_rules(scale)}
    floors = {}
    for drill, (firing, resolving) in WAITS.items():
        windows = [
            max((seconds(w) for w in re.findall(r"\[(\d+(?:ms|s|m|h))\]", rules[a]["expr"])), default=0.0)
            for a in resolving
        ]
        floors[drill] = max(seconds(rules[a].get("for", "0s")) + EVALUATION_S + SCRAPE_S for a in firing) + max(
            windows, default=0.0
        )
    analysis = assets.load_yaml_documents(assets.path("charts", "analysis-template-error-rate.yaml"))[0]
    metric = analysis["spec"]["metrics"][0]
    floors["canary-failure"] += (
        seconds(metric["initialDelay"]) + (metric["failureLimit"] + 1) * seconds(metric["interval"])
    ) * scale
    return floors


@dataclass
class Run:
    wall_s: float
    first_s: float  # process start -> the first drill's first event
    gaps: list[tuple[str, str, float]]  # (drill, next drill on the same instance, its last event -> next inject)

    def describe(self, number: int) -> str:
        between = sum(g for _, _, g in self.gaps)
        line = (
            f"  run {number}: {self.wall_s:6.1f} s   first drill after {self.first_s:4.1f} s   "
            f"between drills {between:5.1f} s in all"
        )
        return line + "".join(f"\n      {a + ' -> ' + b:<42} {g:5.1f} s" for a, b, g in self.gaps)


def gaps_between_drills(drills: list[dict]) -> list[tuple[str, str, float]]:
    """Per app instance (the target: a worker's own under -n 4), each drill's last event to the next's injection."""
    by_instance: dict[str, list[dict]] = {}
    for drill in sorted(drills, key=lambda d: d["timeline"][0]["at"]):
        by_instance.setdefault(drill["target"], []).append(drill)
    gaps = []
    for sequence in by_instance.values():
        for before, after in itertools.pairwise(sequence):
            inject = next(e["at"] for e in after["timeline"] if e["phase"] == INJECT)
            gaps.append((before["drill"], after["drill"], inject - before["timeline"][-1]["at"]))
    return gaps


def one_run(*args: str) -> Run:
    with tempfile.TemporaryDirectory() as scratch:
        summary = Path(scratch) / "drills.json"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "suites/drills",
            "-m",
            "drill",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--mnops-report-json={summary}",
            *args,
        ]
        started_wall, started = time.time(), time.monotonic()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"`{' '.join(argv[2:])}` failed; its output ends:\n{done.stdout[-4000:]}")
        drills = json.loads(summary.read_text())["drills"]
    first = min(d["timeline"][0]["at"] for d in drills) - started_wall
    return Run(wall_s=wall, first_s=first, gaps=gaps_between_drills(drills))


def main() -> None:
    runs = runs_option(__doc__, 3)
    floors = drill_floors(running_sandbox().time_scale)
    for label, args, floor, target in (
        ("seven drills, one after the other", ("--mnops-sandbox",), sum(floors.values()), "every run <= 120 s"),
        ("seven drills, -n 4 (own app per worker)", ("--mnops-sandbox", "-n", "4"), max(floors.values()), "<= 60 s"),
    ):
        samples = [one_run(*args) for _ in range(runs)]
        wall = report(label, [s.wall_s for s in samples], target=target)
        for number, sample in enumerate(samples, 1):
            print(sample.describe(number))
        worst = max(s.wall_s for s in samples)
        print(f"{'  inherent floor':<44} {floor:15.1f} s")
        print(f"{'  ratio wall / floor (median, worst run)':<44} {wall / floor:15.2f} {worst / floor:6.2f}")


if __name__ == "__main__":
    main()
