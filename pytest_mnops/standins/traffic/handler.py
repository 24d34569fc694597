"""The traffic stand-in's HTTP transport: ``/svc/<namespace>/<app>/`` (and its auth path) answered as the app's
pods would, ``/metrics`` for Prometheus, ``/healthz``."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from prometheus_client import generate_latest

from pytest_mnops.standins.traffic.world import DEFAULT_TRAFFIC

if TYPE_CHECKING:
    from pytest_mnops.standins.traffic.server import TrafficStandIn


def handler_for(standin: TrafficStandIn) -> type[BaseHTTPRequestHandler]:
    """The request handler class of ``standin``'s loopback server."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                standin.metrics.forget_removed()
                self._send(200, generate_latest(standin.registry), "text/plain; version=0.0.4")
            elif self.path == "/healthz":
                self._send(200, b"ok")
            elif self.path.startswith("/svc/"):
                parts = self.path.split("/")
                spec = standin.world.spec(*parts[2:4]) if len(parts) > 3 else DEFAULT_TRAFFIC
                if len(parts) > 4 and parts[4] == spec["auth_path"].strip("/"):
                    token = self.headers.get(spec["auth_header"], "").removeprefix("Bearer ").strip()
                    code, pod = standin.authenticate(parts[2], parts[3], token)
                else:
                    code, pod = standin.serve(parts[2], parts[3]) if len(parts) > 3 else (404, None)
                self._send(code, f"{pod.name if pod else 'no ready endpoints'}\n".encode())
            else:
                self._send(404, b"not found")

    return Handler
