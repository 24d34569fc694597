"""Every fixture method against the real sandbox, on a private copy of the reference app."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from pytest_mnops import app
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.names import ROLLOUT_HASH_LABEL
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.settings import SandboxSettings

FAULTY = {"traffic.mnops.dev/error-ratio": "0.5", "traffic.mnops.dev/latency-ms": "40"}
GOOD = {"traffic.mnops.dev/error-ratio": "0", "traffic.mnops.dev/latency-ms": "40"}
IMAGE = "ghcr.io/machinenativeops/machine-native-ops:{}"


@pytest.fixture
def rollout(kube: Kube, namespace: str) -> Rollout:
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120)
    return rollout


@pytest.fixture(scope="module")
def prometheus(sandbox: SandboxSettings) -> Prometheus:
    return Prometheus(sandbox.prometheus_url)


def test_status_is_trusted_only_for_the_observed_generation(rollout: Rollout) -> None:
    status = rollout.status()
    assert status.trusted and status.phase == "Healthy" and status.available == status.replicas


@pytest.fixture
def held_canary(kube: Kube, rollout: Rollout) -> Iterator[Rollout]:
    """The Rollout with an indefinite pause as its second step: only a promote moves a canary past it (the
    chart's timed pauses end by themselves after 5 s, which would let a promote that does nothing pass)."""
    steps = rollout.get()["spec"]["strategy"]["canary"]["steps"]
    held = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
    kube.patch(
        resources.ROLLOUT,
        rollout.name,
        {"spec": {"strategy": {"canary": {"steps": held}}}},
        namespace=rollout.namespace,
    )
    try:
        yield rollout
    finally:
        kube.patch(
            resources.ROLLOUT,
            rollout.name,
            {"spec": {"strategy": {"canary": {"steps": steps}}}},
            namespace=rollout.namespace,
        )


def _held_at_the_pause(rollout: Rollout) -> None:
    rollout.wait_status(
        lambda status: status.step_index == 1 and status.paused, timeout_s=60, what="canary at the pause"
    )


def test_pause_then_promote_walks_the_canary_to_healthy(held_canary: Rollout) -> None:
    rollout = held_canary
    before = rollout.status().stable_hash
    rollout.set_image(IMAGE.format("1.0.1"), annotations=GOOD)
    _held_at_the_pause(rollout)
    rollout.pause()
    assert rollout.get()["spec"]["paused"] is True
    rollout.promote()
    assert not rollout.get()["spec"].get("paused")
    final = rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120)
    assert final.stable_hash != before


def test_promote_full_skips_the_remaining_steps(held_canary: Rollout) -> None:
    rollout = held_canary
    before = rollout.status().stable_hash
    rollout.set_image(IMAGE.format("1.0.2"), annotations=GOOD)
    _held_at_the_pause(rollout)
    rollout.promote_full()
    final = rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=60)
    assert final.stable_hash != before


def test_abort_then_retry_and_undo(rollout: Rollout) -> None:
    stable = rollout.status().stable_hash
    rollout.set_image(IMAGE.format("1.0.3"), annotations=GOOD)
    # Argo Rollouts clears an abort set before it has picked up the new revision: abort the running canary.
    rollout.wait_for(stable_is_current=False, timeout_s=60)
    rollout.abort()
    aborted = rollout.wait_for(aborted=True, timeout_s=60)
    assert aborted.stable_hash == stable
    rollout.retry()
    rollout.wait_for(aborted=False, timeout_s=60)
    rollout.abort()
    rollout.wait_for(aborted=True, timeout_s=60)
    revisions = rollout.revisions()
    stable_revision = next(r for r, rs in revisions.items() if rs["metadata"]["labels"][ROLLOUT_HASH_LABEL] == stable)
    rollout.undo(stable_revision)
    final = rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120)
    assert final.stable_hash == stable


def test_a_faulty_canary_fails_its_analysis_and_is_aborted(rollout: Rollout) -> None:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    rollout.set_image(IMAGE.format("1.0.4-faulty"), annotations=FAULTY)
    run = rollout.wait_for_analysis("Failed", timeout_s=120, after=started)
    assert run["status"]["phase"] == "Failed"
    status = rollout.wait_for(aborted=True, timeout_s=60)
    assert status.phase == "Degraded"
    stable = next(
        r for r, rs in rollout.revisions().items() if rs["metadata"]["labels"][ROLLOUT_HASH_LABEL] == status.stable_hash
    )
    rollout.undo(stable)
    rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=120)


def test_prometheus_wait_until_and_range(prometheus: Prometheus, namespace: str) -> None:
    expr = f'sum(rate(http_requests_total{{namespace="{namespace}"}}[5s]))'
    rate = prometheus.wait_until(expr, lambda v: v is not None and v > 0, timeout_s=30)
    assert rate and rate > 0
    series = prometheus.range(expr, time.time() - 10, time.time(), step_s=1)
    assert series and len(series[0]["values"]) >= 5


def test_alert_goes_pending_firing_then_resolved(
    kube: Kube, namespace: str, sandbox: SandboxSettings, prometheus: Prometheus
) -> None:
    """HighErrorRate for this namespace alone: real rule, real evaluation, real Alertmanager delivery."""
    alerts = Alerts(prometheus, alertmanager_url=sandbox.alertmanager_url, receivers_url=sandbox.receivers_url)
    labels = {"namespace": namespace}
    rollout = Rollout(kube, namespace=namespace, name=app.APP_NAME)
    started = time.time()
    # Every pod of this namespace's app answers 50% errors: patch the running pods' profile, not the
    # template, so no canary starts.
    pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=f"app={app.APP_NAME}")
    for pod in pods:
        kube.patch(resources.POD, pod["metadata"]["name"], {"metadata": {"annotations": FAULTY}}, namespace=namespace)
    try:
        alerts.wait_for("HighErrorRate", "pending", within=60, labels=labels)
        alerts.wait_for("HighErrorRate", "firing", within=60, labels=labels)
        delivered = alerts.wait_delivered("HighErrorRate", "pager", within=60, since=started, namespace=namespace)
        assert namespace in str(delivered["payload"])
    finally:
        for pod in pods:
            kube.patch(resources.POD, pod["metadata"]["name"], {"metadata": {"annotations": GOOD}}, namespace=namespace)
    alerts.wait_for("HighErrorRate", "resolved", within=90, labels=labels)
    rollout.wait_for(phase="Healthy", timeout_s=30)
