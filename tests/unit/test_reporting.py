"""Drill results and their reports, without a pytest run: score, verdict, JUnit properties, HTML, JSON."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_mnops.reporting import html, junit
from pytest_mnops.reporting.narration import narrate
from pytest_mnops.reporting.results import DrillResult
from pytest_mnops.reporting.scorecard import overall_score, weakest
from pytest_mnops.reporting.summary import write_json
from pytest_mnops.timeline import DETECTED, INJECT, RECOVERED, REVERTED, STEADY_STATE, Event, Timeline

T0 = 1_700_000_000.0


def _result(
    name: str = "pod-failure",
    *,
    outcome: str = "passed",
    detected: float | None = 2.0,
    recovered: float | None = 30.0,
    **facts: Any,
) -> DrillResult:
    events = [Event(INJECT, T0 + 10, "inject")]
    if detected is not None:
        events.append(Event(DETECTED, T0 + 10 + detected))
    if recovered is not None:
        events.append(Event(RECOVERED, T0 + 10 + recovered))
    return DrillResult(
        name=name,
        nodeid=f"suites/drills/test_{name}.py::test_it",
        outcome=outcome,
        target="sandbox: drills/demo",
        mttd_s=detected,
        mttr_s=recovered,
        events=events,
        facts=facts,
        started=T0,
    )


# -- timeline --------------------------------------------------------------------------------------


def test_timeline_mttd_mttr_from_the_first_events() -> None:
    heard: list[Event] = []
    line = Timeline(narrate=heard.append, started=T0)
    assert line.mttd_s is None and line.mttr_s is None
    line.mark(STEADY_STATE, at=T0 + 1)
    line.mark(INJECT, "first", at=T0 + 10)
    line.mark(INJECT, "second", at=T0 + 20)
    line.mark(DETECTED, at=T0 + 13.5)
    line.mark(RECOVERED, at=T0 + 40)
    line.mark(RECOVERED, at=T0 + 60)
    assert line.mttd_s == 3.5 and line.mttr_s == 30.0
    assert [e.phase for e in heard] == [STEADY_STATE, INJECT, INJECT, DETECTED, RECOVERED, RECOVERED]
    assert line.offset(line.events[1]) == 10.0


def test_timeline_never_negative_and_defaults_to_now() -> None:
    line = Timeline()
    line.mark(INJECT, at=T0 + 10)
    line.mark(DETECTED, at=T0 + 5)  # measured clocks can disagree by a little
    assert line.mttd_s == 0.0
    before = time.time()
    event = line.mark(REVERTED)
    assert before <= event.at <= time.time()


# -- score and verdict -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "score", "verdict"),
    [
        ({}, 100.0, "proved"),  # detected, recovered, no budget
        ({"budget_s": 60}, 100.0, "proved"),  # within budget
        ({"budget_s": 20}, 80.0, "proved"),  # recovered after the budget
        ({"detected": None}, 100.0, "proved"),  # passing recovery proves detection
        ({"detected": None, "outcome": "failed"}, 60.0, "failed"),  # ...a failing one does not
        ({"recovered": None, "outcome": "failed"}, 40.0, "failed"),  # detected only
        ({"problems": ["REVERT FAILED: x"], "outcome": "failed"}, 40.0, "failed"),  # problems void recovery
        ({"detected": None, "recovered": None, "outcome": "failed"}, 0.0, "failed"),
        ({"outcome": "skipped"}, 0.0, "skipped"),
    ],
)
def test_score_and_verdict(kwargs: dict[str, Any], score: float, verdict: str) -> None:
    result = _result(**kwargs)
    assert (result.score, result.verdict) == (score, verdict)


def test_overall_score_ignores_skipped_and_weakest_is_lowest() -> None:
    results = [
        _result("pod-failure"),
        _result("high-latency", recovered=None, outcome="failed"),
        _result("secret-rotation", outcome="skipped"),
    ]
    assert overall_score(results) == 70.0
    assert weakest(results).name == "secret-rotation"  # skipped scores 0: it proved nothing
    assert overall_score([_result(outcome="skipped")]) == 0.0
    assert overall_score([]) == 0.0


def test_as_dict_is_json_ready() -> None:
    result = _result(
        detected=2.345, recovered=30.0049, alerts=["A"], rollback_s=1.5, scenario="pod-failure", plot={"series": []}
    )
    data = result.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert (data["mttd_s"], data["mttr_s"]) == (2.35, 30.0)
    assert data["alerts"] == ["A"] and data["rollback_s"] == 1.5 and data["scenario"] == "pod-failure"
    assert data["timeline"][0] == {"phase": "inject", "at": T0 + 10, "detail": "inject"}
    assert "plot" not in data


# -- JUnit properties ------------------------------------------------------------------------------


def test_junit_properties_skip_empty_values_and_join_lists() -> None:
    item = SimpleNamespace(user_properties=[("owner", "sre")])
    junit.add_properties(item, _result(alerts=["HighErrorRate", "PodCrashLooping"], rollback_s=4.2))  # type: ignore[arg-type]
    assert item.user_properties == [
        ("owner", "sre"),
        ("drill", "pod-failure"),
        ("mttd_s", 2.0),
        ("mttr_s", 30.0),
        ("rollback_s", 4.2),
        ("alerts", "HighErrorRate,PodCrashLooping"),
        ("verdict", "proved"),
        ("score", 100.0),
    ]


def test_junit_properties_of_a_bare_failure() -> None:
    item = SimpleNamespace(user_properties=[])
    junit.add_properties(item, _result(detected=None, recovered=None, outcome="failed"))  # type: ignore[arg-type]
    assert item.user_properties == [("drill", "pod-failure"), ("verdict", "failed"), ("score", 0.0)]


# -- HTML ------------------------------------------------------------------------------------------


def test_html_tables_escape_and_show_offsets() -> None:
    result = _result(
        alerts=["A<1>"],
        problems=["NOT RECOVERED: <probe> timed out"],
        journal=[
            {
                "name": "kill<pods>",
                "type": "action",
                "phase": "inject",
                "status": "succeeded",
                "duration_s": 0.5,
                "error": "",
            }
        ],
    )
    text = html._tables(result)
    assert "<tr><td>inject</td><td>+10.00s</td><td>inject</td></tr>" in text
    assert "<tr><td>detected</td><td>+12.00s</td><td></td></tr>" in text
    assert "<li>NOT RECOVERED: &lt;probe&gt; timed out</li>" in text
    assert "<td>kill&lt;pods&gt;</td><td>action</td><td>inject</td><td>succeeded</td><td>0.5s</td>" in text
    assert "<th>alerts</th><td>[&#x27;A&lt;1&gt;&#x27;]</td>" in text
    assert "<pods>" not in text and "<probe>" not in text


def test_html_extras_add_a_png_only_when_there_is_a_series() -> None:
    pytest.importorskip("pytest_html")
    report = SimpleNamespace(extras=[])
    html.add_extras(report, _result(plot={"query": "up", "series": []}))  # type: ignore[arg-type]
    assert [e["format_type"] for e in report.extras] == ["html"]
    report = SimpleNamespace()
    series = [
        {"labels": {"pod": "a"}, "points": [(T0 + 5, 1.0), (T0 + 15, 0.0), (T0 + 45, 1.0)]},
        {"labels": {}, "points": [(T0, 2.0), (T0 + 50, 2.0)]},
    ]
    html.add_extras(report, _result(plot={"query": "sum(up)", "series": series}))  # type: ignore[arg-type]
    fragment, image = report.extras
    assert fragment["format_type"] == "html"
    assert image["format_type"] == "image" and image["extension"] == "png"
    assert image["name"] == "pod-failure timeline"
    assert base64.b64decode(image["content"]).startswith(b"\x89PNG\r\n\x1a\n")


# -- JSON summary ----------------------------------------------------------------------------------


def test_write_json(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "mnops.json"
    validation = [("suites/validation/test_rules.py::test_ok", "monitoring", "repo", "passed")]
    write_json(path, [_result(), _result("canary-failure", recovered=None, outcome="failed")], validation)
    data = json.loads(path.read_text())
    assert data["resilience_score"] == 70.0
    assert [d["drill"] for d in data["drills"]] == ["pod-failure", "canary-failure"]
    assert data["validation"] == [
        {
            "test": "suites/validation/test_rules.py::test_ok",
            "category": "monitoring",
            "reads": "repo",
            "outcome": "passed",
        }
    ]
    assert data["generated_at"] > 0


def test_write_json_without_drills(tmp_path: Path) -> None:
    write_json(tmp_path / "s.json", [], [])
    assert json.loads((tmp_path / "s.json").read_text())["resilience_score"] is None


# -- narration -------------------------------------------------------------------------------------


def test_narration_plain_and_training() -> None:
    event = Event(INJECT, T0, "terminate-app-pods")
    clock = time.strftime("%H:%M:%S", time.localtime(T0))
    assert narrate("pod-failure", event, training=False) == (
        f"[mnops {clock}] pod-failure: fault injected (terminate-app-pods)"
    )
    trained = narrate("pod-failure", event, training=True).splitlines()
    assert trained[0] == f"[mnops {clock}] pod-failure: fault injected (terminate-app-pods)"
    assert "kubectl get rollout,analysisrun -w" in trained[1]
    assert narrate("x", Event(REVERTED, T0), training=True).endswith("fault reverted, nothing left behind")
    assert narrate("x", Event("custom-phase", T0), training=False).endswith("x: custom-phase")
