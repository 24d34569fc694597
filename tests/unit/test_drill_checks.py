"""The checks behind what a drill says it proved, each failing on exactly the claim it makes: the new credential
accepted by every consumer, the old one rejected, a notification of this run delivered to its receiver, every
synthetic alert delivered, a silence holding, an alert reaching its state.

Receivers are the loopback stand-in; the app and Alertmanager are fakes of their HTTP APIs. Waits are shortened
(``budget``) so that a check that must time out does so in a fraction of a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_mnops.chaos import activities
from pytest_mnops.chaos.runner import Handoff
from pytest_mnops.errors import ClusterError, WaitTimeout
from pytest_mnops.observability import alerts as alerts_module
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.observability.rules import alert_rules
from pytest_mnops.secrets.rotation import SecretValue
from pytest_mnops.standins.receivers import Receivers
from tests.unit.conftest import FakeServer, Request

NAMESPACE = "drills"
CRITICAL = sorted(r["alert"] for r in alert_rules() if r["labels"]["severity"] == "critical")


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(activities, "budget", lambda configuration, production_s, floor_s=0: 0.3)
    monkeypatch.setattr(alerts_module, "POLL_S", 0.01)


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with Receivers(host="127.0.0.1") as running:
        yield running


def _configuration(**extra: Any) -> dict[str, Any]:
    return {"namespace": NAMESPACE, "app": "demo", "run_id": "run-1", "run_started": time.time(), **extra}


def _use_alerts(monkeypatch: pytest.MonkeyPatch, *, receivers_url: str, alertmanager_url: str | None = None) -> None:
    alerts = Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=alertmanager_url, receivers_url=receivers_url)
    monkeypatch.setattr(activities, "_alerts", lambda configuration: alerts)


# -- the rotated credential: every consumer takes the new one, none the old ------------------------------------


class _SettledRollout:
    def __init__(self) -> None:
        self.waited: list[dict[str, Any]] = []

    def wait_for(self, **expected: Any) -> None:
        self.waited.append(expected)


@pytest.fixture
def app(http_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeServer, dict[str, list[int]]]:
    """The app's /auth: each credential gets the next of its scripted answers (the last repeats)."""
    answers: dict[str, list[int]] = {}

    def answer(request: Request) -> tuple[int, Any]:
        assert request.path == "/svc/drills/demo/auth"
        token = request.headers["authorization"].removeprefix("Bearer ")
        queue = answers.get(token, [401])
        return queue.pop(0) if len(queue) > 1 else queue[0], None

    http_server.answer = answer
    rollout = _SettledRollout()
    monkeypatch.setattr(activities, "_rollout", lambda configuration: rollout)
    return http_server, answers


def _rotated(server: FakeServer, *, old: str | None = "old-value") -> dict[str, Any]:
    handoff = Handoff(new=SecretValue("new-value"), old=None if old is None else SecretValue(old))
    return _configuration(app_url=f"{server.url}/svc/drills/demo", handoff=handoff)


def test_consumers_accept_the_new_credential_and_reject_the_old(app: tuple[FakeServer, Any]) -> None:
    server, answers = app
    answers["new-value"] = [200]
    result = activities.verify_rotated_credentials(_rotated(server), requests_per_check=5)
    assert result["new_accepted"] is True and result["old_rejected"] is True
    assert result["recovered_at"] <= time.time()
    tokens = [r.headers["authorization"] for r in server.requests]
    assert tokens == ["Bearer new-value"] * 5 + ["Bearer old-value"] * 5


def test_the_check_waits_for_every_consumer_to_be_replaced_first(app: tuple[FakeServer, Any]) -> None:
    server, answers = app
    answers["new-value"] = [200]
    activities.verify_rotated_credentials(_rotated(server), requests_per_check=1)
    assert activities._rollout({}).waited == [{"settled": True, "timeout_s": 0.3}]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("new", "old", "message"),
    [
        # one consumer not yet on the new credential
        ([200, 200, 401], [401], "the new credential was not accepted by every consumer (answers: [200, 401])"),
        # one consumer still accepting the old one
        ([200], [401, 200, 401], "the old credential is still accepted (answers: [200, 401])"),
    ],
    ids=["new-rejected-once", "old-accepted-once"],
)
def test_one_consumer_out_of_step_fails_its_half(
    app: tuple[FakeServer, Any], new: list[int], old: list[int], message: str
) -> None:
    server, answers = app
    answers.update({"new-value": new, "old-value": old})
    with pytest.raises(AssertionError) as failed:
        activities.verify_rotated_credentials(_rotated(server), requests_per_check=4)
    assert str(failed.value) == message


def test_without_a_previous_credential_a_never_issued_one_must_be_rejected(app: tuple[FakeServer, Any]) -> None:
    """A fresh namespace: "old rejected" is not assumed; an app accepting any token fails it."""
    server, answers = app
    answers["new-value"] = [200]
    assert activities.verify_rotated_credentials(_rotated(server, old=None), requests_per_check=2)["old_rejected"]
    probes = [r.headers["authorization"] for r in server.requests[2:]]
    assert len(set(probes)) == 1 and probes[0] not in ("Bearer new-value", "Bearer ") and len(probes[0]) > 30

    server.answer = lambda request: (200, None)  # an app that lets every token in
    with pytest.raises(AssertionError, match=r"^the old credential is still accepted \(answers: \[200\]\)$"):
        activities.verify_rotated_credentials(_rotated(server, old=None), requests_per_check=2)


def test_nothing_handed_over_means_the_rotation_did_not_run(app: tuple[FakeServer, Any]) -> None:
    server, _ = app
    configuration = _configuration(app_url=server.url, handoff=Handoff())
    with pytest.raises(ClusterError) as failed:
        activities.verify_rotated_credentials(configuration)
    assert str(failed.value) == "no rotated credential was handed over; did the rotate-app-secret action run?"
    assert server.requests == []


# -- notifications of this run ----------------------------------------------------------------------------------


def _webhook(name: str, status: str = "firing", namespace: str = NAMESPACE, **labels: str) -> dict[str, Any]:
    alert = {"status": status, "labels": {"alertname": name, "namespace": namespace, **labels}}
    return {"status": status, "alerts": [alert]}


def test_wait_for_notification_takes_one_of_this_run_about_this_namespace(
    receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_alerts(monkeypatch, receivers_url=receivers.url)
    receivers.inbox.add("slack", _webhook("HighLatencyP95"))  # before the run started
    configuration = _configuration(run_started=time.time() + 0.01)
    time.sleep(0.02)
    receivers.inbox.add("slack", _webhook("HighLatencyP95", namespace="drills-gw1"))
    receivers.inbox.add("pager", _webhook("HighLatencyP95"))
    with pytest.raises(WaitTimeout, match="no firing notification for alert HighLatencyP95 reached receiver 'slack'"):
        activities.wait_for_notification("HighLatencyP95", "slack", configuration)
    receivers.inbox.add("slack", _webhook("HighLatencyP95"))
    result = activities.wait_for_notification("HighLatencyP95", "slack", configuration)
    assert result["received_at"] >= configuration["run_started"]
    assert {k: v for k, v in result.items() if k != "received_at"} == {
        "alert": "HighLatencyP95",
        "channel": "slack",
        "status": "firing",
    }


def test_wait_for_message_needs_the_text_on_that_channel_during_this_run(
    receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_alerts(monkeypatch, receivers_url=receivers.url)
    receivers.inbox.add("slack", {"text": "rollback of machine-native-ops"})  # an earlier run's
    configuration = _configuration(run_started=time.time() + 0.01)
    time.sleep(0.02)
    receivers.inbox.add("email", {"subject": "rollback of machine-native-ops"})
    receivers.inbox.add("slack", {"text": "rollback of another-app"})
    with pytest.raises(ClusterError) as missing:
        activities.wait_for_message("slack", "machine-native-ops", configuration)
    assert str(missing.value) == (
        "no notification mentioning 'machine-native-ops' reached receiver 'slack' within 0s. "
        "Fix: check the notifier's webhook/SMTP settings."
    )
    receivers.inbox.add("slack", {"text": "rollback of machine-native-ops done"})
    result = activities.wait_for_message("slack", "machine-native-ops", configuration)
    assert result["channel"] == "slack" and result["received_at"] >= configuration["run_started"]


def test_every_synthetic_alert_of_this_run_must_arrive(receivers: Receivers, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_alerts(monkeypatch, receivers_url=receivers.url)
    configuration = _configuration()
    first, *rest = CRITICAL
    assert rest, "the drill needs more than one critical alert to tell all from some"
    for name in rest:
        receivers.inbox.add("pager", _webhook(name, drill_run="run-1"))
    receivers.inbox.add("pager", _webhook(first, drill_run="run-0"))  # another run's copy
    receivers.inbox.add("pager", _webhook(first, "resolved", drill_run="run-1"))  # not firing
    receivers.inbox.add("slack", _webhook(first, drill_run="run-1"))  # another receiver
    with pytest.raises(ClusterError) as missing:
        activities.wait_all_delivered("pager", configuration)
    assert str(missing.value) == (
        f"firing notifications for {first} did not reach receiver 'pager'. "
        "Fix: check the routes for severity=critical in monitoring/alertmanager.yml."
    )
    receivers.inbox.add("pager", _webhook(first, drill_run="run-1"))
    result = activities.wait_all_delivered("pager", configuration)
    assert result["delivered"] == [r["alert"] for r in alert_rules() if r["labels"]["severity"] == "critical"]
    assert (result["channel"], result["status"]) == ("pager", "firing") and "detected_at" in result
    resolved = [_webhook(n, "resolved", drill_run="run-1") for n in CRITICAL]
    for payload in resolved:
        receivers.inbox.add("pager", payload)
    assert "recovered_at" in activities.wait_all_delivered("pager", configuration, status="resolved")


def test_a_silence_that_holds_and_one_that_leaks(
    receivers: Receivers, http_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_alerts(monkeypatch, receivers_url=receivers.url, alertmanager_url=http_server.url)
    leak: list[dict[str, Any]] = []

    def alertmanager(request: Request) -> tuple[int, Any]:
        if request.path == "/api/v2/silences":
            return 200, {"silenceID": "s-1"}
        if request.path == "/api/v2/alerts" and request.method == "POST":
            for alert in leak:
                receivers.inbox.add("pager", {"alerts": [{**alert, "labels": request.body[0]["labels"]}]})
        return 200, None

    http_server.answer = alertmanager
    configuration = _configuration()
    receivers.inbox.add("pager", {"alerts": [{"labels": {"synthetic": "mnops-silence-check", "drill_run": "run-0"}}]})
    assert activities.silence_and_check("MnopsSilenceCheck", "pager", configuration) == {
        "silenced": "MnopsSilenceCheck",
        "suppressed": True,
    }
    silence, posted, expired = http_server.requests
    labels = {
        "alertname": "MnopsSilenceCheck",
        "synthetic": "mnops-silence-check",
        "namespace": NAMESPACE,
        "severity": "critical",
        "drill_run": "run-1",
    }
    assert {m["name"]: m["value"] for m in silence.body["matchers"]} == labels
    assert posted.body[0]["labels"] == labels
    assert (expired.method, expired.path) == ("DELETE", "/api/v2/silence/s-1")

    leak.append({"status": "firing"})
    http_server.requests.clear()
    with pytest.raises(AssertionError, match=r"^silence s-1 did not suppress MnopsSilenceCheck: 1 delivered$"):
        activities.silence_and_check("MnopsSilenceCheck", "pager", configuration)
    assert http_server.requests[-1].method == "DELETE", "the silence is expired even when it leaked"


def test_wait_for_alert_marks_detection_or_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    class FakeAlerts:
        def wait_for(self, name: str, state: str, *, within: float, labels: dict[str, str]) -> float:
            seen.append((name, state, within, labels))
            return 0.0

    monkeypatch.setattr(activities, "_alerts", lambda configuration: FakeAlerts())
    fired = activities.wait_for_alert("HighErrorRate", _configuration())
    assert set(fired) == {"alert", "state", "detected_at"} and fired["state"] == "firing"
    resolved = activities.wait_for_alert("HighErrorRate", _configuration(), state="resolved")
    assert set(resolved) == {"alert", "state", "recovered_at"}
    assert seen == [
        ("HighErrorRate", "firing", 0.3, {"namespace": NAMESPACE}),
        ("HighErrorRate", "resolved", 0.3, {"namespace": NAMESPACE}),
    ]
