"""The pod-failure drill at scale: wall time, peak RSS and API requests of its pytest process (median of 3).

It measures a sandbox that is already running (the one $MNOPS_SANDBOX_DIR names) and never starts one. For
the figures of issue 8, start a big one first (about a minute):

    MNOPS_SANDBOX_DIR=/tmp/scale mnops sandbox up --nodes 100 --app-replicas 1000 --port-base 23000
    MNOPS_SANDBOX_DIR=/tmp/scale .venv/bin/python bench/scale.py [--runs 3]

Each run is `pytest suites/drills --mnops-sandbox --drill pod-failure` in a child process, killing 10%
(MNOPS_KILL_PERCENT=10) with --mnops-max-pods 100: 10% of 1000 pods is over the default cap of 50.

- Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``. Linux carries the parent's peak into a child's
  ``ru_maxrss`` at ``exec``, so this script keeps its own peak small (it never imports the official client)
  and prints it: the figure cannot read below that floor.
- The child counts the requests it sends itself (bench/_request_counter.py): pytest-mnops' Kube client and
  chaostoolkit-kubernetes apart, by verb and resource. The API server cannot tell clients apart in its
  metrics (no user-agent label) and the sandbox keeps no audit log of the admin certificate, so its own
  ``apiserver_request_total``, scraped before and after each run, is shown as what it is: every request the
  cluster served meanwhile, controllers included.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from _common import ROOT, report, running_sandbox, runs_option
from prometheus_client.parser import text_string_to_metric_families

from pytest_mnops.sandbox.pki import Pki
from pytest_mnops.sandbox.settings import SandboxSettings

KILL_PERCENT = 10
MAX_PODS = 100
START = "mnops sandbox up --nodes 100 --app-replicas 1000"
RSS_TARGET_MB = 200
TABLE_ROWS = 16
Key = tuple[str, str]  # (verb, resource)


def apiserver_requests(settings: SandboxSettings) -> Counter[Key]:
    """``apiserver_request_total`` summed by verb and resource (with subresource) over codes and scopes."""
    pki = Pki(settings.layout.pki)
    resp = requests.get(
        f"https://127.0.0.1:{settings.ports.apiserver}/metrics",
        cert=(str(pki.admin_cert), str(pki.admin_key)),
        verify=str(pki.ca_cert),
        timeout=30,
        stream=True,
    )
    resp.raise_for_status()
    # Streamed, keeping this counter's lines only: all of /metrics in memory would raise this script's peak
    # RSS, the floor of the child's figure.
    lines = (line for line in resp.iter_lines(decode_unicode=True) if line.startswith("apiserver_request_total{"))
    text = "\n".join(lines)
    totals: Counter[Key] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            name = "/".join(p for p in (labels.get("resource"), labels.get("subresource")) if p)
            totals[(labels["verb"], name)] += int(sample.value)
    return totals


def one_run(settings: SandboxSettings, scratch: Path) -> dict[str, Any]:
    """One drill in a child pytest: its wall time, peak RSS, MTTD/MTTR, its own requests and the cluster's."""
    counts, report_json, output = scratch / "requests.json", scratch / "drills.json", scratch / "pytest.log"
    env = {
        **os.environ,
        "MNOPS_KILL_PERCENT": str(KILL_PERCENT),
        "MNOPS_BENCH_REQUESTS": str(counts),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "bench"), os.environ.get("PYTHONPATH")) if p),
    }
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "suites/drills",
        "--mnops-sandbox",
        f"--mnops-sandbox-dir={settings.state_dir}",
        "--drill",
        "pod-failure",
        "-p",
        "no:cacheprovider",
        "-p",
        "_request_counter",
        f"--mnops-max-pods={MAX_PODS}",
        f"--mnops-report-json={report_json}",
    ]
    before = apiserver_requests(settings)
    started = time.monotonic()
    with output.open("wb") as log:
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        # wait4, not wait: it hands back the child's own resource usage, peak RSS included.
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    cluster = apiserver_requests(settings) - before
    if child.returncode != 0:
        tail = "\n".join(output.read_text().splitlines()[-30:])
        raise SystemExit(f"the pod-failure drill failed (exit {child.returncode}); its output ends:\n{tail}")
    drill = json.loads(report_json.read_text())["drills"][0]
    counted = json.loads(counts.read_text())
    mine: Counter[tuple[str, str, str]] = Counter()
    for row in counted["rows"]:
        mine[(row["client"], row["verb"], row["resource"])] += row["count"]
    return {
        "wall": wall,
        "rss_mb": usage.ru_maxrss * 1024 / 1e6,  # ru_maxrss is in KiB on Linux
        "mttd": drill["mttd_s"],
        "mttr": drill["mttr_s"],
        "clients": counted["clients"],
        "mine": mine,
        "cluster": cluster,
    }


def report_count(label: str, samples: list[int]) -> None:
    shown = ", ".join(str(s) for s in samples)
    print(f"{label:<44} median {statistics.median(samples):8.0f}     ({len(samples)} runs: {shown})")


def print_table(runs: list[dict[str, Any]]) -> None:
    """Requests per verb and resource, median per run: every kind the drill sent, and the cluster's busiest."""
    ours, theirs = runs[0]["clients"]

    def median(pick: str, key: Key, client: str | None = None) -> float:
        if client is None:
            return statistics.median(r[pick][key] for r in runs)
        return statistics.median(r[pick][(client, *key)] for r in runs)

    sent = {(verb, name) for r in runs for _, verb, name in r["mine"]}
    others = set().union(*(r["cluster"] for r in runs)) - sent
    busiest = sorted(others, key=lambda k: -median("cluster", k))[: max(0, TABLE_ROWS - len(sent))]
    print(f"\n{'requests by verb and resource, median per run':<44} {ours:>13} {theirs:>24} {'apiserver-wide':>15}")
    for key in sorted(sent | set(busiest), key=lambda k: (-median("cluster", k), k)):
        name = f"{key[0]} {key[1] or '(non-resource)'}"
        figures = (median("mine", key, ours), median("mine", key, theirs), median("cluster", key))
        print(f"  {name:<42} {figures[0]:>13.0f} {figures[1]:>24.0f} {figures[2]:>15.0f}")
    if len(others) > len(busiest):
        print(f"  ... and {len(others) - len(busiest)} more verb/resource pairs that only other clients sent")


def main() -> None:
    runs = runs_option(__doc__, 3)
    settings = running_sandbox(START)
    killed = math.ceil(settings.app_replicas * KILL_PERCENT / 100)
    print(
        f"sandbox {settings.state_dir}: {settings.nodes} KWOK nodes, app of {settings.app_replicas} replicas; "
        f"pod-failure kills {KILL_PERCENT}% ({killed} pods), --mnops-max-pods {MAX_PODS}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="mnops-scale-") as scratch:
            results.append(one_run(settings, Path(scratch)))
    report("drill wall time (pytest process)", [r["wall"] for r in results])
    report("drill MTTD (kill starts -> first new pod)", [r["mttd"] for r in results])
    report("drill MTTR (kill starts -> all healed)", [r["mttr"] for r in results])
    report("peak RSS of the pytest process", [r["rss_mb"] for r in results], unit="MB", target=f"<= {RSS_TARGET_MB} MB")
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    print(f"{'  (cannot read below this script peak)':<44} {floor:15.1f} MB")
    report_count("API requests of the pytest process", [sum(r["mine"].values()) for r in results])
    for client in results[0]["clients"]:
        report_count(f"  by {client}", [sum(n for k, n in r["mine"].items() if k[0] == client) for r in results])
    report_count("apiserver-wide, all clients, meanwhile", [sum(r["cluster"].values()) for r in results])
    print_table(results)
    print(f"load average {os.getloadavg()[0]:.1f} at the end (figures on 2 cores move with other work)")


if __name__ == "__main__":
    main()
