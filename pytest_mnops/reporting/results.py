"""One drill's result as every report sees it, and its resilience score."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mnops.drills import DrillSpec
from pytest_mnops.stash import FACTS_KEY, TIMELINE_KEY
from pytest_mnops.timeline import DETECTED, RECOVERED, Event

if TYPE_CHECKING:
    from pytest_mnops.target import Target

# The figures every report shows for a drill, in the order JUnit properties list them.
FIGURES = (
    "scenario",
    "phases",
    "mttd_s",
    "mttr_s",
    "abort_s",
    "rollback_s",
    "human_response_s",
    "budget_s",
    "alerts",
    "delivered",
    "proof",
    "verdict",
    "score",
    "regression",
)
# Weights of the resilience score: noticing and healing matter most, speed within budget next.
WEIGHT_DETECTED, WEIGHT_RECOVERED, WEIGHT_IN_BUDGET = 40.0, 40.0, 20.0


@dataclass
class DrillResult:
    name: str
    nodeid: str
    outcome: str
    target: str
    mttd_s: float | None
    mttr_s: float | None
    events: list[Event]
    facts: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0

    @classmethod
    def from_item(cls, item: pytest.Item, spec: DrillSpec, report: pytest.TestReport, target: Target) -> DrillResult:
        timeline = item.stash.get(TIMELINE_KEY, None)
        recorded: dict[str, Any] = item.stash.get(FACTS_KEY, {})
        facts = dict(recorded)
        return cls(
            name=spec.name,
            nodeid=item.nodeid,
            outcome=report.outcome,
            target=target.describe(),
            mttd_s=timeline.mttd_s if timeline else None,
            mttr_s=timeline.mttr_s if timeline else None,
            events=sorted(timeline.events, key=lambda e: e.at) if timeline else [],
            facts=facts,
            started=timeline.started if timeline else 0.0,
        )

    def to_wire(self) -> dict[str, Any]:
        """Plain data, for the report's trip from a pytest-xdist worker to the controller (execnet sends no
        objects). The plotted series stay behind: they are the bulk, and the figure drawn from them (an SVG,
        only when an HTML report is written) travels instead."""
        wire = dataclasses.asdict(self)
        wire["facts"] = {k: v for k, v in self.facts.items() if k != "plot"}
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> DrillResult:
        return cls(**{**wire, "events": [Event(**e) for e in wire["events"]]})

    @property
    def detected(self) -> bool:
        """Detected, or the drill has no detection phase of its own (recovery then proves the detection)."""
        phases = {e.phase for e in self.events}
        return DETECTED in phases or (RECOVERED in phases and self.outcome == "passed")

    @property
    def recovered(self) -> bool:
        return any(e.phase == RECOVERED for e in self.events) and not self.facts.get("problems")

    @property
    def within_budget(self) -> bool:
        budget = self.facts.get("budget_s")
        return self.recovered and (budget is None or (self.mttr_s is not None and self.mttr_s <= budget))

    @property
    def score(self) -> float:
        if self.outcome == "skipped":
            return 0.0
        return (
            WEIGHT_DETECTED * self.detected + WEIGHT_RECOVERED * self.recovered + WEIGHT_IN_BUDGET * self.within_budget
        )

    @property
    def verdict(self) -> str:
        if self.outcome == "skipped":
            return "skipped"
        if self.facts.get("stopped"):
            return "STOPPED"  # a stop condition held or the manual stop was pulled: interrupted and reverted
        return "proved" if self.outcome == "passed" else "failed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "drill": self.name,
            "test": self.nodeid,
            "verdict": self.verdict,
            "score": self.score,
            "target": self.target,
            "mttd_s": _round(self.mttd_s),
            "mttr_s": _round(self.mttr_s),
            "abort_s": self.facts.get("abort_s"),
            "rollback_s": self.facts.get("rollback_s"),
            "human_response_s": self.facts.get("human_response_s"),
            "human_steps": self.facts.get("human_steps", []),
            "budget_s": self.facts.get("budget_s"),
            "alerts": self.facts.get("alerts", []),
            "delivered": self.facts.get("delivered", []),
            "regression": self.facts.get("regression"),
            "proof": self.facts.get("proof"),
            "scenario": self.facts.get("scenario"),
            "phases": self.facts.get("phases"),
            "problems": self.facts.get("problems", []),
            "timeline": [{"phase": e.phase, "at": e.at, "detail": e.detail} for e in self.events],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
