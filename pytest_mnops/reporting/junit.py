"""Drill figures as JUnit ``<properties>``.

Added to ``item.user_properties`` during the call-phase report, so pytest's junitxml writes them with the
test case (it reads them from the teardown report). The project runs ``junit_family = xunit1``, where
testcase properties are part of the schema; tests/ parse the XML to prove they are there.
"""

from __future__ import annotations

import pytest

from pytest_mnops.reporting.results import FIGURES, DrillResult


def add_properties(item: pytest.Item, result: DrillResult) -> None:
    values = result.as_dict()
    item.user_properties.append(("drill", result.name))
    for name in FIGURES:
        value = values.get(name)
        if value is None or value == []:
            continue
        item.user_properties.append((name, ",".join(value) if isinstance(value, list) else value))
