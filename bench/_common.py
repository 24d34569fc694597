"""Shared bits of the benchmark scripts: repo paths and a printer of the median, every run and the spread."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from pytest_mnops.sandbox.settings import SandboxSettings, default_state_dir

ROOT = Path(__file__).resolve().parents[1]


def running_sandbox(start: str = "mnops sandbox up") -> SandboxSettings:
    """The sandbox the benchmarks measure against; they never start one behind the user's back."""
    settings = SandboxSettings.load(default_state_dir())
    if settings is None:
        raise SystemExit(f"no sandbox running in {default_state_dir()}: `{start}` first")
    return settings


def runs_option(doc: str | None, default: int) -> int:
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--runs", type=int, default=default)
    return parser.parse_args().runs


def report(label: str, samples: list[float], unit: str = "s", target: str = "") -> float:
    median = statistics.median(samples)
    shown = ", ".join(f"{s:.3f}" for s in samples)
    goal = f"   target {target}" if target else ""
    spread = max(samples) - min(samples)
    print(f"{label:<44} median {median:8.3f} {unit}   ({len(samples)} runs: {shown}; spread {spread:.3f}){goal}")
    return median
