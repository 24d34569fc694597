"""Integration tests run against the real sandbox (`make test` starts it; CI always has one).

A missing or unanswering sandbox is an error here, never a skip.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml

from pytest_mnops import app
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox import monitoring_config
from pytest_mnops.sandbox.cluster import CONTEXT, Sandbox, SandboxSettings, default_state_dir

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / default_state_dir()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def sandbox() -> SandboxSettings:
    settings = SandboxSettings.load(STATE_DIR)
    if settings is None:
        raise RuntimeError(
            f"no sandbox in {STATE_DIR}. Fix: start it with `mnops sandbox up` "
            "(these tests never skip: CI always runs one)."
        )
    return settings


@pytest.fixture(scope="session")
def kube(sandbox: SandboxSettings) -> Kube:
    kube = Kube(kubeconfig=str(sandbox.layout.kubeconfig), context=CONTEXT)
    kube.server_version()  # a sandbox that is not answering fails here, with the client's explanation
    return kube


def start(box: Sandbox) -> None:
    """`up` for a test's own sandbox, next to the shared one."""
    # The Supervisor lets go of each daemon's Popen on purpose (they outlive this process); Popen.__del__
    # then warns "still running", which filterwarnings=error would raise later.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        box.up()
        gc.collect()


def drill_argv(sandbox: SandboxSettings, ledger: Path, *args: str) -> list[str]:
    """`pytest suites/drills` against this sandbox, with its own ledger and run history (next to the ledger:
    the checkout's .mnops/history is the developer's), as a user would run it."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "suites/drills",
        "-p",
        "no:cacheprovider",
        "--mnops-sandbox",
        "--mnops-sandbox-dir",
        sandbox.state_dir,
        "--mnops-ledger",
        str(ledger),
        "--mnops-history-dir",
        str(ledger.parent / "history"),
        *args,
    ]


def in_namespace(namespace: str) -> tuple[str, ...]:
    return ("--mnops-namespace", namespace, "--mnops-allow-namespace", namespace)


def deploy_app(kube: Kube, sandbox: SandboxSettings, prefix: str) -> Iterator[str]:
    """The reference app in a fresh namespace (traffic flows there at once); deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    try:
        app.deploy(kube, name, prometheus_address=sandbox.prometheus_url, time_scale=sandbox.time_scale)
        Rollout(kube, namespace=name, name=app.APP_NAME).wait_for(phase="Healthy", timeout_s=180)
        yield name
    finally:
        kube.delete(resources.NAMESPACE, name)


@pytest.fixture(scope="module")
def namespace(kube: Kube, sandbox: SandboxSettings) -> Iterator[str]:
    yield from deploy_app(kube, sandbox, "mnops-it")


@contextlib.contextmanager
def alertmanager_config_edited(sandbox: SandboxSettings, edit: Callable[[dict], None]) -> Iterator[None]:
    """The sandbox's Alertmanager runs ``edit``-ed configuration for the block, its own again after."""
    config = monitoring_config.alertmanager_config(sandbox)
    edit(config)
    (sandbox.layout.config / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    requests.post(f"{sandbox.alertmanager_url}/-/reload", timeout=10).raise_for_status()
    try:
        yield
    finally:
        monitoring_config.write(sandbox)
        requests.post(f"{sandbox.alertmanager_url}/-/reload", timeout=10).raise_for_status()
