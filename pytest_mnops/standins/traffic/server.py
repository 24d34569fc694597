"""The traffic stand-in itself: its loopback server, how a request is answered by one of an app's Ready pods,
the built-in load generator, and start/stop of the server, the generator and the watches."""

from __future__ import annotations

import random
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry

from pytest_mnops.k8s import Kube
from pytest_mnops.sandbox.layout import HOST
from pytest_mnops.standins.traffic.handler import handler_for
from pytest_mnops.standins.traffic.metrics import ClusterStateCollector, RequestMetrics
from pytest_mnops.standins.traffic.model import Pod
from pytest_mnops.standins.traffic.watches import Watches
from pytest_mnops.standins.traffic.world import World

DEFAULT_RPS = 25.0


class TrafficStandIn:
    def __init__(self, kube: Kube, *, port: int = 0, rps: float = DEFAULT_RPS, host: str = HOST) -> None:
        self.kube, self.rps = kube, rps
        self.world = World()
        self.registry = CollectorRegistry()
        self.metrics = RequestMetrics(self.world, self.registry)
        self.registry.register(ClusterStateCollector(self.world))
        self._stop = threading.Event()
        self._watches = Watches(kube, self.world, self._stop)
        self._server = ThreadingHTTPServer((host, port), handler_for(self))
        self._server.daemon_threads = True
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="load")

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    # -- serving ------------------------------------------------------------------------------------
    def serve(self, namespace: str, app: str) -> tuple[int, Pod | None]:
        pods = self.world.ready_pods(namespace, app)
        if not pods:
            return 503, None
        pod = random.choice(pods)
        with self.world.lock:
            delay, cores, _ = self.world.effects(pod, time.time())
        # Throttled CPU stretches every request.
        throttle = 1 + max(0.0, cores / pod.cpu_limit - 0.8) * 5
        latency = pod.latency_s * random.uniform(0.7, 1.3) * throttle + delay
        time.sleep(latency)
        code = 500 if random.random() < pod.error_ratio else 200
        self.metrics.count(pod, code, latency)
        return code, pod

    def authenticate(self, namespace: str, app: str, token: str) -> tuple[int, Pod | None]:
        """As the app would: the pod serving this request accepts only the credential it loaded (World.accepts)."""
        pods = self.world.ready_pods(namespace, app)
        if not pods:
            return 503, None
        pod = random.choice(pods)
        code = 200 if self.world.accepts(pod, token) else 401
        self.metrics.count(pod, code)
        return code, pod

    # -- load generator -------------------------------------------------------------------------
    def _generate(self) -> None:
        interval = 1 / self.rps
        next_at = time.monotonic()
        while not self._stop.is_set():
            # In process, as /svc/ answers: a loopback connection and a server thread per request cost 70% of
            # the stand-in's CPU (4.3 -> 1.2 CPU-seconds a minute for one app), times the tests' namespaces.
            for namespace, app in self.world.services():
                self._pool.submit(self.serve, namespace, app).add_done_callback(_report_failure)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> TrafficStandIn:
        self._watches.start()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._generate, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _report_failure(request: Future[tuple[int, Pod | None]]) -> None:
    """A generated request that raised, in traffic.log (the stand-in's stderr), as the HTTP server reports a
    handler's error: a future would otherwise keep it, and the app's series would just stop."""
    if not request.cancelled() and (error := request.exception()) is not None:
        traceback.print_exception(error, file=sys.stderr)
