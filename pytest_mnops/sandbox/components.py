"""The sandbox's processes: how each one starts (its command line) and how to tell it is ready."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from pytest_mnops.names import FAKE_NODE_ANNOTATION
from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.layout import ASSETS, HOST, Ports, SandboxLayout
from pytest_mnops.sandbox.pki import Pki
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.timescale import scale

API_QPS = 100  # controller-manager's and scheduler's request rate to the API server
PROMETHEUS_RESEND_DELAY = "1m"  # Prometheus's default, scaled like every other timing


@dataclass(frozen=True)
class Component:
    """One sandbox process: how to start it and how to tell it is ready."""

    name: str
    argv: Callable[[SandboxSettings, dict[str, Path]], list[str]]
    ready: Callable[[SandboxSettings], bool]
    ports: Callable[[Ports], tuple[int, ...]]


def _http_ok(url: str, *, cert: SandboxLayout | None = None, expect: str | None = None) -> bool:
    kwargs: dict[str, Any] = {"timeout": 2}
    if cert is not None:
        pki = Pki(cert.pki)
        kwargs.update(verify=str(pki.ca_cert), cert=(str(pki.admin_cert), str(pki.admin_key)))
    try:
        resp = requests.get(url, **kwargs)
    except requests.RequestException:
        return False
    return resp.ok and (expect is None or expect in resp.text)


def _etcd_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    p = s.ports
    peer = f"http://{HOST}:{p.etcd_peer}"
    client = f"http://{HOST}:{p.etcd_client}"
    return [
        str(bins["etcd"]),
        "--name=mnops",
        f"--data-dir={s.layout.data / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=mnops={peer}",
        "--initial-cluster-state=new",
        "--quota-backend-bytes=4294967296",
        "--snapshot-count=10000",
        # A sandbox's data is disposable: skipping fsync keeps a 2-core CI machine's disk out of the way.
        "--unsafe-no-fsync",
    ]


def _apiserver_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    pki = Pki(s.layout.pki)
    return [
        str(bins["kube-apiserver"]),
        f"--etcd-servers=http://{HOST}:{s.ports.etcd_client}",
        f"--bind-address={HOST}",
        f"--secure-port={s.ports.apiserver}",
        # The apiserver refuses a loopback advertise address; this one only names the `kubernetes`
        # Service's endpoint, which nothing in the sandbox dials, and the reconciler is off.
        "--advertise-address=192.0.2.1",
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={pki.admin_cert}",
        f"--tls-private-key-file={pki.admin_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--service-account-key-file={pki.admin_key}",
        f"--service-account-signing-key-file={pki.admin_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--authorization-mode=Node,RBAC",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--event-ttl=30m",
        "--profiling=false",
        f"--audit-policy-file={ASSETS / 'audit-policy.yaml'}",
        f"--audit-log-path={s.layout.audit_log}",
        "--audit-log-maxsize=100",
        "--audit-log-maxbackup=1",
    ]


def _component_flags(s: SandboxSettings, port: int) -> list[str]:
    """What controller-manager and scheduler share: the admin kubeconfig, serving on loopback with our cert."""
    pki = Pki(s.layout.pki)
    return [
        f"--kubeconfig={s.layout.kubeconfig}",
        f"--authentication-kubeconfig={s.layout.kubeconfig}",
        f"--authorization-kubeconfig={s.layout.kubeconfig}",
        f"--bind-address={HOST}",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.admin_cert}",
        f"--tls-private-key-file={pki.admin_key}",
        "--leader-elect=false",
        "--profiling=false",
        # The client defaults (20 requests/s) make the ReplicaSet controller create 1000 pods in 50 s and
        # the scheduler bind them as slowly; a loopback API server takes far more.
        f"--kube-api-qps={API_QPS}",
        f"--kube-api-burst={2 * API_QPS}",
    ]


def _controller_manager_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    pki = Pki(s.layout.pki)
    return [
        str(bins["kube-controller-manager"]),
        *_component_flags(s, s.ports.controller_manager),
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.admin_key}",
        "--use-service-account-credentials=false",
    ]


def _scheduler_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    return [str(bins["kube-scheduler"]), *_component_flags(s, s.ports.scheduler)]


def _kwok_stage_files() -> list[Path]:
    """KWOK v0.8 has no built-in stages: its fast node and pod lifecycles ship in the module."""
    root = binaries.source_dir(binaries.KWOK) / "kustomize" / "stage"
    files = [
        *sorted((root / "node" / "fast").glob("*.yaml")),
        *sorted((root / "node" / "heartbeat-with-lease").glob("*.yaml")),
        *sorted((root / "pod" / "fast").glob("*.yaml")),
    ]
    return [f for f in files if f.name != "kustomization.yaml"]


def _kwok_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    stages = ",".join(str(p) for p in _kwok_stage_files())
    return [
        str(bins["kwok"]),
        f"--kubeconfig={s.layout.kubeconfig}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
        f"--server-address={HOST}:{s.ports.kwok}",
        f"--config={stages}",
        # Node liveness through Leases, as kubelets do; without them the node lifecycle controller marks
        # nodes NotReady between KWOK's (10-minute) status heartbeats and flips every pod to not Ready.
        "--node-lease-duration-seconds=40",
    ]


def _rollouts_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    return [
        str(bins["rollouts-controller"]),
        f"--kubeconfig={s.layout.kubeconfig}",
        "--leader-elect=false",
        f"--metricsPort={s.ports.rollouts_metrics}",
        f"--healthzPort={s.ports.rollouts_healthz}",
        "--loglevel=info",
    ]


def _alertmanager_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    return [
        str(bins["alertmanager"]),
        f"--config.file={s.layout.config / 'alertmanager.yml'}",
        f"--storage.path={s.layout.data / 'alertmanager'}",
        f"--web.listen-address={HOST}:{s.ports.alertmanager}",
        "--cluster.listen-address=",
    ]


def _prometheus_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    return [
        str(bins["prometheus"]),
        f"--config.file={s.layout.config / 'prometheus.yml'}",
        f"--storage.tsdb.path={s.layout.data / 'prometheus'}",
        "--storage.tsdb.retention.time=1d",
        # Prometheus sends a firing alert to Alertmanager again only after this delay: unscaled, one lost send (a
        # loaded machine, an Alertmanager restart) holds a notification back a whole production minute.
        f"--rules.alert.resend-delay={scale(PROMETHEUS_RESEND_DELAY, s.time_scale)}",
        f"--web.listen-address={HOST}:{s.ports.prometheus}",
        "--web.enable-lifecycle",
        "--web.enable-admin-api",
    ]


def _pushgateway_argv(s: SandboxSettings, bins: dict[str, Path]) -> list[str]:
    return [
        str(bins["pushgateway"]),
        f"--web.listen-address={HOST}:{s.ports.pushgateway}",
        # Pushed drill results survive a restart of the Pushgateway, as on a real one.
        f"--persistence.file={s.layout.data / 'pushgateway.data'}",
        "--persistence.interval=5s",
    ]


def _python_argv(module: str, *args: str) -> Callable[[SandboxSettings, dict[str, Path]], list[str]]:
    def argv(s: SandboxSettings, _: dict[str, Path]) -> list[str]:
        return [sys.executable, "-m", module, f"--state-dir={s.state_dir}", *args]

    return argv


ETCD = Component(
    "etcd",
    _etcd_argv,
    lambda s: _http_ok(f"http://{HOST}:{s.ports.etcd_client}/health", expect="true"),
    lambda p: (p.etcd_client, p.etcd_peer),
)
APISERVER = Component(
    "kube-apiserver",
    _apiserver_argv,
    lambda s: _http_ok(f"https://{HOST}:{s.ports.apiserver}/readyz", cert=s.layout),
    lambda p: (p.apiserver,),
)
CONTROLLER_MANAGER = Component(
    "kube-controller-manager",
    _controller_manager_argv,
    lambda s: _http_ok(f"https://{HOST}:{s.ports.controller_manager}/healthz", cert=s.layout),
    lambda p: (p.controller_manager,),
)
SCHEDULER = Component(
    "kube-scheduler",
    _scheduler_argv,
    lambda s: _http_ok(f"https://{HOST}:{s.ports.scheduler}/healthz", cert=s.layout),
    lambda p: (p.scheduler,),
)
KWOK = Component("kwok", _kwok_argv, lambda s: _http_ok(f"http://{HOST}:{s.ports.kwok}/healthz"), lambda p: (p.kwok,))
ROLLOUTS = Component(
    "argo-rollouts",
    _rollouts_argv,
    lambda s: _http_ok(f"http://{HOST}:{s.ports.rollouts_healthz}/healthz"),
    lambda p: (p.rollouts_metrics, p.rollouts_healthz),
)
ALERTMANAGER = Component(
    "alertmanager", _alertmanager_argv, lambda s: _http_ok(f"{s.alertmanager_url}/-/ready"), lambda p: (p.alertmanager,)
)
PROMETHEUS = Component(
    "prometheus", _prometheus_argv, lambda s: _http_ok(f"{s.prometheus_url}/-/ready"), lambda p: (p.prometheus,)
)
PUSHGATEWAY = Component(
    "pushgateway", _pushgateway_argv, lambda s: _http_ok(f"{s.pushgateway_url}/-/ready"), lambda p: (p.pushgateway,)
)
RECEIVERS = Component(
    "receivers",
    _python_argv("pytest_mnops.standins.receivers"),
    lambda s: _http_ok(f"{s.receivers_url}/healthz"),
    lambda p: (p.receivers, p.smtp),
)
GITHUB = Component(
    "github",
    _python_argv("pytest_mnops.standins.github"),
    lambda s: _http_ok(f"{s.github_url}/healthz"),
    lambda p: (p.github,),
)
TRAFFIC = Component(
    "traffic",
    _python_argv("pytest_mnops.standins.traffic"),
    lambda s: _http_ok(f"{s.traffic_url}/healthz"),
    lambda p: (p.traffic,),
)

CONTROL_PLANE = (ETCD, APISERVER)
AFTER_APISERVER = (CONTROLLER_MANAGER, SCHEDULER, KWOK, ROLLOUTS)
MONITORING = (RECEIVERS, ALERTMANAGER, GITHUB, PUSHGATEWAY)
ALL_COMPONENTS = (*CONTROL_PLANE, *AFTER_APISERVER, *MONITORING, TRAFFIC, PROMETHEUS)
