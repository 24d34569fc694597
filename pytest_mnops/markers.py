"""The ``drill`` and ``validation`` markers: signatures, validation, and selection by ``--drill``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_mnops.errors import ConfigError

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
MARKERS = (
    "drill(name, *, budget_s=None, human_step=False): a chaos drill; name is one of " + ", ".join(DRILLS),
    "validation(category, *, reads='cluster'): a validation check; category is one of "
    + ", ".join(CATEGORIES)
    + "; reads is 'cluster' (the target) or 'repo' (this repository's assets)",
)


@dataclass(frozen=True)
class DrillSpec:
    name: str
    budget_s: float | None = None
    human_step: bool = False


@dataclass(frozen=True)
class ValidationSpec:
    category: str
    reads: str = "cluster"


def _drill(name: str, *, budget_s: float | None = None, human_step: bool = False) -> DrillSpec:
    if name not in DRILLS:
        raise ValueError(f"unknown drill {name!r}; valid drills: {', '.join(DRILLS)}")
    if budget_s is not None and budget_s <= 0:
        raise ValueError(f"budget_s must be positive, got {budget_s!r}")
    return DrillSpec(name, budget_s, human_step)


def _validation(category: str, *, reads: str = "cluster") -> ValidationSpec:
    if category not in CATEGORIES:
        raise ValueError(f"unknown validation category {category!r}; valid categories: {', '.join(CATEGORIES)}")
    if reads not in ("cluster", "repo"):
        raise ValueError(f"reads must be 'cluster' or 'repo', got {reads!r}")
    return ValidationSpec(category, reads)


def drill_spec(item: pytest.Item) -> DrillSpec | None:
    marker = item.get_closest_marker("drill")
    return None if marker is None else _parse(item, marker, _drill)


def validation_spec(item: pytest.Item) -> ValidationSpec | None:
    marker = item.get_closest_marker("validation")
    return None if marker is None else _parse(item, marker, _validation)


def _parse(item: pytest.Item, marker: pytest.Mark, signature):  # type: ignore[no-untyped-def]
    try:
        return signature(*marker.args, **marker.kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{item.nodeid}: @pytest.mark.{marker.name}{_args(marker)}: {exc}") from None


def _args(marker: pytest.Mark) -> str:
    parts = [repr(a) for a in marker.args] + [f"{k}={v!r}" for k, v in marker.kwargs.items()]
    return f"({', '.join(parts)})"


def check_drill_names(names: list[str]) -> None:
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        raise pytest.UsageError(f"--drill {', '.join(unknown)}: unknown drill; valid drills: {', '.join(DRILLS)}")


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Validate every marker at collection and apply ``--drill NAME`` selection."""
    wanted = config.getoption("drill")
    errors = []
    selected, deselected = [], []
    for item in items:
        try:
            spec = drill_spec(item)
            validation_spec(item)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        if wanted and (spec is None or spec.name not in wanted):
            deselected.append(item)
        else:
            selected.append(item)
    if errors:
        raise pytest.UsageError("invalid pytest-mnops markers:\n  " + "\n  ".join(errors))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
