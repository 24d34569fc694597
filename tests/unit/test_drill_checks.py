"""The checks behind what a drill says it proved, each failing on exactly the claim it makes: the new credential
accepted by every consumer, the old one rejected, a notification of this run delivered to its receiver, every
synthetic alert delivered, a silence holding, an alert reaching its state.

Receivers are the loopback stand-in; the app and Alertmanager are fakes of their HTTP APIs. Waits are shortened
(``budget``) so that a check that must time out does so in a fraction of a second.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_mnops.chaos.activities import _shared, emergency, secret_rotation, steady_state, synthetic_alerts
from pytest_mnops.chaos.activities import alerts as alert_activities
from pytest_mnops.chaos.runner import Handoff
from pytest_mnops.errors import ClusterError, ConfigError, WaitTimeout
from pytest_mnops.observability import alerts as alerts_module
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.observability.rules import alert_rules, reference_rules
from pytest_mnops.profile.model import DOCS
from pytest_mnops.secrets.values import SecretValue
from pytest_mnops.standins.receivers import Receivers
from tests.unit.conftest import FakeServer, Request

NAMESPACE = "drills"
CRITICAL = sorted(r["alert"] for r in alert_rules() if r["labels"]["severity"] == "critical")


Budgets = list[tuple[dict[str, Any], float, float]]


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> Budgets:
    """Every wait lasts 0.3 s; what each asked for (configuration, production seconds, floor) is kept."""
    asked: Budgets = []

    def budget(configuration: dict[str, Any], production_s: float, floor_s: float = _shared.MIN_WAIT_S) -> float:
        asked.append((configuration, production_s, floor_s))
        return 0.3

    # Each activity module looks budget up in its own namespace.
    for module in (alert_activities, emergency, secret_rotation, synthetic_alerts):
        monkeypatch.setattr(module, "budget", budget)
    monkeypatch.setattr(alerts_module, "POLL_S", 0.01)
    return asked


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


def _use(monkeypatch: pytest.MonkeyPatch, alerts: Any) -> list[dict[str, Any]]:
    """``alerts`` for the activities; returns the configurations they asked for it with."""
    asked: list[dict[str, Any]] = []

    def use(configuration: dict[str, Any]) -> Any:
        asked.append(configuration)
        return alerts

    for module in (emergency, synthetic_alerts):
        monkeypatch.setattr(module, "_alerts", use)
    return asked


def _use_alerts(
    monkeypatch: pytest.MonkeyPatch, *, receivers_url: str, alertmanager_url: str | None = None
) -> list[dict[str, Any]]:
    alerts = Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=alertmanager_url, receivers_url=receivers_url)
    return _use(monkeypatch, alerts)


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


def _rotated(server: FakeServer, *, old: str | None = "old-value", **extra: Any) -> dict[str, Any]:
    handoff = Handoff(new=SecretValue("new-value"), old=None if old is None else SecretValue(old))
    return _configuration(app_url=f"{server.url}/svc/drills/demo", handoff=handoff, **extra)


def _consumer(consumer: dict[str, Any]) -> dict[str, Any]:
    """PROFILE with another ``secret.consumer``."""
    return {**PROFILE, "secret": {"consumer": consumer}}


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


def test_the_defaults_sample_20_requests_each_after_a_time_scaled_600s_settle(
    app: tuple[FakeServer, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, answers = app
    answers["new-value"] = [200]
    # The real budget: the default 600 production seconds at this target's time scale (above the 30 s floor).
    monkeypatch.setattr(secret_rotation, "budget", _shared.budget)
    rollout, asked = _SettledRollout(), []
    monkeypatch.setattr(secret_rotation, "_rollout", lambda configuration: asked.append(configuration) or rollout)
    configuration = _rotated(server, time_scale=0.25)
    assert secret_rotation.verify_rotated_credentials(configuration)["old_rejected"] is True
    assert rollout.waited == [150.0]
    assert len(asked) == 1 and asked[0] is configuration  # this run's Rollout, not a default one
    tokens = [r.headers["authorization"] for r in server.requests]
    assert tokens == ["Bearer new-value"] * 20 + ["Bearer old-value"] * 20


BARE = {"path": "/auth"}  # no header/value/accept/reject: the credential goes bare in Authorization
OWN_CODES = {"path": "/auth", "value": "Bearer {value}", "accept": ["204"], "reject": [410]}  # YAML may quote them


@pytest.mark.parametrize(
    ("http", "new", "old", "message"),
    [
        (BARE, 200, 401, None),
        (BARE, 200, 403, None),
        (BARE, 204, 401, "the new credential was not accepted by every consumer (answers: [204])"),
        (BARE, 200, 404, "the old credential is still accepted (answers: [404])"),
        (OWN_CODES, 204, 410, None),
        # the profile's codes replace the defaults, they do not add to them
        (OWN_CODES, 200, 410, "the new credential was not accepted by every consumer (answers: [200])"),
        (OWN_CODES, 204, 401, "the old credential is still accepted (answers: [401])"),
    ],
    ids=["401", "403", "new-204", "old-404", "its-codes", "default-200", "default-401"],
)
def test_an_http_consumer_is_judged_by_its_own_codes_else_200_and_401_or_403(
    app: tuple[FakeServer, Any], http: dict[str, Any], new: int, old: int, message: str | None
) -> None:
    server, answers = app
    answers.update({"new-value": [new], "old-value": [old]})
    configuration = _rotated(server, profile=_consumer({"http": http}))
    if message is None:
        verdict = secret_rotation.verify_rotated_credentials(configuration, requests_per_check=2)
        assert verdict["new_accepted"] and verdict["old_rejected"]
    else:
        with pytest.raises(AssertionError) as failed:
            secret_rotation.verify_rotated_credentials(configuration, requests_per_check=2)
        assert str(failed.value) == message
    bare = "new-value" if http is BARE else "Bearer new-value"
    assert {r.headers["authorization"] for r in server.requests[:2]} == {bare}


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (_python("import os, sys; sys.exit(os.environ['MNOPS_SECRET_VALUE'] != 'new-value')"), None),
        (_python(""), "the old credential is still accepted (answers: ['accepted'])"),
        (
            _python("raise SystemExit(1)"),
            "the new credential was not accepted by every consumer (answers: ['rejected'])",
        ),
    ],
    ids=["checks-the-value", "accepts-anything", "rejects-everything"],
)
def test_a_command_consumer_accepts_by_exit_status(
    app: tuple[FakeServer, Any], command: list[str], message: str | None
) -> None:
    """``command:``: the value in MNOPS_SECRET_VALUE, exit 0 = accepted; no app URL, no HTTP request."""
    server, _ = app
    handoff = Handoff(new=SecretValue("new-value"), old=SecretValue("old-value"))
    configuration = _configuration(handoff=handoff, profile=_consumer({"command": command}))
    if message is None:
        result = secret_rotation.verify_rotated_credentials(configuration, requests_per_check=2)
        assert result["new_accepted"] is True and result["old_rejected"] is True
    else:
        with pytest.raises(AssertionError) as failed:
            secret_rotation.verify_rotated_credentials(configuration, requests_per_check=2)
        assert str(failed.value) == message
    assert server.requests == []
    assert secret_rotation._rollout({}).waited == [0.3]  # type: ignore[attr-defined]


def test_a_profile_without_a_consumer_is_named_before_anything_is_checked(app: tuple[FakeServer, Any]) -> None:
    server, _ = app
    profile = {k: v for k, v in PROFILE.items() if k != "secret"}
    with pytest.raises(ConfigError) as failed:
        secret_rotation.verify_rotated_credentials(_rotated(server, profile=profile))
    assert str(failed.value) == (
        "app profile test profile has no `secret.consumer`, which secret-rotation's consumer check needs. "
        f"Fix: add `secret.consumer` to the profile file (--mnops-profile; see {DOCS})."
    )
    assert server.requests == [] and secret_rotation._rollout({}).waited == []  # type: ignore[attr-defined]


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


def test_delivered_alerts_end_the_wait_at_once_not_at_its_deadline(
    receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_alerts(monkeypatch, receivers_url=receivers.url)
    for name in CRITICAL:
        receivers.inbox.add("pager", _webhook(name, mnops_drill="run-1"))
    monkeypatch.setattr(synthetic_alerts, "budget", lambda configuration, production_s, floor_s=0: 5.0)
    started = time.monotonic()
    assert synthetic_alerts.wait_all_delivered(_configuration())["delivered"] == CRITICAL
    assert time.monotonic() - started < 2.5


def test_synthetic_alerts_of_another_namespace_do_not_count(
    receivers: Receivers, monkeypatch: pytest.MonkeyPatch, short_waits: Budgets
) -> None:
    """Parallel drills post the same alerts, with the same run label shape, in their own namespaces."""
    asked = _use_alerts(monkeypatch, receivers_url=receivers.url)
    configuration = _configuration()
    for name in CRITICAL:
        receivers.inbox.add("pager", _webhook(name, namespace="drills-gw1", mnops_drill="run-1"))
    with pytest.raises(ClusterError) as never_fired:
        synthetic_alerts.wait_all_delivered(configuration, status="resolved")
    assert str(never_fired.value) == (
        "the synthetic alerts were never seen delivered firing, so their resolution proves nothing"
    )
    with pytest.raises(ClusterError) as missing:
        synthetic_alerts.wait_all_delivered(configuration)
    assert str(missing.value) == (
        f"firing notifications for {', '.join(CRITICAL)} did not reach receiver 'pager'. "
        "Fix: check Alertmanager's routes for severity=critical and mnops_drill."
    )
    assert asked and all(c is configuration for c in asked)
    # The default: 600 production seconds, at the target's scale, above the usual floor.
    assert [(c is configuration, s, f) for c, s, f in short_waits] == [(True, 600, _shared.MIN_WAIT_S)]


def _without_receivers() -> dict[str, Any]:
    return {**PROFILE, "synthetic_alerts": {"severity": "critical"}}


class _Alertmanager:
    """Alerts with Alertmanager's word only (no receivers to read back): what it holds and its counters."""

    proof = "alertmanager"

    def __init__(self, held: list[dict[str, Any]], counts: dict[str, tuple[float, float]] | None = None) -> None:
        self.held, self.counts = held, counts or {}
        self.calls: list[tuple[Any, ...]] = []

    def config(self) -> dict[str, Any]:
        return {"receivers": [{"name": "pager", "webhook_configs": [{"url": "http://pager.invalid"}]}]}

    def active(self, matcher: str) -> list[dict[str, Any]]:
        self.calls.append(("active", matcher))
        return self.held

    def notification_counts(self) -> dict[str, tuple[float, float]]:
        return self.counts

    def silence(self, matchers: dict[str, str], *, duration_s: float, comment: str) -> str:
        self.calls.append(("silence", matchers, duration_s, comment))
        return "s-1"

    def post(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        self.calls.append(("post", labels, annotations))

    def holding(self, name: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        self.calls.append(("holding", name, labels))
        return self.held

    def expire_silence(self, silence_id: str) -> None:
        self.calls.append(("expire", silence_id))


def _routed_to_pager() -> list[dict[str, Any]]:
    return [{"labels": {"alertname": n, "mnops_drill": "run-1"}, "receivers": [{"name": "pager"}]} for n in CRITICAL]


def test_without_receivers_alertmanager_routed_and_sent_every_synthetic_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1 failed notification before and after: only the sent ones since the baseline count.
    alertmanager = _Alertmanager(_routed_to_pager(), {"webhook": (3.0 + len(CRITICAL), 1.0)})
    asked = _use(monkeypatch, alertmanager)
    configuration = _configuration(handoff=Handoff(notifications_baseline={"webhook": (3.0, 1.0)}))
    result = synthetic_alerts.wait_all_delivered(configuration)
    assert (result["delivered"], result["receivers"], result["status"]) == (CRITICAL, ["pager"], "firing")
    assert result["proof"] == "alertmanager" and "detected_at" in result
    assert alertmanager.calls == [("active", 'mnops_drill="run-1"')]  # this run's synthetic alerts only
    assert configuration["handoff"]["notifications_baseline"] == alertmanager.counts  # resolved counts from here
    assert configuration["handoff"]["synthetic_delivered"] is True
    assert asked and all(c is configuration for c in asked)


def test_without_receivers_one_notification_short_fails_naming_the_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    alertmanager = _Alertmanager(_routed_to_pager(), {"webhook": (3.0 + len(CRITICAL) - 1, 0.0)})
    _use(monkeypatch, alertmanager)
    baseline = {"webhook": (3.0, 0.0)}
    configuration = _configuration(handoff=Handoff(notifications_baseline=baseline))
    with pytest.raises(ClusterError) as short:
        synthetic_alerts.wait_all_delivered(configuration)
    assert str(short.value) == (
        f"synthetic alerts not delivered (firing): receiver 'pager' sent fewer than {len(CRITICAL)} firing "
        f"notifications (webhook +{len(CRITICAL) - 1} without failures)."
    )
    assert configuration["handoff"]["notifications_baseline"] == baseline
    assert "synthetic_delivered" not in configuration["handoff"]


SILENCED = {
    "alertname": "MnopsSilenceCheck",
    "namespace": NAMESPACE,
    "severity": "critical",
    "mnops_drill": "run-1",
    "mnops_check": "silence",
}


@pytest.mark.parametrize(
    ("held", "message"),
    [
        ([{"status": {"state": "suppressed", "silencedBy": ["s-1"]}}], None),
        (
            [
                {"status": {"silencedBy": ["s-1"]}},
                {"status": {"silencedBy": ["s-0"]}},  # silenced, but by someone else's silence
                {"status": {"state": "active"}},
                {},
            ],
            "silence s-1 did not suppress MnopsSilenceCheck: 3 not silenced by Alertmanager",
        ),
    ],
    ids=["held-silenced", "three-not-by-it"],
)
def test_without_receivers_alertmanager_must_hold_the_alert_silenced_by_this_silence(
    monkeypatch: pytest.MonkeyPatch, short_waits: Budgets, held: list[dict[str, Any]], message: str | None
) -> None:
    alertmanager = _Alertmanager(held)
    asked = _use(monkeypatch, alertmanager)
    configuration = _configuration()
    if message is None:
        assert synthetic_alerts.silence_and_check("MnopsSilenceCheck", configuration) == {
            "silenced": "MnopsSilenceCheck",
            "suppressed": True,
            "proof": "alertmanager",
        }
    else:
        with pytest.raises(AssertionError) as leaked:
            synthetic_alerts.silence_and_check("MnopsSilenceCheck", configuration)
        assert str(leaked.value) == message
    assert alertmanager.calls == [
        ("silence", SILENCED, 600, "pytest-mnops monitoring-alerts drill"),
        ("post", SILENCED, {"summary": "silenced synthetic alert"}),
        ("holding", "MnopsSilenceCheck", {"mnops_drill": "run-1", "mnops_check": "silence"}),
        ("expire", "s-1"),
    ]
    assert asked and all(c is configuration for c in asked)
    # Held 60 production seconds by default, never under 5: longer than group_wait + group_interval.
    assert [(c is configuration, s, f) for c, s, f in short_waits] == [(True, 60, 5)]


def test_a_silenced_alert_alertmanager_never_held_proves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    alertmanager = _Alertmanager([])
    _use(monkeypatch, alertmanager)
    with pytest.raises(ClusterError) as never:
        synthetic_alerts.silence_and_check("MnopsSilenceCheck", _configuration())
    assert str(never.value) == "the silenced MnopsSilenceCheck never reached Alertmanager: the check proves nothing"
    assert alertmanager.calls[-1] == ("expire", "s-1")


def test_a_silenced_alert_at_a_channel_the_profile_does_not_name_is_no_leak(
    receivers: Receivers, http_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_alerts(monkeypatch, receivers_url=receivers.url, alertmanager_url=http_server.url)
    http_server.answer = lambda request: (200, {"silenceID": "s-1"} if request.path == "/api/v2/silences" else None)
    receivers.inbox.add("slack", {"alerts": [{"labels": {"mnops_check": "silence", "mnops_drill": "run-1"}}]})
    result = synthetic_alerts.silence_and_check("MnopsSilenceCheck", _configuration())
    assert result == {"silenced": "MnopsSilenceCheck", "suppressed": True, "proof": "receiver"}


@pytest.mark.parametrize("check", ["wait_all_delivered", "silence_and_check"])
def test_a_profile_without_synthetic_receivers_is_named_before_anything_is_posted(
    monkeypatch: pytest.MonkeyPatch, check: str
) -> None:
    alertmanager = _Alertmanager(_routed_to_pager())
    _use(monkeypatch, alertmanager)
    configuration = _configuration(profile=_without_receivers())
    with pytest.raises(ConfigError) as failed:
        if check == "wait_all_delivered":
            synthetic_alerts.wait_all_delivered(configuration)
        else:
            synthetic_alerts.silence_and_check("MnopsSilenceCheck", configuration)
    assert str(failed.value) == (
        "app profile test profile has no `synthetic_alerts.receivers`, which monitoring-alerts needs. "
        f"Fix: add `synthetic_alerts.receivers` to the profile file (--mnops-profile; see {DOCS})."
    )
    assert alertmanager.calls == []


def test_wait_for_alert_marks_detection_or_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    class FakeAlerts:
        def wait_for(self, name: str, state: str, *, within: float, labels: dict[str, str], namespace: str) -> float:
            seen.append((name, state, within, labels, namespace))
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
        ("HighErrorRate", "firing", 0.3, {"namespace": NAMESPACE}, NAMESPACE),
        ("HighErrorRate", "resolved", 0.3, {"namespace": NAMESPACE}, NAMESPACE),
    ]


@pytest.mark.parametrize(("state", "quiet"), [("resolved", True), ("pending", False), ("firing", False)])
def test_an_alert_is_quiet_only_when_neither_pending_nor_firing_in_the_namespace(
    monkeypatch: pytest.MonkeyPatch, state: str, quiet: bool
) -> None:
    asked: list[tuple[Any, ...]] = []

    class FakeAlerts:
        def state(self, name: str, labels: dict[str, str], namespace: str) -> str:
            asked.append((name, labels, namespace))
            return state

    monkeypatch.setattr(steady_state, "_alerts", lambda configuration: FakeAlerts())
    assert steady_state.alert_quiet("error", _configuration()) is quiet
    assert asked == [("HighErrorRate", {"namespace": NAMESPACE}, NAMESPACE)]
