"""The only module importing prometheus-api-client: instant/range queries and condition waits."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from pytest_mnops.errors import ClusterError, WaitTimeout
from pytest_mnops.observability import reach

Sample = dict[str, Any]
POLL_S = 0.25  # Prometheus has no watch API; the sandbox evaluates every second, so poll at a quarter of it.


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        # The client's own retries (3, with backoff, no timeout) cost a check minutes when Prometheus is down;
        # reach.call retries once, bounded, and names the server.
        self._client = PrometheusConnect(
            url=self.url,
            disable_ssl=True,
            retry=Retry(0, read=False),
            timeout=reach.TIMEOUT,  # type: ignore[arg-type]  # requests takes (connect, read)
        )

    def __repr__(self) -> str:
        return f"Prometheus({self.url})"

    def query(self, expr: str) -> list[Sample]:
        """Instant vector query: ``[{"metric": {...}, "value": [ts, "1.5"]}, ...]``."""
        try:
            return reach.call("Prometheus", self.url, lambda: self._client.custom_query(expr))
        except (PrometheusApiClientException, requests.RequestException) as exc:
            raise ClusterError(f"Prometheus {self.url}: query `{expr}` failed: {exc}") from None

    def value(self, expr: str) -> float | None:
        """The first sample's value, or None when the query returns nothing (or NaN)."""
        result = self.query(expr)
        if not result:
            return None
        number = float(result[0]["value"][1])
        return None if math.isnan(number) else number

    def range(self, expr: str, start: float, end: float, step_s: float = 1.0) -> list[Sample]:
        try:
            return reach.call(
                "Prometheus",
                self.url,
                lambda: self._client.custom_query_range(
                    expr,
                    start_time=dt.datetime.fromtimestamp(start, dt.UTC),
                    end_time=dt.datetime.fromtimestamp(end, dt.UTC),
                    step=f"{step_s}s",
                ),
            )
        except (PrometheusApiClientException, requests.RequestException) as exc:
            raise ClusterError(f"Prometheus {self.url}: range query `{expr}` failed: {exc}") from None

    def wait_until(
        self, expr: str, predicate: Callable[[float | None], bool], *, timeout_s: float, what: str | None = None
    ) -> float | None:
        """Return the value of ``expr`` once ``predicate(value)`` holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.value(expr)
            if predicate(value):
                return value
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"timed out after {timeout_s:.0f}s waiting for {what or expr}; last value of `{expr}`: {value}"
                )
            time.sleep(POLL_S)

    def ready(self) -> bool:
        return self._client.check_prometheus_connection()

    def _api(self, path: str) -> Any:
        try:
            resp = reach.call("Prometheus", self.url, lambda: requests.get(f"{self.url}{path}", timeout=reach.TIMEOUT))
            resp.raise_for_status()
            return resp.json()["data"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise ClusterError(f"Prometheus {self.url}{path}: {exc}") from None

    def targets(self) -> list[dict[str, Any]]:
        return self._api("/api/v1/targets")["activeTargets"]

    def rule_groups(self) -> list[dict[str, Any]]:
        return self._api("/api/v1/rules")["groups"]
