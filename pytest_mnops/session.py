"""Per-run state, kept in ``config.stash`` (never in module globals), and the report hooks' logic."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mnops import markers
from pytest_mnops.options import resolve
from pytest_mnops.workers import worker_id

if TYPE_CHECKING:
    from pytest_mnops.guards.ledger import Ledger
    from pytest_mnops.guards.policy import Guards
    from pytest_mnops.guards.stop import ManualStop
    from pytest_mnops.reporting.results import DrillResult
    from pytest_mnops.target import Target
    from pytest_mnops.timeline import Event

SESSION_KEY = pytest.StashKey["MnopsSession"]()
TIMELINE_KEY = pytest.StashKey["Timeline"]()
FACTS_KEY = pytest.StashKey[dict[str, Any]]()


def drill_facts(item: pytest.Item) -> dict[str, Any]:
    """Measurements a drill test adds for the reports (alerts seen, rollback time, plotted series...)."""
    if FACTS_KEY not in item.stash:
        item.stash[FACTS_KEY] = {}
    return item.stash[FACTS_KEY]


class MnopsSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[DrillResult] = []
        self.validation: list[tuple[str, str, str, str]] = []  # (nodeid, category, reads, outcome)
        self.gate_failure: str | None = None  # why --mnops-fail-under failed the run (terminal summary)

    @functools.cached_property
    def target(self) -> Target:
        from pytest_mnops.target import from_config

        return from_config(self.config)

    @functools.cached_property
    def ledger(self) -> Ledger:
        from pytest_mnops.guards.ledger import Ledger

        return Ledger(Path(resolve(self.config, "ledger")))

    @functools.cached_property
    def guards(self) -> Guards:
        from pytest_mnops.guards.policy import Guards

        return Guards(
            self.target,
            max_pods=resolve(self.config, "max-pods"),
            max_percent=resolve(self.config, "max-percent"),
            dry_run=resolve(self.config, "dry-run"),
            echo=self.say,
        )

    @functools.cached_property
    def manual_stop(self) -> ManualStop:
        from pytest_mnops.guards.stop import ManualStop

        return ManualStop(Path(resolve(self.config, "stop-file")))

    @property
    def training(self) -> bool:
        return bool(resolve(self.config, "training"))

    # -- terminal -------------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        """Write a line to the terminal now, even while output capture is on."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            print(line, file=sys.stderr, flush=True)
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)

    def progress(self, line: str) -> None:
        self.say(line)

    def narrator(self, item: pytest.Item) -> Callable[[Event], None]:
        from pytest_mnops.reporting.narration import narrate

        spec = markers.drill_spec(item)
        name = spec.name if spec else item.name
        return lambda event: self.say(narrate(name, event, training=self.training))

    # -- report hooks ---------------------------------------------------------------------------------
    # The figures ride on the report as plain data (``report.mnops``): under pytest-xdist the worker that ran
    # the drill builds them, and the controller, which writes the scorecard, JSON and gate, receives them
    # with the report. Without xdist the same two steps run in one process.
    def annotate_report(self, item: pytest.Item, report: pytest.TestReport) -> None:
        spec = markers.drill_spec(item)
        if spec is not None:
            from pytest_mnops.reporting import html, junit
            from pytest_mnops.reporting.results import DrillResult

            result = DrillResult.from_item(item, spec, report, self.target)
            junit.add_properties(item, result)
            if self.config.getoption("htmlpath", None):
                html.add_extras(report, result)  # the plot costs matplotlib (~40 MB): only for a report
            report.mnops = {"drill": result.to_wire()}
            return
        vspec = markers.validation_spec(item)
        if vspec is not None:
            item.user_properties.append(("validation_category", vspec.category))
            item.user_properties.append(("reads", vspec.reads))
            report.mnops = {"validation": {"category": vspec.category, "reads": vspec.reads}}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        figures = getattr(report, "mnops", None)
        if not figures:
            return
        if "drill" in figures:
            from pytest_mnops.reporting.results import DrillResult

            self.results.append(DrillResult.from_wire(figures["drill"]))
        else:
            check = figures["validation"]
            self.validation.append((report.nodeid, check["category"], check["reads"], report.outcome))

    def terminal_summary(self, reporter: pytest.TerminalReporter) -> None:
        if self.results or self.validation:
            from pytest_mnops.reporting.scorecard import write_scorecard

            write_scorecard(reporter, self.results, self.validation, fail_under=resolve(self.config, "fail-under"))
        if self.gate_failure:
            reporter.write_line(self.gate_failure, red=True, bold=True)

    def finish(self, session: pytest.Session) -> None:
        from pytest_mnops.reporting.scorecard import overall_score, weakest

        if worker_id(self.config):
            return  # the controller has every worker's results: it writes the summary and applies the gate
        if self.results:
            from pytest_mnops.reporting.junit import add_suite_score

            add_suite_score(self.config, overall_score(self.results))

        path = resolve(self.config, "report-json")
        if path:
            from pytest_mnops.reporting.summary import write_json

            write_json(Path(path), self.results, self.validation)
        fail_under = resolve(self.config, "fail-under")
        if fail_under is not None and self.results and overall_score(self.results) < fail_under:
            worst = weakest(self.results)
            self.gate_failure = (
                f"mnops: resilience score {overall_score(self.results):.0f} is below "
                f"--mnops-fail-under {fail_under:.0f}; weakest drill: {worst.name} "
                f"({worst.score:.0f})"
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            # The terminal summary (after this hook) shows it; written now it would follow the progress dots.
            if self.config.pluginmanager.get_plugin("terminalreporter") is None:
                self.say(self.gate_failure)
