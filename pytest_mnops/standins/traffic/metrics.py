"""What the traffic stand-in exports on ``/metrics``, under the names and labels of the real exporters: the
request counter and latency histogram an instrumented app exports (named as its profile declares), and the
cAdvisor- and kube-state-metrics-style series of the pods it plays."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from pytest_mnops.standins.traffic.model import Pod
from pytest_mnops.standins.traffic.world import World

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
# `_created` series would double the scrape for nothing a real app's dashboards use.
disable_created_metrics()


class RequestMetrics:
    """The app's request counter and latency histogram, one pair per metric naming an app profile declares."""

    def __init__(self, world: World, registry: CollectorRegistry) -> None:
        self.world, self.registry = world, registry
        self._families: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}
        self._families_lock = threading.Lock()

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

    def count(self, pod: Pod, code: int, latency: float | None = None) -> None:
        requests, histogram = self.families(pod)
        values = (pod.namespace, pod.app, pod.name, pod.template_hash)
        requests.labels(*values, "GET", str(code)).inc()
        if latency is not None:
            histogram.labels(*values).observe(latency)

    def forget_removed(self) -> None:
        """Drop the series of the pods removed since the last scrape."""
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
