"""Per-run state, kept in ``config.stash`` (never in module globals), and the report hooks' logic."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_mnops import markers
from pytest_mnops.options import is_set, resolve
from pytest_mnops.workers import worker_id, worker_namespace

if TYPE_CHECKING:
    from pytest_mnops.guards.ledger import Ledger
    from pytest_mnops.guards.policy import Guards
    from pytest_mnops.guards.signals import ManualStop
    from pytest_mnops.profile import DataWindow
    from pytest_mnops.reporting.history import History
    from pytest_mnops.reporting.results import DrillResult
    from pytest_mnops.target import Target
    from pytest_mnops.timeline import Event


class MnopsSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[DrillResult] = []
        self.validation: list[tuple[str, str, str, str]] = []  # (nodeid, category, reads, outcome)
        self.gate_failures: list[str] = []  # why a gate failed the run (terminal summary)
        self.started = time.time()

    @functools.cached_property
    def target(self) -> Target:
        from pytest_mnops.target import TARGET_OPTIONS, resolve_target

        worker = worker_id(self.config)
        namespace = resolve(self.config, "namespace")
        return resolve_target(
            {name: resolve(self.config, name) for name in TARGET_OPTIONS},
            github_url_given=self.config.getoption("mnops_github_url") is not None,
            namespace_given=is_set(self.config, "namespace"),
            worker=worker,
            worker_namespace=worker_namespace(self.config, namespace) if worker else None,
        )

    @functools.cached_property
    def data_window(self) -> DataWindow:
        from pytest_mnops.profile import DataWindow

        return DataWindow(self.target.time_scale)

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
        from pytest_mnops.guards.signals import ManualStop

        return ManualStop(Path(resolve(self.config, "stop-file")))

    @property
    def training(self) -> bool:
        return bool(resolve(self.config, "training"))

    @property
    def target_labels(self) -> dict[str, str]:
        """The target as the run history and the metrics name it: a pytest-xdist worker's own namespace is
        its copy of the app, so the namespace the user gave is used."""
        return {
            "context": self.target.context or "current-context",
            "namespace": resolve(self.config, "namespace"),
            "app": self.target.app,
        }

    @functools.cached_property
    def history(self) -> History:
        from pytest_mnops.reporting.history import History

        return History(
            Path(resolve(self.config, "history-dir")),
            target="/".join(self.target_labels.values()),
            runs=resolve(self.config, "history-runs"),
            factor=resolve(self.config, "regression-factor"),
        )

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
        app = self.target.app
        return lambda event: self.say(narrate(name, event, training=self.training, app=app))

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
            # A trainee's pace is not the system's: training runs are neither judged nor baselines.
            result.facts["regression"] = None if self.training else self.history.regression(result)
            junit.add_properties(item, result)
            if self.config.getoption("htmlpath", None):
                from pytest_mnops.reporting import figure

                # The figure costs matplotlib (~40 MB): only for a report. It travels; its series do not.
                if result.events:
                    result.facts["figure_svg"] = figure.render_svg(result)
                    result.facts["plot_query"] = (result.facts.get("plot") or {}).get("query")
                html.add_extras(report, result)
            # Plugin data rides on the report as an extra attribute (pytest-xdist sends it with the report).
            vars(report)["mnops"] = {"drill": result.to_wire()}
            return
        vspec = markers.validation_spec(item)
        if vspec is not None:
            item.user_properties.append(("validation_category", vspec.category))
            item.user_properties.append(("reads", vspec.reads))
            vars(report)["mnops"] = {"validation": {"category": vspec.category, "reads": vspec.reads}}

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
        for failure in self.gate_failures:
            reporter.write_line(failure, red=True, bold=True)

    def html_summary(self, prefix: list[str]) -> None:
        """The game-day summary on top of pytest-html's (called after :meth:`finish`: the gates are known)."""
        if not (self.results or self.validation):
            return
        from pytest_mnops.reporting import gameday
        from pytest_mnops.reporting.scorecard import overall_score

        day = gameday.GameDay(
            results=self.results,
            validation=self.validation,
            target=self.target,
            started=self.started,
            finished=time.time(),
            score=overall_score(self.results),
            gates=self._gates(),
            trends={r.name: self.history.baselines(r.name) for r in self.results},
            history_dir=str(self.history.directory),
        )
        prefix.append(gameday.render(day))

    def _gates(self) -> list[tuple[str, str | None]]:
        """(gate, why it failed or None) for each gate this run has; the why names the gate too."""
        from pytest_mnops.reporting.scorecard import overall_score, weakest

        gates: list[tuple[str, str | None]] = []
        fail_under = resolve(self.config, "fail-under")
        if fail_under is not None and self.results:
            score = overall_score(self.results)
            worst = weakest(self.results)
            gates.append(
                (
                    f"--mnops-fail-under {fail_under:.0f}",
                    f"resilience score {score:.0f} is below --mnops-fail-under {fail_under:.0f}; "
                    f"weakest drill: {worst.name} ({worst.score:.0f})"
                    if score < fail_under
                    else None,
                )
            )
        if resolve(self.config, "fail-on-regression"):
            regressed = [f"{r.name} ({r.facts['regression']})" for r in self.results if r.facts.get("regression")]
            why = f"--mnops-fail-on-regression: regression in {'; '.join(regressed)}" if regressed else None
            gates.append(("--mnops-fail-on-regression", why))
        return gates

    def finish(self, session: pytest.Session) -> None:
        from pytest_mnops.reporting.scorecard import overall_score

        if worker_id(self.config):
            return  # the controller has every worker's results: it writes the summary and applies the gate
        finished = time.time()
        if self.results:
            from pytest_mnops.reporting.junit import add_suite_score

            add_suite_score(self.config, overall_score(self.results))

        path = resolve(self.config, "report-json")
        if path:
            from pytest_mnops.reporting.summary import write_json

            write_json(Path(path), self.results, self.validation)
        self.gate_failures = [f"mnops: {why}" for _, why in self._gates() if why]
        # A drill refused by a guard, or skipped, never started: it has no figures for history or metrics.
        ran = [r for r in self.results if r.verdict != "skipped" and r.events]
        if ran:
            self._publish(ran, finished)
        if self.gate_failures:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            # The terminal summary (after this hook) shows them; written now they would follow the progress dots.
            if self.config.pluginmanager.get_plugin("terminalreporter") is None:
                for failure in self.gate_failures:
                    self.say(failure)

    def _publish(self, ran: list[DrillResult], finished: float) -> None:
        """The run's results into the history and, when asked, out as Prometheus metrics."""
        from pytest_mnops.errors import MnopsError
        from pytest_mnops.reporting.scorecard import overall_score

        score = overall_score(ran)
        pushgateway, textfile = self.target.pushgateway_url, resolve(self.config, "metrics-textfile")
        try:
            self.history.append(ran, started=self.started, finished=finished, score=score, training=self.training)
            if pushgateway or textfile:
                from pytest_mnops.reporting import metrics

                regressions = {r.name: r.facts["regression"] for r in ran if r.facts.get("regression")}
                registry = metrics.registry(
                    ran, score=score, target=self.target_labels, regressions=regressions, finished=finished
                )
                if textfile:
                    metrics.write_textfile(Path(textfile), registry)
                if pushgateway:
                    metrics.push(pushgateway, registry, self.target_labels)
        except MnopsError as exc:
            # Results that were asked for and not delivered fail the run, saying why; they never vanish.
            self.gate_failures.append(f"mnops: {exc}")
