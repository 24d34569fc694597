"""Integration tests run against real sandboxes (`make test` starts the shared one; CI always has one).

Which sandbox a test gets, and how the suite runs side by side (`make test`: pytest-xdist, `--dist loadscope`,
so each module runs whole on one worker):

- By default a module shares THE sandbox (`.mnops/sandbox` or ``$MNOPS_SANDBOX_DIR``) with the modules running on
  the other workers. Such a test deploys the app into a namespace of its own (the ``namespace`` fixture) and
  judges only what happens there.
- A module that breaks something sandbox-wide, or needs a quiet control plane, takes a sandbox of its own:

      pytestmark = pytest.mark.own_sandbox("NAME")            # SandboxSettings fields as keywords: nodes=100

  with NAME added to OWN_SANDBOXES below (one module per name). Its ``sandbox`` fixture is then that sandbox:
  state directory `<shared state dir>-NAME`, port base the shared sandbox's + 100 x its place in OWN_SANDBOXES,
  started when the module's first test needs it and stopped after its last. ``own_port_base`` gives the same
  base, without starting anything, to tests that start one themselves.

A missing or unanswering sandbox is an error here, never a skip.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import time
import uuid
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml

from pytest_mnops import app
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.names import SANDBOX_CONTEXT
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox import binaries, monitoring_config
from pytest_mnops.sandbox.cluster import Sandbox
from pytest_mnops.sandbox.components import Component
from pytest_mnops.sandbox.processes import Supervisor
from pytest_mnops.sandbox.settings import SandboxSettings, default_state_dir

ROOT = Path(__file__).resolve().parents[2]
# The reference app's credentials (secret.kubernetes of charts/mnops-profile.yaml), for tests that drill it.
REFERENCE_SECRET, REFERENCE_SECRET_KEY = "machine-native-ops-credentials", "api-token"
STATE_DIR = ROOT / default_state_dir()
# Sandboxes of their own, longest-running module first: xdist hands the modules out in this order. A sandbox's
# ports span base+1..base+16, so 100 apart never collide; ten names end at base+1016, far below the benches (23000).
OWN_SANDBOXES = (
    "app-profile",
    "claims",
    "negative-controls-monitoring",
    "negative-controls",
    "reports",
    "control-plane",
    "validation",
    "sandbox-start",
    "scale",
)
# The shared sandbox's modules that take a minute or more, longest first: handed out right after the own
# sandboxes', so that none of them is the last to start and holds up the end of the run.
LONG_SHARED_MODULES = (
    "test_training_room",
    "test_claim_controls_app",
    "test_parallel_drills",
)
PORT_STEP = 100
OWN_SANDBOX_MARK = "own_sandbox(name, **settings): the module's tests get a sandbox of their own (tests/integration)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", OWN_SANDBOX_MARK)


def own_sandbox_name(node: pytest.Item | pytest.Module) -> str | None:
    marker = node.get_closest_marker("own_sandbox")
    if marker is None:
        return None
    module = node if isinstance(node, pytest.Module) else node.getparent(pytest.Module)
    if module is None or module.get_closest_marker("own_sandbox") is not marker:
        raise pytest.UsageError(f"{node.nodeid}: own_sandbox marks a module. Fix: pytestmark = {marker!r}")
    if not marker.args or marker.args[0] not in OWN_SANDBOXES:
        raise pytest.UsageError(
            f"{node.nodeid}: {marker!r} names no entry of OWN_SANDBOXES. Fix: add the name to the tuple in "
            "tests/integration/conftest.py, which gives the sandbox its port base."
        )
    return marker.args[0]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    integration = [item for item in items if "tests/integration/" in item.nodeid]
    owners: dict[str, str] = {}
    for item in integration:
        item.add_marker(pytest.mark.integration)
        name, module = own_sandbox_name(item), item.nodeid.split("::", 1)[0]
        if name and owners.setdefault(name, module) != module:
            raise pytest.UsageError(f"{module} and {owners[name]} both claim own_sandbox({name!r}): one module each")
    stale = [name for name in LONG_SHARED_MODULES if not (ROOT / "tests" / "integration" / f"{name}.py").is_file()]
    if stale:
        raise pytest.UsageError(f"LONG_SHARED_MODULES names {stale}, which tests/integration does not have")
    # Own sandboxes first, in OWN_SANDBOXES order, then the shared sandbox's long modules, then its others, then
    # the unit tests: the long modules start early and the short ones fill the workers at the end
    # (`--no-loadscope-reorder`).
    rank = {name: place for place, name in enumerate((*OWN_SANDBOXES, *LONG_SHARED_MODULES))}
    first = {id(item): rank.get(own_sandbox_name(item) or item.path.stem, len(rank)) for item in integration}
    items.sort(key=lambda item: first.get(id(item), len(rank) + 1))


@pytest.fixture(scope="session")
def shared_sandbox() -> SandboxSettings:
    settings = SandboxSettings.load(STATE_DIR)
    if settings is None:
        raise RuntimeError(
            f"no sandbox in {STATE_DIR}. Fix: start it with `mnops sandbox up` "
            "(these tests never skip: CI always runs one)."
        )
    return settings


def start(box: Sandbox) -> None:
    """`up` for a test's own sandbox, next to the shared one."""
    # The Supervisor lets go of each daemon's Popen on purpose (they outlive this process); Popen.__del__
    # then warns "still running", which filterwarnings=error would raise later.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        box.up()
        gc.collect()


def start_component(sandbox: SandboxSettings, component: Component, argv: list[str] | None = None) -> None:
    """One stopped component of ``sandbox`` started again (``argv``: in place of its own), ready within 120 s."""
    argv = argv or component.argv(sandbox, binaries.ensure_all(_say))
    # As in start: the daemon outlives its Popen, whose __del__ would warn "still running".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        Supervisor(sandbox.layout.processes).start(component.name, argv, sandbox.layout.log(component.name))
        gc.collect()
    deadline = time.monotonic() + 120
    while not component.ready(sandbox):
        assert time.monotonic() < deadline, f"the restarted {component.name} did not become ready within 120 s"
        time.sleep(0.2)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def port_base_of(name: str, shared: SandboxSettings) -> int:
    return shared.port_base + PORT_STEP * (OWN_SANDBOXES.index(name) + 1)


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest, shared_sandbox: SandboxSettings) -> Iterator[SandboxSettings]:
    """The module's sandbox: the shared one, or its own (own_sandbox), started here and stopped after it."""
    name = own_sandbox_name(request.node)
    if name is None:
        yield shared_sandbox
        return
    state_dir = f"{Path(shared_sandbox.state_dir).resolve()}-{name}"
    found = SandboxSettings.load(state_dir)
    if found is not None and any(state == "ready" for _, state, _ in Sandbox(found, _say).status()):
        yield found  # someone keeps it running (`mnops sandbox --state-dir ... up`): use it, never stop it
        return
    if found is not None:
        Sandbox(found, _say).down()  # what a killed earlier run left behind
    fields = request.node.get_closest_marker("own_sandbox").kwargs
    settings = SandboxSettings(state_dir=state_dir, port_base=port_base_of(name, shared_sandbox), **fields)
    box = Sandbox(settings, _say)
    try:
        start(box)
        yield settings
    finally:
        box.down(keep=True)  # its logs stay for the failure report


@pytest.fixture(scope="module")
def own_port_base(request: pytest.FixtureRequest, shared_sandbox: SandboxSettings) -> int:
    """The module's own port base (see own_sandbox), for a test that starts a sandbox itself."""
    name = own_sandbox_name(request.node)
    if name is None:
        raise pytest.UsageError(f"{request.node.nodeid}: own_port_base needs pytestmark = own_sandbox(NAME)")
    return port_base_of(name, shared_sandbox)


@pytest.fixture(scope="module")
def kube(sandbox: SandboxSettings) -> Kube:
    kube = Kube(kubeconfig=str(sandbox.layout.kubeconfig), context=SANDBOX_CONTEXT)
    kube.server_version()  # a sandbox that is not answering fails here, with the client's explanation
    return kube


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


def mnops_recover(ledger: Path) -> subprocess.CompletedProcess[str]:
    """`mnops recover --ledger LEDGER`, as an operator runs it after a crash."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_mnops.cli", "recover", "--ledger", str(ledger)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_drills(sandbox: SandboxSettings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        drill_argv(sandbox, tmp_path / "ledger.jsonl", *args), cwd=ROOT, capture_output=True, text=True, timeout=1800
    )


def run_validation(
    sandbox: SandboxSettings, tmp_path: Path, namespace: str, *args: str
) -> tuple[dict[str, tuple[str, str]], str]:
    """Run suites/validation as a user would; testcase name -> (outcome, message)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNOPS_", "PYTEST_"))}
    junit = tmp_path / f"validation-{namespace}.xml"
    argv = [sys.executable, "-m", "pytest", "suites/validation", "-p", "no:cacheprovider", "--mnops-sandbox"]
    argv += ["--mnops-sandbox-dir", sandbox.state_dir, *in_namespace(namespace), f"--junitxml={junit}", *args]
    argv += ["--mnops-ledger", str(tmp_path / "ledger.jsonl")]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        found = [(c.tag, c.get("message", "")) for c in case if c.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name", "")] = found[0] if found else ("passed", "")
    return outcomes, proc.stdout + proc.stderr


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
