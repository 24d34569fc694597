"""The health a rollback is decided on: the Rollout's own status plus the app's SLO readings."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_mnops.rollouts import RolloutStatus


@dataclass(frozen=True)
class SloReading:
    """One SLO measurement; ``value`` is None when Prometheus has no data (no traffic is no evidence)."""

    name: str
    expr: str
    value: float | None
    limit: float
    upper_bound: bool  # True: the value must stay at or below the limit; False: at or above it

    @property
    def breached(self) -> bool:
        if self.value is None:
            return False
        return self.value > self.limit if self.upper_bound else self.value < self.limit

    def describe(self) -> str:
        shown = "no data" if self.value is None else f"{self.value:.4g}"
        return f"{self.name}={shown} (SLO {'<=' if self.upper_bound else '>='} {self.limit:g})"


@dataclass(frozen=True)
class HealthReport:
    """The Rollout's own status plus the app's SLOs.

    ``healthy`` and ``unhealthy`` are not opposites: a canary in progress is neither.
    """

    status: RolloutStatus
    slos: tuple[SloReading, ...] = ()
    slo_error: str | None = None

    @property
    def degraded(self) -> bool:
        return self.status.trusted and self.status.phase == "Degraded"

    @property
    def slo_breached(self) -> bool:
        return any(slo.breached for slo in self.slos)

    @property
    def unhealthy(self) -> bool:
        return self.degraded or self.slo_breached

    @property
    def rollback_warranted(self) -> bool:
        """Unhealthy while a release is in flight or aborted (current != stable), so there is one to undo.

        Once stable is current, a breach is left to people: the SLO window still holds the bad canary's
        errors right after a rollback, and "previous revision" would then be the bad release itself.
        """
        st = self.status
        return self.unhealthy and st.trusted and bool(st.current_hash) and not st.stable_is_current

    @property
    def healthy(self) -> bool:
        st = self.status
        return (
            st.trusted
            and st.phase == "Healthy"
            and not st.aborted
            and st.available >= st.replicas
            and not self.slo_breached
        )

    def problems(self) -> list[str]:
        found = [f"Rollout Degraded ({self.status.message or 'no message'})"] if self.degraded else []
        return found + [slo.describe() for slo in self.slos if slo.breached]

    def describe(self) -> str:
        unknown = f"SLOs unknown ({self.slo_error or 'no Prometheus'})"
        return f"{self.status.describe()} | {'; '.join(slo.describe() for slo in self.slos) or unknown}"
