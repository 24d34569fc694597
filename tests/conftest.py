"""Shared configuration of the project's own tests."""

from __future__ import annotations

import pytest

from pytest_mnops.options import OPTIONS

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    # A module with a sandbox of its own (tests/integration/conftest.py) must run whole on one worker: spread
    # over several, each would start that sandbox on the same ports.
    dist = config.getoption("dist", "no")
    if dist not in ("no", "loadscope"):
        raise pytest.UsageError(
            f"--dist {dist}: the project's tests run module by module. Fix: `make test`, or -n N --dist loadscope."
        )


# What a user's project would have: the project's own strictness, and the JUnit family CI gates on.
MNOPS_INI = """
[pytest]
addopts = --strict-markers --strict-config -p no:cacheprovider
filterwarnings = error
junit_family = xunit1
"""


@pytest.fixture
def mnops_pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """``pytester`` with a strict pytest.ini and no ``MNOPS_*`` variables leaking in from the outer run."""
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    monkeypatch.delenv("MNOPS_ASSETS_DIR", raising=False)
    pytester.makefile(".ini", pytest=MNOPS_INI)
    return pytester
