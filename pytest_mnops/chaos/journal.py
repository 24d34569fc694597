"""Typed view of a chaoslib journal, and the verdict a drill draws from it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pytest_mnops.errors import ControllerDown
from pytest_mnops.timeline import DETECTED, RECOVERED

# chaoslib's status of a method that ended early: the engine ends it at the first failed activity.
METHOD_ENDED = "aborted"


def timestamp(text: str | None) -> float | None:
    return dt.datetime.fromisoformat(text).timestamp() if text else None


@dataclass(frozen=True)
class ActivityRun:
    name: str
    type: str
    phase: str | None
    status: str
    start: float | None
    end: float | None
    output: Any
    error: str

    @classmethod
    def from_run(cls, run: dict[str, Any], phases: dict[str, str]) -> ActivityRun:
        activity = run.get("activity") or {}
        exception = run.get("exception") or []
        error = exception[-1].strip() if exception else ""
        return cls(
            name=activity.get("name", "?"),
            type=activity.get("type", "?"),
            phase=phases.get(activity.get("name", "")),
            status=run.get("status", "?"),
            start=timestamp(run.get("start")),
            end=timestamp(run.get("end")),
            output=run.get("output"),
            error=error,
        )


@dataclass(frozen=True)
class DrillJournal:
    scenario: str
    status: str
    deviated: bool
    steady_state_before: bool | None
    steady_state_after: bool | None
    activities: list[ActivityRun]
    rollbacks: list[ActivityRun]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_journal(cls, scenario: str, journal: dict[str, Any], phases: dict[str, str]) -> DrillJournal:
        steady = journal.get("steady_states") or {}

        def met(key: str) -> bool | None:
            return None if not steady.get(key) else bool(steady[key].get("steady_state_met"))

        return cls(
            scenario=scenario,
            status=journal.get("status", "?"),
            deviated=bool(journal.get("deviated")),
            steady_state_before=met("before"),
            steady_state_after=met("after"),
            activities=[ActivityRun.from_run(r, phases) for r in journal.get("run") or []],
            rollbacks=[ActivityRun.from_run(r, phases) for r in journal.get("rollbacks") or []],
            raw=journal,
        )

    def activity(self, name: str) -> ActivityRun:
        for run in self.activities:
            if run.name == name:
                return run
        raise KeyError(f"scenario {self.scenario}: no activity {name!r} ran")

    def problems(self) -> list[str]:
        """Why this drill did not prove what it set out to; empty when it did."""
        out = []
        if self.steady_state_before is False:
            out.append("steady state was not met before injection (the system was not healthy to begin with)")
            out += [f"  {name}: {error}" for name, error in self._probe_errors("before")]
        for run in self.activities:
            if run.status not in ("succeeded", "failed"):
                # A stop (stop condition, manual stop, platform outage) ended it: the stop is the verdict.
                out.append(f"INTERRUPTED: {run.name} (the drill was stopped while it ran)")
            elif run.status != "succeeded":
                what = {DETECTED: "NOT DETECTED", RECOVERED: "NOT RECOVERED"}.get(run.phase or "", "FAILED")
                if ControllerDown.__name__ in run.error:
                    what = "CONTROLLER DOWN"  # the system under test was not there to detect anything
                out.append(f"{what}: {run.name}: {run.error or run.status}")
        if self.deviated or self.steady_state_after is False:
            out.append("steady state did not come back after the fault (hypothesis after the method deviated)")
        for run in self.rollbacks:
            if run.status != "succeeded":
                out.append(f"REVERT FAILED: {run.name}: {run.error or run.status} — run `mnops recover`")
        ended_early = self.status == METHOD_ENDED and any(r.status == "failed" for r in self.activities)
        if ended_early and (not_run := self._not_run()):
            out.append(f"not run after the first failure: {', '.join(not_run)}")
        elif self.status not in ("completed", "deviated", "failed") and not ended_early:
            out.append(f"experiment ended with status {self.status!r}")
        return out

    def _not_run(self) -> list[str]:
        ran = {run.name for run in self.activities}
        method = (self.raw.get("experiment") or {}).get("method") or []
        return [a.get("name", "?") for a in method if a.get("name", "?") not in ran]

    def _probe_errors(self, when: str) -> list[tuple[str, str]]:
        """Steady-state probes that raised (e.g. "no data for <query>"), with the reason: not just "not met"."""
        state = (self.raw.get("steady_states") or {}).get(when) or {}
        runs = [ActivityRun.from_run(run, {}) for run in state.get("probes") or []]
        return [(run.name, run.error) for run in runs if run.error]

    def summary(self) -> list[dict[str, Any]]:
        """Rows for reports: what ran, when, and how it ended (outputs stay out: they may hold values)."""
        return [
            {
                "name": r.name,
                "type": r.type,
                "phase": r.phase or "",
                "status": r.status,
                "duration_s": round((r.end or 0) - (r.start or 0), 3),
                "error": r.error,
            }
            for r in (*self.activities, *self.rollbacks)
        ]
