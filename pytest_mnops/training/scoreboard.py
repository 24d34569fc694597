"""The room's scoreboard: per trainee and human step, what they did, whether it was right, how fast, and how
long until the stable version served again. Built from each trainee's ``--mnops-report-json``."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_mnops.training.room import Room


@dataclass(frozen=True)
class StepScore:
    step: str
    action: str
    verdict: str
    why: str
    response_s: float | None
    stable_restored_s: float | None
    by: str = ""
    tool: str = ""


@dataclass(frozen=True)
class TraineeScore:
    trainee: str
    namespace: str
    drill_verdict: str
    mttr_s: float | None
    steps: list[StepScore] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def right(self) -> int:
        return sum(s.verdict == "right" for s in self.steps)


def collect(room: Room, drill: str) -> list[TraineeScore]:
    """Every trainee of the room, in order; one whose drill wrote no report says so (never a silent gap)."""
    scores = []
    for trainee in room.trainees:
        report = Path(trainee.report)
        found = json.loads(report.read_text())["drills"] if report.is_file() else []
        result = next((d for d in found if d["drill"] == drill), None)
        if result is None:
            scores.append(
                TraineeScore(
                    trainee.name,
                    trainee.namespace,
                    "no report",
                    None,
                    problems=[f"the drill wrote no result to {report}: see {trainee.log}"],
                )
            )
            continue
        steps = [
            StepScore(
                step=s["step"],
                action=s["action"],
                verdict=s["verdict"],
                why=s["why"],
                response_s=s.get("response_s"),
                stable_restored_s=s.get("stable_restored_s"),
                by=s.get("by", ""),
                tool=s.get("tool", ""),
            )
            for s in result.get("human_steps") or []
        ]
        problems = list(result.get("problems") or [])
        if not steps:
            problems.append("no human step was scored (was the drill run in training mode?)")
        scores.append(
            TraineeScore(trainee.name, trainee.namespace, result["verdict"], result.get("mttr_s"), steps, problems)
        )
    return scores


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def render_text(drill: str, scores: list[TraineeScore]) -> str:
    head = f"{'trainee':<16}{'step':<26}{'action':<22}{'verdict':<9}{'response':>9}{'stable in':>11}  tool / why"
    lines = [f"mnops training scoreboard: {drill}", head, "-" * len(head)]
    for score in scores:
        if not score.steps:
            lines.append(f"{score.trainee:<16}{'-':<26}{'-':<22}{'-':<9}{'-':>9}{'-':>11}  {'; '.join(score.problems)}")
        for step in score.steps:
            lines.append(
                f"{score.trainee:<16}{step.step:<26}{step.action[:21]:<22}{step.verdict:<9}"
                f"{_seconds(step.response_s):>9}{_seconds(step.stable_restored_s):>11}  "
                f"{step.tool + ': ' if step.tool else ''}{step.why}"
            )
    lines.append("")
    for score in scores:
        lines.append(
            f"{score.trainee}: {score.right}/{len(score.steps)} right, drill {score.drill_verdict}, "
            f"MTTR {_seconds(score.mttr_s)}"
        )
    return "\n".join(lines)


def to_json(drill: str, scores: list[TraineeScore]) -> dict[str, Any]:
    return {
        "drill": drill,
        "generated_at": time.time(),
        "trainees": [{**asdict(s), "right": s.right} for s in scores],
    }
