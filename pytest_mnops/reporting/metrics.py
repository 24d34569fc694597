"""Drill results as Prometheus metrics: pushed to a Pushgateway or written as a node-exporter textfile.

Every series carries the target (``context``, ``namespace``, ``app``); on a Pushgateway these are also the
grouping key, so a run replaces the previous run's figures for the same target and leaves other targets'.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from pytest_mnops.errors import ConfigError, MnopsError
from pytest_mnops.reporting.results import DrillResult

JOB = "mnops"
VERDICTS = ("proved", "failed", "skipped")
PUSH_TIMEOUT_S = 10.0


def registry(
    results: list[DrillResult], *, score: float, target: dict[str, str], regressions: dict[str, str], finished: float
) -> CollectorRegistry:
    registry = CollectorRegistry()
    keys = tuple(target)
    per_drill = (*keys, "drill")

    def gauge(name: str, help_text: str, labels: tuple[str, ...] = per_drill) -> Gauge:
        return Gauge(name, help_text, labels, registry=registry)

    mttd = gauge("mnops_drill_mttd_seconds", "Seconds from fault injection to detection, per drill (last run)")
    mttr = gauge("mnops_drill_mttr_seconds", "Seconds from fault injection to recovery, per drill (last run)")
    drill_score = gauge("mnops_drill_score", "Resilience score of the drill, 0-100 (last run)")
    verdict = gauge(
        "mnops_drill_verdict", "1 for the drill's verdict in the last run, 0 for the others", (*per_drill, "verdict")
    )
    regression = gauge("mnops_drill_regression", "1 when the drill regressed against its run history")
    overall = gauge("mnops_resilience_score", "Overall resilience score of the last run, 0-100", keys)
    last_run = gauge("mnops_last_run_timestamp_seconds", "When the last drill run finished (Unix time)", keys)
    for result in results:
        labels = {**target, "drill": result.name}
        if result.mttd_s is not None:
            mttd.labels(**labels).set(result.mttd_s)
        if result.mttr_s is not None:
            mttr.labels(**labels).set(result.mttr_s)
        drill_score.labels(**labels).set(result.score)
        for name in VERDICTS:
            verdict.labels(**labels, verdict=name).set(1 if result.verdict == name else 0)
        regression.labels(**labels).set(1 if result.name in regressions else 0)
    overall.labels(**target).set(score)
    last_run.labels(**target).set(finished)
    return registry


def push(url: str, registry: CollectorRegistry, target: dict[str, str]) -> None:
    try:
        push_to_gateway(url, job=JOB, registry=registry, grouping_key=target, timeout=PUSH_TIMEOUT_S)
    except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
        raise MnopsError(
            f"could not push the drill metrics to the Pushgateway at {url}: {exc}. Fix: start the Pushgateway "
            "(on the sandbox: `mnops sandbox up`), correct --mnops-pushgateway-url, or unset it."
        ) from None


def write_textfile(path: Path, registry: CollectorRegistry) -> None:
    if path.suffix != ".prom":
        raise ConfigError(
            f"--mnops-metrics-textfile {path}: node-exporter's textfile collector reads only *.prom files. "
            "Fix: name it e.g. mnops.prom in the collector's --collector.textfile.directory."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)  # via a temporary file and a rename: never read half-written
    except OSError as exc:
        raise ConfigError(f"--mnops-metrics-textfile {path}: cannot write it: {exc}. Fix: make it writable.") from None
