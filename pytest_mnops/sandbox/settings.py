"""The sandbox's persisted settings: what `mnops sandbox up` was asked for, and the addresses that follow.

The stand-ins, the target resolution and the CLI import only this module of the sandbox (no process, no SDK).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pytest_mnops.names import SANDBOX_CONTEXT, SANDBOX_GITHUB_REPO, SANDBOX_GITHUB_TOKEN
from pytest_mnops.sandbox.layout import DEFAULT_PORT_BASE, DEFAULT_STATE_DIR, HOST, Ports, SandboxLayout


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
            "MNOPS_CONTEXT": SANDBOX_CONTEXT,
            "MNOPS_PROMETHEUS_URL": self.prometheus_url,
            "MNOPS_ALERTMANAGER_URL": self.alertmanager_url,
            "MNOPS_RECEIVERS_URL": self.receivers_url,
            "MNOPS_PUSHGATEWAY_URL": self.pushgateway_url,
            "MNOPS_GITHUB_URL": self.github_url,
            "MNOPS_GITHUB_REPO": SANDBOX_GITHUB_REPO,
            "MNOPS_GITHUB_TOKEN": SANDBOX_GITHUB_TOKEN,
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
