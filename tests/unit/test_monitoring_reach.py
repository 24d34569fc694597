"""Monitoring that does not answer fails closed and fast: one bounded retry, then an error naming the server;
an answer, even an error status, is never retried."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from pytest_mnops.errors import MonitoringUnreachable
from pytest_mnops.observability import reach
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nothing listens on (the port was just free)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def answering_url() -> Iterator[tuple[str, list[str]]]:
    """A loopback server answering 503 to everything; yields its URL and the paths it was asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "8")
            self.end_headers()
            self.wfile.write(b"starting")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_server_is_retried_once_then_named(closed_url: str) -> None:
    attempts = []

    def request() -> None:
        attempts.append(time.monotonic())
        requests.get(closed_url, timeout=reach.TIMEOUT)

    started = time.monotonic()
    with pytest.raises(MonitoringUnreachable) as caught:
        reach.call("Prometheus", closed_url, request)
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= reach.RETRY_PAUSE_S
    assert time.monotonic() - started < reach.RETRY_PAUSE_S + 2 * reach.CONNECT_S
    message = str(caught.value)
    assert closed_url in message and "connection refused" in message and "--mnops-prometheus-url" in message


def test_a_server_that_answers_is_not_retried(answering_url: tuple[str, list[str]]) -> None:
    url, asked = answering_url
    resp = reach.call("Alertmanager", url, lambda: requests.get(f"{url}/-/ready", timeout=reach.TIMEOUT))
    assert resp.status_code == 503 and asked == ["/-/ready"]


def test_a_retry_that_reaches_the_server_returns_its_answer(closed_url: str) -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise requests.ConnectionError("Connection refused")
        return "answer"

    assert reach.call("Prometheus", closed_url, flaky) == "answer"


def test_require_names_the_drill_and_the_server(closed_url: str, answering_url: tuple[str, list[str]]) -> None:
    with pytest.raises(MonitoringUnreachable, match=rf"drill pod-failure cannot run: Prometheus at {closed_url}"):
        reach.require("Prometheus", closed_url, needed_by="drill pod-failure")
    url, _ = answering_url
    with pytest.raises(MonitoringUnreachable, match=r"is not ready .*answered 503: starting"):
        reach.require("Alertmanager", url, needed_by="drill high-latency")
    with pytest.raises(MonitoringUnreachable, match=r"no URL for it\. Fix: pass --mnops-alertmanager-url"):
        reach.require("Alertmanager", None, needed_by="drill high-latency")


def test_prometheus_and_alertmanager_clients_fail_fast_and_named(closed_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(MonitoringUnreachable, match=f"Prometheus at {closed_url} is unreachable"):
        Prometheus(closed_url).query("up")
    with pytest.raises(MonitoringUnreachable, match=f"Prometheus at {closed_url}"):
        Prometheus(closed_url).targets()
    alerts = Alerts(Prometheus(closed_url), alertmanager_url=closed_url, receivers_url=closed_url)
    with pytest.raises(MonitoringUnreachable, match=f"Alertmanager at {closed_url}"):
        alerts.active('alertname="X"')
    with pytest.raises(MonitoringUnreachable, match=f"notification receivers at {closed_url}"):
        alerts.received("slack")
    # Four calls, each one retry: seconds, where the client's own retries with backoff took 6 s per query.
    assert time.monotonic() - started < 4 * (reach.RETRY_PAUSE_S + 1)
