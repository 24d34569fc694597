"""Monitoring that does not answer fails closed and fast: one bounded retry, then an error naming the server.

Every request to Prometheus, Alertmanager or the notification receivers goes through :func:`call`, so a
server that is down costs a check at most ``2 * CONNECT_S + RETRY_PAUSE_S`` (refused: ``RETRY_PAUSE_S``), not
the minutes a client's default retries with backoff and no timeout would. A check that cannot ask its
monitoring never passes: it fails with :class:`~pytest_mnops.errors.MonitoringUnreachable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import requests

from pytest_mnops.errors import MonitoringUnreachable

T = TypeVar("T")
# Loopback or a LAN: an answering server accepts in milliseconds; a connect that takes longer is down.
CONNECT_S = 2.0
# A query over hours of data may legitimately take seconds; one that takes longer than this is not answered.
READ_S = 10.0
TIMEOUT = (CONNECT_S, READ_S)
# Long enough for a server that is restarting to take its port back, short enough to fail fast.
RETRY_PAUSE_S = 0.5
# The option that points each server's URL at the right place (the fix a message names).
OPTIONS = {
    "Prometheus": "--mnops-prometheus-url",
    "Alertmanager": "--mnops-alertmanager-url",
    "notification receivers": "--mnops-receivers-url",
}


def reason(exc: BaseException) -> str:
    """What went wrong, in words (the client's text is a nest of wrappers around it)."""
    text = str(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {CONNECT_S:.0f}s"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {READ_S:.0f}s"
    for marker, words in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not known"),
        ("No route to host", "no route to host"),
        ("RemoteDisconnected", "closed the connection without answering"),
        ("Connection reset", "connection reset"),
    ):
        if marker in text:
            return words
    return text


def call(service: str, url: str, request: Callable[[], T]) -> T:
    """``request()``, tried once more after a pause when the server cannot be reached; then a named error.

    Only a failure to reach the server is retried: an answer, even an error status, is the server's verdict.
    """
    started = time.monotonic()
    try:
        return request()
    except (requests.ConnectionError, requests.Timeout):
        time.sleep(RETRY_PAUSE_S)
    try:
        return request()
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise MonitoringUnreachable(
            f"{service} at {url} is unreachable: {reason(exc)} (2 attempts in {time.monotonic() - started:.1f}s). "
            f"Fix: start it, or point {OPTIONS.get(service, 'the URL option')} at it; every check and drill that "
            f"needs {service} fails until it answers."
        ) from None


def require(service: str, url: str | None, *, needed_by: str) -> None:
    """Fail now, naming the server, unless ``url`` answers its readiness endpoint (``/-/ready``)."""
    if not url:
        raise MonitoringUnreachable(
            f"{needed_by} needs {service}, but the target has no URL for it. Fix: pass "
            f"{OPTIONS.get(service, 'its URL option')} (or run with --mnops-sandbox)."
        )
    base = url.rstrip("/")
    try:
        resp = call(service, base, lambda: requests.get(f"{base}/-/ready", timeout=TIMEOUT))
    except MonitoringUnreachable as exc:
        raise MonitoringUnreachable(f"{needed_by} cannot run: {exc}") from None
    if not resp.ok:
        raise MonitoringUnreachable(
            f"{needed_by} cannot run: {service} at {base} is not ready ({base}/-/ready answered "
            f"{resp.status_code}: {resp.text.strip()[:200]}). Fix: read its log; wait for it to finish starting."
        )
