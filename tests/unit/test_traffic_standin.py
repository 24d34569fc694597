"""The traffic stand-in that plays the app's data plane on KWOK: pods and their fault profiles from the API objects,
Chaos Mesh faults honoured, credentials as each pod loaded them, real HTTP answers and the metrics analyses read."""

from __future__ import annotations

import base64
import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytest_mnops.k8s import resources
from pytest_mnops.standins.traffic import TrafficStandIn
from pytest_mnops.standins.traffic.metrics import ClusterStateCollector
from pytest_mnops.standins.traffic.model import (
    CONSUMERS,
    ERROR_RATIO,
    HASH_LABELS,
    LATENCY_MS,
    NEVER_REVOKE,
    STALE,
    Chaos,
    pod_from_api,
    quantity,
)
from pytest_mnops.standins.traffic.watches import Watches
from pytest_mnops.standins.traffic.world import BASE_CPU_CORES, BASE_MEMORY_BYTES, World


def _pod(
    name: str,
    *,
    ready: bool = True,
    error_ratio: str | None = "0",
    latency_ms: str | None = "40",
    namespace: str = "drills",
    pod_hash: str = "h1",
    secret: bool = False,
    limits: dict[str, str] | None = None,
) -> dict[str, Any]:
    annotations = {}
    if error_ratio is not None:
        annotations[ERROR_RATIO] = error_ratio
    if latency_ms is not None:
        annotations[LATENCY_MS] = latency_ms
    env = (
        [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-token"}}}] if secret else []
    )
    container = {"name": "app", "env": [{"name": "PLAIN", "value": "1"}, *env]}
    if limits is not None:
        container["resources"] = {"limits": limits}
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "labels": {"app": "demo", HASH_LABELS[0]: pod_hash},
            "annotations": annotations,
            # A Rollout's (or Deployment's) ReplicaSet owns it: the stand-in plays the pods of every workload.
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"demo-{pod_hash}"}],
        },
        "spec": {"containers": [container]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def _secret(value: str, namespace: str = "drills", consumers: str | None = None) -> dict[str, Any]:
    data = {"api-token": base64.b64encode(value.encode()).decode()}
    annotations = {CONSUMERS: consumers} if consumers else {}
    return {"metadata": {"namespace": namespace, "name": "creds", "annotations": annotations}, "data": data}


def _chaos(kind: str, spec: dict[str, Any], name: str = "c") -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": "drills", "name": name}, "spec": spec}


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2.0), (1, 1.0), ("1.5", 1.5), ("256Mi", 256 * 2**20), ("1Gi", 2**30), ("3k", 3000.0)],
)
def test_quantities_read_as_kubernetes_writes_them(text: str | int, value: float) -> None:
    assert quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "5Xi", "-1"])
def test_a_non_quantity_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        quantity(text)


def test_every_workloads_pods_are_played_with_their_profile_limits_and_credential() -> None:
    unowned = _pod("bare")
    unowned["metadata"]["ownerReferences"] = []
    assert pod_from_api(unowned) is None  # no ReplicaSet, no Rollout or Deployment: not an app's pod
    plain = pod_from_api(_pod("plain", error_ratio=None, latency_ms=None))
    assert plain is not None and (plain.app, plain.error_ratio, plain.latency_s) == ("demo", 0.0, 0.02)
    pod = pod_from_api(
        _pod("a", error_ratio="0.25", latency_ms="120", secret=True, limits={"cpu": "500m", "memory": "256Mi"})
    )
    assert pod is not None
    assert (pod.namespace, pod.name, pod.app, pod.template_hash, pod.ready) == ("drills", "a", "demo", "h1", True)
    assert (pod.error_ratio, pod.latency_s, pod.cpu_limit, pod.memory_limit) == (0.25, 0.12, 0.5, 256 * 2**20)
    assert pod.credential_ref == ("creds", "api-token") and pod.main.name == "app"
    defaults = pod_from_api(_pod("b", latency_ms=None))
    assert defaults is not None and (defaults.latency_s, defaults.cpu_limit, defaults.memory_limit) == (
        0.02,
        1.0,
        2**30,
    )
    assert defaults.credential_ref is None
    only_latency = pod_from_api(_pod("c", error_ratio=None))
    assert only_latency is not None and only_latency.error_ratio == 0.0


def test_a_pod_keeps_the_credential_it_started_with_until_it_is_replaced() -> None:
    world = World()
    world.set_secret(_secret("v1"), deleted=False)
    world.set_pod(_pod("a", secret=True), deleted=False)
    world.set_secret(_secret("v2"), deleted=False)
    world.set_pod(_pod("a", secret=True, ready=False), deleted=False)  # an update of the same pod
    assert world.pods[("drills", "a")].credential == "v1" and not world.pods[("drills", "a")].ready
    world.set_pod(_pod("b", secret=True), deleted=False)  # a replacement started after the rotation
    assert world.pods[("drills", "b")].credential == "v2"
    world.set_pod(_pod("a"), deleted=True)
    assert [p.name for p in world.removed] == ["a"] and ("drills", "a") not in world.pods
    world.set_pod(_pod("never-seen"), deleted=True)
    assert len(world.removed) == 1
    world.set_secret(_secret("v2"), deleted=True)
    world.set_pod(_pod("c", secret=True), deleted=False)
    assert world.pods[("drills", "c")].credential is None


def test_consumers_that_never_revoke_accept_every_value_their_secret_held() -> None:
    world = World()
    world.set_secret(_secret("v1"), deleted=False)
    world.set_secret(_secret("v2", consumers=NEVER_REVOKE), deleted=False)
    world.set_pod(_pod("a", secret=True), deleted=False)
    pod = world.pods[("drills", "a")]
    assert [world.accepts(pod, v) for v in ("v2", "v1", "never-held")] == [True, True, False]
    world.set_secret(_secret("v3"), deleted=False)  # the annotation gone: only what the pod loaded
    assert [world.accepts(pod, v) for v in ("v2", "v1", "v3")] == [True, False, False]


def test_stale_consumers_keep_loading_the_value_the_secret_had_when_it_was_marked() -> None:
    world = World()
    world.set_secret(_secret("v1", consumers=STALE), deleted=False)
    world.set_secret(_secret("v2", consumers=STALE), deleted=False)  # the rotation: not synced to the copy
    world.set_pod(_pod("a", secret=True), deleted=False)  # restarted after it
    assert world.pods[("drills", "a")].credential == "v1"
    world.set_secret(_secret("v3"), deleted=False)  # synced again
    world.set_pod(_pod("b", secret=True), deleted=False)
    assert world.pods[("drills", "b")].credential == "v3"
    assert not world.accepts(world.pods[("drills", "b")], "v1")


def test_ready_pods_and_services() -> None:
    world = World()
    world.set_pod(_pod("a"), deleted=False)
    world.set_pod(_pod("b", ready=False), deleted=False)
    world.set_pod(_pod("c", namespace="other"), deleted=False)
    assert [p.name for p in world.ready_pods("drills", "demo")] == ["a"]
    assert world.ready_pods("drills", "nope") == []
    assert world.services() == {("drills", "demo"), ("other", "demo")}


def _world_with(count: int) -> World:
    world = World()
    for i in range(count):
        world.set_pod(_pod(f"p{i}", limits={"cpu": "1", "memory": "1Gi"}), deleted=False)
    world.set_pod(_pod("not-ready", ready=False), deleted=False)
    return world


@pytest.mark.parametrize(
    ("mode", "value", "count"),
    [
        ("one", None, 1),
        ("all", None, 4),
        ("fixed", "2", 2),
        ("fixed-percent", "50", 2),
        ("random-max-percent", "10", 1),
    ],
)
def test_chaos_picks_its_pods_once_among_the_ready_ones(mode: str, value: str | None, count: int) -> None:
    world = _world_with(4)
    spec: dict[str, Any] = {"mode": mode, "selector": {"labelSelectors": {"app": "demo"}}, "action": "delay"}
    if value is not None:
        spec["value"] = value
    world.set_chaos("NetworkChaos", _chaos("NetworkChaos", spec), deleted=False)
    chosen = world._targets(world.chaos[("NetworkChaos", "drills", "c")])
    assert len(chosen) == count and "not-ready" not in chosen
    world.set_pod(_pod("p9"), deleted=False)  # a later replacement is not affected
    assert world._targets(world.chaos[("NetworkChaos", "drills", "c")]) == chosen


def test_network_delay_and_stress_add_up_capped_at_the_limits() -> None:
    world = _world_with(1)
    pod = world.pods[("drills", "p0")]
    now = time.time()
    assert world.effects(pod, now) == (0.0, BASE_CPU_CORES, float(BASE_MEMORY_BYTES))
    world.set_chaos(
        "NetworkChaos", _chaos("NetworkChaos", {"mode": "all", "delay": {"latency": "300ms"}}), deleted=False
    )
    stress = {"mode": "all", "stressors": {"cpu": {"workers": 1, "load": 50}, "memory": {"size": "25%", "workers": 2}}}
    world.set_chaos("StressChaos", _chaos("StressChaos", stress, name="s"), deleted=False)
    delay, cpu, memory = world.effects(pod, now)
    assert delay == pytest.approx(0.3) and cpu == pytest.approx(BASE_CPU_CORES + 0.5)
    assert memory == pytest.approx(BASE_MEMORY_BYTES + 2 * 0.25 * 2**30)
    big = {"mode": "all", "stressors": {"cpu": {"workers": 4}, "memory": {"size": "4GB"}}}
    world.set_chaos("StressChaos", _chaos("StressChaos", big, name="big"), deleted=False)
    _, cpu, memory = world.effects(pod, now)
    assert (cpu, memory) == (1.0, float(2**30)), "a container cannot use more than its limits"
    other = {"mode": "all", "action": "loss", "selector": {"namespaces": ["elsewhere"]}}
    world.set_chaos("NetworkChaos", _chaos("NetworkChaos", other, name="o"), deleted=False)
    assert world.effects(pod, now)[0] == pytest.approx(0.3)
    world.set_chaos("NetworkChaos", _chaos("NetworkChaos", {}), deleted=True)
    assert world.effects(pod, now)[0] == 0.0


def test_chaos_with_a_duration_ends_by_itself_and_a_repeat_event_keeps_its_start() -> None:
    world = World()
    world.set_chaos("NetworkChaos", _chaos("NetworkChaos", {"duration": "10s"}), deleted=False)
    chaos = world.chaos[("NetworkChaos", "drills", "c")]
    assert chaos.active(chaos.created + 9.9) and not chaos.active(chaos.created + 10)
    world.set_chaos("NetworkChaos", _chaos("NetworkChaos", {"duration": "1h"}), deleted=False)
    assert world.chaos[("NetworkChaos", "drills", "c")] is chaos
    assert Chaos("StressChaos", "drills", "x", {}, 0.0).active(1e12)


def test_cluster_state_series_per_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    world = _world_with(1)
    collector = ClusterStateCollector(world)
    collector.last -= 2  # two seconds at the base CPU use
    families = {f.name: f for f in collector.collect()}
    ready = {tuple(s.labels.values()): s.value for s in families["kube_pod_status_ready"].samples}
    assert ready[("drills", "p0", "true")] == 1.0 and ready[("drills", "p0", "false")] == 0.0
    assert ready[("drills", "not-ready", "true")] == 0.0
    cpu = {
        s.labels["pod"]: s.value for s in families["container_cpu_usage_seconds"].samples if s.name.endswith("_total")
    }
    assert cpu["p0"] == pytest.approx(2 * BASE_CPU_CORES, rel=0.05)
    limits = {
        (s.labels["pod"], s.labels["resource"]): s.value for s in families["kube_pod_container_resource_limits"].samples
    }
    assert limits[("p0", "cpu")] == 1.0 and limits[("p0", "memory")] == 2**30


class _NoKube:
    def list(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the unit tests drive the world directly")


@pytest.fixture
def standin() -> Iterator[TrafficStandIn]:
    server = TrafficStandIn(_NoKube(), host="127.0.0.1")  # type: ignore[arg-type]
    threading.Thread(target=server._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield server
    finally:
        server._stop.set()
        server._server.shutdown()
        server._server.server_close()
        server._pool.shutdown(wait=False, cancel_futures=True)


def _get(standin: TrafficStandIn, path: str, token: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    return resp.status, body


def test_requests_are_served_by_a_ready_pod_with_its_error_ratio(standin: TrafficStandIn) -> None:
    assert _get(standin, "/svc/drills/demo/") == (503, "no ready endpoints\n")
    standin.world.set_pod(_pod("good", latency_ms="1"), deleted=False)
    assert _get(standin, "/svc/drills/demo/") == (200, "good\n")
    standin.world.set_pod(_pod("good"), deleted=True)
    standin.world.set_pod(_pod("bad", error_ratio="1", latency_ms="1", pod_hash="h2"), deleted=False)
    assert _get(standin, "/svc/drills/demo/") == (500, "bad\n")
    assert _get(standin, "/healthz") == (200, "ok")
    assert _get(standin, "/nope")[0] == 404
    assert _get(standin, "/svc/drills")[0] == 404
    metrics = {
        (s.name, s.labels.get("pod"), s.labels.get("code")): s.value
        for family in text_string_to_metric_families(_get(standin, "/metrics")[1])
        for s in family.samples
    }
    assert metrics[("http_requests_total", "bad", "500")] == 1.0
    assert ("http_requests_total", "good", "200") not in metrics, "a removed pod's series are dropped"
    assert metrics[("http_request_duration_seconds_count", "bad", None)] == 1.0


def test_auth_accepts_only_the_credential_the_serving_pod_loaded(standin: TrafficStandIn) -> None:
    assert _get(standin, "/svc/drills/demo/auth", "x")[0] == 503
    standin.world.set_secret(_secret("s3cret"), deleted=False)
    standin.world.set_pod(_pod("a", secret=True), deleted=False)
    assert _get(standin, "/svc/drills/demo/auth", "s3cret") == (200, "a\n")
    assert _get(standin, "/svc/drills/demo/auth", "other")[0] == 401
    assert _get(standin, "/svc/drills/demo/auth")[0] == 401
    standin.world.set_pod(_pod("b"), deleted=False)  # no credential loaded: rejects everything
    standin.world.set_pod(_pod("a"), deleted=True)
    assert _get(standin, "/svc/drills/demo/auth", "s3cret")[0] == 401


def test_a_relist_forgets_what_was_deleted_while_no_watch_was_open() -> None:
    world = World()
    watches = Watches(_NoKube(), world, threading.Event())  # type: ignore[arg-type]
    world.set_pod(_pod("a"), deleted=False)
    world.set_pod(_pod("b"), deleted=False)
    world.set_secret(_secret("v"), deleted=False)
    world.set_chaos("NetworkChaos", _chaos("NetworkChaos", {}), deleted=False)
    world.set_chaos("StressChaos", _chaos("StressChaos", {}), deleted=False)
    watches.drop_missing(resources.POD, {("drills", "b")})
    watches.drop_missing(resources.SECRET, set())
    watches.drop_missing(resources.NETWORK_CHAOS, set())
    assert list(world.pods) == [("drills", "b")] and [p.name for p in world.removed] == ["a"]
    assert world.secrets == {} and list(world.chaos) == [("StressChaos", "drills", "c")]


def test_the_process_without_sandbox_settings_says_where_it_looked(tmp_path: Any) -> None:
    argv = [sys.executable, "-m", "pytest_mnops.standins.traffic", "--state-dir", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.strip() == f"no sandbox settings in {tmp_path}"


def test_a_generated_request_that_raises_is_reported_on_stderr(
    standin: TrafficStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(namespace: str, app: str) -> tuple[int, None]:
        raise RuntimeError(f"cannot answer {namespace}/{app}")

    standin.world.set_pod(_pod("good", latency_ms="1"), deleted=False)
    monkeypatch.setattr(standin, "serve", broken)
    generator = threading.Thread(target=standin._generate, daemon=True)
    generator.start()
    time.sleep(0.3)
    standin._stop.set()
    generator.join(timeout=5)
    assert "RuntimeError: cannot answer drills/demo" in capsys.readouterr().err
