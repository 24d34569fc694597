"""What a drill and a validation check are, apart from pytest: the shipped names, the specs the markers carry."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The drills this project ships (scenarios/, suites/drills/). A team's own drill may have any slug name.
DRILLS = (
    "pod-failure",
    "high-latency",
    "canary-failure",
    "secret-rotation",
    "resource-exhaustion",
    "emergency-rollback",
    "monitoring-alerts",
)
CATEGORIES = ("infrastructure", "deployment", "rollouts", "monitoring", "automation", "documentation")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class DrillSpec:
    name: str
    budget_s: float | None = None
    human_step: bool = False
    heals_itself: bool = False
    stop_when: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidationSpec:
    category: str
    reads: str = "cluster"


def slug_problem(name: object) -> str | None:
    """Why ``name`` cannot name a drill, or None."""
    if isinstance(name, str) and SLUG.match(name):
        return None
    return (
        f"drill name {name!r} is not a slug. Fix: use lowercase letters, digits and single dashes, "
        "e.g. 'checkout-pod-kill'"
    )
