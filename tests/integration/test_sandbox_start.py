"""`mnops sandbox up` fails clearly and leaves nothing running: a port in use, a component dying at start.

These start sandboxes of their own on ports no other module uses (own_sandbox, tests/integration/conftest.py);
none of them gets far enough to need the shared one.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from pytest_mnops.errors import SandboxError
from pytest_mnops.sandbox.cluster import Sandbox
from pytest_mnops.sandbox.processes import Supervisor
from pytest_mnops.sandbox.settings import SandboxSettings

pytestmark = pytest.mark.own_sandbox("sandbox-start")


def _leftovers(state_dir: Path) -> list[str]:
    return [s.name for s in Supervisor(state_dir / "processes.json").load().values() if s.alive()]


def test_a_port_in_use_fails_clearly_and_leaves_nothing_running(tmp_path: Path, own_port_base: int) -> None:
    settings = SandboxSettings(state_dir=str(tmp_path), port_base=own_port_base)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", settings.ports.etcd_client))
        holder.listen()
        with pytest.raises(SandboxError) as error:
            Sandbox(settings, progress=lambda _: None).up()
    assert "'etcd'" in str(error.value) and str(settings.ports.etcd_client) in str(error.value)
    assert "--port-base" in str(error.value)
    assert _leftovers(tmp_path) == []


def test_a_component_dying_at_start_is_named_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_port_base: int
) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    broken = fake_bin / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'fatal: cannot start' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("MNOPS_SANDBOX_BIN", str(fake_bin))
    state = tmp_path / "state"
    settings = SandboxSettings(state_dir=str(state), port_base=own_port_base)
    with pytest.raises(SandboxError) as error:
        Sandbox(settings, progress=lambda _: None).up()
    message = str(error.value)
    assert "'kube-apiserver' exited during start" in message
    assert str(broken) in message and "kube-apiserver.log" in message and "fatal: cannot start" in message
    assert _leftovers(state) == []
