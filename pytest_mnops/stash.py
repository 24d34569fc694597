"""Where the plugin keeps its per-run and per-test state: ``config.stash`` and ``item.stash`` keys (never module
globals). A module of its own so the session and the reports read the same keys without importing each other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mnops.session import MnopsSession
    from pytest_mnops.timeline import Timeline

SESSION_KEY: pytest.StashKey[MnopsSession] = pytest.StashKey()
TIMELINE_KEY: pytest.StashKey[Timeline] = pytest.StashKey()
FACTS_KEY = pytest.StashKey[dict[str, Any]]()


def drill_facts(item: pytest.Item) -> dict[str, Any]:
    """Measurements a drill test adds for the reports (alerts seen, rollback time, plotted series...)."""
    if FACTS_KEY not in item.stash:
        item.stash[FACTS_KEY] = {}
    return item.stash[FACTS_KEY]
