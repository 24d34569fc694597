"""The plugin's fixtures. Each imports what it needs when it runs, so collection needs no SDK."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mnops.options import resolve
from pytest_mnops.stash import SESSION_KEY, TIMELINE_KEY, drill_facts

if TYPE_CHECKING:
    from pytest_mnops.chaos.runner import ChaosRunner
    from pytest_mnops.k8s import Kube
    from pytest_mnops.names import github_token
    from pytest_mnops.observability.alerts import Alerts
    from pytest_mnops.observability.prometheus import Prometheus
    from pytest_mnops.profile.model import AppProfile
    from pytest_mnops.rollback.helper import RollbackHelper
    from pytest_mnops.rollouts import Rollout
    from pytest_mnops.sandbox.settings import SandboxSettings
    from pytest_mnops.secrets.rotation import SecretRotator
    from pytest_mnops.target import Target
    from pytest_mnops.timeline import Timeline


@pytest.fixture(scope="session")
def mnops_sandbox(request: pytest.FixtureRequest) -> Generator[SandboxSettings | None, None, None]:
    """The local sandbox when ``--mnops-sandbox`` is given: reused if running, else started and stopped after."""
    session = request.config.stash[SESSION_KEY]
    if not session.target.sandbox:
        yield None
        return
    from pytest_mnops.sandbox.cluster import Sandbox
    from pytest_mnops.sandbox.settings import SandboxSettings

    settings = SandboxSettings.load(session.target.sandbox_dir) or SandboxSettings(
        state_dir=str(session.target.sandbox_dir)
    )
    sandbox = Sandbox(settings, session.progress)
    # A sandbox with anything running is someone's: use it as it is (a drill must see a broken component,
    # not have it healed behind its back) and leave it running. Only one we started is stopped again.
    running = any(state != "not started" for _, state, _ in sandbox.status())
    if not running:
        sandbox.up()
    yield settings
    if not running:
        sandbox.down(keep=True)


@pytest.fixture(scope="session")
def mnops_target(
    request: pytest.FixtureRequest, mnops_sandbox: SandboxSettings | None, tmp_path_factory: pytest.TempPathFactory
) -> Generator[Target, None, None]:
    """The resolved target: kube context, namespace, app, Prometheus/Alertmanager/GitHub URLs.

    In a pytest-xdist worker it is the worker's own app instance, deployed for the run and removed after.
    """
    session = request.config.stash[SESSION_KEY]
    if session.target.worker is None or resolve(request.config, "dry-run"):
        yield session.target
        return
    from pytest_mnops.workers import isolated_instance

    with isolated_instance(session.target, tmp_path_factory.mktemp("mnops-worker"), session.progress) as target:
        yield target


@pytest.fixture(scope="session")
def k8s(mnops_target: Target) -> Kube:
    """A thin client over the official kubernetes package; waits use watches, objects are plain dicts."""
    from pytest_mnops.k8s import Kube

    return Kube(kubeconfig=mnops_target.kubeconfig, context=mnops_target.context)


@pytest.fixture(scope="session")
def mnops_profile(request: pytest.FixtureRequest, k8s: Kube, mnops_target: Target) -> AppProfile:
    """The app profile, resolved once per run: selector, container and SLOs discovered from the Rollout and
    its AnalysisTemplates, completed by ``--mnops-profile`` (alerts, faulty version, secret...)."""
    from pytest_mnops import profile

    file = profile.profile_file(mnops_target, resolve(request.config, "profile"))
    app = profile.resolve(
        k8s,
        namespace=mnops_target.namespace,
        app=mnops_target.app,
        file=file,
        time_scale=mnops_target.time_scale,
        container=resolve(request.config, "container"),
    )
    if mnops_target.sandbox and not resolve(request.config, "dry-run"):
        from pytest_mnops.sandbox.apps import install_profile

        install_profile(k8s, app, mnops_target.sandbox_dir)
    return app


@pytest.fixture
def mnops_drill(
    request: pytest.FixtureRequest, k8s: Kube, mnops_target: Target, mnops_profile: AppProfile
) -> dict[str, Any]:
    """What the drill of this test (its ``drill`` marker) runs with, checked at setup: every profile key and
    target setting it needs, pods behind the selector, data behind its SLO queries. Pass it to
    ``chaos.run(name, **mnops_drill)``."""
    from pytest_mnops import profile
    from pytest_mnops.markers import drill_spec
    from pytest_mnops.observability.prometheus import Prometheus

    spec = drill_spec(request.node)
    if spec is None:
        raise pytest.UsageError(f"{request.node.nodeid}: mnops_drill needs a @pytest.mark.drill(NAME) marker")
    slos = profile.check_drill(spec.name, mnops_profile, mnops_target)
    profile.require_pods(k8s, mnops_profile)
    prometheus = Prometheus(mnops_target.require("prometheus_url", "--mnops-prometheus-url"))
    if not resolve(request.config, "dry-run"):
        window = request.config.stash[SESSION_KEY].data_window
        for slo in slos:
            profile.wait_for_data(prometheus, slo, timeout_s=window.left_s())
    return {
        "profile": mnops_profile.to_wire(),
        "selector": mnops_profile.label_selector,
        "container": mnops_profile.container,
        "allow_synthetic_alerts": bool(resolve(request.config, "allow-synthetic-alerts")),
        **profile.plot_of(spec.name, mnops_profile),
    }


@pytest.fixture
def rollout(k8s: Kube, mnops_target: Target) -> Rollout:
    """The Argo Rollout under test: status, abort, retry, promote, promote_full, undo, set_image, wait_for."""
    from pytest_mnops.rollouts import Rollout

    return Rollout(k8s, namespace=mnops_target.namespace, name=mnops_target.app)


@pytest.fixture(scope="session")
def prometheus(mnops_target: Target) -> Prometheus:
    """Prometheus of the target (prometheus-api-client): query, value, range, wait_until."""
    from pytest_mnops.observability.prometheus import Prometheus

    return Prometheus(mnops_target.require("prometheus_url", "--mnops-prometheus-url"))


@pytest.fixture(scope="session")
def alerts(prometheus: Prometheus, mnops_target: Target) -> Alerts:
    """Alert states (ALERTS + Alertmanager API v2) and what the receivers got: wait_for, assert_none_firing."""
    from pytest_mnops.observability.alerts import Alerts

    return Alerts(prometheus, alertmanager_url=mnops_target.alertmanager_url, receivers_url=mnops_target.receivers_url)


@pytest.fixture
def timeline(request: pytest.FixtureRequest) -> Timeline:
    """Phase events of this drill (steady-state, inject, detected, recovered, reverted); MTTD and MTTR."""
    from pytest_mnops.timeline import Timeline

    session = request.config.stash[SESSION_KEY]
    line = Timeline(narrate=session.narrator(request.node))
    request.node.stash[TIMELINE_KEY] = line
    return line


@pytest.fixture
def chaos(request: pytest.FixtureRequest, k8s: Kube, mnops_target: Target, timeline: Timeline) -> ChaosRunner:
    """Runs chaostoolkit experiments (a path, or a name in mnops_scenarios dirs, then scenarios/) through chaoslib,
    rollbacks always; every action's target guarded, every injection ledgered."""
    from pytest_mnops.chaos.runner import ChaosRunner, DrillTest
    from pytest_mnops.markers import drill_spec

    session = request.config.stash[SESSION_KEY]
    rootdir = request.config.rootpath
    test = DrillTest(
        test_id=request.node.nodeid,
        spec=drill_spec(request.node),
        facts=drill_facts(request.node),
        stop_when=resolve(request.config, "stop-when"),
        stop_defaults=resolve(request.config, "stop-defaults"),
        manual_stop=session.manual_stop,
    )
    return ChaosRunner(
        kube=k8s,
        target=mnops_target,
        timeline=timeline,
        ledger=session.ledger,
        guards=session.guards,
        test=test,
        training=session.training,
        trainee_timeout_s=resolve(request.config, "trainee-timeout"),
        scenario_dirs=[rootdir / d for d in resolve(request.config, "scenarios")],
        relative_to=[request.node.path.parent, rootdir],
    )


@pytest.fixture
def rollback(
    k8s: Kube, mnops_target: Target, mnops_profile: AppProfile, prometheus: Prometheus, tmp_path: Any
) -> RollbackHelper:
    """The rollback mechanism: health check, snapshot, abort + undo with retries, verification, notifications."""
    from pytest_mnops.notify import Notifier
    from pytest_mnops.rollback.helper import RollbackHelper

    return RollbackHelper(
        k8s,
        namespace=mnops_target.namespace,
        name=mnops_target.app,
        prometheus=prometheus,
        snapshot_dir=tmp_path,
        notifier=Notifier.for_target(mnops_target),
        slos=mnops_profile.slos(),
    )


@pytest.fixture
def secret_rotator(mnops_target: Target, tmp_path: Any) -> Callable[..., SecretRotator]:
    """Factory for a GitHub Actions secret rotator bound to the target repo and one environment."""
    from pytest_mnops.secrets.rotation import SecretRotator

    def make(environment: str | None = None, **kwargs: Any) -> SecretRotator:
        return SecretRotator(
            repo=mnops_target.require("github_repo", "--mnops-github-repo"),
            environment=environment,
            token=github_token(),
            base_url=mnops_target.github_url,
            audit_log=kwargs.pop("audit_log", tmp_path / "secrets-audit.jsonl"),
            **kwargs,
        )

    return make
