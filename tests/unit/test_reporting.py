"""Drill results and their reports, without a pytest run: score, verdict, JUnit properties, HTML, JSON."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_mnops.reporting import figure, html, junit
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
        ("target", "sandbox: drills/demo"),
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
    assert item.user_properties == [
        ("drill", "pod-failure"),
        ("target", "sandbox: drills/demo"),
        ("verdict", "failed"),
        ("score", 0.0),
    ]


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
    text = html.tables(result)
    assert "<tr><td>inject</td><td>+10.00s</td><td>inject</td></tr>" in text
    assert "<tr><td>detected</td><td>+12.00s</td><td></td></tr>" in text
    assert "<li>NOT RECOVERED: &lt;probe&gt; timed out</li>" in text
    assert "<td>kill&lt;pods&gt;</td><td>action</td><td>inject</td><td>succeeded</td><td>0.5s</td>" in text
    assert "<th>alerts</th><td>A&lt;1&gt;</td>" in text
    assert "<pods>" not in text and "<probe>" not in text


def test_html_extras_are_the_tables_linking_to_the_game_day_card() -> None:
    pytest.importorskip("pytest_html")
    report = SimpleNamespace(extras=[])
    html.add_extras(report, _result(plot={"query": "up", "series": []}))  # type: ignore[arg-type]
    [fragment] = report.extras
    assert fragment["format_type"] == "html"
    assert "<a href='#mnops-drill-pod-failure'>" in fragment["content"]


def _figure_result(**facts: Any) -> DrillResult:
    result = _result("canary-failure", **facts)
    result.events = [
        Event(STEADY_STATE, T0 + 1),
        Event(INJECT, T0 + 10, "inject"),
        Event(DETECTED, T0 + 10.4),  # 0.4 s after the injection: their labels would overprint on one line
        Event(RECOVERED, T0 + 30),
        Event(REVERTED, T0 + 30.5),
    ]
    return result


SERIES = [
    {"labels": {"rollouts_pod_template_hash": "5d8f7c"}, "points": [(T0 + t, float(t > 10)) for t in range(45)]},
    {"labels": {"rollouts_pod_template_hash": "77fbb5"}, "points": [(T0 + t, 0.1) for t in range(45)]},
]
ALERTS = [
    {"alert": "HighErrorRate", "state": "pending", "points": [(T0 + t, "1") for t in range(12, 15)]},
    {"alert": "HighErrorRate", "state": "firing", "points": [(T0 + t, "1") for t in range(15, 25)]},
]


def test_figure_is_an_inline_svg_with_words_units_spans_and_alert_bands() -> None:
    plot = {"query": "sum(rate(x[5s]))", "title": "5xx rate by ReplicaSet", "unit": "5xx responses/s"}
    svg = figure.render_svg(_figure_result(plot={**plot, "series": SERIES, "alerts": ALERTS}))
    assert svg.startswith('<svg class="mnops-figure-svg"') and "<?xml" not in svg
    assert 'width="' not in svg.split(">", 1)[0]  # sized by the page's CSS
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    words = " ".join(texts)
    for expected in (
        "5xx rate by ReplicaSet",
        "5xx responses/s",
        "seconds since the fault was injected (t = 0)",
        "fault injected +0.0s",
        "detected +0.4s",
        "recovered +20.0s",
        "MTTD 2.0s",
        "MTTR 30.0s",
        "HighErrorRate",
        "ReplicaSet 5d8f7c",
        "alert firing",
    ):
        assert expected in words, (expected, texts)
    assert figure.FAULT_WINDOW_COLOUR in svg
    # no query in the figure: the page's caption carries it, whole
    assert "sum(rate" not in svg


def test_figure_without_data_says_why() -> None:
    svg = figure.render_svg(_figure_result(plot={"query": "up", "error": "Prometheus unreachable", "series": []}))
    assert "no data: Prometheus unreachable" in svg
    assert "no Prometheus alert was pending or firing" in svg


def test_phase_labels_never_overlap() -> None:
    events = [("steady-state", -9.0), ("inject", 0.0), ("detected", 0.4), ("recovered", 0.9), ("reverted", 20.0)]
    placed = figure.place_labels(events, -10.0, 21.0, 9.75)
    assert [p.level for p in placed] == [0, 0, 1, 2, 0]
    assert placed[-1].align == "right"  # at the right edge it grows to the left, inside the axes


def test_alert_intervals_split_on_gaps_and_resolve_after_firing() -> None:
    points = [(T0 + t, "1") for t in (*range(10, 14), *range(20, 23))]
    intervals = figure.alert_intervals([{"alert": "A", "state": "firing", "points": points}], T0 + 10, 30.0)
    assert intervals == [("A", [("firing", 0.0, 4.0), ("firing", 10.0, 13.0), ("resolved", 13.0, 30.0)])]


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
    assert "kubectl argo rollouts get rollout machine-native-ops --watch" in trained[1]
    assert narrate("x", Event(REVERTED, T0), training=True).endswith("fault reverted, nothing left behind")
    assert narrate("x", Event("custom-phase", T0), training=False).endswith("x: custom-phase")


# -- run history -----------------------------------------------------------------------------------


def test_history_baselines_are_this_targets_last_runs_without_training(tmp_path: Path) -> None:
    from pytest_mnops.reporting.history import History

    def write(target: str, started: float, mttr: float, *, training: bool = False) -> None:
        record = {
            "target": target,
            "started": started,
            "training": training,
            "drills": {"pod-failure": {"verdict": "proved", "mttd_s": 1.0, "mttr_s": mttr}},
        }
        (tmp_path / f"run-{started:.0f}.json").write_text(json.dumps(record))

    for i, mttr in enumerate((4.0, 5.0, 6.0)):
        write("sandbox/default/app", T0 + i, mttr)
    write("sandbox/default/app", T0 + 10, 99.0, training=True)
    write("staging/shop/app", T0 + 11, 1.0)
    (tmp_path / "run-cut-short.json").write_text('{"target": "sandbox/def')
    history = History(tmp_path, target="sandbox/default/app", runs=2, factor=1.5)
    assert [b.mttr_s for b in history.baselines("pod-failure")] == [5.0, 6.0]
    assert history.regression(_result(recovered=8.0)) is None  # 8.0 <= 1.5 x median 5.5
    assert history.regression(_result(recovered=9.0)) == "MTTR 9.0s is above 1.5 x the median 5.5s of the last 2 runs"
    assert history.regression(_result(recovered=9.0, outcome="skipped")) is None
    path = history.append([_result()], started=T0 + 20, finished=T0 + 30, score=100.0, training=False)
    assert json.loads(path.read_text())["drills"]["pod-failure"]["mttr_s"] == 30.0
    assert not list(tmp_path.glob("*.tmp"))
