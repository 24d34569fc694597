"""The resolved app profile: ``AppProfile`` (plain data, with accessors naming a missing key), its SLO checks
and expected alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_mnops.errors import ConfigError

Obj = dict[str, Any]
DOCS = "docs/drilling-your-own-app.md"
# An SLO key, the words that classify an AnalysisTemplate metric as it, and whether its limit is a maximum.
SLO_KEYS: dict[str, tuple[tuple[str, ...], bool]] = {
    "p95_latency_s": (("latency", "response", "duration", "p95", "histogram_quantile"), True),
    "error_rate": (("error", "5xx", "fail"), True),
    "success_rate": (("success", "availability"), False),
}


@dataclass(frozen=True)
class SloCheck:
    key: str
    query: str  # ready to run: placeholders filled, range selectors at the target's time scale
    limit: float
    upper_bound: bool  # True: the value must stay at or below the limit
    source: str  # where the query came from, for "no data for ..." messages

    def met(self, value: float) -> bool:
        return value <= self.limit if self.upper_bound else value >= self.limit

    def describe(self, value: float | None) -> str:
        shown = "no data" if value is None else f"{value:.4g}"
        return f"{self.key}={shown} (SLO {'<=' if self.upper_bound else '>='} {self.limit:g})"


@dataclass(frozen=True)
class ExpectedAlert:
    key: str
    name: str
    labels: dict[str, str]
    receiver: str | None  # the Alertmanager receiver its notification must reach


@dataclass(frozen=True)
class AppProfile:
    """The resolved profile. ``data`` is plain JSON; accessors raise a ConfigError naming a missing key."""

    data: Obj
    source: str

    # -- wire ---------------------------------------------------------------------------------------
    def to_wire(self) -> Obj:
        return {"source": self.source, **self.data}

    @classmethod
    def from_wire(cls, wire: Obj) -> AppProfile:
        data = dict(wire)
        return cls(data, str(data.pop("source", "(profile)")))

    # -- lookup ---------------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def need(self, key: str, why: str) -> Any:
        value = self.get(key)
        if value in (None, "", [], {}):
            raise ConfigError(
                f"app profile {self.source} has no `{key}`, which {why} needs. Fix: add `{key}` to the profile "
                f"file (--mnops-profile; see {DOCS})."
            )
        return value

    @property
    def namespace(self) -> str:
        return str(self.data["namespace"])

    @property
    def app(self) -> str:
        return str(self.data["app"])

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "Rollout"))

    @property
    def selector(self) -> dict[str, str]:
        return dict(self.data["selector"])

    @property
    def label_selector(self) -> str:
        """The selector as the Kubernetes API and chaostoolkit-kubernetes take it: ``k=v,k=v``."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))

    @property
    def container(self) -> str:
        return str(self.data["container"])

    def slo(self, key: str, why: str) -> SloCheck:
        entry = self.need(f"slo.{key}", why)
        return SloCheck(key, entry["query"], float(entry["limit"]), bool(entry["upper_bound"]), entry["source"])

    def slos(self) -> list[SloCheck]:
        return [self.slo(key, "the SLO check") for key in SLO_KEYS if self.get(f"slo.{key}")]

    def alert(self, key: str, why: str) -> ExpectedAlert:
        entry = self.need(f"alerts.{key}", why)
        if not entry.get("name"):
            raise ConfigError(f"app profile {self.source}: alerts.{key} has no `name` (the alertname). Fix: add it.")
        return ExpectedAlert(key, entry["name"], dict(entry.get("labels") or {}), entry.get("receiver"))
