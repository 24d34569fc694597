"""Traffic stand-in: real HTTP requests spread over an app's Ready pods, with each pod's fault profile.

KWOK pods run no containers, so this process plays the app's data plane:

* it watches the API for the pods of every Rollout and Deployment (a ReplicaSet's pods), their optional
  ``traffic.mnops.dev/*`` annotations (a version's error ratio and latency), the ConfigMaps in which an app
  profile declares its metric names and labels (pytest_mnops.sandbox.apps writes them), and Chaos Mesh
  ``NetworkChaos``/``StressChaos`` objects, which it honours in place of the Chaos Mesh daemon;
* a built-in load generator sends real HTTP requests to its own loopback server, which picks a Ready pod as
  kube-proxy would (uniformly at random), applies that pod's error ratio and latency, and answers;
* ``/metrics`` exports what an instrumented app, cAdvisor and kube-state-metrics would export for those pods,
  under the same names and labels, so analyses, alerts and dashboards work unchanged on a real cluster.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import http.client
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import Kube, pod_ready, resources
from pytest_mnops.k8s.client import Resource
from pytest_mnops.names import DEPLOYMENT_HASH_LABEL, ROLLOUT_HASH_LABEL, TRAFFIC_LABEL
from pytest_mnops.sandbox.layout import HOST
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.timescale import seconds

ERROR_RATIO = "traffic.mnops.dev/error-ratio"
LATENCY_MS = "traffic.mnops.dev/latency-ms"
HASH_LABELS = (ROLLOUT_HASH_LABEL, DEPLOYMENT_HASH_LABEL)
DEFAULT_LATENCY_MS = 20.0
# What an app exports when its profile declares nothing: the Prometheus naming conventions for HTTP servers.
DEFAULT_TRAFFIC = {
    "requests": "http_requests_total",
    "duration": "http_request_duration_seconds",
    "app_label": "app",
    "code_label": "code",
    "auth_path": "auth",
    "auth_header": "Authorization",
}
DEFAULT_RPS = 25.0
BASE_CPU_CORES = 0.05
BASE_MEMORY_BYTES = 64 * 2**20
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
# `_created` series would double the scrape for nothing a real app's dashboards use.
disable_created_metrics()
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
}


def quantity(text: str | int | float) -> float:
    """A Kubernetes (or stress-ng) quantity as a number: '500m' -> 0.5, '256Mi' -> 268435456."""
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a quantity: {text!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


@dataclass(frozen=True)
class Container:
    name: str
    cpu_limit: float
    memory_limit: float
    credential_ref: tuple[str, str] | None  # (Secret name, key) the container reads at start


@dataclass
class Pod:
    namespace: str
    name: str
    app: str  # the Rollout or Deployment the pod belongs to
    template_hash: str
    ready: bool
    error_ratio: float
    latency_s: float
    containers: list[Container]
    labels: dict[str, str]
    credential: str | None = None  # what this pod loaded when it started: a restart picks up rotations
    cpu_seconds: float = 0.0
    app_container: str = ""  # the container its profile names (default: the first)

    @property
    def main(self) -> Container:
        return next((c for c in self.containers if c.name == self.app_container), self.containers[0])

    @property
    def cpu_limit(self) -> float:
        return self.main.cpu_limit

    @property
    def memory_limit(self) -> float:
        return self.main.memory_limit

    @property
    def credential_ref(self) -> tuple[str, str] | None:
        return self.main.credential_ref or next((c.credential_ref for c in self.containers if c.credential_ref), None)


@dataclass
class Chaos:
    kind: str
    namespace: str
    name: str
    spec: dict[str, Any]
    created: float
    chosen: list[str] = field(default_factory=list)

    def active(self, now: float) -> bool:
        duration = self.spec.get("duration")
        return not duration or now < self.created + seconds(duration)

    def selects(self, pod: Pod) -> bool:
        selector = self.spec.get("selector") or {}
        namespaces = selector.get("namespaces") or [self.namespace]
        labels = selector.get("labelSelectors") or {}
        return pod.namespace in namespaces and all(pod.labels.get(k) == v for k, v in labels.items())


def _container(spec: dict[str, Any]) -> Container:
    limits = (spec.get("resources") or {}).get("limits") or {}
    refs = [((e.get("valueFrom") or {}).get("secretKeyRef") or {}) for e in spec.get("env") or []]
    ref = next(((r["name"], r["key"]) for r in refs if r.get("name") and r.get("key")), None)
    return Container(spec["name"], quantity(limits.get("cpu", "1")), quantity(limits.get("memory", "1Gi")), ref)


def workload_of(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(workload name, pod-template hash) of a pod a ReplicaSet owns (a Rollout's or a Deployment's), else None.

    Both name their ReplicaSets ``<workload>-<pod-template hash>``.
    """
    meta = obj["metadata"]
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"), None)
    labels = meta.get("labels") or {}
    template_hash = next((labels[k] for k in HASH_LABELS if labels.get(k)), None)
    if owner is None or template_hash is None or not owner["name"].endswith(f"-{template_hash}"):
        return None
    return owner["name"][: -len(template_hash) - 1], template_hash


def pod_from_api(obj: dict[str, Any]) -> Pod | None:
    meta = obj["metadata"]
    annotations = meta.get("annotations") or {}
    owned = workload_of(obj)
    if owned is None:
        return None
    return Pod(
        namespace=meta["namespace"],
        name=meta["name"],
        app=owned[0],
        template_hash=owned[1],
        ready=pod_ready(obj),
        error_ratio=float(annotations.get(ERROR_RATIO, 0)),
        latency_s=float(annotations.get(LATENCY_MS, DEFAULT_LATENCY_MS)) / 1000,
        containers=[_container(c) for c in obj["spec"]["containers"]],
        labels=meta.get("labels") or {},
    )


class World:
    """What the stand-in knows: pods and chaos objects, kept current by watches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pods: dict[tuple[str, str], Pod] = {}
        self.chaos: dict[tuple[str, str, str], Chaos] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.removed: list[Pod] = []
        # (namespace, workload) -> its profile's traffic declaration (metric names, labels, container)
        self.traffic: dict[tuple[str, str], dict[str, str]] = {}

    def spec(self, namespace: str, app: str) -> dict[str, str]:
        return {**DEFAULT_TRAFFIC, **self.traffic.get((namespace, app), {})}

    def set_traffic(self, obj: dict[str, Any], deleted: bool) -> None:
        data = obj.get("data") or {}
        if not data.get("workload"):
            return
        key = (obj["metadata"]["namespace"], data["workload"])
        with self.lock:
            if deleted:
                self.traffic.pop(key, None)
                return
            try:
                declared = json.loads(data.get("traffic") or "{}")
            except ValueError:
                declared = {}
            self.traffic[key] = {**{k: str(v) for k, v in declared.items()}, "container": data.get("container", "")}
            for pod in self.pods.values():
                if (pod.namespace, pod.app) == key:
                    pod.app_container = self.traffic[key]["container"]

    def set_pod(self, obj: dict[str, Any], deleted: bool) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        pod = None if deleted else pod_from_api(obj)
        with self.lock:
            old = self.pods.pop(key, None)
            if pod is not None:
                pod.app_container = self.traffic.get((pod.namespace, pod.app), {}).get("container", "")
                if old is not None:
                    pod.cpu_seconds, pod.credential = old.cpu_seconds, old.credential
                elif pod.credential_ref is not None:
                    secret_name, secret_key = pod.credential_ref
                    pod.credential = self.secrets.get((pod.namespace, secret_name), {}).get(secret_key)
                self.pods[key] = pod
            elif old is not None:
                self.removed.append(old)

    def set_secret(self, obj: dict[str, Any], deleted: bool) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self.lock:
            if deleted:
                self.secrets.pop(key, None)
            else:
                self.secrets[key] = {
                    k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()
                }

    def set_chaos(self, kind: str, obj: dict[str, Any], deleted: bool) -> None:
        meta = obj["metadata"]
        key = (kind, meta["namespace"], meta["name"])
        with self.lock:
            if deleted:
                self.chaos.pop(key, None)
            elif key not in self.chaos:
                self.chaos[key] = Chaos(kind, meta["namespace"], meta["name"], obj.get("spec") or {}, time.time())

    def _targets(self, chaos: Chaos) -> set[str]:
        """Chaos Mesh picks its pods once, at injection: later replacements are not affected."""
        if not chaos.chosen:
            candidates = sorted(p.name for p in self.pods.values() if chaos.selects(p) and p.ready)
            mode, value = chaos.spec.get("mode", "one"), str(chaos.spec.get("value") or "1")
            if mode == "all":
                count = len(candidates)
            elif mode in ("fixed-percent", "random-max-percent"):
                count = max(1, round(len(candidates) * float(value) / 100))
            elif mode == "fixed":
                count = int(value)
            else:
                count = 1
            chaos.chosen = candidates[:count]
        return set(chaos.chosen)

    def effects(self, pod: Pod, now: float) -> tuple[float, float, float]:
        """(added latency s, cpu cores in use, memory bytes in use) for ``pod`` under active chaos."""
        delay, cpu, memory = 0.0, BASE_CPU_CORES, float(BASE_MEMORY_BYTES)
        for chaos in self.chaos.values():
            if not chaos.active(now) or pod.name not in self._targets(chaos):
                continue
            if chaos.kind == "NetworkChaos" and chaos.spec.get("action", "delay") == "delay":
                delay += seconds((chaos.spec.get("delay") or {}).get("latency", "0s"))
            stressors = chaos.spec.get("stressors") or {}
            if "cpu" in stressors:
                cpu += int(stressors["cpu"].get("workers", 1)) * int(stressors["cpu"].get("load", 100)) / 100
            if "memory" in stressors:
                size = stressors["memory"].get("size", "256MB")
                memory += (
                    pod.memory_limit * float(size[:-1]) / 100 if str(size).endswith("%") else quantity(size)
                ) * int(stressors["memory"].get("workers", 1))
        # A container cannot use more than its limit: CPU is throttled, memory is capped (OOM is not emulated).
        return delay, min(cpu, pod.cpu_limit), min(memory, pod.memory_limit)

    def ready_pods(self, namespace: str, app: str) -> list[Pod]:
        with self.lock:
            return [p for p in self.pods.values() if p.namespace == namespace and p.app == app and p.ready]

    def services(self) -> set[tuple[str, str]]:
        with self.lock:
            return {(p.namespace, p.app) for p in self.pods.values()}


class ClusterStateCollector:
    """cAdvisor- and kube-state-metrics-style series for the pods the stand-in plays."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.last = time.time()

    def collect(self) -> Iterator[Any]:
        now = time.time()
        ready = GaugeMetricFamily(
            "kube_pod_status_ready",
            "Pod ready condition (kube-state-metrics).",
            labels=["namespace", "pod", "condition"],
        )
        limits = GaugeMetricFamily(
            "kube_pod_container_resource_limits",
            "Container limits (kube-state-metrics).",
            labels=["namespace", "pod", "container", "resource", "unit"],
        )
        cpu = CounterMetricFamily(
            "container_cpu_usage_seconds", "CPU time used (cAdvisor).", labels=["namespace", "pod", "container"]
        )
        memory = GaugeMetricFamily(
            "container_memory_working_set_bytes", "Working set (cAdvisor).", labels=["namespace", "pod", "container"]
        )
        with self.world.lock:
            elapsed, self.last = now - self.last, now
            for pod in self.world.pods.values():
                _, cores, mem = self.world.effects(pod, now)
                pod.cpu_seconds += cores * elapsed
                for condition in ("true", "false"):
                    ready.add_metric([pod.namespace, pod.name, condition], float(pod.ready == (condition == "true")))
                container = pod.main.name
                limits.add_metric([pod.namespace, pod.name, container, "cpu", "core"], pod.cpu_limit)
                limits.add_metric([pod.namespace, pod.name, container, "memory", "byte"], pod.memory_limit)
                cpu.add_metric([pod.namespace, pod.name, container], pod.cpu_seconds)
                memory.add_metric([pod.namespace, pod.name, container], mem)
        yield from (ready, limits, cpu, memory)


class TrafficStandIn:
    def __init__(self, kube: Kube, *, port: int = 0, rps: float = DEFAULT_RPS, host: str = HOST) -> None:
        self.kube, self.rps = kube, rps
        self.world = World()
        self.registry = CollectorRegistry()
        self._families: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}
        self._families_lock = threading.Lock()
        self.registry.register(ClusterStateCollector(self.world))
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="load")

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    # -- serving ------------------------------------------------------------------------------------
    def families(self, pod: Pod) -> tuple[Counter, Histogram]:
        """The request counter and latency histogram named as the pod's app profile declares them."""
        spec = self.world.spec(pod.namespace, pod.app)
        key = (spec["requests"], spec["duration"], spec["app_label"], spec["code_label"])
        with self._families_lock:
            if key not in self._families:
                labels = ["namespace", spec["app_label"], "pod", "rollouts_pod_template_hash"]
                requests = Counter(
                    spec["requests"].removesuffix("_total"),
                    "HTTP requests served.",
                    [*labels, "method", spec["code_label"]],
                    registry=self.registry,
                )
                latency = Histogram(
                    spec["duration"], "HTTP request latency.", labels, buckets=BUCKETS, registry=self.registry
                )
                self._families[key] = (requests, latency)
            return self._families[key]

    def _count(self, pod: Pod, code: int, latency: float | None = None) -> None:
        requests, histogram = self.families(pod)
        values = (pod.namespace, pod.app, pod.name, pod.template_hash)
        requests.labels(*values, "GET", str(code)).inc()
        if latency is not None:
            histogram.labels(*values).observe(latency)

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
        self._count(pod, code, latency)
        return code, pod

    def authenticate(self, namespace: str, app: str, token: str) -> tuple[int, Pod | None]:
        """As the app would: the pod serving this request accepts only the credential it loaded."""
        pods = self.world.ready_pods(namespace, app)
        if not pods:
            return 503, None
        pod = random.choice(pods)
        ok = pod.credential is not None and hmac.compare_digest(pod.credential, token)
        code = 200 if ok else 401
        self._count(pod, code)
        return code, pod

    def _forget_removed(self) -> None:
        with self.world.lock:
            removed, self.world.removed = self.world.removed, []
        with self._families_lock:
            families = list(self._families.values())
        for pod in removed:
            values = (pod.namespace, pod.app, pod.name, pod.template_hash)
            for requests, latency in families:
                for code in ("200", "401", "500"):
                    with contextlib.suppress(KeyError):
                        requests.remove(*values, "GET", code)
                with contextlib.suppress(KeyError):
                    latency.remove(*values)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

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
                    standin._forget_removed()
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

    # -- load generator and watches -------------------------------------------------------------
    def _request(self, namespace: str, app: str) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request("GET", f"/svc/{namespace}/{app}/")
            conn.getresponse().read()
        except OSError:
            pass
        finally:
            conn.close()

    def _generate(self) -> None:
        interval = 1 / self.rps
        next_at = time.monotonic()
        while not self._stop.is_set():
            for namespace, app in self.world.services():
                self._pool.submit(self._request, namespace, app)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _watch(self, resource: Resource, on_event: Any, label_selector: str | None = None) -> None:
        while not self._stop.is_set():
            try:
                items, rv = self.kube.list(resource, label_selector=label_selector)
                seen = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items}
                for obj in items:
                    on_event(obj, False)
                self._drop_missing(resource, seen)
                for kind, obj in self.kube.watch(
                    resource, resource_version=rv, label_selector=label_selector, timeout_s=300
                ):
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        on_event(obj, kind == "DELETED")
                    if self._stop.is_set():
                        return
            except (ClusterError, OSError, ValueError):
                self._stop.wait(0.5)

    def _drop_missing(self, resource: Resource, seen: set[tuple[str, str]]) -> None:
        """After a relist, forget objects deleted while no watch was open."""
        with self.world.lock:
            if resource is resources.SECRET:
                for key in [k for k in self.world.secrets if k not in seen]:
                    del self.world.secrets[key]
            elif resource is resources.POD:
                for key in [k for k in self.world.pods if k not in seen]:
                    self.world.removed.append(self.world.pods.pop(key))
            else:
                for chaos_key in [k for k in self.world.chaos if k[0] == resource.kind and k[1:] not in seen]:
                    del self.world.chaos[chaos_key]

    def start(self) -> TrafficStandIn:
        watches = [
            (resources.POD, self.world.set_pod, None),
            (resources.CONFIG_MAP, self.world.set_traffic, TRAFFIC_LABEL),
            (resources.NETWORK_CHAOS, lambda o, d: self.world.set_chaos("NetworkChaos", o, d), None),
            (resources.STRESS_CHAOS, lambda o, d: self.world.set_chaos("StressChaos", o, d), None),
            (resources.SECRET, self.world.set_secret, None),
        ]
        for resource, handler, selector in watches:
            threading.Thread(target=self._watch, args=(resource, handler, selector), daemon=True).start()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._generate, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--rps", type=float, default=DEFAULT_RPS, help="requests per second per app")
    args = parser.parse_args(argv)
    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        raise SystemExit(f"no sandbox settings in {args.state_dir}")
    standin = TrafficStandIn(
        Kube(kubeconfig=str(settings.layout.kubeconfig)), port=settings.ports.traffic, rps=args.rps
    ).start()
    print(f"traffic stand-in: {args.rps} req/s per app, metrics on http://{HOST}:{standin.port}/metrics", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
