"""pytest entry point (``pytest11: mnops``). It only wires: options, markers, fixtures, hooks.

Heavy imports (kubernetes, chaoslib, prometheus-api-client, matplotlib) happen inside fixtures and hooks
that need them, so ``pytest --help``, ``--collect-only`` and ``--fixtures`` stay fast without a cluster.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_mnops import markers, options
from pytest_mnops.errors import DryRunPlanned
from pytest_mnops.fixtures import (  # noqa: F401 - fixtures are registered by being in this module
    alerts,
    chaos,
    k8s,
    mnops_drill,
    mnops_profile,
    mnops_sandbox,
    mnops_target,
    prometheus,
    rollback,
    rollout,
    secret_rotator,
    timeline,
)
from pytest_mnops.guards import signals
from pytest_mnops.session import MnopsSession
from pytest_mnops.stash import SESSION_KEY

SIGTERM_KEY = pytest.StashKey[signals.Handler]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in markers.MARKERS:
        config.addinivalue_line("markers", line)
    markers.check_drill_names(config.getoption("drill"))
    options.check(config)
    session = config.stash[SESSION_KEY] = MnopsSession(config)
    # Registered as a plugin too: it collects the figures from pytest_runtest_logreport, which gets no config.
    config.pluginmanager.register(session, "mnops-session")
    # SIGTERM unwinds like Ctrl-C, so chaoslib's rollbacks and the ledger's reverts run before exit.
    config.stash[SIGTERM_KEY] = signals.install_sigterm_as_interrupt()
    # SIGUSR1 is the manual stop: every running drill reverts and none starts (see guards/stop.py).
    session.manual_stop.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    signals.restore(config.stash.get(SIGTERM_KEY, None))
    if SESSION_KEY in config.stash:
        config.stash[SESSION_KEY].manual_stop.uninstall()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markers.select(config, items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.skipped):
        item.config.stash[SESSION_KEY].annotate_report(item, report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    except DryRunPlanned as planned:  # the chaos runner knows no pytest: its finished dry run is a skip here
        pytest.skip(str(planned))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    config.stash[SESSION_KEY].terminal_summary(terminalreporter)


@pytest.hookimpl(optionalhook=True)  # pytest-html's hook, called from its sessionfinish (after ours)
def pytest_html_results_summary(
    prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
) -> None:
    session.config.stash[SESSION_KEY].html_summary(prefix)


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file: the suite's score goes into it
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[SESSION_KEY].finish(session)
