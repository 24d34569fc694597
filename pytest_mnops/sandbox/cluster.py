"""`mnops sandbox up|down|status`: start, check and stop the sandbox's processes on 127.0.0.1, in order."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from pytest_mnops.errors import MnopsError, SandboxError
from pytest_mnops.names import SANDBOX_CONTEXT
from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.components import (
    AFTER_APISERVER,
    ALL_COMPONENTS,
    CONTROL_PLANE,
    MONITORING,
    PROMETHEUS,
    TRAFFIC,
    Component,
)
from pytest_mnops.sandbox.layout import HOST
from pytest_mnops.sandbox.pki import Pki
from pytest_mnops.sandbox.processes import Started, Supervisor
from pytest_mnops.sandbox.settings import SandboxSettings

Progress = Callable[[str], None]
START_TIMEOUT_S = 120.0


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
            "current-context": SANDBOX_CONTEXT,
            "clusters": [
                {
                    "name": SANDBOX_CONTEXT,
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
            "contexts": [{"name": SANDBOX_CONTEXT, "context": {"cluster": SANDBOX_CONTEXT, "user": "mnops-admin"}}],
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
