"""Plain-words narration of a drill's phases, live on the terminal (more words in training mode)."""

from __future__ import annotations

import time

from pytest_mnops.timeline import (
    DETECTED,
    HUMAN_STEP,
    INJECT,
    OPERATOR_PROMPT,
    RECOVERED,
    REVERTED,
    STEADY_STATE,
    Event,
)
from pytest_mnops.training.steps import prompt_for

PLAIN = {
    STEADY_STATE: "the system is healthy: steady state confirmed before breaking anything",
    INJECT: "fault injected",
    DETECTED: "the system noticed",
    RECOVERED: "the system recovered",
    REVERTED: "fault reverted, nothing left behind",
    OPERATOR_PROMPT: "operator step: someone has to act now",
    HUMAN_STEP: "the operator acted",
}
TRAINING = {
    INJECT: 'Watch the app now: `kubectl argo rollouts get rollout {app} --watch` (after `eval "$(mnops '
    "sandbox env)\"`), Prometheus' alerts page, Alertmanager. What do you expect to happen first?",
    DETECTED: "This is the moment monitoring or the controller reacted. Note how long it took.",
    RECOVERED: "Steady state is back. Was it automatic, or did someone have to act?",
    OPERATOR_PROMPT: "Your move: the clock is running; your response time and your action are scored.",
}


def narrate(drill: str, event: Event, *, training: bool, app: str = "machine-native-ops") -> str:
    clock = time.strftime("%H:%M:%S", time.localtime(event.at))
    line = f"[mnops {clock}] {drill}: {PLAIN.get(event.phase, event.phase)}"
    if event.detail:
        line += f" ({event.detail})"
    if training and event.phase in TRAINING:
        line += f"\n             {TRAINING[event.phase].format(app=app)}"
        # A human step's own situation and the real commands for it (pytest_mnops/training/steps.py).
        step = prompt_for(event.detail, app) if event.phase == OPERATOR_PROMPT else None
        if step:
            line += f"\n             {step}"
    return line
