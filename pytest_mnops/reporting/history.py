"""Run history and regressions: each run's drill figures, one JSON file per run under ``--mnops-history-dir``.

One file per run (never one shared file rewritten) so that a CI cache of the directory, or two runs finishing
at once, cannot corrupt earlier runs. A run is compared only with earlier runs against the same target
(context, namespace, app), and never with training runs, where a trainee's pace is part of the figures.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mnops.errors import ConfigError
from pytest_mnops.reporting.results import DrillResult

# A regression must also be this much slower in absolute terms: sub-second figures jitter by more than 1.5x.
MIN_SLOWDOWN_S = 2.0
TIMINGS = (("MTTD", "mttd_s"), ("MTTR", "mttr_s"))


@dataclass(frozen=True)
class Baseline:
    """One drill's figures in one earlier run."""

    started: float
    verdict: str
    mttd_s: float | None
    mttr_s: float | None


class History:
    def __init__(self, directory: Path, *, target: str, runs: int, factor: float) -> None:
        self.directory, self.target, self.runs, self.factor = directory, target, runs, factor
        self.written: Path | None = None  # this run's own record, never its own baseline

    @functools.cached_property
    def _records(self) -> list[dict[str, Any]]:
        """The last ``runs`` comparable earlier runs, read once."""
        if not self.directory.is_dir():
            return []
        records = []
        for path in sorted(self.directory.glob("run-*.json")):
            if path == self.written:
                continue
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a file cut short by a killed run is no history; the others still are
            if record.get("target") == self.target and not record.get("training"):
                records.append(record)
        return sorted(records, key=lambda r: r.get("started", 0))[-self.runs :]

    def baselines(self, drill: str) -> list[Baseline]:
        """The drill's figures in the last ``runs`` comparable runs that ran it, oldest first."""
        return [
            Baseline(r["started"], d["verdict"], d.get("mttd_s"), d.get("mttr_s"))
            for r in self._records
            if (d := r.get("drills", {}).get(drill)) and d.get("verdict") != "skipped"
        ]

    def regression(self, result: DrillResult) -> str | None:
        """Why this result is a regression against the history, or None.

        A drill that was proved in the previous run and fails now; or one whose MTTD or MTTR is above
        ``factor`` x the median of its proved earlier runs (and at least MIN_SLOWDOWN_S slower).
        """
        earlier = self.baselines(result.name)
        if result.verdict == "skipped" or not result.events or not earlier:
            return None
        if result.verdict == "failed" and earlier[-1].verdict == "proved":
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(earlier[-1].started))
            return f"failed now, proved in the previous run ({when})"
        for label, key in TIMINGS:
            value = getattr(result, key)
            past = [v for b in earlier if b.verdict == "proved" and (v := getattr(b, key)) is not None]
            if value is None or not past:
                continue
            median = statistics.median(past)
            if value > self.factor * median and value - median >= MIN_SLOWDOWN_S:
                return (
                    f"{label} {value:.1f}s is above {self.factor:g} x the median {median:.1f}s "
                    f"of the last {len(past)} run{'s' if len(past) != 1 else ''}"
                )
        return None

    def append(
        self, results: list[DrillResult], *, started: float, finished: float, score: float, training: bool
    ) -> Path:
        record = {
            "target": self.target,
            "started": started,
            "finished": finished,
            "training": training,
            "resilience_score": round(score, 1),
            "drills": {
                r.name: {"verdict": r.verdict, "score": r.score, "mttd_s": r.mttd_s, "mttr_s": r.mttr_s}
                for r in results
            },
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
            path = self.directory / f"run-{stamp}-{os.getpid()}.json"
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(record, indent=2, sort_keys=True))
            partial.replace(path)  # atomic: a reader never sees half a run
            self.written = path
        except OSError as exc:
            raise ConfigError(
                f"cannot write the run history to {self.directory}: {exc}. Fix: make it writable, or point "
                "--mnops-history-dir elsewhere."
            ) from None
        return path
