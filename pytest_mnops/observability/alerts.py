"""Alert states as Prometheus (``ALERTS``), Alertmanager (API v2) and the receivers see them."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

import requests
import yaml

from pytest_mnops.errors import ClusterError, ConfigError, WaitTimeout
from pytest_mnops.observability import reach
from pytest_mnops.observability.prometheus import POLL_S, Prometheus

STATES = ("pending", "firing", "resolved")
PROOFS = ("receiver", "alertmanager")
# Alertmanager's own counters, per integration (webhook, email, slack, pagerduty...). Version 0.25 has no
# receiver label on them: a receiver's notification is proven by the counters of its integrations.
SENT, FAILED = "alertmanager_notifications_total", "alertmanager_notifications_failed_total"
_COUNTER = re.compile(r'^(alertmanager_notifications(?:_failed)?_total)\{[^}]*integration="([^"]+)"[^}]*\}\s+(\S+)')
Counts = dict[str, tuple[float, float]]  # integration -> (sent, failed)


@dataclass(frozen=True)
class Delivery:
    """Evidence that an alert's notification went out: read back at the receiver, or from Alertmanager."""

    alert: str
    receiver: str
    proof: str  # one of PROOFS
    at: float
    detail: str


def parse_counts(metrics_text: str) -> Counts:
    """Notifications sent and failed per integration, from Alertmanager's /metrics."""
    counts: dict[str, list[float]] = {}
    for line in metrics_text.splitlines():
        match = _COUNTER.match(line)
        if match:
            slot = counts.setdefault(match.group(2), [0.0, 0.0])
            slot[match.group(1) == FAILED] += float(match.group(3))
    return {integration: (sent, failed) for integration, (sent, failed) in counts.items()}


def sent_since(before: Counts, now: Counts, integration: str) -> float:
    """Notifications through ``integration`` since ``before`` that did not fail."""
    sent0, failed0 = before.get(integration, (0.0, 0.0))
    sent1, failed1 = now.get(integration, (0.0, 0.0))
    return (sent1 - sent0) - (failed1 - failed0)


def receiver_integrations(config: dict[str, Any], receiver: str) -> list[str]:
    """The integrations (``webhook_configs`` -> webhook...) a receiver of an Alertmanager config sends through."""
    for entry in config.get("receivers") or []:
        if entry.get("name") == receiver:
            return sorted(k.removesuffix("_configs") for k, v in entry.items() if k.endswith("_configs") and v)
    known = ", ".join(sorted(str(r.get("name")) for r in config.get("receivers") or []))
    raise ConfigError(
        f"Alertmanager has no receiver {receiver!r} (receivers: {known}). Fix: correct the profile's alert "
        "`receiver:`, or add the receiver to Alertmanager's configuration."
    )


def routes_label(route: dict[str, Any], label: str) -> bool:
    """Some route of the tree matches on ``label`` (``matchers``, ``match`` or ``match_re``)."""
    matchers = [str(m) for m in route.get("matchers") or []]
    if any(re.match(rf"\s*{re.escape(label)}\s*(=|!=|=~|!~)", m) for m in matchers):
        return True
    if label in (route.get("match") or {}) or label in (route.get("match_re") or {}):
        return True
    return any(routes_label(child, label) for child in route.get("routes") or [])


def _selector(name: str, labels: dict[str, str] | None, namespace: str | None = None) -> str:
    matchers = [f'alertname="{name}"'] + [f'{k}="{v}"' for k, v in (labels or {}).items()]
    # The namespace's alerts, and those whose rule keeps no namespace label: never another namespace's.
    matchers += [f'namespace=~"{namespace}|"'] if namespace else []
    return "{" + ",".join(matchers) + "}"


class Alerts:
    def __init__(
        self, prometheus: Prometheus, *, alertmanager_url: str | None, receivers_url: str | None = None
    ) -> None:
        self.prometheus = prometheus
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.receivers_url = receivers_url.rstrip("/") if receivers_url else None

    # -- Prometheus' view -----------------------------------------------------------------------------
    def state(self, name: str, labels: dict[str, str] | None = None, namespace: str | None = None) -> str:
        """'firing', 'pending', or 'resolved' (no ALERTS series: inactive); in ``namespace`` when given."""
        selector = _selector(name, labels, namespace)
        states = {s["metric"]["alertstate"] for s in self.prometheus.query("ALERTS" + selector)}
        return "firing" if "firing" in states else "pending" if "pending" in states else "resolved"

    def wait_for(
        self,
        name: str,
        state: str = "firing",
        *,
        within: float,
        labels: dict[str, str] | None = None,
        namespace: str | None = None,
    ) -> float:
        """Block until the alert reaches ``state``; returns the seconds it took."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        started = time.monotonic()
        deadline = started + within
        while True:
            seen = self.state(name, labels, namespace)
            # A fast alert can pass through pending between two polls: firing also satisfies pending.
            if seen == state or (state == "pending" and seen == "firing"):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"alert {name}{_selector(name, labels, namespace)} did not become {state} within "
                    f"{within:.0f}s (last state: {seen}). Fix: check the rule in "
                    "monitoring/prometheus-alerts.yaml is loaded and its expression matches."
                )
            time.sleep(POLL_S)

    def firing(self, severity: str | None = None) -> list[dict[str, str]]:
        matchers = ['alertstate="firing"'] + ([f'severity="{severity}"'] if severity else [])
        return [s["metric"] for s in self.prometheus.query("ALERTS{" + ",".join(matchers) + "}")]

    def assert_none_firing(self, severity: str | None = None, *, ignore: tuple[str, ...] = ()) -> None:
        firing = [a for a in self.firing(severity) if a["alertname"] not in ignore]
        if firing:
            names = ", ".join(sorted(f"{a['alertname']}({a.get('namespace', '')})" for a in firing))
            raise AssertionError(f"alerts firing at rest: {names}")

    # -- Alertmanager ---------------------------------------------------------------------------------
    def _am(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self.alertmanager_url:
            raise ClusterError("no Alertmanager URL for this target. Fix: pass --mnops-alertmanager-url.")
        url = f"{self.alertmanager_url}/api/v2{path}"
        try:
            resp = reach.call(
                "Alertmanager",
                self.alertmanager_url,
                lambda: requests.request(method, url, timeout=reach.TIMEOUT, **kwargs),
            )
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise ClusterError(f"Alertmanager {self.alertmanager_url}: {method} {path}: {exc}") from None
        return resp.json() if resp.content else None

    def active(self, matcher: str) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds that match one matcher, e.g. ``alertname="HighLatencyP95"``."""
        return self._am("GET", "/alerts", params={"filter": matcher})

    def post(
        self, labels: dict[str, str], annotations: dict[str, str] | None = None, *, ends_in_s: float = 300
    ) -> None:
        """Send an alert straight to Alertmanager, as Prometheus would."""
        now = dt.datetime.now(dt.UTC)
        self._am(
            "POST",
            "/alerts",
            json=[
                {
                    "labels": labels,
                    "annotations": annotations or {},
                    "startsAt": now.isoformat(),
                    "endsAt": (now + dt.timedelta(seconds=ends_in_s)).isoformat(),
                }
            ],
        )

    def silence(self, matchers: dict[str, str], *, duration_s: float, comment: str) -> str:
        now = dt.datetime.now(dt.UTC)
        body = {
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
            "startsAt": now.isoformat(),
            "endsAt": (now + dt.timedelta(seconds=duration_s)).isoformat(),
            "createdBy": "pytest-mnops",
            "comment": comment,
        }
        return self._am("POST", "/silences", json=body)["silenceID"]

    def expire_silence(self, silence_id: str) -> None:
        self._am("DELETE", f"/silence/{silence_id}")

    def config(self) -> dict[str, Any]:
        """The configuration Alertmanager runs (``/api/v2/status`` ``config.original``)."""
        text = self._am("GET", "/status")["config"]["original"]
        return yaml.safe_load(text) or {}

    def notification_counts(self) -> Counts:
        if not self.alertmanager_url:
            raise ConfigError("no Alertmanager URL for this target. Fix: pass --mnops-alertmanager-url.")
        url = f"{self.alertmanager_url}/metrics"
        try:
            resp = reach.call("Alertmanager", self.alertmanager_url, lambda: requests.get(url, timeout=reach.TIMEOUT))
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise ClusterError(f"Alertmanager {self.alertmanager_url}: GET /metrics: {exc}") from None
        return parse_counts(resp.text)

    def holding(self, name: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds named ``name`` with ``labels`` (any state: active, suppressed)."""
        matchers = [f'alertname="{name}"'] + [f'{k}="{v}"' for k, v in labels.items()]
        params = [("filter", m) for m in matchers] + [("silenced", "true"), ("inhibited", "true")]
        return self._am("GET", "/alerts", params=params)

    @property
    def proof(self) -> str:
        """The strongest proof this target allows: the receivers' read-back, else Alertmanager's own word."""
        return "receiver" if self.receivers_url else "alertmanager"

    def prove_delivered(
        self,
        name: str,
        labels: dict[str, str],
        receiver: str,
        *,
        within: float,
        since: float,
        baseline: Counts | None,
        status: str = "firing",
    ) -> Delivery:
        """The notification about alert ``name`` (``labels``) reached ``receiver``.

        With receivers to read back, the receiver got it. Otherwise Alertmanager routed the alert to
        ``receiver`` (``/api/v2/alerts`` ``receivers``) and sent through each of the receiver's integrations
        without failure since ``baseline`` (its ``/metrics``).
        """
        if self.receivers_url:
            item = self.wait_delivered(
                name, receiver, within=within, status=status, since=since, namespace=labels.get("namespace")
            )
            return Delivery(name, receiver, "receiver", item["received_at"], f"read back from {receiver!r}")
        if baseline is None:
            raise ClusterError("no notification counts of before the drill to compare with (baseline not taken)")
        integrations = receiver_integrations(self.config(), receiver)
        if not integrations:
            raise ConfigError(f"Alertmanager receiver {receiver!r} has no integration: it sends nothing. Fix: add one.")
        deadline = time.monotonic() + within
        routed: set[str] = set()
        while True:
            held = self.holding(name, labels) if status == "firing" else []
            routed = {r["name"] for a in held for r in a.get("receivers") or []}
            counts = self.notification_counts()
            sent = {i: sent_since(baseline, counts, i) for i in integrations}
            if (status != "firing" or receiver in routed) and all(n >= 1 for n in sent.values()):
                shown = ", ".join(f"{i} +{n:g}" for i, n in sent.items())
                return Delivery(name, receiver, "alertmanager", time.time(), f"routed to {receiver!r}; sent: {shown}")
            if time.monotonic() > deadline:
                raise WaitTimeout(self._undelivered(name, labels, receiver, status, held, routed, sent, within))
            time.sleep(POLL_S)

    @staticmethod
    def _undelivered(
        name: str,
        labels: dict[str, str],
        receiver: str,
        status: str,
        held: list[dict[str, Any]],
        routed: set[str],
        sent: dict[str, float],
        within: float,
    ) -> str:
        what = f"alert {name}{_selector(name, labels)}"
        if status == "firing" and not held:
            return f"{what} never reached Alertmanager within {within:.0f}s. Fix: check Prometheus' alerting config."
        if status == "firing" and receiver not in routed:
            return (
                f"{what} reached Alertmanager but was routed to {', '.join(sorted(routed)) or 'no receiver'}, not "
                f"to receiver {receiver!r}. Fix: add a route to {receiver!r} for it in Alertmanager's configuration."
            )
        counts = ", ".join(f"{i} {n:+g}" for i, n in sent.items())
        return (
            f"no {status} notification of {what} was sent by receiver {receiver!r} within {within:.0f}s "
            f"(alertmanager_notifications_total minus failed since the drill started: {counts}). Fix: check the "
            f"receiver's endpoint; Alertmanager's log says why a notification failed."
        )

    # -- receivers --------------------------------------------------------------------------------------
    def received(self, channel: str) -> list[dict[str, Any]]:
        if not self.receivers_url:
            raise ClusterError("no receivers URL for this target. Fix: pass --mnops-receivers-url.")
        url = f"{self.receivers_url}/received"
        try:
            resp = reach.call(
                "notification receivers",
                self.receivers_url,
                lambda: requests.get(url, params={"channel": channel}, timeout=reach.TIMEOUT),
            )
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise ClusterError(f"receivers {self.receivers_url}: {exc}") from None
        return resp.json()

    def wait_delivered(
        self,
        name: str,
        channel: str,
        *,
        within: float,
        status: str = "firing",
        since: float = 0.0,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """The first notification about alert ``name`` (in ``namespace``) with ``status`` that reached ``channel``."""
        deadline = time.monotonic() + within
        while True:
            for item in self.received(channel):
                if item["received_at"] >= since and notifies(item["payload"], name, status, namespace):
                    return item
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"no {status} notification for alert {name} reached receiver {channel!r} "
                    f"within {within:.0f}s. Fix: check the route in monitoring/alertmanager.yml."
                )
            time.sleep(POLL_S)


def notifies(
    payload: Any, name: str, status: str, namespace: str | None = None, labels: dict[str, str] | None = None
) -> bool:
    """Webhook payloads carry alerts[]; Slack payloads and e-mails carry rendered text. With ``namespace``, only
    a notification about that namespace counts: parallel drills fire the same alerts in their own ones. With
    ``labels``, only an alert carrying them (a text: naming their values) counts: one notification groups every
    alert of a name and namespace, a drill's synthetic one with a real one."""
    wanted = labels or {}
    if isinstance(payload, dict) and isinstance(payload.get("alerts"), list):
        return any(
            a.get("labels", {}).get("alertname") == name
            and a.get("status") == status
            and namespace in (None, a.get("labels", {}).get("namespace"))
            and all(a.get("labels", {}).get(k) == v for k, v in wanted.items())
            for a in payload["alerts"]
        )
    text = str(payload)
    # The whole name: drills-gw1 must not match a message about drills-gw10.
    about = namespace is None or re.search(rf"(?<![\w-]){re.escape(namespace)}(?![\w-])", text) is not None
    named = name in text and all(v in text for v in wanted.values())
    return named and about and (status != "resolved" or "RESOLVED" in text.upper())
