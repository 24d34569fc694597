"""A pod's view of its cluster (in-cluster runs): the API server and the ServiceAccount the kubelet mounts."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pytest_mnops.errors import ConfigError

Obj = dict[str, Any]

# Where the kubelet mounts a pod's ServiceAccount (token, ca.crt, namespace); $MNOPS_SERVICEACCOUNT_DIR moves it.
SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class InCluster:
    """A pod's view of its cluster: the API server from KUBERNETES_SERVICE_HOST/PORT, identity and trust from the
    ServiceAccount files the kubelet mounts (the token is projected and renewed there, so it is read, not copied)."""

    server: str
    directory: Path
    CONTEXT: ClassVar[str] = "in-cluster"  # the context name drills must be allowed (--mnops-allow-context)

    @classmethod
    def detect(cls, environ: Mapping[str, str] = os.environ) -> InCluster | None:
        """The pod environment, or None outside a pod (no service host, or no ServiceAccount token mounted)."""
        host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
        directory = Path(environ.get("MNOPS_SERVICEACCOUNT_DIR") or SERVICEACCOUNT_DIR)
        if not host or not (directory / "token").is_file():
            return None
        problems = [
            f"{directory / name} is missing" for name in ("ca.crt", "namespace") if not (directory / name).is_file()
        ]
        if not port:
            problems.append("KUBERNETES_SERVICE_PORT is unset")
        if problems:
            raise ConfigError(
                f"in-cluster config: KUBERNETES_SERVICE_HOST is set and {directory / 'token'} exists, but "
                f"{' and '.join(problems)}. Fix: mount the ServiceAccount (automountServiceAccountToken: true), "
                "or pass --mnops-kubeconfig."
            )
        return cls(server=f"https://{f'[{host}]' if ':' in host else host}:{port}", directory=directory)

    @property
    def namespace(self) -> str:
        return (self.directory / "namespace").read_text().strip()

    def kubeconfig(self) -> Obj:
        """A kubeconfig naming the pod's files (``tokenFile``, ``certificate-authority``): it holds no credential,
        and the official client and chaostoolkit-kubernetes both load it like any other."""
        name = self.CONTEXT
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [
                {
                    "name": name,
                    "cluster": {"server": self.server, "certificate-authority": str(self.directory / "ca.crt")},
                }
            ],
            "users": [{"name": name, "user": {"tokenFile": str(self.directory / "token")}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": self.namespace}}],
        }

    def write_kubeconfig(self, directory: Path) -> Path:
        """That kubeconfig in ``directory``, one file per pod environment (side-by-side runs never share one)."""
        text = json.dumps(self.kubeconfig(), indent=2, sort_keys=True)
        path = directory / f"kubeconfig-in-cluster-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path
