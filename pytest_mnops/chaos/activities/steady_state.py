"""Steady-state probes every drill starts and ends with: the Rollout Healthy, an SLO of the profile met, an alert
of the profile quiet, a scenario's own PromQL below its limit. No data is never a pass."""

from __future__ import annotations

from pytest_mnops.chaos.activities._shared import Configuration, _alerts, _profile, _prometheus, _rollout
from pytest_mnops.errors import ClusterError
from pytest_mnops.placeholders import fill
from pytest_mnops.profile.drill_needs import no_data


def rollout_healthy(configuration: Configuration) -> bool:
    """The Rollout is Healthy (trusted status) and its stable ReplicaSet is the current one."""
    status = _rollout(configuration).status()
    return status.trusted and status.phase == "Healthy" and status.stable_is_current and not status.aborted


def slo_met(key: str, configuration: Configuration) -> bool:
    """The app's SLO ``key`` (profile ``slo.<key>``: success_rate, error_rate, p95_latency_s) holds.

    No data is never a pass: the probe fails naming the query and the profile key.
    """
    check = _profile(configuration).slo(key, "this steady-state probe")
    value = _prometheus(configuration).value(check.query)
    if value is None:
        raise ClusterError(no_data(check))
    return check.met(value)


def query_below(query: str, limit: float, configuration: Configuration) -> bool:
    """A PromQL expression (``${namespace}``, ``${container}`` filled) is at most ``limit``; no data fails."""
    profile = _profile(configuration)
    expr = fill(query, {"namespace": profile.namespace, "container": profile.container})
    value = _prometheus(configuration).value(expr)
    if value is None:
        raise ClusterError(f"no data for {expr} (scenario query): nothing to judge the steady state by")
    return value <= float(limit)


def alert_quiet(alert: str, configuration: Configuration) -> bool:
    """The profile's alert ``alert`` (``alerts.<alert>``) is neither pending nor firing in the target namespace.

    A drill that waits for it to fire starts from quiet: one left firing by an earlier fault would pass as this
    fault's detection, at once (MTTD 0).
    """
    expected = _profile(configuration).alert(alert, "this steady-state probe")
    return _alerts(configuration).state(expected.name, expected.labels, configuration["namespace"]) == "resolved"
