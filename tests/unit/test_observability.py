"""Prometheus, Alertmanager and the receivers as the drills read them, against loopback fakes of their HTTP APIs:
which alert state counts, which notification is evidence for which alert, and what a failure says."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mnops.errors import ClusterError, ConfigError, WaitTimeout
from pytest_mnops.observability import alerts as alerts_module
from pytest_mnops.observability import prometheus as prometheus_module
from pytest_mnops.observability import rules
from pytest_mnops.observability.alerts import Alerts, notifies
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.standins.receivers import Receivers
from tests.unit.conftest import FakeServer, Request


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts_module, "POLL_S", 0.01)
    monkeypatch.setattr(prometheus_module, "POLL_S", 0.01)


def _vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [1.0, value]} for labels, value in samples]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def _alert(name: str, state: str, **labels: str) -> tuple[dict[str, str], str]:
    return {"__name__": "ALERTS", "alertname": name, "alertstate": state, **labels}, "1"


def _prometheus_answering(server: FakeServer, answers: dict[str, list[Any]]) -> Prometheus:
    """Each query gets the next of its scripted answers (the last one repeats)."""

    def answer(request: Request) -> tuple[int, Any]:
        if request.path == "/api/v1/query":
            queue = answers[request.query["query"]]
            return 200, queue.pop(0) if len(queue) > 1 else queue[0]
        return 404, {"status": "error"}

    server.answer = answer
    return Prometheus(server.url + "/")


# -- notification matching --------------------------------------------------------------------------------


def _webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"receiver": "pager", "status": "firing", "alerts": list(alerts)}


def _about(name: str, status: str = "firing", namespace: str = "drills") -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": name, "namespace": namespace}}


def test_a_webhook_notifies_only_its_alerts_in_their_status_and_namespace() -> None:
    payload = _webhook(_about("HighErrorRate"), _about("PodCrashLooping", "resolved", "other"))
    assert notifies(payload, "HighErrorRate", "firing")
    assert notifies(payload, "HighErrorRate", "firing", "drills")
    assert not notifies(payload, "HighErrorRate", "resolved")
    assert not notifies(payload, "HighErrorRate", "firing", "other")
    assert not notifies(payload, "HighLatencyP95", "firing")
    assert notifies(payload, "PodCrashLooping", "resolved", "other")
    assert not notifies(payload, "PodCrashLooping", "resolved", "drills")
    assert not notifies({"alerts": [{"labels": {}}]}, "HighErrorRate", "firing")
    assert not notifies({"alerts": []}, "HighErrorRate", "firing")


def test_rendered_text_matches_the_name_the_whole_namespace_and_resolved() -> None:
    slack = {"text": "[FIRING:1] HighErrorRate drills-gw1 machine-native-ops"}
    assert notifies(slack, "HighErrorRate", "firing", "drills-gw1")
    assert not notifies(slack, "HighErrorRate", "firing", "drills-gw10")
    assert not notifies(slack, "HighErrorRate", "firing", "drills")  # a prefix of drills-gw1 is not it
    assert not notifies(slack, "HighLatencyP95", "firing")
    assert not notifies(slack, "HighErrorRate", "resolved")
    assert notifies({"text": "[Resolved] HighErrorRate in drills."}, "HighErrorRate", "resolved", "drills")
    assert notifies("Subject: HighErrorRate (drills)", "HighErrorRate", "firing", "drills")
    assert notifies("HighErrorRate", "HighErrorRate", "firing")


def test_with_labels_only_an_alert_carrying_them_counts() -> None:
    """One notification groups a drill's synthetic alert with a real one of the same name and namespace."""
    real = {"status": "firing", "labels": {"alertname": "A", "namespace": "drills"}}
    ours = {"status": "firing", "labels": {"alertname": "A", "namespace": "drills", "drill_run": "r1"}}
    assert not notifies(_webhook(real), "A", "firing", "drills", labels={"drill_run": "r1"})
    assert notifies(_webhook(real, ours), "A", "firing", "drills", labels={"drill_run": "r1"})
    assert not notifies(_webhook(ours), "A", "firing", "drills", labels={"drill_run": "r2"})
    assert notifies({"text": "[FIRING] A drills r1"}, "A", "firing", "drills", labels={"drill_run": "r1"})
    assert not notifies({"text": "[FIRING] A drills r0"}, "A", "firing", "drills", labels={"drill_run": "r1"})


def test_an_alert_without_labels_is_about_nothing() -> None:
    assert not notifies(_webhook({"status": "firing"}), "HighErrorRate", "firing")
    assert notifies(_webhook({"status": "firing"}, _about("HighErrorRate")), "HighErrorRate", "firing", "drills")


def test_a_webhook_payload_is_not_read_as_text() -> None:
    """A webhook naming the alert in a field of another alert is not a notification about it."""
    payload = _webhook({"status": "firing", "labels": {"alertname": "Other", "summary": "HighErrorRate drills"}})
    assert not notifies(payload, "HighErrorRate", "firing", "drills")


# -- Prometheus' view of alerts ---------------------------------------------------------------------------


def test_alert_state_firing_wins_over_pending_and_no_series_is_resolved(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="HighErrorRate",namespace="drills"}'
    prometheus = _prometheus_answering(
        http_server,
        {
            query: [
                _vector(_alert("HighErrorRate", "pending"), _alert("HighErrorRate", "firing")),
                _vector(_alert("HighErrorRate", "pending")),
                _vector(),
            ]
        },
    )
    alerts = Alerts(prometheus, alertmanager_url=None)
    assert [alerts.state("HighErrorRate", {"namespace": "drills"}) for _ in range(3)] == [
        "firing",
        "pending",
        "resolved",
    ]
    assert alerts.state("HighErrorRate", {"namespace": "drills"}) == "resolved"


def test_alert_state_in_a_namespace_counts_its_alerts_and_those_without_one(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="A",app="shop",namespace=~"drills|"}'
    prometheus = _prometheus_answering(http_server, {query: [_vector(_alert("A", "firing"))]})
    assert Alerts(prometheus, alertmanager_url=None).state("A", {"app": "shop"}, "drills") == "firing"


def test_wait_for_returns_once_the_state_is_reached(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="A"}'
    prometheus = _prometheus_answering(
        http_server, {query: [_vector(), _vector(_alert("A", "pending")), _vector(_alert("A", "firing"))]}
    )
    alerts = Alerts(prometheus, alertmanager_url=None)
    assert alerts.wait_for("A", "firing", within=5) >= 0
    assert len([r for r in http_server.requests if r.query.get("query") == query]) == 3


def test_wait_for_pending_is_satisfied_by_firing_but_not_by_resolved(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="A"}'
    prometheus = _prometheus_answering(http_server, {query: [_vector(_alert("A", "firing"))]})
    Alerts(prometheus, alertmanager_url=None).wait_for("A", "pending", within=5)
    prometheus = _prometheus_answering(http_server, {query: [_vector()]})
    with pytest.raises(WaitTimeout) as timeout:
        Alerts(prometheus, alertmanager_url=None).wait_for("A", "pending", within=0.05)
    assert str(timeout.value) == (
        'alert A{alertname="A"} did not become pending within 0s (last state: resolved). Fix: check the rule in '
        "monitoring/prometheus-alerts.yaml is loaded and its expression matches."
    )


def test_wait_for_resolved_and_for_an_unknown_state(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="A",namespace="x"}'
    prometheus = _prometheus_answering(http_server, {query: [_vector(_alert("A", "firing")), _vector()]})
    alerts = Alerts(prometheus, alertmanager_url=None)
    alerts.wait_for("A", "resolved", within=5, labels={"namespace": "x"})
    with pytest.raises(ValueError, match="state must be one of pending, firing, resolved, got 'gone'"):
        alerts.wait_for("A", "gone", within=1)


def test_wait_for_in_a_namespace_asks_for_its_alerts_and_names_it_when_it_times_out(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="A",namespace=~"drills|"}'
    prometheus = _prometheus_answering(http_server, {query: [_vector(_alert("A", "firing")), _vector()]})
    alerts = Alerts(prometheus, alertmanager_url=None)
    alerts.wait_for("A", "firing", within=5, namespace="drills")
    with pytest.raises(WaitTimeout) as timeout:
        alerts.wait_for("A", "firing", within=0.05, namespace="drills")
    assert str(timeout.value).startswith('alert A{alertname="A",namespace=~"drills|"} did not become firing within 0s')


def test_wait_for_firing_is_not_satisfied_by_pending(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="A"}'
    prometheus = _prometheus_answering(http_server, {query: [_vector(_alert("A", "pending"))]})
    with pytest.raises(WaitTimeout, match=r"did not become firing within 0s \(last state: pending\)"):
        Alerts(prometheus, alertmanager_url=None).wait_for("A", "firing", within=0.05)


def test_wait_for_waits_for_firing_by_default_and_returns_the_seconds_it_took(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="A"}'
    prometheus = _prometheus_answering(
        http_server, {query: [_vector(_alert("A", "pending")), _vector(_alert("A", "firing"))]}
    )
    started = time.monotonic()
    took = Alerts(prometheus, alertmanager_url=None).wait_for("A", within=5)
    assert 0 <= took <= time.monotonic() - started
    assert len([r for r in http_server.requests if r.query.get("query") == query]) == 2  # pending did not end it


def test_wait_for_timeout_names_the_alert_with_its_labels(http_server: FakeServer) -> None:
    query = 'ALERTS{alertname="A",namespace="x"}'
    prometheus = _prometheus_answering(http_server, {query: [_vector(_alert("A", "pending", namespace="x"))]})
    with pytest.raises(WaitTimeout) as timeout:
        Alerts(prometheus, alertmanager_url=None).wait_for("A", "firing", within=0.05, labels={"namespace": "x"})
    assert str(timeout.value) == (
        'alert A{alertname="A",namespace="x"} did not become firing within 0s (last state: pending). Fix: check the '
        "rule in monitoring/prometheus-alerts.yaml is loaded and its expression matches."
    )


def test_firing_selects_firing_alerts_of_a_severity(http_server: FakeServer) -> None:
    prometheus = _prometheus_answering(
        http_server,
        {
            'ALERTS{alertstate="firing"}': [_vector(_alert("A", "firing", namespace="x"), _alert("B", "firing"))],
            'ALERTS{alertstate="firing",severity="critical"}': [_vector(_alert("C", "firing", namespace="drills"))],
        },
    )
    alerts = Alerts(prometheus, alertmanager_url=None)
    assert [a["alertname"] for a in alerts.firing()] == ["A", "B"]
    assert [a["alertname"] for a in alerts.firing("critical")] == ["C"]
    with pytest.raises(AssertionError, match=r"^alerts firing at rest: A\(x\), B\(\)$"):
        alerts.assert_none_firing()
    with pytest.raises(AssertionError, match=r"^alerts firing at rest: B\(\)$"):
        alerts.assert_none_firing(ignore=("A",))
    alerts.assert_none_firing(ignore=("A", "B"))


# -- Alertmanager ------------------------------------------------------------------------------------------


def test_alertmanager_post_silence_expire_and_active(http_server: FakeServer) -> None:
    def answer(request: Request) -> tuple[int, Any]:
        if request.path == "/api/v2/silences":
            return 200, {"silenceID": "s-1"}
        if request.path == "/api/v2/alerts" and request.method == "GET":
            return 200, [{"labels": {"alertname": "A"}}]
        return 200, None

    http_server.answer = answer
    alerts = Alerts(Prometheus(http_server.url), alertmanager_url=http_server.url + "/")
    before = time.time()
    alerts.post({"alertname": "A"}, {"summary": "s"}, ends_in_s=60)
    (sent,) = http_server.requests[-1].body
    assert (sent["labels"], sent["annotations"]) == ({"alertname": "A"}, {"summary": "s"})
    from datetime import datetime

    starts, ends = (datetime.fromisoformat(sent[k]).timestamp() for k in ("startsAt", "endsAt"))
    assert before - 1 <= starts <= time.time() and ends - starts == pytest.approx(60, abs=1)
    alerts.post({"alertname": "B"})
    assert http_server.requests[-1].body[0]["annotations"] == {}

    assert alerts.silence({"alertname": "A", "namespace": "drills"}, duration_s=600, comment="why") == "s-1"
    body = http_server.requests[-1].body
    assert body["matchers"] == [
        {"name": "alertname", "value": "A", "isRegex": False, "isEqual": True},
        {"name": "namespace", "value": "drills", "isRegex": False, "isEqual": True},
    ]
    assert (body["createdBy"], body["comment"]) == ("pytest-mnops", "why")
    alerts.expire_silence("s-1")
    assert (http_server.requests[-1].method, http_server.requests[-1].path) == ("DELETE", "/api/v2/silence/s-1")
    assert alerts.active('alertname="A"') == [{"labels": {"alertname": "A"}}]
    assert http_server.requests[-1].query == {"filter": 'alertname="A"'}


def test_alertmanager_errors_name_the_server_and_the_request(http_server: FakeServer) -> None:
    http_server.answer = lambda request: (500, {"error": "boom"})
    alerts = Alerts(Prometheus(http_server.url), alertmanager_url=http_server.url)
    with pytest.raises(ClusterError, match=rf"^Alertmanager {http_server.url}: GET /alerts: 500 Server Error"):
        alerts.active("x")
    unset = r"^no Alertmanager URL for this target\. Fix: pass --mnops-alertmanager-url\.$"
    with pytest.raises(ClusterError, match=unset):
        Alerts(Prometheus(http_server.url), alertmanager_url=None).active("x")


# -- receivers -----------------------------------------------------------------------------------------------


@pytest.fixture
def receivers() -> Any:
    with Receivers(host="127.0.0.1") as running:
        yield running


def test_wait_delivered_takes_the_first_matching_notification_since_the_run_started(receivers: Receivers) -> None:
    alerts = Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=None, receivers_url=receivers.url + "/")
    receivers.inbox.add("pager", _webhook(_about("A")))
    started = time.time() + 0.001
    time.sleep(0.01)
    with pytest.raises(WaitTimeout) as stale:
        alerts.wait_delivered("A", "pager", within=0.05, since=started)
    assert str(stale.value) == (
        "no firing notification for alert A reached receiver 'pager' within 0s. "
        "Fix: check the route in monitoring/alertmanager.yml."
    )
    receivers.inbox.add("pager", _webhook(_about("A", namespace="other")))
    receivers.inbox.add("slack", _webhook(_about("A")))
    receivers.inbox.add("pager", _webhook(_about("A", "resolved")))
    with pytest.raises(WaitTimeout):
        alerts.wait_delivered("A", "pager", within=0.05, since=started, namespace="drills")
    item = alerts.wait_delivered("A", "pager", within=1, since=started, status="resolved", namespace="drills")
    assert item["payload"]["alerts"][0]["status"] == "resolved" and item["received_at"] >= started
    assert alerts.wait_delivered("A", "pager", within=1)["received_at"] < started  # since=0: any time


def test_wait_delivered_polls_until_the_notification_arrives(receivers: Receivers) -> None:
    alerts = Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=None, receivers_url=receivers.url)
    later = threading.Timer(0.1, receivers.inbox.add, ("pager", _webhook(_about("A"))))
    later.start()
    try:
        item = alerts.wait_delivered("A", "pager", within=3)
    finally:
        later.cancel()
    assert item["payload"]["alerts"][0]["labels"]["alertname"] == "A"


def test_wait_delivered_counts_a_notification_received_at_the_instant_given_as_since(receivers: Receivers) -> None:
    alerts = Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=None, receivers_url=receivers.url)
    receivers.inbox.add("pager", _webhook(_about("A")))
    at = receivers.inbox.items("pager")[0]["received_at"]
    assert alerts.wait_delivered("A", "pager", within=0.05, since=at)["received_at"] == at


def test_received_needs_a_receivers_url_and_an_answer() -> None:
    with pytest.raises(ClusterError, match=r"^no receivers URL for this target\. Fix: pass --mnops-receivers-url\.$"):
        Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=None).received("pager")
    with pytest.raises(ClusterError, match=r"^notification receivers at http://127.0.0.1:9 is unreachable: "):
        Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=None, receivers_url="http://127.0.0.1:9").received(
            "pager"
        )


# -- Prometheus ------------------------------------------------------------------------------------------------


def test_value_is_the_first_sample_none_for_no_data_or_nan(http_server: FakeServer) -> None:
    prometheus = _prometheus_answering(
        http_server,
        {"up": [_vector(({}, "0.25"), ({}, "9"))], "absent": [_vector()], "nan": [_vector(({}, "NaN"))]},
    )
    assert repr(prometheus) == f"Prometheus({http_server.url})"
    assert prometheus.value("up") == 0.25
    assert prometheus.value("absent") is None
    assert prometheus.value("nan") is None
    assert not math.isnan(prometheus.value("up") or 0)


def test_query_errors_name_the_server_and_the_expression(http_server: FakeServer) -> None:
    http_server.answer = lambda request: (400, {"status": "error", "error": "parse error"})
    prometheus = Prometheus(http_server.url)
    with pytest.raises(ClusterError, match=rf"^Prometheus {http_server.url}: query `rate\(x` failed: "):
        prometheus.query("rate(x")
    with pytest.raises(ClusterError, match=rf"^Prometheus {http_server.url}: range query `up` failed: "):
        prometheus.range("up", 0, 10)
    with pytest.raises(ClusterError, match=rf"^Prometheus {http_server.url}/api/v1/targets: "):
        prometheus.targets()


def test_range_asks_for_the_window_and_step(http_server: FakeServer) -> None:
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "2"]]}]}}
    http_server.answer = lambda request: (200, matrix)
    assert Prometheus(http_server.url).range("up", 1_700_000_000, 1_700_000_060, step_s=2) == [
        {"metric": {}, "values": [[1, "2"]]}
    ]
    query = http_server.requests[-1].query
    assert (query["query"], query["step"]) == ("up", "2s")
    assert float(query["start"]) == 1_700_000_000 and float(query["end"]) == 1_700_000_060


def test_wait_until_returns_the_value_or_names_the_last_one(http_server: FakeServer) -> None:
    prometheus = _prometheus_answering(http_server, {"x": [_vector(({}, "1")), _vector(({}, "5"))]})
    assert prometheus.wait_until("x", lambda v: v is not None and v > 2, timeout_s=5) == 5
    with pytest.raises(WaitTimeout) as timeout:
        prometheus.wait_until("x", lambda v: v is None, timeout_s=0.05, what="x to vanish")
    assert str(timeout.value) == "timed out after 0s waiting for x to vanish; last value of `x`: 5.0"
    with pytest.raises(WaitTimeout, match="waiting for x; last value"):
        prometheus.wait_until("x", lambda v: False, timeout_s=0.01)


def test_targets_and_rule_groups(http_server: FakeServer) -> None:
    def answer(request: Request) -> tuple[int, Any]:
        data = {
            "/api/v1/targets": {"activeTargets": [{"health": "up"}]},
            "/api/v1/rules": {"groups": [{"name": "g"}]},
        }
        return 200, {"status": "success", "data": data[request.path]}

    http_server.answer = answer
    prometheus = Prometheus(http_server.url)
    assert prometheus.targets() == [{"health": "up"}]
    assert prometheus.rule_groups() == [{"name": "g"}]


# -- rule files -------------------------------------------------------------------------------------------


def test_a_rule_file_without_groups_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for directory in ("charts", "monitoring", "scenarios"):
        (tmp_path / directory).mkdir()
    (tmp_path / "monitoring" / rules.RULES_FILE).write_text("rules: []\n")
    monkeypatch.setenv("MNOPS_ASSETS_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"prometheus-alerts.yaml: expected one document with a `groups:` list"):
        rules.rule_groups()


def test_write_rules_scales_for_the_sandbox(tmp_path: Path) -> None:
    (written,) = rules.write_rules(tmp_path / "rules", time_scale=1 / 12)
    groups = yaml.safe_load(written.read_text())["groups"]
    assert groups == rules.rule_groups(1 / 12) and groups != rules.rule_groups()


def test_reload_prometheus_refusal_says_how_to_fix(http_server: FakeServer) -> None:
    http_server.answer = lambda request: (200, None)
    rules.reload_prometheus(http_server.url)
    assert http_server.requests[-1].method == "POST" and http_server.requests[-1].path == "/-/reload"
    http_server.answer = lambda request: (403, "Lifecycle API is not enabled.")
    with pytest.raises(ConfigError) as refused:
        rules.reload_prometheus(http_server.url)
    assert str(refused.value) == (
        f'Prometheus at {http_server.url} refused the rule reload (403: "Lifecycle API is not enabled."). '
        "Fix: run `promtool check rules monitoring/prometheus-alerts.yaml`, or start Prometheus with "
        "--web.enable-lifecycle."
    )
