"""``$name`` / ``${name}`` placeholders in PromQL and alert labels (profiles, stop conditions, plots), filled the
way chaoslib fills an experiment's: ``string.Template``, a name without a value left as it is (``$1`` too)."""

from __future__ import annotations

from collections.abc import Mapping
from string import Template


def fill(text: str, values: Mapping[str, object]) -> str:
    return Template(text).safe_substitute({name: str(value) for name, value in values.items() if value is not None})
