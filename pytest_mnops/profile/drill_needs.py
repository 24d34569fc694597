"""What each drill needs of the profile and the target, checked at setup (the app's pods, its SLOs' data),
and the SLO its report plots."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_mnops.errors import ConfigError
from pytest_mnops.k8s import resources
from pytest_mnops.profile.model import AppProfile, SloCheck

if TYPE_CHECKING:
    from pytest_mnops.k8s import Kube
    from pytest_mnops.observability.prometheus import Prometheus
    from pytest_mnops.target import Target

# How long, in production seconds, an SLO query may take to return data (a new app's first scrapes and rate
# windows) before the drill fails with "no data"; scaled, never below DATA_WAIT_MIN_S.
DATA_WAIT_S = 120.0
DATA_WAIT_MIN_S = 30.0


def matching_pods(kube: Kube, profile: AppProfile) -> list[str]:
    pods, _ = kube.list(resources.POD, namespace=profile.namespace, label_selector=profile.label_selector)
    return sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))


def require_pods(kube: Kube, profile: AppProfile) -> list[str]:
    names = matching_pods(kube, profile)
    if not names:
        raise ConfigError(
            f"selector {profile.label_selector} (app profile {profile.source}) matches no pods in namespace "
            f"{profile.namespace!r}: a drill would touch and prove nothing. Fix: check the {profile.kind}'s "
            "spec.selector and its pods, or correct `selector:` in the profile."
        )
    return names


class DataWindow:
    """The time a new app's SLO queries get to return data, counted from the run's first look: a later drill
    gets what is left of it (at least one query), not a wait of its own. A series missing that long is missing,
    and every drill of a run waiting again for it made "no data" cost a full wait per drill."""

    def __init__(self, time_scale: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget_s = max(DATA_WAIT_S * time_scale, DATA_WAIT_MIN_S)
        self._clock = clock
        self._opened: float | None = None

    def left_s(self) -> float:
        now = self._clock()
        if self._opened is None:
            self._opened = now
        return max(0.0, self._opened + self.budget_s - now)


def wait_for_data(prometheus: Prometheus, slo: SloCheck, *, timeout_s: float) -> float:
    """The SLO query's value once it has one (a freshly deployed app's first scrapes); no data is a failure."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = prometheus.value(slo.query)
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise ConfigError(no_data(slo))
        time.sleep(1)


def no_data(slo: SloCheck) -> str:
    return (
        f"no data for {slo.query} (profile key slo.{slo.key}, from {slo.source}): the app exports no such series, "
        "so the drill could prove nothing. Fix: check the app's metrics are scraped, or set "
        f"`slo.{slo.key}.query` in the profile to a query over its own metrics."
    )


# -- what each drill needs -----------------------------------------------------------------------------------

# Per drill: SLO keys it judges the steady state by, alerts it expects, other profile keys, target settings
# (attribute, option), the SLO its report plots. docs/drilling-your-own-app.md has the same table for people.
DRILL_NEEDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "pod-failure": {"slo": ("success_rate",)},
    "high-latency": {"slo": ("p95_latency_s",), "alerts": ("latency",), "plot": ("p95_latency_s",)},
    "canary-failure": {
        "slo": ("error_rate",),
        "alerts": ("abort",),
        "keys": ("faulty_version",),
        "plot": ("error_rate",),
    },
    "secret-rotation": {
        "keys": ("secret.kubernetes.name", "secret.kubernetes.key", "secret.github.name", "secret.consumer"),
        "target": (("github_repo", "--mnops-github-repo"),),
        "plot": ("success_rate",),
    },
    "resource-exhaustion": {"alerts": ("memory", "cpu")},
    "emergency-rollback": {"plot": ("success_rate",)},
    "monitoring-alerts": {
        "keys": ("rule_files", "synthetic_alerts.receivers"),
        "target": (("alertmanager_url", "--mnops-alertmanager-url"),),
    },
}


def check_drill(drill: str, profile: AppProfile, target: Target) -> list[SloCheck]:
    """Fail now, naming the setting, if ``drill`` lacks anything it needs; returns the SLOs it judges by."""
    needs = DRILL_NEEDS.get(drill, {})
    if profile.kind != "Rollout":
        raise ConfigError(
            f"{drill} drills an Argo Rollout (it reads and changes the Rollout's status), but the app profile "
            f"{profile.source} names a {profile.kind}. Fix: drill the app's Rollout (--mnops-app), kind: Rollout."
        )
    target.require("prometheus_url", "--mnops-prometheus-url")
    slos = [profile.slo(key, drill) for key in needs.get("slo", ())]
    for key in needs.get("alerts", ()):
        if profile.alert(key, drill).receiver:
            target.require("alertmanager_url", "--mnops-alertmanager-url")
    for key in needs.get("keys", ()):
        profile.need(key, drill)
    for attribute, option in needs.get("target", ()):
        target.require(attribute, option)
    if drill == "secret-rotation" and "http" in (profile.get("secret.consumer") or {}):
        target.require("app_url", "--mnops-app-url")
    return slos


# What an SLO's plot shows, in words (the report's title and unit).
SLO_WORDS = {
    "success_rate": {"title": "Success rate (app profile)", "unit": "ratio"},
    "error_rate": {"title": "Error rate (app profile)", "unit": "ratio"},
    "p95_latency_s": {"title": "p95 response time (app profile)", "unit": "seconds"},
}


def plot_of(drill: str, profile: AppProfile) -> dict[str, Any]:
    """``plot`` (the app's SLO query) and ``plot_words`` for a drill's report, when the profile has that SLO."""
    keys = DRILL_NEEDS.get(drill, {}).get("plot", ())
    key = next((k for k in keys if profile.get(f"slo.{k}.query")), None)
    return {"plot": profile.get(f"slo.{key}.query"), "plot_words": SLO_WORDS[key]} if key else {}
