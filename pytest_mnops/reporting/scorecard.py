"""The end-of-run drill scorecard and the overall resilience score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import pytest

from pytest_mnops.reporting.results import DrillResult


class Scored(Protocol):
    """A drill's result as the score sees it: one run's DrillResult, or a merged run's row (reporting/merge.py)."""

    @property
    def name(self) -> str: ...
    @property
    def verdict(self) -> str: ...
    @property
    def score(self) -> float: ...


S = TypeVar("S", bound=Scored)


def overall_score(results: Sequence[Scored]) -> float:
    scored = [r for r in results if r.verdict != "skipped"]
    return sum(r.score for r in scored) / len(scored) if scored else 0.0


def weakest(results: Sequence[S]) -> S:
    return min(results, key=lambda r: r.score)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def write_scorecard(
    reporter: pytest.TerminalReporter,
    results: list[DrillResult],
    validation: list[tuple[str, str, str, str]],
    *,
    fail_under: float | None,
) -> None:
    if results:
        reporter.write_sep("=", "mnops drill scorecard")
        reporter.write_line(
            f"{'drill':<22}{'verdict':<9}{'MTTD':>8}{'MTTR':>8}{'abort':>8}{'rollback':>10}"
            f"{'trainee':>9}{'score':>7}  alerts"
        )
        for r in results:
            facts = r.facts
            reporter.write_line(
                f"{r.name:<22}{r.verdict:<9}{_seconds(r.mttd_s):>8}{_seconds(r.mttr_s):>8}"
                f"{_seconds(facts.get('abort_s')):>8}{_seconds(facts.get('rollback_s')):>10}"
                f"{_seconds(facts.get('human_response_s')):>9}{r.score:>7.0f}  {','.join(facts.get('alerts', []))}",
                red=r.verdict == "failed",
                green=r.verdict == "proved",
            )
        gate = "" if fail_under is None else f" (gate: --mnops-fail-under {fail_under:.0f})"
        reporter.write_line(f"resilience score: {overall_score(results):.0f}/100 over {len(results)} drills{gate}")
        for r in results:
            if r.facts.get("regression"):
                reporter.write_line(f"REGRESSION {r.name}: {r.facts['regression']}", red=True, bold=True)
    if validation:
        reporter.write_sep("-", "mnops validation")
        by_category: dict[str, list[str]] = {}
        for _, category, reads, outcome in validation:
            by_category.setdefault(f"{category} ({reads})", []).append(outcome)
        for key, outcomes in sorted(by_category.items()):
            counts = ", ".join(f"{outcomes.count(o)} {o}" for o in ("passed", "failed", "skipped") if o in outcomes)
            reporter.write_line(f"{key:<34}{counts}")
