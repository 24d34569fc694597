"""Failures the GitHub stand-in serves before answering normally: injected errors and GitHub's rate limit."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from pytest_mnops.errors import ConfigError


@dataclass
class Fault:
    remaining: int
    status: int
    method: str | None
    reset_in_s: float | None  # set for rate limiting


class Faults:
    """Failures the stand-in serves before answering normally, consumed in the order they were queued.

    ``method`` limits a fault to one HTTP verb (e.g. only the PUT), so a test can fail the write while the
    reads around it still work.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def fail_next(self, n: int = 1, *, status: int = 502, method: str | None = None) -> None:
        """Answer the next ``n`` (matching) requests with ``status`` and GitHub's error JSON."""
        if not 400 <= status <= 599:
            raise ConfigError(f"stand-in fault status {status} is not an HTTP error. Fix: pass 400..599 (e.g. 502).")
        self._push(Fault(_positive(n), status, _verb(method), None))

    def rate_limit_next(self, n: int = 1, *, reset_in_s: float = 1.0, method: str | None = None) -> None:
        """Answer the next ``n`` (matching) requests with GitHub's primary rate-limit 403."""
        if reset_in_s < 0:
            raise ConfigError(f"stand-in rate limit reset_in_s={reset_in_s} is negative. Fix: pass seconds >= 0.")
        self._push(Fault(_positive(n), 403, _verb(method), reset_in_s))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def apply(self, spec: dict[str, Any]) -> None:
        """The ``POST /_standin/faults`` form: ``{"fail_next": n, "status": 502, "method": "PUT"}``,
        ``{"rate_limit_next": n, "reset_in_s": 1}`` or ``{"clear": true}``."""
        method = spec.get("method")
        if spec.get("clear"):
            self.clear()
        elif "fail_next" in spec:
            self.fail_next(int(spec["fail_next"]), status=int(spec.get("status", 502)), method=method)
        elif "rate_limit_next" in spec:
            self.rate_limit_next(
                int(spec["rate_limit_next"]), reset_in_s=float(spec.get("reset_in_s", 1.0)), method=method
            )
        else:
            raise ConfigError(
                f"stand-in faults body {sorted(spec)} names no fault. "
                'Fix: send {"fail_next": N, "status": 502}, {"rate_limit_next": N, "reset_in_s": 1} '
                'or {"clear": true}.'
            )

    def _push(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def take(self, method: str) -> Fault | None:
        """The first queued fault for ``method``, counted as served once (dropped after its last), else None."""
        with self._lock:
            for fault in self._queue:
                if fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._queue.remove(fault)
                    return fault
        return None


def _positive(n: int) -> int:
    if n < 1:
        raise ConfigError(f"stand-in fault count {n} must be at least 1. Fix: pass n >= 1.")
    return n


def _verb(method: str | None) -> str | None:
    return method.upper() if method else None
