"""What every activity reads from its configuration: the target's clients, the app profile, the run's handoff,
and its waits in production seconds (``budget``).

chaoslib passes ``configuration`` (the target, filled by the runner) and ``secrets`` to any function that
declares them. Probes that measure a moment return ``{"detected_at": ts}`` / ``{"recovered_at": ts}`` so the
timeline records when the system noticed or healed, not when a probe happened to return. Every revert
action is idempotent: a second run (from `mnops recover`) is harmless.
"""

from __future__ import annotations

from typing import Any

from pytest_mnops.errors import ConfigError
from pytest_mnops.k8s import Kube
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.profile.model import AppProfile
from pytest_mnops.rollouts import Rollout

Configuration = dict[str, Any]
MIN_WAIT_S = 30.0


def _kube(configuration: Configuration) -> Kube:
    return Kube(kubeconfig=configuration.get("kubeconfig"), context=configuration.get("context"))


def _rollout(configuration: Configuration) -> Rollout:
    return Rollout(_kube(configuration), namespace=configuration["namespace"], name=configuration["app"])


def _profile(configuration: Configuration) -> AppProfile:
    if "profile" not in configuration:
        raise ConfigError("this activity needs the app profile in its configuration (`profile`): run it via the drill")
    return AppProfile.from_wire(configuration["profile"])


def _needed(configuration: Configuration, key: str, option: str) -> str:
    """A target setting an activity cannot do without: never a fallback address."""
    if not configuration.get(key):
        raise ConfigError(f"this drill needs {key.replace('_', ' ')}. Fix: pass {option}, or run with --mnops-sandbox.")
    return str(configuration[key])


def _prometheus(configuration: Configuration) -> Prometheus:
    return Prometheus(_needed(configuration, "prometheus_url", "--mnops-prometheus-url"))


def _alerts(configuration: Configuration) -> Alerts:
    return Alerts(
        _prometheus(configuration),
        alertmanager_url=configuration.get("alertmanager_url"),
        receivers_url=configuration.get("receivers_url"),
    )


def _handoff(configuration: Configuration) -> dict[str, Any]:
    """What this run's activities pass on to later ones (the runner shares one mapping per run)."""
    return configuration.setdefault("handoff", {})


def budget(configuration: Configuration, production_s: float, floor_s: float = MIN_WAIT_S) -> float:
    """A wait given in production seconds, as the target runs it (never below a floor for scheduling)."""
    return max(floor_s, float(production_s) * float(configuration.get("time_scale", 1.0)))


def _run_started(configuration: Configuration) -> float:
    """Notifications older than this run are not evidence for it."""
    return float(configuration.get("run_started", 0.0))


def _selector(configuration: Configuration) -> str:
    """The app's pods: the selector the run was given (from the app profile: the Rollout's own spec.selector)."""
    return configuration.get("selector") or _profile(configuration).label_selector
