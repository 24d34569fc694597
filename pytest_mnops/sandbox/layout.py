"""Where the sandbox keeps its state, and which loopback ports its components listen on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_STATE_DIR = Path(".mnops/sandbox")
# Below Linux's ephemeral range (32768-60999), where outgoing connections would collide with our ports.
DEFAULT_PORT_BASE = 20000
# What the sandbox ships with the package: CRDs, the audit policy, KWOK stages.
ASSETS = Path(__file__).parent / "assets"


def cache_dir() -> Path:
    """Build cache outside any checkout, so nothing built is ever committed."""
    configured = os.environ.get("MNOPS_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mnops"


@dataclass(frozen=True)
class Ports:
    """Every component's port, as fixed offsets from one base so several sandboxes can coexist."""

    base: int = DEFAULT_PORT_BASE

    @property
    def etcd_client(self) -> int:
        return self.base + 1

    @property
    def etcd_peer(self) -> int:
        return self.base + 2

    @property
    def apiserver(self) -> int:
        return self.base + 3

    @property
    def controller_manager(self) -> int:
        return self.base + 4

    @property
    def scheduler(self) -> int:
        return self.base + 5

    @property
    def kwok(self) -> int:
        return self.base + 6

    @property
    def rollouts_metrics(self) -> int:
        return self.base + 7

    @property
    def rollouts_healthz(self) -> int:
        return self.base + 8

    @property
    def prometheus(self) -> int:
        return self.base + 11

    @property
    def alertmanager(self) -> int:
        return self.base + 12

    @property
    def traffic(self) -> int:
        return self.base + 13

    @property
    def receivers(self) -> int:
        return self.base + 14

    @property
    def smtp(self) -> int:
        return self.base + 15

    @property
    def github(self) -> int:
        return self.base + 16

    @property
    def pushgateway(self) -> int:
        return self.base + 17


@dataclass(frozen=True)
class SandboxLayout:
    """Paths below one sandbox state directory."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def processes(self) -> Path:
        return self.root / "processes.json"

    @property
    def settings(self) -> Path:
        return self.root / "sandbox.json"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (policy: sandbox/assets/audit-policy.yaml)."""
        return self.logs / "kube-apiserver-audit.log"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def make_dirs(self) -> None:
        for path in (self.pki, self.logs, self.data, self.config):
            path.mkdir(parents=True, exist_ok=True)
