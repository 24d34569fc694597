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
    item.user_properties.append(("target", result.target))  # which app, so runs merge (`mnops report merge`)
    for name in FIGURES:
        value = values.get(name)
        if value is None or value == []:
            continue
        item.user_properties.append((name, ",".join(value) if isinstance(value, list) else value))


def add_suite_score(config: pytest.Config, score: float) -> None:
    """The run's resilience score as a ``<testsuite>`` property, next to each drill's own ``score``."""
    # pytest's LogXML, present when --junitxml is given; public only through the record_testsuite_property
    # fixture, which a controller running no tests itself (pytest-xdist) never gets.
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        xml.add_global_property("resilience_score", f"{score:.1f}")
