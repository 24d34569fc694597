"""Notification receivers on loopback: a webhook endpoint (pager, Slack-compatible) and an SMTP server.

They stand in for PagerDuty/Slack/a mail relay. Whatever arrives is recorded with its arrival time and can
be read back over HTTP (``GET /received?channel=slack``), so drills prove delivery end to end.

A receiver can be told to lose notifications, as a misconfigured integration does, for the project's negative
controls: ``POST /drops {"channel": "pager", "containing": "HighLatencyP95"}`` makes it accept (2xx, SMTP 250)
and discard every later notification of that channel (any channel without one) whose text contains that string;
``DELETE /drops`` ends that.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller

from pytest_mnops.sandbox.layout import HOST
from pytest_mnops.sandbox.settings import SandboxSettings

EMAIL_CHANNEL = "email"


class Inbox:
    """Thread-safe record of every notification, by channel, less what a drop rule discards."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        self._drops: list[tuple[str | None, str]] = []

    def add(self, channel: str, payload: Any) -> None:
        with self._lock:
            text = json.dumps(payload) if self._drops else ""
            if any(c in (None, channel) and containing in text for c, containing in self._drops):
                return
            self._items.append({"channel": channel, "received_at": time.time(), "payload": payload})

    def drop(self, channel: str | None, containing: str) -> None:
        if not containing:
            raise ValueError("a drop rule needs a non-empty 'containing'")
        with self._lock:
            self._drops.append((channel, containing))

    def drops(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"channel": c, "containing": text} for c, text in self._drops]

    def stop_dropping(self) -> None:
        with self._lock:
            self._drops.clear()

    def items(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [i for i in self._items if channel is None or i["channel"] == channel]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _SmtpHandler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        self.inbox.add(
            EMAIL_CHANNEL,
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(message["subject"] or ""),
                "body": body.get_content() if body is not None else "",
            },
        )
        return "250 Message accepted for delivery"


class Receivers:
    """Webhook HTTP server plus SMTP server; ``port=0`` picks free ports (tests)."""

    def __init__(self, *, host: str = HOST, http_port: int = 0, smtp_port: int = 0) -> None:
        self.inbox = Inbox()
        inbox = self.inbox

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep stderr for real problems
                pass

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/healthz":
                    self._reply(200, {"ok": True})
                elif url.path == "/received":
                    channel = parse_qs(url.query).get("channel", [None])[0]
                    self._reply(200, inbox.items(channel))
                elif url.path == "/drops":
                    self._reply(200, inbox.drops())
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload: Any = json.loads(raw or b"null")
                except ValueError:
                    payload = raw.decode(errors="replace")
                path = urlparse(self.path).path.strip("/")
                if path == "drops":
                    rule = payload if isinstance(payload, dict) else {}
                    try:
                        inbox.drop(rule.get("channel"), str(rule.get("containing") or ""))
                    except ValueError as error:
                        self._reply(400, {"error": str(error)})
                        return
                else:
                    inbox.add(path or "webhook", payload)
                self._reply(200, {"ok": True})

            def do_DELETE(self) -> None:
                if urlparse(self.path).path.strip("/") == "drops":
                    inbox.stop_dropping()
                else:
                    inbox.clear()
                self._reply(200, {"ok": True})

        self._http = ThreadingHTTPServer((host, http_port), Handler)
        self._http.daemon_threads = True
        self._smtp = Controller(_SmtpHandler(self.inbox), hostname=host, port=smtp_port or _free_port(host))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def smtp_address(self) -> tuple[str, int]:
        return self._smtp.hostname, self._smtp.port

    def start(self) -> Receivers:
        self._smtp.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._smtp.stop()

    def __enter__(self) -> Receivers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        raise SystemExit(f"no sandbox settings in {args.state_dir}")
    receivers = Receivers(http_port=settings.ports.receivers, smtp_port=settings.ports.smtp).start()
    print(f"receivers: webhooks on {receivers.url}, SMTP on {HOST}:{settings.ports.smtp}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
