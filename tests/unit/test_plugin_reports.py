"""Drill reports from a real pytest run of fake drills: JUnit properties, HTML extras, JSON, scorecard."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

# Fake drills: the timeline is marked with explicit times, the facts are what a ChaosRunner would record.
DRILLS = """
import pytest
from pytest_mnops.stash import drill_facts

T0 = 1_700_000_000.0
PLOT = {"query": 'sum(kube_pod_status_ready{namespace="drills",condition="true"})',
        "series": [{"labels": {"namespace": "drills"},
                    "points": [(T0, 3.0), (T0 + 10, 3.0), (T0 + 12, 2.0), (T0 + 40, 3.0), (T0 + 50, 3.0)]}]}


@pytest.mark.drill("pod-failure", budget_s=300)
def test_pod_failure(timeline, request):
    timeline.started = T0
    timeline.mark("steady-state", "hypothesis met before injection", at=T0 + 1)
    timeline.mark("inject", "terminate-app-pods", at=T0 + 10)
    timeline.mark("reverted", "rollbacks succeeded", at=T0 + 45)  # out of order: reports sort by time
    timeline.mark("detected", "replacement <pod> seen", at=T0 + 12.5)
    timeline.mark("recovered", "watch-replacements", at=T0 + 40)
    drill_facts(request.node).update(scenario="pod-failure", alerts=["PodRestarting", "HighErrorRate"],
                                     rollback_s=3.5, budget_s=300, plot=PLOT)


@pytest.mark.drill("high-latency")
def test_high_latency(timeline, request):
    timeline.started = T0
    timeline.mark("inject", "inject-latency", at=T0 + 5)
    timeline.mark("detected", "p95-alert-firing", at=T0 + 9)
    drill_facts(request.node).update(scenario="high-latency", alerts=["HighLatencyP95"])
    raise AssertionError("drill high-latency did not prove detection and recovery: NOT RECOVERED")


@pytest.mark.validation("monitoring", reads="repo")
def test_rules_are_valid():
    pass
"""
PROVED_ONLY = DRILLS.split('@pytest.mark.drill("high-latency")')[0]
SLOW = """
import pytest
from pytest_mnops.stash import drill_facts

@pytest.mark.drill("canary-failure", budget_s=300)
def test_slow_canary(timeline, request):
    timeline.mark("inject", at=1000.0)
    timeline.mark("detected", at=1030.0)
    timeline.mark("recovered", at=1400.0)  # 400 s: over its budget, though the test passes
    drill_facts(request.node)["budget_s"] = 300
"""
REPORTS = ("--junitxml=junit.xml", "--html=report.html", "--self-contained-html", "--mnops-report-json=summary.json")


@pytest.fixture(autouse=True, scope="module")
def _plot_stack_imported_once() -> None:
    """pytester restores ``sys.modules`` after each in-process run, and numpy cannot be imported twice in one
    process: import the plot stack here, outside the inner runs, so they all share it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def _literal(text: str) -> str:
    return text.replace("[", "[[]")


def _testcases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in ET.parse(path).getroot().iter("testcase")}


def _properties(case: ET.Element) -> list[tuple[str, str]]:
    return [(p.get("name", ""), p.get("value", "")) for p in case.iter("property")]


@pytest.fixture
def reported(mnops_pytester: pytest.Pytester) -> tuple[pytest.Pytester, pytest.RunResult]:
    mnops_pytester.makepyfile(test_drills=DRILLS)
    result = mnops_pytester.runpytest(*REPORTS)
    result.assert_outcomes(passed=2, failed=1)
    return mnops_pytester, result


def test_junit_xunit1_testcase_properties(reported: tuple[pytest.Pytester, pytest.RunResult]) -> None:
    pytester, _ = reported
    cases = _testcases(pytester.path / "junit.xml")
    assert _properties(cases["test_pod_failure"]) == [
        ("drill", "pod-failure"),
        ("target", "current context: default/machine-native-ops"),
        ("scenario", "pod-failure"),
        ("mttd_s", "2.5"),
        ("mttr_s", "30.0"),
        ("rollback_s", "3.5"),
        ("budget_s", "300"),
        ("alerts", "PodRestarting,HighErrorRate"),
        ("verdict", "proved"),
        ("score", "100.0"),
    ]
    failed = cases["test_high_latency"]
    assert failed.find("failure") is not None
    assert dict(_properties(failed)) == {
        "drill": "high-latency",
        "target": "current context: default/machine-native-ops",
        "scenario": "high-latency",
        "mttd_s": "4.0",
        "alerts": "HighLatencyP95",
        "verdict": "failed",
        "score": "40.0",
    }
    assert _properties(cases["test_rules_are_valid"]) == [("validation_category", "monitoring"), ("reads", "repo")]
    # xunit1 keeps file and line on the testcase
    assert cases["test_pod_failure"].get("file") == "test_drills.py"
    # ... and the run's overall score is the suite's property
    suite = ET.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and _properties(suite.find("properties")) == [("resilience_score", "70.0")]


def test_junit_under_xunit2(mnops_pytester: pytest.Pytester) -> None:
    """What CI gets with pytest's default family, xunit2.

    pytest still writes the ``<properties>`` of each testcase (the plugin appends to ``item.user_properties``
    directly, so there is no ``record_property`` warning, which ``filterwarnings = error`` would turn into a
    failure), but the xunit2 schema has no testcase properties: a consumer that validates against the
    schema may reject or drop them. xunit2 also drops ``file``/``line``. Hence ``junit_family = xunit1``.
    """
    mnops_pytester.makepyfile(test_drills=PROVED_ONLY)
    result = mnops_pytester.runpytest("--junitxml=junit.xml", "-o", "junit_family=xunit2")
    result.assert_outcomes(passed=1)
    case = _testcases(mnops_pytester.path / "junit.xml")["test_pod_failure"]
    properties = dict(_properties(case))
    assert properties["drill"] == "pod-failure" and properties["verdict"] == "proved"
    assert properties["mttd_s"] == "2.5" and properties["score"] == "100.0"
    assert case.get("file") is None and case.get("line") is None


class _Tables(HTMLParser):
    """Rows of every ``<table class=...>`` in an HTML fragment, by class."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("class") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_results(path: Path) -> dict[str, Any]:
    """pytest-html 4 keeps every result as JSON in the ``data-jsonblob`` attribute of the report page."""
    match = re.search(r'data-jsonblob="([^"]*)"', path.read_text())
    assert match, "no data-jsonblob in the pytest-html report"
    return json.loads(html.unescape(match.group(1)))["tests"]


def test_html_report_rows_have_phase_tables(reported: tuple[pytest.Pytester, pytest.RunResult]) -> None:
    pytester, _ = reported
    tests = _html_results(pytester.path / "report.html")
    [result] = tests["test_drills.py::test_pod_failure"]
    fragments = [e for e in result["extras"] if e["format_type"] == "html"]
    assert len(fragments) == len(result["extras"]) == 1  # the figure is on the game-day card
    parser = _Tables()
    parser.feed(fragments[0]["content"])
    assert parser.tables["mnops-phases"] == [
        ["phase", "t", "detail"],
        ["steady-state", "+1.00s", "hypothesis met before injection"],
        ["inject", "+10.00s", "terminate-app-pods"],
        ["detected", "+12.50s", "replacement <pod> seen"],  # escaped in the HTML, text again once parsed
        ["recovered", "+40.00s", "watch-replacements"],
        ["reverted", "+45.00s", "rollbacks succeeded"],
    ]
    assert "replacement &lt;pod&gt; seen" in fragments[0]["content"]
    figures = dict(parser.tables["mnops-figures"])
    assert figures == {
        "scenario": "pod-failure",
        "verdict": "proved",
        "score": "100.0",
        "mttd_s": "2.5",
        "mttr_s": "30.0",
        "rollback_s": "3.5",
        "budget_s": "300",
        "alerts": "PodRestarting; HighErrorRate",
    }
    [failed] = tests["test_drills.py::test_high_latency"]
    assert [e["format_type"] for e in failed["extras"]] == ["html"]
    assert "Drill high-latency" in failed["extras"][0]["content"]
    # a validation check gets no drill extras
    [validation] = tests["test_drills.py::test_rules_are_valid"]
    assert validation["extras"] == []


def test_json_summary(reported: tuple[pytest.Pytester, pytest.RunResult]) -> None:
    pytester, _ = reported
    summary = json.loads((pytester.path / "summary.json").read_text())
    assert summary["resilience_score"] == 70.0
    proved, failed = summary["drills"]
    assert proved["drill"] == "pod-failure" and proved["test"] == "test_drills.py::test_pod_failure"
    assert (proved["verdict"], proved["score"], proved["mttd_s"], proved["mttr_s"]) == ("proved", 100.0, 2.5, 30.0)
    assert proved["alerts"] == ["PodRestarting", "HighErrorRate"] and proved["rollback_s"] == 3.5
    assert [e["phase"] for e in proved["timeline"]] == ["steady-state", "inject", "detected", "recovered", "reverted"]
    assert proved["timeline"][1] == {"phase": "inject", "at": 1_700_000_010.0, "detail": "terminate-app-pods"}
    assert (failed["drill"], failed["verdict"], failed["score"], failed["mttr_s"]) == (
        "high-latency",
        "failed",
        40.0,
        None,
    )
    assert summary["validation"] == [
        {"test": "test_drills.py::test_rules_are_valid", "category": "monitoring", "reads": "repo", "outcome": "passed"}
    ]
    assert "plot" not in proved  # series stay in the HTML report


def test_terminal_scorecard(reported: tuple[pytest.Pytester, pytest.RunResult]) -> None:
    _, result = reported
    result.stdout.fnmatch_lines(
        [
            _literal("[mnops *] pod-failure: fault injected (terminate-app-pods)"),
            _literal("[mnops *] pod-failure: the system recovered (watch-replacements)"),
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= mnops drill scorecard =*",
            "drill *verdict *MTTD *MTTR *abort *rollback *trainee *score  alerts",
            "pod-failure *proved *2.5s *30.0s *- *3.5s *- *100  PodRestarting,HighErrorRate",
            "high-latency *failed *4.0s *- *- *- *- *40  HighLatencyP95",
            "resilience score: 70/100 over 2 drills",
            "*- mnops validation -*",
            "monitoring (repo) *1 passed",
        ]
    )


def test_fail_under_with_a_failing_drill_names_the_weakest(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_drills=DRILLS)
    result = mnops_pytester.runpytest("--mnops-fail-under", "90", "--mnops-report-json=summary.json")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "resilience score: 70/100 over 2 drills (gate: --mnops-fail-under 90)",
            "mnops: resilience score 70 is below --mnops-fail-under 90; weakest drill: high-latency (40)",
        ]
    )
    assert json.loads((mnops_pytester.path / "summary.json").read_text())["resilience_score"] == 70.0


def test_fail_under_fails_a_run_whose_tests_all_passed(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_slow=SLOW)
    result = mnops_pytester.runpytest("--mnops-fail-under=90")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "canary-failure *proved *30.0s *400.0s *- *- *- *80  ",
            "mnops: resilience score 80 is below --mnops-fail-under 90; weakest drill: canary-failure (80)",
        ]
    )


@pytest.mark.parametrize("gate", [("--mnops-fail-under=80",), ()])
def test_fail_under_met_or_unset_passes(mnops_pytester: pytest.Pytester, gate: tuple[str, ...]) -> None:
    mnops_pytester.makepyfile(test_slow=SLOW)
    result = mnops_pytester.runpytest(*gate)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "is below --mnops-fail-under" not in result.stdout.str()


def test_fail_under_from_the_environment(mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNOPS_FAIL_UNDER", "85")
    mnops_pytester.makepyfile(test_slow=SLOW)
    result = mnops_pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["mnops: resilience score 80 is below --mnops-fail-under 85; weakest *"])


def test_skipped_drill_is_reported_but_not_scored(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(
        test_drills=PROVED_ONLY
        + """

@pytest.mark.drill("secret-rotation")
def test_secret_rotation(timeline):
    pytest.skip("no GitHub token")
"""
    )
    result = mnops_pytester.runpytest("--mnops-fail-under=90", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["secret-rotation *skipped *- *- *- *- *- *0  ", "resilience score: 100/100 *"])
    case = _testcases(mnops_pytester.path / "junit.xml")["test_secret_rotation"]
    assert dict(_properties(case)) == {
        "drill": "secret-rotation",
        "target": "current context: default/machine-native-ops",
        "verdict": "skipped",
        "score": "0.0",
    }


def test_no_scorecard_without_drills_or_checks(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = mnops_pytester.runpytest("--mnops-fail-under=90", "--mnops-report-json=out/summary.json")
    assert result.ret == pytest.ExitCode.OK
    assert "mnops drill scorecard" not in result.stdout.str()
    summary = json.loads((mnops_pytester.path / "out" / "summary.json").read_text())
    assert summary["drills"] == [] and summary["resilience_score"] is None


def test_fail_under_applies_under_xdist(mnops_pytester: pytest.Pytester) -> None:
    """The worker runs the drill; the controller prints the scorecard, writes the JSON and applies the gate."""
    mnops_pytester.makepyfile(test_slow=SLOW)
    result = mnops_pytester.runpytest(
        "-n", "2", "--mnops-fail-under=90", "--junitxml=junit.xml", "--mnops-report-json=summary.json"
    )
    result.assert_outcomes(passed=1)
    case = _testcases(mnops_pytester.path / "junit.xml")["test_slow_canary"]
    assert dict(_properties(case))["score"] == "80.0"
    suite = ET.parse(mnops_pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and ("resilience_score", "80.0") in _properties(suite)
    summary = json.loads((mnops_pytester.path / "summary.json").read_text())
    assert [(d["drill"], d["score"]) for d in summary["drills"]] == [("canary-failure", 80.0)]
    result.stdout.fnmatch_lines(
        ["*mnops drill scorecard*", "canary-failure*proved*80*", "*weakest drill: canary-failure (80)*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


# -- the game-day summary, run history and metrics ------------------------------------------------------


def test_game_day_summary_tops_the_html_report(reported: tuple[pytest.Pytester, pytest.RunResult]) -> None:
    pytester, _ = reported
    page = (pytester.path / "report.html").read_text()
    section = page[page.index("<section class='mnops-gameday'") : page.index("</section>")]
    assert page.index("mnops-gameday") < page.index('id="results-table"')
    parser = _Tables()
    parser.feed(section)
    head, proved, failed = parser.tables["mnops-drills"]
    assert head[:10] == [
        "drill",
        "verdict",
        "MTTD",
        "MTTR",
        "time to abort",
        "rollback",
        "budget",
        "score",
        "alerts seen",
        "proof of delivery",
    ]
    assert proved[:10] == [
        "pod-failure",
        "proved",
        "2.5 s",
        "30.0 s",
        "—",
        "3.5 s",
        "300.0 s",
        "100",
        "PodRestarting, HighErrorRate",
        "—",
    ]
    assert proved[10:] == ["first run", "—"]  # no history yet: no trend, no regression
    assert failed[:4] == ["high-latency", "failed", "4.0 s", "—"]
    assert parser.tables["mnops-validation"] == [
        ["category", "reads", "passed", "failed", "skipped"],
        ["monitoring", "repo", "1", "0", "0"],
    ]
    for drill in ("pod-failure", "high-latency"):
        assert f"<a href='#mnops-drill-{drill}'>" in section
        card = section[section.index(f"id='mnops-drill-{drill}'") :]
        assert card.index('<svg class="mnops-figure-svg"') < card.index("</figure>")
    assert "Query: <code>sum(kube_pod_status_ready{namespace=&quot;drills&quot;,condition=&quot;true&quot;})" in section
    for fact in ("namespace</span>default", "app</span>machine-native-ops", "sandbox</span>no", "resilience score 70"):
        assert fact in section, fact


TIMED = """
import os
import pytest
from pytest_mnops.stash import drill_facts

@pytest.mark.drill("pod-failure")
def test_pod_failure(timeline):
    timeline.mark("inject", at=1000.0)
    timeline.mark("detected", at=1001.0)
    if os.environ["RECOVERY_S"] == "never":
        raise AssertionError("NOT RECOVERED")
    timeline.mark("recovered", at=1000.0 + float(os.environ["RECOVERY_S"]))
"""


def _timed_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, recovery: str, *args: str):
    monkeypatch.setenv("RECOVERY_S", recovery)
    return pytester.runpytest("--mnops-history-dir=history", "--junitxml=junit.xml", *args)


def test_regression_is_flagged_in_terminal_junit_and_html_and_gates(
    mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    mnops_pytester.makepyfile(test_timed=TIMED)
    first = _timed_run(mnops_pytester, monkeypatch, "10", "--mnops-fail-on-regression")
    assert first.ret == pytest.ExitCode.OK and "REGRESSION" not in first.stdout.str()
    [record] = (mnops_pytester.path / "history").glob("run-*.json")
    assert json.loads(record.read_text())["drills"]["pod-failure"]["mttr_s"] == 10.0

    slower = _timed_run(mnops_pytester, monkeypatch, "30", "--mnops-fail-on-regression", "--html=report.html")
    slower.assert_outcomes(passed=1)
    assert slower.ret == pytest.ExitCode.TESTS_FAILED
    why = "MTTR 30.0s is above 1.5 x the median 10.0s of the last 1 run"
    slower.stdout.fnmatch_lines(
        [
            _literal(f"REGRESSION pod-failure: {why}"),
            _literal(f"mnops: --mnops-fail-on-regression: regression in pod-failure ({why})"),
        ]
    )
    assert dict(_properties(_testcases(mnops_pytester.path / "junit.xml")["test_pod_failure"]))["regression"] == why
    page = (mnops_pytester.path / "report.html").read_text()
    assert f"<span class='mnops-regression'>REGRESSION</span> {why}" in page
    assert "<title>last 2 runs, oldest first. MTTD: 1.0s, 1.0s; MTTR: 10.0s, 30.0s</title>" in page

    # within 1.5 x the median of (10, 30): no regression; without the gate a regression only reports
    assert _timed_run(mnops_pytester, monkeypatch, "25", "--mnops-fail-on-regression").ret == pytest.ExitCode.OK
    failing = _timed_run(mnops_pytester, monkeypatch, "never")
    assert failing.ret == pytest.ExitCode.TESTS_FAILED  # the drill's own failure, not a gate
    failing.stdout.fnmatch_lines(["REGRESSION pod-failure: failed now, proved in the previous run (*)"])
    assert "--mnops-fail-on-regression" not in failing.stdout.str()


def test_history_compares_only_the_same_target(
    mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    mnops_pytester.makepyfile(test_timed=TIMED)
    assert _timed_run(mnops_pytester, monkeypatch, "10", "--mnops-namespace=staging").ret == pytest.ExitCode.OK
    other = _timed_run(mnops_pytester, monkeypatch, "60", "--mnops-fail-on-regression", "--mnops-namespace=shop")
    assert other.ret == pytest.ExitCode.OK, other.stdout.str()


def test_metrics_textfile_for_node_exporter(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_drills=DRILLS)
    result = mnops_pytester.runpytest("--mnops-metrics-textfile=textfile/mnops.prom")
    result.assert_outcomes(passed=2, failed=1)
    from prometheus_client.parser import text_string_to_metric_families

    text = (mnops_pytester.path / "textfile" / "mnops.prom").read_text()
    target = {"context": "current-context", "namespace": "default", "app": "machine-native-ops"}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted({**target, **labels}.items()))))

    assert value("mnops_drill_mttr_seconds", drill="pod-failure") == 30.0
    assert value("mnops_drill_mttr_seconds", drill="high-latency") is None  # never recovered: no value
    assert value("mnops_drill_mttd_seconds", drill="high-latency") == 4.0
    assert value("mnops_drill_score", drill="high-latency") == 40.0
    assert value("mnops_drill_verdict", drill="high-latency", verdict="failed") == 1.0
    assert value("mnops_drill_verdict", drill="high-latency", verdict="proved") == 0.0
    assert value("mnops_drill_regression", drill="pod-failure") == 0.0
    assert value("mnops_resilience_score") == 70.0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--mnops-metrics-textfile=mnops.txt", "node-exporter's textfile collector reads only *.prom files"),
        ("--mnops-pushgateway-url=http://127.0.0.1:9", "could not push the drill metrics to the Pushgateway at"),
    ],
)
def test_undeliverable_metrics_fail_the_run_saying_why(
    mnops_pytester: pytest.Pytester, option: str, message: str
) -> None:
    mnops_pytester.makepyfile(test_drills=PROVED_ONLY)
    result = mnops_pytester.runpytest(option)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert message in result.stdout.str()


def test_regression_under_xdist_worker_judges_controller_records(
    mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    mnops_pytester.makepyfile(test_timed=TIMED)
    assert _timed_run(mnops_pytester, monkeypatch, "10", "-n", "2").ret == pytest.ExitCode.OK
    slower = _timed_run(mnops_pytester, monkeypatch, "30", "-n", "2", "--mnops-fail-on-regression", "--html=r.html")
    assert slower.ret == pytest.ExitCode.TESTS_FAILED
    slower.stdout.fnmatch_lines(["*regression in pod-failure (MTTR 30.0s is above 1.5 x the median 10.0s*"])
    page = (mnops_pytester.path / "r.html").read_text()
    # the trend is the earlier run and this one, once each, though the controller read the history after writing
    assert "<title>last 2 runs, oldest first. MTTD: 1.0s, 1.0s; MTTR: 10.0s, 30.0s</title>" in page
    assert len(list((mnops_pytester.path / "history").glob("run-*.json"))) == 2
