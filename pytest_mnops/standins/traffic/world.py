"""What the traffic stand-in knows, kept current by its watches: pods, the Secrets they load credentials from,
each app profile's traffic declaration (metric names and labels), Chaos Mesh faults, and those faults' effect
on a pod's latency, CPU and memory."""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from typing import Any

from pytest_mnops.standins.traffic.model import CONSUMERS, NEVER_REVOKE, STALE, Chaos, Pod, pod_from_api, quantity
from pytest_mnops.timescale import seconds

# What an app exports when its profile declares nothing: the Prometheus naming conventions for HTTP servers.
DEFAULT_TRAFFIC = {
    "requests": "http_requests_total",
    "duration": "http_request_duration_seconds",
    "app_label": "app",
    "code_label": "code",
    "auth_path": "auth",
    "auth_header": "Authorization",
}
BASE_CPU_CORES = 0.05
BASE_MEMORY_BYTES = 64 * 2**20


class World:
    """What the stand-in knows: pods and chaos objects, kept current by watches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pods: dict[tuple[str, str], Pod] = {}
        self.chaos: dict[tuple[str, str, str], Chaos] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        # Every value each Secret key has held, and the Secrets whose consumers never revoke one (CONSUMERS).
        self.held: dict[tuple[str, str, str], set[str]] = {}
        self.never_revoked: set[tuple[str, str]] = set()
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
        consumers = (obj["metadata"].get("annotations") or {}).get(CONSUMERS)
        with self.lock:
            if deleted:
                self.secrets.pop(key, None)
                self.never_revoked.discard(key)
                return
            if consumers == NEVER_REVOKE:
                self.never_revoked.add(key)
            else:
                self.never_revoked.discard(key)
            if consumers == STALE and key in self.secrets:
                return
            self.secrets[key] = {
                k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()
            }
            for name, value in self.secrets[key].items():
                self.held.setdefault((*key, name), set()).add(value)

    def accepts(self, pod: Pod, token: str) -> bool:
        """As the app would: the credential the pod loaded, or any its Secret held if its consumers never revoke."""
        if pod.credential is None:
            return False
        valid: set[str] = set()
        if pod.credential_ref is not None and (pod.namespace, pod.credential_ref[0]) in self.never_revoked:
            with self.lock:
                valid = set(self.held.get((pod.namespace, *pod.credential_ref), set()))
        return any(hmac.compare_digest(value, token) for value in {pod.credential, *valid})

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
