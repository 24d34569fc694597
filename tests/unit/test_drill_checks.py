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

from pytest_mnops.chaos.activities import alerts as alert_activities
from pytest_mnops.chaos.activities import emergency, secret_rotation, synthetic_alerts
from pytest_mnops.chaos.runner import Handoff
from pytest_mnops.errors import ClusterError, WaitTimeout
from pytest_mnops.observability import alerts as alerts_module
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.observability.rules import alert_rules, reference_rules
from pytest_mnops.secrets.values import SecretValue
from pytest_mnops.standins.receivers import Receivers
from tests.unit.conftest import FakeServer, Request

NAMESPACE = "drills"
CRITICAL = sorted(r["alert"] for r in alert_rules() if r["labels"]["severity"] == "critical")


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each activity module looks budget up in its own namespace.
    for module in (alert_activities, emergency, secret_rotation, synthetic_alerts):
        monkeypatch.setattr(module, "budget", lambda configuration, production_s, floor_s=0: 0.3)
    monkeypatch.setattr(alerts_module, "POLL_S", 0.01)


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with Receivers(host="127.0.0.1") as running:
        yield running


# The resolved app profile the runner hands every activity (pytest_mnops.profile.AppProfile.to_wire).
PROFILE = {
    "source": "test profile",
    "namespace": NAMESPACE,
    "app": "demo",
    "selector": {"app": "demo"},
    "container": "app",
    "slo": {},
    "alerts": {"error": {"name": "HighErrorRate", "labels": {"namespace": NAMESPACE}, "receiver": None}},
    "rule_files": [str(reference_rules())],
    "synthetic_alerts": {"severity": "critical", "receivers": ["pager"]},
    "secret": {"consumer": {"http": {"path": "/auth", "value": "Bearer {value}", "accept": [200], "reject": [401]}}},
}


def _configuration(**extra: Any) -> dict[str, Any]:
    return {
        "namespace": NAMESPACE,
        "app": "demo",
        "run_id": "run-1",
        "run_started": time.time(),
        "profile": PROFILE,
        **extra,
    }


def _use_alerts(monkeypatch: pytest.MonkeyPatch, *, receivers_url: str, alertmanager_url: str | None = None) -> None:
    alerts = Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=alertmanager_url, receivers_url=receivers_url)
    for module in (emergency, synthetic_alerts):
        monkeypatch.setattr(module, "_alerts", lambda configuration: alerts)


# -- the rotated credential: every consumer takes the new one, none the old ------------------------------------


class _SettledRollout:
    def __init__(self) -> None:
        self.waited: list[float] = []

    def wait_settled(self, timeout_s: float) -> None:
        self.waited.append(timeout_s)


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
    monkeypatch.setattr(secret_rotation, "_rollout", lambda configuration: rollout)
    return http_server, answers


def _rotated(server: FakeServer, *, old: str | None = "old-value") -> dict[str, Any]:
    handoff = Handoff(new=SecretValue("new-value"), old=None if old is None else SecretValue(old))
    return _configuration(app_url=f"{server.url}/svc/drills/demo", handoff=handoff)


def test_consumers_accept_the_new_credential_and_reject_the_old(app: tuple[FakeServer, Any]) -> None:
    server, answers = app
    answers["new-value"] = [200]
    result = secret_rotation.verify_rotated_credentials(_rotated(server), requests_per_check=5)
    assert result["new_accepted"] is True and result["old_rejected"] is True
    assert result["recovered_at"] <= time.time()
    tokens = [r.headers["authorization"] for r in server.requests]
    assert tokens == ["Bearer new-value"] * 5 + ["Bearer old-value"] * 5


def test_the_check_waits_for_every_consumer_to_be_replaced_first(app: tuple[FakeServer, Any]) -> None:
    server, answers = app
    answers["new-value"] = [200]
    secret_rotation.verify_rotated_credentials(_rotated(server), requests_per_check=1)
    assert secret_rotation._rollout({}).waited == [0.3]  # type: ignore[attr-defined]


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
    answers.update({"new-value": list(new), "old-value": list(old)})  # copies: the server pops them
    with pytest.raises(AssertionError) as failed:
        secret_rotation.verify_rotated_credentials(_rotated(server), requests_per_check=4)
    assert str(failed.value) == message


def test_without_a_previous_credential_a_never_issued_one_must_be_rejected(app: tuple[FakeServer, Any]) -> None:
    """A fresh namespace: "old rejected" is not assumed; an app accepting any token fails it."""
    server, answers = app
    answers["new-value"] = [200]
    assert secret_rotation.verify_rotated_credentials(_rotated(server, old=None), requests_per_check=2)["old_rejected"]
    probes = [r.headers["authorization"] for r in server.requests[2:]]
    assert len(set(probes)) == 1 and probes[0] not in ("Bearer new-value", "Bearer ") and len(probes[0]) > 30

    server.answer = lambda request: (200, None)  # an app that lets every token in
    with pytest.raises(AssertionError, match=r"^the old credential is still accepted \(answers: \[200\]\)$"):
        secret_rotation.verify_rotated_credentials(_rotated(server, old=None), requests_per_check=2)


def test_nothing_handed_over_means_the_rotation_did_not_run(app: tuple[FakeServer, Any]) -> None:
    server, _ = app
    configuration = _configuration(app_url=server.url, handoff=Handoff())
    with pytest.raises(ClusterError) as failed:
        secret_rotation.verify_rotated_credentials(configuration)
    assert str(failed.value) == "no rotated credential was handed over; did the rotate-app-secret action run?"
    assert server.requests == []


# -- notifications of this run ----------------------------------------------------------------------------------


def _webhook(name: str, status: str = "firing", namespace: str = NAMESPACE, **labels: str) -> dict[str, Any]:
    alert = {"status": status, "labels": {"alertname": name, "namespace": namespace, **labels}}
    return {"status": status, "alerts": [alert]}


def test_receiver_proof_takes_a_notification_of_this_run_about_this_namespace(receivers: Receivers) -> None:
    alerts = Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=None, receivers_url=receivers.url)
    receivers.inbox.add("slack", _webhook("HighLatencyP95"))  # before the run started
    started = time.time() + 0.01
    time.sleep(0.02)
    receivers.inbox.add("slack", _webhook("HighLatencyP95", namespace="drills-gw1"))
    receivers.inbox.add("pager", _webhook("HighLatencyP95"))
    labels = {"namespace": NAMESPACE}

    def prove() -> Any:
        return alerts.prove_delivered("HighLatencyP95", labels, "slack", within=0.3, since=started, baseline=None)

    with pytest.raises(WaitTimeout, match="no firing notification for alert HighLatencyP95 reached receiver 'slack'"):
        prove()
    receivers.inbox.add("slack", _webhook("HighLatencyP95"))
    delivery = prove()
    assert (delivery.alert, delivery.receiver, delivery.proof) == ("HighLatencyP95", "slack", "receiver")
    assert delivery.at >= started


def test_rollback_notice_needs_the_rollout_on_every_notified_channel_during_this_run(
    receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_alerts(monkeypatch, receivers_url=receivers.url)
    receivers.inbox.add("slack", {"text": "rollback of drills/demo"})  # an earlier run's
    sent = [{"channel": "slack", "ok": True, "detail": "HTTP 200"}]
    configuration = _configuration(run_started=time.time() + 0.01, handoff=Handoff(rollback_notifications=sent))
    time.sleep(0.02)
    receivers.inbox.add("email", {"subject": "rollback of drills/demo"})
    receivers.inbox.add("slack", {"text": "rollback of drills/another-app"})
    with pytest.raises(ClusterError) as missing:
        emergency.rollback_notified(configuration)
    assert str(missing.value) == (
        "no notification mentioning 'drills/demo' reached receiver(s) slack within 0s. "
        "Fix: check the notifier's webhook/SMTP settings."
    )
    receivers.inbox.add("slack", {"text": "rollback of drills/demo done"})
    assert emergency.rollback_notified(configuration) == {"channels": ["slack"], "proof": "receiver"}


def test_a_notice_a_channel_refused_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = [{"channel": "slack", "ok": False, "detail": "HTTP 500"}]
    with pytest.raises(ClusterError, match=r"not accepted by: slack \(HTTP 500\)"):
        emergency.rollback_notified(_configuration(handoff=Handoff(rollback_notifications=sent)))


def test_every_synthetic_alert_of_this_run_must_arrive(receivers: Receivers, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_alerts(monkeypatch, receivers_url=receivers.url)
    configuration = _configuration()
    first, *rest = CRITICAL
    assert rest, "the drill needs more than one critical alert to tell all from some"
    for name in rest:
        receivers.inbox.add("pager", _webhook(name, mnops_drill="run-1"))
    receivers.inbox.add("pager", _webhook(first, mnops_drill="run-0"))  # another run's copy
    receivers.inbox.add("pager", _webhook(first, "resolved", mnops_drill="run-1"))  # not firing
    receivers.inbox.add("slack", _webhook(first, mnops_drill="run-1"))  # another receiver
    with pytest.raises(ClusterError, match="never seen delivered firing"):
        synthetic_alerts.wait_all_delivered(configuration, status="resolved")  # resolved counts only after firing
    with pytest.raises(ClusterError) as missing:
        synthetic_alerts.wait_all_delivered(configuration)
    assert str(missing.value) == (
        f"firing notifications for {first} did not reach receiver 'pager'. "
        "Fix: check Alertmanager's routes for severity=critical and mnops_drill."
    )
    receivers.inbox.add("pager", _webhook(first, mnops_drill="run-1"))
    result = synthetic_alerts.wait_all_delivered(configuration)
    assert result["delivered"] == CRITICAL
    assert (result["receivers"], result["status"], result["proof"]) == (["pager"], "firing", "receiver")
    assert "detected_at" in result
    resolved = [_webhook(n, "resolved", mnops_drill="run-1") for n in CRITICAL]
    for payload in resolved:
        receivers.inbox.add("pager", payload)
    assert "recovered_at" in synthetic_alerts.wait_all_delivered(configuration, status="resolved")


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
    receivers.inbox.add("pager", {"alerts": [{"labels": {"mnops_check": "silence", "mnops_drill": "run-0"}}]})
    assert synthetic_alerts.silence_and_check("MnopsSilenceCheck", configuration) == {
        "silenced": "MnopsSilenceCheck",
        "suppressed": True,
        "proof": "receiver",
    }
    silence, posted, expired = http_server.requests
    labels = {
        "alertname": "MnopsSilenceCheck",
        "namespace": NAMESPACE,
        "severity": "critical",
        "mnops_drill": "run-1",
        "mnops_check": "silence",
    }
    assert {m["name"]: m["value"] for m in silence.body["matchers"]} == labels
    assert posted.body[0]["labels"] == labels
    assert (expired.method, expired.path) == ("DELETE", "/api/v2/silence/s-1")

    leak.append({"status": "firing"})
    http_server.requests.clear()
    with pytest.raises(AssertionError, match=r"^silence s-1 did not suppress MnopsSilenceCheck: 1 delivered$"):
        synthetic_alerts.silence_and_check("MnopsSilenceCheck", configuration)
    assert http_server.requests[-1].method == "DELETE", "the silence is expired even when it leaked"


def test_wait_for_alert_marks_detection_or_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    class FakeAlerts:
        def wait_for(self, name: str, state: str, *, within: float, labels: dict[str, str]) -> float:
            seen.append((name, state, within, labels))
            return 0.0

    monkeypatch.setattr(alert_activities, "_alerts", lambda configuration: FakeAlerts())
    configuration = _configuration()
    with pytest.raises(ClusterError, match="never seen firing in this run"):
        alert_activities.wait_for_alert("error", configuration, state="resolved")  # resolved only after firing
    fired = alert_activities.wait_for_alert("error", configuration)
    assert set(fired) == {"alert", "state", "detected_at"} and fired["state"] == "firing"
    resolved = alert_activities.wait_for_alert("error", configuration, state="resolved")
    assert set(resolved) == {"alert", "state", "recovered_at"}
    assert seen == [
        ("HighErrorRate", "firing", 0.3, {"namespace": NAMESPACE}),
        ("HighErrorRate", "resolved", 0.3, {"namespace": NAMESPACE}),
    ]
