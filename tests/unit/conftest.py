"""Fakes at the HTTP boundary for unit tests: a loopback server answering what a test scripts.

The code under test speaks real HTTP to it (the official Kubernetes client, prometheus-api-client,
requests), so only the server is pretend, never a client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case, as HTTP compares them
    body: Any


# An answer: (status, JSON body) or (status, JSON body, bytes of a streamed body: one JSON object per line).
Answer = tuple[int, Any] | tuple[int, Any, list[bytes]]


@dataclass
class FakeServer:
    url: str
    answer: Callable[[Request], Answer] = lambda request: (404, {"message": "not scripted"})
    requests: list[Request] = field(default_factory=list)


@pytest.fixture
def http_server() -> Iterator[FakeServer]:
    fake = FakeServer(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            url = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Request(self.command, url.path, dict(parse_qsl(url.query)), headers, body)
            fake.requests.append(request)
            status, payload, *stream = fake.answer(request)
            if stream:  # a watch: chunked lines, then the server ends the stream
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in stream[0]:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
