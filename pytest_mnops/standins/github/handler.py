"""The GitHub stand-in's HTTP transport: requests read off the socket, handed to the stand-in, replies sent as
JSON; ``/healthz`` and the ``/_standin/faults`` control endpoint are answered here, without authentication."""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pytest_mnops.errors import ConfigError
from pytest_mnops.standins.github.api import Reply

if TYPE_CHECKING:
    from pytest_mnops.standins.github.server import GitHubStandIn

log = logging.getLogger(__name__)


class Handler(BaseHTTPRequestHandler):
    server_version = "GitHubStandIn/1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        standin: GitHubStandIn = self.server.standin  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path == "/healthz" and method == "GET":
            self._send(Reply(200, {"status": "ok"}))
        elif url.path == "/_standin/faults" and method == "POST":
            self._send(self._set_faults(standin, body))
        else:
            # URLs in answers point back where the client connected; PyGithub follows them for later calls.
            host = self.headers.get("Host")
            base = f"http://{host}" if host else standin.url
            self._send(standin.serve(method, url.path, parse_qs(url.query), self.headers, body, base))

    @staticmethod
    def _set_faults(standin: GitHubStandIn, body: bytes) -> Reply:
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ConfigError("stand-in faults body is not a JSON object. Fix: send a JSON object.")
            standin.faults.apply(spec)
        except (ValueError, ConfigError) as exc:
            return Reply(400, {"message": str(exc)})
        return Reply(204)

    def _send(self, reply: Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries method, path and status only: never a body, so never a secret value.
        log.info("%s - %s", self.address_string(), format % args)
