"""Wall time of all seven drills on the sandbox (median of 3), one after the other and with `-n 4`, and its
ratio to the inherent floor.

The floor is what no implementation can beat at the sandbox's timings: for each alert a drill waits on, the
rule's `for:` plus one evaluation and one scrape; for the canary analysis, its initial delay plus
(failureLimit + 1) intervals; for a resolve, the rule's rate window. Everything is scaled as the sandbox runs it.
One after the other, the floor is the sum over the drills; in parallel, the slowest drill's (deploying the
workers' app instances comes on top).

    .venv/bin/python bench/drills.py [--runs 3]
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

from _common import ROOT, report, running_sandbox, runs_option

from pytest_mnops import assets
from pytest_mnops.observability.rules import alert_rules
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


def wall_times(runs: int, *args: str) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.monotonic()
        argv = [sys.executable, "-m", "pytest", "suites/drills", "-m", "drill", "-q", "-p", "no:cacheprovider", *args]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"`{' '.join(argv[2:])}` failed; its output ends:\n{done.stdout[-4000:]}")
        samples.append(time.monotonic() - started)
    return samples


def main() -> None:
    runs = runs_option(__doc__, 3)
    floors = drill_floors(running_sandbox().time_scale)
    for label, args, floor, target in (
        ("seven drills, one after the other", ("--mnops-sandbox",), sum(floors.values()), "<= 120 s"),
        ("seven drills, -n 4 (own app per worker)", ("--mnops-sandbox", "-n", "4"), max(floors.values()), ""),
    ):
        wall = report(label, wall_times(runs, *args), target=target)
        print(f"{'  inherent floor':<44} {floor:15.1f} s")
        print(f"{'  ratio wall / floor':<44} {wall / floor:15.2f}")


if __name__ == "__main__":
    main()
