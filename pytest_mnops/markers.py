"""The ``drill`` and ``validation`` markers: signatures, validation, and selection by ``--drill``."""

from __future__ import annotations

import pytest

from pytest_mnops.drills import CATEGORIES, DRILLS, DrillSpec, ValidationSpec, slug_problem
from pytest_mnops.errors import ConfigError

MARKERS = (
    "drill(name, *, budget_s=None, human_step=False, heals_itself=False, stop_when=()): a chaos drill; name "
    "is any slug (lowercase letters, digits, dashes), e.g. one of the built-in " + ", ".join(DRILLS) + "; "
    "heals_itself accepts an experiment without rollbacks whose faults the system heals by itself; stop_when "
    "lists PromQL stop conditions of this drill",
    "validation(category, *, reads='cluster'): a validation check; category is one of "
    + ", ".join(CATEGORIES)
    + "; reads is 'cluster' (the target) or 'repo' (this repository's assets)",
)


def _drill(
    name: str,
    *,
    budget_s: float | None = None,
    human_step: bool = False,
    heals_itself: bool = False,
    stop_when: str | list[str] | tuple[str, ...] = (),
) -> DrillSpec:
    problem = slug_problem(name)
    if problem:
        raise ValueError(problem)
    if budget_s is not None and budget_s <= 0:
        raise ValueError(f"budget_s must be positive, got {budget_s!r}")
    conditions = (stop_when,) if isinstance(stop_when, str) else tuple(stop_when)
    if not all(isinstance(c, str) and c.strip() for c in conditions):
        raise ValueError(f"stop_when must be PromQL strings, got {stop_when!r}")
    return DrillSpec(name, budget_s, human_step, heals_itself, conditions)


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
    problems = [f"--drill {name}: {problem}" for name in names if (problem := slug_problem(name))]
    if problems:
        raise pytest.UsageError("; ".join(problems))


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Validate every marker at collection and apply ``--drill NAME`` selection."""
    wanted = config.getoption("drill")
    errors = []
    selected, deselected = [], []
    collected: set[str] = set()
    for item in items:
        try:
            spec = drill_spec(item)
            validation_spec(item)
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        if spec is not None:
            collected.add(spec.name)
        if wanted and (spec is None or spec.name not in wanted):
            deselected.append(item)
        else:
            selected.append(item)
    if errors:
        raise pytest.UsageError("invalid pytest-mnops markers:\n  " + "\n  ".join(errors))
    unknown = [name for name in wanted if name not in collected]
    if unknown and items:
        # A typo must not pass as a run that proved nothing.
        raise pytest.UsageError(
            f"--drill {', '.join(unknown)}: no collected test has @pytest.mark.drill({unknown[0]!r}); drills "
            f"collected: {', '.join(sorted(collected)) or 'none'}. Fix: correct the name or the test paths."
        )
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
