"""timescale: durations, PromQL range selectors and whole YAML trees scaled from production to the sandbox."""

from __future__ import annotations

import copy

import pytest

from pytest_mnops.timescale import (
    MIN_RANGE_S,
    format_seconds,
    scale,
    scale_promql,
    scale_tree,
    seconds,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", 30.0),
        ("1m", 60.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("1.5m", 90.0),
        ("0s", 0.0),
    ],
)
def test_seconds_parses_prometheus_durations(text: str, expected: float) -> None:
    assert seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "5min", "-5m", "5m ", "1m30", "abc"])
def test_seconds_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        seconds(text)


@pytest.mark.parametrize(
    ("value", "expected"), [(30.0, "30s"), (1.0, "1s"), (0.5, "500ms"), (2.25, "2250ms"), (90.0, "90s")]
)
def test_format_seconds(value: float, expected: str) -> None:
    assert format_seconds(value) == expected


@pytest.mark.parametrize(
    ("text", "factor", "expected"),
    [
        ("5m", 0.1, "30s"),
        ("1m", 1 / 12, "5s"),
        ("2m", 0.5, "60s"),
        ("10m", 1, "600s"),
        ("1m", 0.001, "1s"),  # floored at one second by default
        ("1h30m", 0.01, "54s"),
    ],
)
def test_scale(text: str, factor: float, expected: str) -> None:
    assert scale(text, factor) == expected


def test_scale_respects_a_custom_minimum() -> None:
    assert scale("1m", 0.001, minimum_s=0.2) == "200ms"
    assert scale("1m", 0.001, minimum_s=4) == "4s"


def test_scaled_values_parse_back() -> None:
    for text in ("1m", "5m", "2h", "90s", "1m30s"):
        for factor in (1, 0.5, 1 / 12, 0.01):
            assert seconds(scale(text, factor)) >= 1


def test_scale_promql_scales_every_range_selector() -> None:
    query = (
        'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[10m])) '
        "> on() histogram_quantile(0.95, rate(x_bucket[2m]))"
    )
    assert scale_promql(query, 0.1) == (
        'sum(rate(http_requests_total{code=~"5.."}[30s])) / sum(rate(http_requests_total[60s])) '
        "> on() histogram_quantile(0.95, rate(x_bucket[12s]))"
    )


def test_scale_promql_floors_ranges_at_four_seconds() -> None:
    """rate() needs two samples in its window: with a 1 s scrape a window under 4 s returns nothing."""
    assert MIN_RANGE_S == 4.0
    assert scale_promql("rate(up[1m])", 1 / 60) == "rate(up[4s])"  # 1 s -> 4 s
    assert scale_promql("rate(up[1m])", 0.05) == "rate(up[4s])"  # 3 s -> 4 s
    assert scale_promql("rate(up[1m])", 0.1) == "rate(up[6s])"  # above the floor: left alone


def test_scale_promql_leaves_non_ranges_alone() -> None:
    query = 'up{job="x"} offset 5m > 0.5 and label_replace(a, "d", "$1", "s", "(.*)") and b[0]'
    assert scale_promql(query, 0.1) == query


def test_scale_promql_subqueries_scale_range_and_resolution() -> None:
    assert scale_promql("max_over_time(rate(x[5m])[30m:1m])", 0.1) == "max_over_time(rate(x[30s])[180s:6s])"
    # the resolution may be omitted (the global evaluation interval is used)
    assert scale_promql("max_over_time(up[30m:])", 0.1) == "max_over_time(up[180s:])"
    # the resolution is floored at one second, the range at four
    assert scale_promql("min_over_time(up[1m:10s])", 0.01) == "min_over_time(up[4s:1s])"


def test_scale_promql_compound_durations() -> None:
    assert scale_promql("rate(x[1h30m])", 0.01) == "rate(x[54s])"


ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "machine-native-ops"},
    "spec": {
        "replicas": 3,
        "progressDeadlineSeconds": 600,
        "template": {"spec": {"containers": [{"name": "app", "readinessProbe": {"initialDelaySeconds": 10}}]}},
        "strategy": {
            "canary": {
                "analysis": {"templates": [{"templateName": "success-rate"}], "startingStep": 1},
                "steps": [
                    {"setWeight": 10},
                    {"pause": {"duration": "1m"}},
                    {"setWeight": 50},
                    {"pause": {"duration": "5m"}},
                    {"pause": {}},
                ],
            }
        },
    },
}
ANALYSIS = {
    "kind": "AnalysisTemplate",
    "spec": {
        "metrics": [
            {
                "name": "success-rate",
                "interval": "1m",
                "initialDelay": "2m",
                "failureLimit": 3,
                "count": 5,
                "provider": {
                    "prometheus": {
                        "address": "http://127.0.0.1:9090",
                        "query": "sum(rate(http_requests_total{code!~'5..'}[5m]))",
                    }
                },
            }
        ]
    },
}
RULE_GROUP = {
    "groups": [
        {
            "name": "deployment-health",
            "interval": "30s",
            "rules": [
                {
                    "alert": "HighErrorRate",
                    "for": "2m",
                    "expr": 'sum(rate(http_requests_total{code=~"5.."}[2m])) > 0.05',
                    "labels": {"severity": "critical", "duration": "long"},
                    "annotations": {"summary": "5xx above 5% for 2m", "runbook_url": "docs/runbooks.md#higherrorrate"},
                },
                {"record": "job:up:sum", "expr": "sum by (job) (up)"},
                {"alert": "Flapping", "expr": "changes(up[10m]) > 3", "for": "0s"},
            ],
        }
    ]
}


def test_scale_tree_rollout_durations() -> None:
    original = copy.deepcopy(ROLLOUT)
    scaled = scale_tree(ROLLOUT, 1 / 12)
    assert original == ROLLOUT, "scale_tree must not modify its input"
    steps = scaled["spec"]["strategy"]["canary"]["steps"]
    assert steps == [
        {"setWeight": 10},
        {"pause": {"duration": "5s"}},
        {"setWeight": 50},
        {"pause": {"duration": "25s"}},
        {"pause": {}},
    ]
    # integers (seconds fields of core Kubernetes) and everything else are untouched
    assert scaled["spec"]["progressDeadlineSeconds"] == 600
    assert scaled["spec"]["template"] == ROLLOUT["spec"]["template"]
    canary = ROLLOUT["spec"]["strategy"]["canary"]
    assert scaled["spec"]["strategy"]["canary"]["analysis"] == canary["analysis"]


def test_scale_tree_analysis_template_interval_and_query() -> None:
    metric = scale_tree(ANALYSIS, 0.1)["spec"]["metrics"][0]
    assert metric["interval"] == "6s"
    assert metric["initialDelay"] == "12s"
    assert metric["failureLimit"] == 3 and metric["count"] == 5
    assert metric["provider"]["prometheus"]["query"] == "sum(rate(http_requests_total{code!~'5..'}[30s]))"
    assert metric["provider"]["prometheus"]["address"] == "http://127.0.0.1:9090"


def test_scale_tree_rule_group() -> None:
    group = scale_tree(RULE_GROUP, 0.1)["groups"][0]
    assert group["interval"] == "3s"
    high, record, flapping = group["rules"]
    assert high["expr"] == 'sum(rate(http_requests_total{code=~"5.."}[12s])) > 0.05'
    assert high["for"] == "12s"
    # labels/annotations are not durations even when a key is called "duration" and the text says "2m"
    assert high["labels"] == {"severity": "critical", "duration": "long"}
    assert high["annotations"]["summary"] == "5xx above 5% for 2m"
    assert record == {"record": "job:up:sum", "expr": "sum by (job) (up)"}
    assert flapping["expr"] == "changes(up[60s]) > 3"
    assert flapping["for"] == "1s"  # 0s is floored at one second


def test_scale_tree_factor_one_is_identity() -> None:
    assert scale_tree(RULE_GROUP, 1) == RULE_GROUP


def test_scale_tree_custom_promql_keys() -> None:
    doc = {"expression": "rate(x[1m])", "expr": "rate(x[1m])"}
    assert scale_tree(doc, 0.5, promql_keys=frozenset({"expression"})) == {
        "expression": "rate(x[30s])",
        "expr": "rate(x[1m])",
    }


def test_scale_tree_lists_and_scalars() -> None:
    assert scale_tree([{"for": "1m"}, "1m", 3, None], 0.5) == [{"for": "30s"}, "1m", 3, None]
