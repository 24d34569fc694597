"""The drills' detection by the app's own alerts: an alert of the profile reaching its state, its notification
proven delivered to its receiver since this run's baseline."""

from __future__ import annotations

import time
from typing import Any

from pytest_mnops.chaos.activities._shared import (
    Configuration,
    _alerts,
    _handoff,
    _needed,
    _profile,
    _run_started,
    budget,
)
from pytest_mnops.errors import ClusterError
from pytest_mnops.observability.alerts import Delivery
from pytest_mnops.profile.model import ExpectedAlert


def record_delivery_baseline(configuration: Configuration) -> dict[str, Any]:
    """Alertmanager's notification counters before the fault: the drill's window starts here."""
    alerts = _alerts(configuration)
    if alerts.proof == "alertmanager":
        _needed(configuration, "alertmanager_url", "--mnops-alertmanager-url")
        _handoff(configuration)["notifications_baseline"] = alerts.notification_counts()
    return {"proof": alerts.proof}


def _expected(key: str, configuration: Configuration) -> ExpectedAlert:
    return _profile(configuration).alert(key, f"the drill's `{key}` alert")


def wait_for_alert(
    alert: str, configuration: Configuration, state: str = "firing", within_s: float = 600
) -> dict[str, Any]:
    """The profile's alert ``alert`` (``alerts.<alert>``) reaches ``state``; firing also proves its delivery.

    ``resolved`` counts only after this run saw it firing: an alert that never fired is not "resolved".
    """
    expected, alerts, seen = _expected(alert, configuration), _alerts(configuration), _handoff(configuration)
    if state == "resolved" and alert not in seen.setdefault("fired", set()):
        raise ClusterError(f"alert {expected.name} was never seen firing in this run, so its resolution proves nothing")
    namespace = configuration["namespace"]
    alerts.wait_for(
        expected.name, state, within=budget(configuration, within_s), labels=expected.labels, namespace=namespace
    )
    key = "recovered_at" if state == "resolved" else "detected_at"
    result: dict[str, Any] = {"alert": expected.name, "state": state, key: time.time()}
    if state == "firing":
        seen.setdefault("fired", set()).add(alert)
        if expected.receiver:
            delivery = _prove(expected, configuration, within_s)
            result.update(receiver=delivery.receiver, proof=delivery.proof, delivery=delivery.detail)
    return result


def _prove(expected: ExpectedAlert, configuration: Configuration, within_s: float, status: str = "firing") -> Delivery:
    assert expected.receiver is not None
    return _alerts(configuration).prove_delivered(
        expected.name,
        expected.labels,
        expected.receiver,
        within=budget(configuration, within_s),
        since=_run_started(configuration),
        baseline=_handoff(configuration).get("notifications_baseline"),
        status=status,
    )
