"""The resolved target of a run: which cluster, namespace and app, and where its monitoring lives."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from pytest_mnops.errors import ConfigError
from pytest_mnops.options import is_set, resolve
from pytest_mnops.workers import worker_id, worker_namespace

SANDBOX_CONTEXT = "mnops-sandbox"


@dataclass(frozen=True)
class Target:
    kubeconfig: str | None
    context: str | None
    namespace: str
    app: str
    prometheus_url: str | None
    alertmanager_url: str | None
    receivers_url: str | None
    app_url: str | None
    github_url: str
    github_repo: str | None
    time_scale: float
    sandbox: bool
    sandbox_dir: Path
    allowed_contexts: tuple[str, ...] = field(default_factory=tuple)
    allowed_namespaces: tuple[str, ...] = field(default_factory=tuple)
    # The pytest-xdist worker whose own namespace and app instance this is (see pytest_mnops.workers).
    worker: str | None = None
    # Where the run's results are pushed as metrics (reporting, not drilling: no activity reads it).
    pushgateway_url: str | None = None

    def scaled(self, production_s: float) -> float:
        """A production duration (an alert's `for:`, an analysis interval) as the target runs it."""
        return production_s * self.time_scale

    def describe(self) -> str:
        where = "sandbox" if self.sandbox else (self.context or "current context")
        return f"{where}: {self.namespace}/{self.app}"

    def require(self, attribute: str, option: str) -> str:
        value = getattr(self, attribute)
        if not value:
            raise ConfigError(
                f"this test needs {attribute.replace('_', ' ')} of the target. Fix: pass {option} "
                "(or its MNOPS_* env var / mnops_* ini key), or run with --mnops-sandbox."
            )
        return value

    def for_namespace(self, namespace: str) -> Target:
        return replace(self, namespace=namespace, allowed_namespaces=(*self.allowed_namespaces, namespace))


def from_config(config: pytest.Config) -> Target:
    sandbox = bool(resolve(config, "sandbox"))
    sandbox_dir = Path(resolve(config, "sandbox-dir"))
    kubeconfig, context = resolve(config, "kubeconfig"), resolve(config, "context")
    prometheus, alertmanager, receivers = (
        resolve(config, n) for n in ("prometheus-url", "alertmanager-url", "receivers-url")
    )
    time_scale = resolve(config, "time-scale")
    github_url, github_repo = resolve(config, "github-url"), resolve(config, "github-repo")
    pushgateway = resolve(config, "pushgateway-url")
    namespace, app, app_url = resolve(config, "namespace"), resolve(config, "app"), resolve(config, "app-url")
    if not (sandbox or kubeconfig or context or os.environ.get("KUBECONFIG")):
        kubeconfig, context, namespace = _in_cluster(config, namespace)
    allowed_ns = tuple(resolve(config, "allow-namespace")) or (namespace,)
    worker = worker_id(config)
    if worker:
        # Parallel drills never share an app: each worker drills its own copy, in a namespace derived from
        # an allowed one (so it is allowed too).
        base, namespace = namespace, worker_namespace(config, namespace)
        if base in allowed_ns:
            allowed_ns = (*allowed_ns, namespace)
    if sandbox:
        from pytest_mnops.sandbox.cluster import GITHUB_REPO, SandboxSettings

        # The sandbox's own addresses fill whatever the user did not set explicitly.
        settings = SandboxSettings.load(sandbox_dir) or SandboxSettings(state_dir=str(sandbox_dir))
        kubeconfig = kubeconfig or str(settings.layout.kubeconfig.resolve())
        context = context or SANDBOX_CONTEXT
        prometheus = prometheus or settings.prometheus_url
        alertmanager = alertmanager or settings.alertmanager_url
        receivers = receivers or settings.receivers_url
        time_scale = time_scale or settings.time_scale
        app_url = app_url or f"{settings.traffic_url}/svc/{namespace}/{app}"
        github_repo = github_repo or GITHUB_REPO
        pushgateway = pushgateway or settings.pushgateway_url
        if config.getoption("mnops_github_url") is None:
            github_url = settings.github_url
    if resolve(config, "proof") == "alertmanager":
        receivers = None  # prove delivery from Alertmanager alone, as on a cluster with no receivers to read
    return Target(
        kubeconfig=kubeconfig,
        context=context,
        namespace=namespace,
        app=app,
        prometheus_url=prometheus,
        alertmanager_url=alertmanager,
        receivers_url=receivers,
        app_url=app_url,
        github_url=github_url,
        github_repo=github_repo,
        pushgateway_url=pushgateway,
        time_scale=time_scale or 1.0,
        sandbox=sandbox,
        sandbox_dir=sandbox_dir,
        allowed_contexts=tuple(resolve(config, "allow-context")),
        allowed_namespaces=allowed_ns,
        worker=worker,
    )


def _in_cluster(config: pytest.Config, namespace: str) -> tuple[str | None, str | None, str]:
    """In a pod, with no kubeconfig given: its ServiceAccount's config (written next to the ledger, naming the
    pod's token file), and its own namespace unless one was set. Elsewhere: the client's default kubeconfig."""
    from pytest_mnops.k8s import InCluster

    pod = InCluster.detect()
    if pod is None:
        return None, None, namespace
    kubeconfig = pod.write_kubeconfig(Path(resolve(config, "ledger")).resolve().parent)
    return str(kubeconfig), pod.CONTEXT, namespace if is_set(config, "namespace") else pod.namespace
