"""Shared bits of the benchmark scripts: repo paths and a median printer."""

from __future__ import annotations

import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def report(label: str, samples: list[float], unit: str = "s", target: str = "") -> float:
    median = statistics.median(samples)
    shown = ", ".join(f"{s:.3f}" for s in samples)
    goal = f"   target {target}" if target else ""
    print(f"{label:<44} median {median:8.3f} {unit}   ({len(samples)} runs: {shown}){goal}")
    return median
