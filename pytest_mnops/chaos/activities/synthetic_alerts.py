"""monitoring-alerts: synthetic copies of the profile's alert rules posted into Alertmanager (only where a route
keeps them from paging), each delivered to every receiver, a silence holding, all of them resolved."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pytest_mnops.chaos.activities._shared import Configuration, _alerts, _handoff, _needed, _profile, budget
from pytest_mnops.errors import ClusterError, ConfigError
from pytest_mnops.observability.alerts import Alerts, notifies

# The label every synthetic alert carries: the user's Alertmanager routes it away from real on-call.
DRILL_LABEL = "mnops_drill"


def synthetic_alerts_active(configuration: Configuration) -> int:
    """Synthetic alerts about this namespace that Alertmanager still holds: an interrupted monitoring-alerts
    run's, until its rollback (or `mnops recover`) ends them. Real alerts are not this drill's to judge: its
    evidence is matched to its own run, and whether anything fires at rest is a validation check."""
    namespace = configuration["namespace"]
    if not configuration.get("alertmanager_url"):
        return 0  # the drill fails at setup naming --mnops-alertmanager-url; nothing of it can be held
    held = _alerts(configuration).active(f'{DRILL_LABEL}=~".+"')
    return sum(1 for alert in held if alert["labels"].get("namespace") == namespace)


def _synthetic_rules(configuration: Configuration) -> tuple[list[dict[str, Any]], str]:
    """The rules of the profile's ``rule_files`` with the profile's ``synthetic_alerts.severity``."""
    from pytest_mnops.observability.rules import alert_rules

    profile = _profile(configuration)
    files = profile.need("rule_files", "monitoring-alerts")
    severity = str(profile.get("synthetic_alerts.severity") or "critical")
    found = [rule for file in files for rule in alert_rules(file=Path(file))]
    rules = [r for r in found if (r.get("labels") or {}).get("severity") == severity]
    if not rules:
        raise ConfigError(
            f"the profile's rule_files ({', '.join(files)}) hold no alert rule with severity={severity}: "
            "monitoring-alerts would prove nothing. Fix: set `synthetic_alerts.severity` or `rule_files`."
        )
    return rules, severity


def check_synthetic_route(configuration: Configuration) -> dict[str, Any]:
    """Outside the sandbox, synthetic alerts are posted only if Alertmanager routes the drill label (so they
    never page real on-call by accident), or the user opted in with --mnops-allow-synthetic-alerts."""
    from pytest_mnops.observability.alerts import routes_label

    if configuration.get("sandbox") or configuration.get("allow_synthetic_alerts"):
        return {"routed": None, "posting": True}
    _needed(configuration, "alertmanager_url", "--mnops-alertmanager-url")
    route = _alerts(configuration).config().get("route") or {}
    if not routes_label(route, DRILL_LABEL):
        raise ConfigError(
            f"refusing to post synthetic alerts: Alertmanager at {configuration['alertmanager_url']} has no route "
            f"matching the label {DRILL_LABEL}, so they would page whoever its routes page. Nothing was posted. "
            f'Fix: add the route `matchers: [{DRILL_LABEL}=~".+"]` to a receiver that pages no one (see '
            "docs/drilling-your-own-app.md#the-alertmanager-route), or pass --mnops-allow-synthetic-alerts."
        )
    return {"routed": True, "posting": True}


def post_synthetic_alerts(configuration: Configuration) -> dict[str, Any]:
    """Fire, straight into Alertmanager, one synthetic copy of every rule of the profile's severity.

    Every copy carries ``mnops_drill=<run id>``: the user's route for that label keeps it from paging.
    """
    check_synthetic_route(configuration)
    rules, _ = _synthetic_rules(configuration)
    alerts = _alerts(configuration)
    if alerts.proof == "alertmanager":
        _handoff(configuration)["notifications_baseline"] = alerts.notification_counts()
    names = []
    for rule in rules:
        alerts.post(
            {
                **rule["labels"],
                "alertname": rule["alert"],
                "namespace": configuration["namespace"],
                DRILL_LABEL: configuration["run_id"],
            },
            rule.get("annotations", {}),
        )
        names.append(rule["alert"])
    return {"alerts": names, "count": len(names), "proof": alerts.proof}


def wait_all_delivered(configuration: Configuration, status: str = "firing", within_s: float = 600) -> dict[str, Any]:
    """Every synthetic alert of this run reached every receiver of ``synthetic_alerts.receivers`` with ``status``."""
    profile = _profile(configuration)
    receivers = [str(r) for r in profile.need("synthetic_alerts.receivers", "monitoring-alerts")]
    rules, severity = _synthetic_rules(configuration)
    names = sorted(r["alert"] for r in rules)
    alerts, run_id, handoff = _alerts(configuration), configuration["run_id"], _handoff(configuration)
    if status == "resolved" and not handoff.get("synthetic_delivered"):
        raise ClusterError("the synthetic alerts were never seen delivered firing, so their resolution proves nothing")
    deadline = time.monotonic() + budget(configuration, within_s)
    if alerts.proof == "receiver":
        for receiver in receivers:
            missing = set(names)
            while missing and time.monotonic() < deadline:
                # A real alert of the same name shares the notification group: only this run's count.
                ours = {DRILL_LABEL: run_id}
                for item in alerts.received(receiver):
                    missing -= {n for n in missing if notifies(item["payload"], n, status, profile.namespace, ours)}
                time.sleep(0.25)
            if missing:
                raise ClusterError(
                    f"{status} notifications for {', '.join(sorted(missing))} did not reach receiver {receiver!r}. "
                    f"Fix: check Alertmanager's routes for severity={severity} and {DRILL_LABEL}."
                )
    else:
        _wait_sent_by_alertmanager(alerts, names, receivers, status, run_id, handoff, deadline)
    handoff["synthetic_delivered"] = True
    key = "recovered_at" if status == "resolved" else "detected_at"
    return {"delivered": names, "receivers": receivers, "status": status, "proof": alerts.proof, key: time.time()}


def _wait_sent_by_alertmanager(
    alerts: Alerts,
    names: list[str],
    receivers: list[str],
    status: str,
    run_id: str,
    handoff: dict[str, Any],
    deadline: float,
) -> None:
    """Alertmanager routed each synthetic alert to every receiver (firing) or holds none of them any more
    (resolved), and each receiver's integrations sent one notification per alert since the last stage."""
    from pytest_mnops.observability.alerts import receiver_integrations, sent_since

    config = alerts.config()
    integrations = {r: receiver_integrations(config, r) for r in receivers}
    before = handoff["notifications_baseline"]
    problem = ""
    while time.monotonic() < deadline:
        held = [a for a in alerts.active(f'{DRILL_LABEL}="{run_id}"') if a["labels"]["alertname"] in names]
        counts = alerts.notification_counts()
        problem = ""
        if status == "firing":
            for receiver in receivers:
                unrouted = sorted(
                    {a["labels"]["alertname"] for a in held}
                    - {a["labels"]["alertname"] for a in held if receiver in {r["name"] for r in a["receivers"]}}
                )
                if len({a["labels"]["alertname"] for a in held}) < len(names):
                    problem = f"only {len(held)} of {len(names)} synthetic alerts reached Alertmanager"
                elif unrouted:
                    problem = (
                        f"{', '.join(unrouted)} reached Alertmanager but not receiver {receiver!r}. Fix: add a route "
                        f"to {receiver!r} for them in Alertmanager's configuration"
                    )
        elif held:
            problem = f"Alertmanager still holds {len(held)} synthetic alerts as active"
        for receiver, kinds in integrations.items():
            short = {i: n for i in kinds if (n := sent_since(before, counts, i)) < len(names)}
            if not problem and short:
                problem = (
                    f"receiver {receiver!r} sent fewer than {len(names)} {status} notifications "
                    f"({', '.join(f'{i} +{n:g}' for i, n in short.items())} without failures)"
                )
        if not problem:
            handoff["notifications_baseline"] = counts  # the next stage (resolved) counts from here
            return
        time.sleep(0.25)
    raise ClusterError(f"synthetic alerts not delivered ({status}): {problem}.")


def silence_and_check(alertname: str, configuration: Configuration, hold_s: float = 60) -> dict[str, Any]:
    """A silenced alert, fired again, must not be delivered while the silence holds."""
    alerts = _alerts(configuration)
    receivers = [str(r) for r in _profile(configuration).need("synthetic_alerts.receivers", "monitoring-alerts")]
    labels = {
        "alertname": alertname,
        "namespace": configuration["namespace"],
        "severity": "critical",
        DRILL_LABEL: configuration["run_id"],
        "mnops_check": "silence",
    }
    silence = alerts.silence(labels, duration_s=600, comment="pytest-mnops monitoring-alerts drill")
    try:
        alerts.post(labels, {"summary": "silenced synthetic alert"})
        # Longer than Alertmanager's group_wait + group_interval: an unsilenced alert would have arrived.
        time.sleep(budget(configuration, hold_s, floor_s=5))
        if alerts.proof == "receiver":
            leaked = [
                i
                for r in receivers
                for i in alerts.received(r)
                if "silence" in str(i["payload"]) and configuration["run_id"] in str(i["payload"])
            ]
        else:
            held = alerts.holding(alertname, {DRILL_LABEL: configuration["run_id"], "mnops_check": "silence"})
            leaked = [a for a in held if silence not in (a.get("status") or {}).get("silencedBy", [])]
            if not held:
                raise ClusterError(f"the silenced {alertname} never reached Alertmanager: the check proves nothing")
        if leaked:
            how = "delivered" if alerts.proof == "receiver" else "not silenced by Alertmanager"
            raise AssertionError(f"silence {silence} did not suppress {alertname}: {len(leaked)} {how}")
    finally:
        alerts.expire_silence(silence)
    return {"silenced": alertname, "suppressed": True, "proof": alerts.proof}


def resolve_synthetic_alerts(configuration: Configuration) -> int:
    """End every synthetic alert this drill posted (endsAt now): Alertmanager then resolves them."""
    if not configuration.get("alertmanager_url"):
        return 0  # nothing can have been posted
    alerts = _alerts(configuration)
    count = 0
    for alert in alerts.active(f'{DRILL_LABEL}="{configuration["run_id"]}"'):
        alerts.post(alert["labels"], alert.get("annotations", {}), ends_in_s=0)
        count += 1
    return count
