"""`mnops sandbox up|down|status|env`: start, check and stop the sandbox's processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from pytest_mnops.errors import MnopsError, SandboxError
from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.layout import DEFAULT_PORT_BASE, DEFAULT_STATE_DIR, HOST, Ports, SandboxLayout
from pytest_mnops.sandbox.pki import Pki
from pytest_mnops.sandbox.processes import Started, Supervisor

Progress = Callable[[str], None]
CONTEXT = "mnops-sandbox"
START_TIMEOUT_S = 120.0
API_QPS = 100  # controller-manager's and scheduler's request rate to the API server
ARGO_NAMESPACE = "argo-rollouts"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
GITHUB_REPO = "machinenativeops/machine-native-ops"
GITHUB_TOKEN = "mnops-sandbox-token"
ASSETS = Path(__file__).parent / "assets"


@dataclass
class SandboxSettings:
    """What `up` was asked for; persisted so `status`, `env` and the pytest plugin find the sandbox."""

    state_dir: str
    port_base: int = DEFAULT_PORT_BASE
    nodes: int = 3
    app_replicas: int = 10
    # Production timings from charts/ and monitoring/ run at this fraction (1m analysis interval -> 5s).
    time_scale: float = 1 / 12
    # Release the app once through its canary analysis at `up` (what the validation checks judge); a scale
    # sandbox goes without: five canary steps over a thousand pods would be most of its start.
    release: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> Ports:
        return Ports(self.port_base)

    @property
    def layout(self) -> SandboxLayout:
        return SandboxLayout(Path(self.state_dir))

    @property
    def prometheus_url(self) -> str:
        return f"http://{HOST}:{self.ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{HOST}:{self.ports.alertmanager}"

    @property
    def receivers_url(self) -> str:
        return f"http://{HOST}:{self.ports.receivers}"

    @property
    def traffic_url(self) -> str:
        return f"http://{HOST}:{self.ports.traffic}"

    @property
    def github_url(self) -> str:
        return f"http://{HOST}:{self.ports.github}"

    @property
    def pushgateway_url(self) -> str:
        return f"http://{HOST}:{self.ports.pushgateway}"

    def env(self) -> dict[str, str]:
        """The exports a shell (or a pytest run) needs to talk to this sandbox."""
        return {
            "KUBECONFIG": str(self.layout.kubeconfig.resolve()),
            "MNOPS_CONTEXT": CONTEXT,
            "MNOPS_PROMETHEUS_URL": self.prometheus_url,
            "MNOPS_ALERTMANAGER_URL": self.alertmanager_url,
            "MNOPS_RECEIVERS_URL": self.receivers_url,
            "MNOPS_PUSHGATEWAY_URL": self.pushgateway_url,
            "MNOPS_GITHUB_URL": self.github_url,
            "MNOPS_GITHUB_REPO": GITHUB_REPO,
            # The GitHub stand-in's fixed token: a sandbox credential, not a secret.
            "MNOPS_GITHUB_TOKEN": GITHUB_TOKEN,
        }

    def save(self) -> None:
        # Absolute, so a run from another directory still finds the kubeconfig and certificates.
        self.state_dir = str(Path(self.state_dir).resolve())
        self.layout.settings.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: Path | str = DEFAULT_STATE_DIR) -> SandboxSettings | None:
        path = SandboxLayout(Path(state_dir)).settings
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))


def default_state_dir() -> Path:
    return Path(os.environ.get("MNOPS_SANDBOX_DIR", DEFAULT_STATE_DIR))


# -- component definitions -------------------------------------------------------------------------------


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


# -- the sandbox ----------------------------------------------------------------------------------------


class Sandbox:
    def __init__(self, settings: SandboxSettings, progress: Progress = print) -> None:
        self.settings = settings
        self.layout = settings.layout
        self.progress = progress
        self.supervisor = Supervisor(self.layout.processes)

    # -- up -------------------------------------------------------------------------------------------
    def up(self) -> float:
        """Start whatever is not running and return once everything is ready; returns seconds taken."""
        started_at = time.monotonic()
        self.layout.make_dirs()
        self.settings.save()
        bins = binaries.ensure_all(self.progress)
        pki = Pki(self.layout.pki)
        if not pki.exists():
            pki.generate()
        self._write_kubeconfig(pki)
        self._write_configs()
        launched: list[str] = []
        try:
            self._launch(MONITORING, bins, launched)
            self._launch(CONTROL_PLANE, bins, launched, sequential=True)
            from pytest_mnops.sandbox import bootstrap

            kube = bootstrap.kube(self.settings)
            bootstrap.install_crds(kube, self.progress)
            self._launch(AFTER_APISERVER, bins, launched)
            bootstrap.ensure_nodes(kube, self.settings.nodes, self.progress)
            bootstrap.ensure_base_objects(kube)
            bootstrap.deploy_reference_app(kube, self.settings, self.progress)
            self._launch((TRAFFIC, PROMETHEUS), bins, launched)
            bootstrap.wait_ready(kube, self.settings, self.progress)
            if self.settings.release:
                bootstrap.release_through_analysis(kube, self.settings, self.progress)
        except BaseException as exc:
            # Nothing half-started is left behind: stop exactly what this call launched.
            for name in reversed(launched):
                self.supervisor.stop(name)
            if isinstance(exc, MnopsError | KeyboardInterrupt):
                raise
            raise SandboxError(f"sandbox up failed: {exc!r}. Logs: {self.layout.logs}") from exc
        elapsed = time.monotonic() - started_at
        self.progress(f"[sandbox] ready in {elapsed:.1f}s — `mnops sandbox env` prints the exports")
        return elapsed

    def _launch(
        self, components: tuple[Component, ...], bins: dict[str, Path], launched: list[str], *, sequential: bool = False
    ) -> None:
        running = self.supervisor.load()
        pending: list[tuple[Component, Started, float]] = []
        for comp in components:
            entry = running.get(comp.name)
            if entry is not None and entry.alive():
                if comp.ready(self.settings):
                    continue
            else:
                self._check_ports_free(comp)
            self.progress(f"[sandbox] starting {comp.name}")
            entry = self.supervisor.start(
                comp.name, comp.argv(self.settings, bins), self.layout.log(comp.name), env=self._component_env()
            )
            launched.append(comp.name)
            pending.append((comp, entry, time.monotonic()))
            if sequential:
                self._await(pending)
                pending = []
        self._await(pending)

    def _await(self, pending: list[tuple[Component, Started, float]]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = list(pending)
        while waiting:
            for item in list(waiting):
                comp, entry, t0 = item
                if not entry.alive():
                    raise SandboxError(
                        f"sandbox component {comp.name!r} exited during start.\n  command: {' '.join(entry.argv)}"
                        f"\n  log: {entry.log}\n{entry.log_tail()}"
                    )
                if comp.ready(self.settings):
                    self.progress(f"[sandbox] {comp.name} ready ({time.monotonic() - t0:.1f}s)")
                    waiting.remove(item)
            if time.monotonic() > deadline:
                names = ", ".join(c.name for c, _, _ in waiting)
                raise SandboxError(
                    f"sandbox: {names} not ready after {START_TIMEOUT_S:.0f}s; logs in {self.layout.logs}"
                )
            time.sleep(0.1)

    def _check_ports_free(self, comp: Component) -> None:
        for port in comp.ports(self.settings.ports):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((HOST, port))
                except OSError:
                    raise SandboxError(
                        f"sandbox component {comp.name!r}: port {HOST}:{port} is already in use by another "
                        "process. Fix: stop that process, run `mnops sandbox down` for an older sandbox, or "
                        "pick other ports with `mnops sandbox up --port-base N`."
                    ) from None

    def _component_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "MNOPS_"))}
        env["KUBECONFIG"] = str(self.layout.kubeconfig.resolve())
        # The stand-ins are this package's modules; make sure they import from the same place.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")) if p
        )
        return env

    def _write_kubeconfig(self, pki: Pki) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": CONTEXT,
            "clusters": [
                {
                    "name": CONTEXT,
                    "cluster": {
                        "server": f"https://{HOST}:{self.settings.ports.apiserver}",
                        "certificate-authority": str(pki.ca_cert.resolve()),
                    },
                }
            ],
            "users": [
                {
                    "name": "mnops-admin",
                    "user": {
                        "client-certificate": str(pki.admin_cert.resolve()),
                        "client-key": str(pki.admin_key.resolve()),
                    },
                }
            ],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "mnops-admin"}}],
        }
        self.layout.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))

    def _write_configs(self) -> None:
        from pytest_mnops.sandbox import monitoring_config

        monitoring_config.write(self.settings)

    # -- down / status ------------------------------------------------------------------------------
    def down(self, *, keep: bool = False) -> list[str]:
        stopped = self.supervisor.stop_all()
        if not keep:
            import shutil

            shutil.rmtree(self.layout.root, ignore_errors=True)
        return stopped

    def status(self) -> list[tuple[str, str, str]]:
        """(component, state, detail) for every component; a dead one's detail is the tail of its log."""
        running = self.supervisor.load()
        rows = []
        for comp in ALL_COMPONENTS:
            entry = running.get(comp.name)
            if entry is None:
                rows.append((comp.name, "not started", ""))
            elif not entry.alive():
                rows.append((comp.name, "dead", f"log {entry.log}:\n{entry.log_tail(10)}"))
            elif comp.ready(self.settings):
                rows.append((comp.name, "ready", f"pid {entry.pid}"))
            else:
                rows.append((comp.name, "not ready", f"pid {entry.pid}, log {entry.log}"))
        return rows
