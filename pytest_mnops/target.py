"""The resolved target of a run: which cluster, namespace and app, and where its monitoring lives (no pytest: the
plugin and every CLI command resolve it here)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_mnops.errors import ConfigError
from pytest_mnops.names import DEFAULT_GITHUB_URL, LEDGER_FILE, SANDBOX_CONTEXT, SANDBOX_GITHUB_REPO
from pytest_mnops.sandbox.layout import DEFAULT_STATE_DIR
from pytest_mnops.sandbox.settings import SandboxSettings


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


# The options a target is resolved from (pytest options, or the same names on the command line).
TARGET_OPTIONS = (
    "sandbox",
    "sandbox-dir",
    "kubeconfig",
    "context",
    "namespace",
    "app",
    "app-url",
    "prometheus-url",
    "alertmanager-url",
    "receivers-url",
    "pushgateway-url",
    "github-url",
    "github-repo",
    "time-scale",
    "allow-context",
    "allow-namespace",
    "proof",
    "ledger",  # in a pod, the ServiceAccount's kubeconfig is written next to it
)


def resolve_target(
    values: Mapping[str, Any],
    *,
    github_url_given: bool = False,
    namespace_given: bool = False,
    worker: str | None = None,
    worker_namespace: str | None = None,
) -> Target:
    """The one target resolution, for the plugin and every CLI command: ``values`` holds the TARGET_OPTIONS as
    resolved (flag, env, ini or default). With ``sandbox``, the sandbox's own addresses fill what was not given
    (the GitHub URL only unless ``github_url_given``: it has a default). In a pod with no kubeconfig given, its
    ServiceAccount is the identity and its namespace the target's unless ``namespace_given``. A pytest-xdist
    ``worker`` drills its own copy of the app in ``worker_namespace``. Long only because it fills one field
    after another."""
    value = values.get
    sandbox = bool(value("sandbox"))
    sandbox_dir = Path(value("sandbox-dir") or DEFAULT_STATE_DIR)
    kubeconfig, context = value("kubeconfig"), value("context")
    prometheus, alertmanager, receivers = (value(n) for n in ("prometheus-url", "alertmanager-url", "receivers-url"))
    time_scale = value("time-scale")
    github_url, github_repo = value("github-url"), value("github-repo")
    pushgateway = value("pushgateway-url")
    namespace, app, app_url = values["namespace"], values["app"], value("app-url")
    if not (sandbox or kubeconfig or context or os.environ.get("KUBECONFIG")):
        kubeconfig, context, namespace = _in_cluster(value("ledger"), namespace, namespace_given=namespace_given)
    allowed_ns = tuple(value("allow-namespace") or ()) or (namespace,)
    if worker and worker_namespace:
        # Parallel drills never share an app: each worker drills its own copy, in a namespace derived from
        # an allowed one (so it is allowed too).
        base, namespace = namespace, worker_namespace
        if base in allowed_ns:
            allowed_ns = (*allowed_ns, namespace)
    if sandbox:
        # The sandbox's own addresses fill whatever the user did not set explicitly.
        settings = SandboxSettings.load(sandbox_dir) or SandboxSettings(state_dir=str(sandbox_dir))
        kubeconfig = kubeconfig or str(settings.layout.kubeconfig.resolve())
        context = context or SANDBOX_CONTEXT
        prometheus = prometheus or settings.prometheus_url
        alertmanager = alertmanager or settings.alertmanager_url
        receivers = receivers or settings.receivers_url
        time_scale = time_scale or settings.time_scale
        app_url = app_url or f"{settings.traffic_url}/svc/{namespace}/{app}"
        github_repo = github_repo or SANDBOX_GITHUB_REPO
        pushgateway = pushgateway or settings.pushgateway_url
        if not github_url_given:
            github_url = settings.github_url
    if value("proof") == "alertmanager":
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
        github_url=github_url or DEFAULT_GITHUB_URL,
        github_repo=github_repo,
        pushgateway_url=pushgateway,
        time_scale=time_scale or 1.0,
        sandbox=sandbox,
        sandbox_dir=sandbox_dir,
        allowed_contexts=tuple(value("allow-context") or ()),
        allowed_namespaces=allowed_ns,
        worker=worker,
    )


def _in_cluster(ledger: str | None, namespace: str, *, namespace_given: bool) -> tuple[str | None, str | None, str]:
    """In a pod, with no kubeconfig given: its ServiceAccount's config (written next to the ledger, naming the
    pod's token file), and its own namespace unless one was set. Elsewhere: the client's default kubeconfig."""
    from pytest_mnops.k8s import InCluster

    pod = InCluster.detect()
    if pod is None:
        return None, None, namespace
    kubeconfig = pod.write_kubeconfig(Path(ledger or LEDGER_FILE).resolve().parent)
    return str(kubeconfig), pod.CONTEXT, namespace if namespace_given else pod.namespace
