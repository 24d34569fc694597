"""Wall time of all seven drills on the sandbox (median of 3), and its ratio to the inherent floor.

The floor is what no implementation can beat at the sandbox's timings: for each alert a drill waits on, the
rule's `for:` plus one evaluation and one scrape; for the canary analysis, its initial delay plus
(failureLimit + 1) intervals; for a resolve, the rule's rate window. Everything is scaled as the sandbox runs it.

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


def floor_s(scale: float) -> float:
    rules = {r["alert"]: r for r in alert_rules(scale)}
    total = 0.0
    for firing, resolving in WAITS.values():
        total += max(seconds(rules[a].get("for", "0s")) + EVALUATION_S + SCRAPE_S for a in firing)
        windows = [
            max((seconds(w) for w in re.findall(r"\[(\d+(?:ms|s|m|h))\]", rules[a]["expr"])), default=0.0)
            for a in resolving
        ]
        total += max(windows, default=0.0)
    analysis = assets.load_yaml_documents(assets.path("charts", "analysis-template-error-rate.yaml"))[0]
    metric = analysis["spec"]["metrics"][0]
    total += (seconds(metric["initialDelay"]) + (metric["failureLimit"] + 1) * seconds(metric["interval"])) * scale
    return total


def main() -> None:
    runs = runs_option(__doc__, 3)
    settings = running_sandbox()
    samples = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "suites/drills",
                "-m",
                "drill",
                "-q",
                "-p",
                "no:cacheprovider",
                "--mnops-sandbox",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        samples.append(time.monotonic() - started)
    wall = report("seven drills, wall time", samples, target="<= 120 s")
    floor = floor_s(settings.time_scale)
    print(f"{'inherent floor (scrape + eval + for: + analysis)':<44} {floor:15.1f} s")
    print(f"{'ratio wall / floor':<44} {wall / floor:15.2f}     target <= 1.3")


if __name__ == "__main__":
    main()
