"""Repository-level pytest configuration: run suites/ straight from a checkout.

An installed pytest-mnops loads through its ``pytest11`` entry point; a bare checkout (no ``pip install``)
loads the plugin from here instead, so ``pytest suites/`` works either way without loading it twice.
"""

from __future__ import annotations

from importlib.metadata import entry_points

if not any(ep.value == "pytest_mnops.plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["pytest_mnops.plugin"]
