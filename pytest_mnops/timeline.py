"""A drill's timeline: phase events with timestamps, from which MTTD and MTTR are computed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

STEADY_STATE = "steady-state"
INJECT = "inject"
DETECTED = "detected"
RECOVERED = "recovered"
REVERTED = "reverted"
OPERATOR_PROMPT = "operator-prompt"  # a human step begins: the operator (or trainee) must act now
HUMAN_STEP = "human-step"  # ... and has acted
PHASES = (STEADY_STATE, INJECT, DETECTED, OPERATOR_PROMPT, HUMAN_STEP, RECOVERED, REVERTED)


@dataclass(frozen=True)
class Event:
    phase: str
    at: float  # wall-clock seconds, so events line up with Prometheus samples in plots
    detail: str = ""


@dataclass
class Timeline:
    """Phase events of one drill; ``narrate`` (training mode) hears each one as it happens."""

    narrate: Callable[[Event], None] | None = None
    events: list[Event] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def mark(self, phase: str, detail: str = "", *, at: float | None = None) -> Event:
        event = Event(phase, time.time() if at is None else at, detail)
        self.events.append(event)
        if self.narrate is not None:
            self.narrate(event)
        return event

    def first(self, phase: str) -> Event | None:
        return next((e for e in self.events if e.phase == phase), None)

    def _since_inject(self, phase: str) -> float | None:
        inject, later = self.first(INJECT), self.first(phase)
        if inject is None or later is None:
            return None
        return max(0.0, later.at - inject.at)

    @property
    def mttd_s(self) -> float | None:
        """Mean time to detect, for one drill: injection to the first detection signal."""
        return self._since_inject(DETECTED)

    @property
    def mttr_s(self) -> float | None:
        """Mean time to recover, for one drill: injection to steady state back."""
        return self._since_inject(RECOVERED)

    def offset(self, event: Event) -> float:
        return event.at - self.started
