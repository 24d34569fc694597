"""Who changed a Rollout, and with which tool: the API server's audit log.

The sandbox's policy (sandbox/assets/audit-policy.yaml) logs every change to a Rollout at Metadata level:
user, user agent, verb, subresource and time, never a body. On another cluster, point the scenario's
``apiserver_audit_log`` configuration at a readable copy of its log, or go without: verdicts then rest on the
effect alone.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MUTATING = frozenset({"create", "update", "patch", "delete"})
# The Argo Rollouts controller's own writes (status updates, its abort of a failed analysis).
CONTROLLER_AGENTS = ("rollouts-controller", "argo-rollouts")
# User-agent product -> what a person typed.
TOOLS = {
    "kubectl-argo-rollouts": "kubectl argo rollouts",
    "kubectl": "kubectl",
    "pytest-mnops": "mnops",
}


@dataclass(frozen=True)
class Write:
    """One change request to the Rollout, as the API server recorded it."""

    at: float  # requestReceivedTimestamp, wall clock
    user: str
    agent: str
    verb: str
    subresource: str
    code: int

    @property
    def tool(self) -> str:
        product = self.agent.split("/", 1)[0]
        return TOOLS.get(product, product or "unknown tool")

    @property
    def by_controller(self) -> bool:
        return self.agent.startswith(CONTROLLER_AGENTS)

    @property
    def allowed(self) -> bool:
        return 200 <= self.code < 300

    def describe(self) -> str:
        target = f"rollouts/{self.subresource}" if self.subresource else "rollouts"
        return f"{self.user} via {self.tool}: {self.verb} {target} -> {self.code}"


def _timestamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse(event: dict[str, Any], *, namespace: str, name: str) -> Write | None:
    """The write an audit event records against Rollout ``namespace/name``, else None."""
    ref = event.get("objectRef") or {}
    if (
        event.get("verb") not in MUTATING
        or ref.get("resource") != "rollouts"
        or ref.get("namespace") != namespace
        or ref.get("name") != name
        or event.get("stage") != "ResponseComplete"
    ):
        return None
    return Write(
        at=_timestamp(event["requestReceivedTimestamp"]),
        user=event["user"]["username"],
        agent=event.get("userAgent", ""),
        verb=event["verb"],
        subresource=ref.get("subresource", ""),
        code=int((event.get("responseStatus") or {}).get("code", 0)),
    )


class AuditTrail:
    """Reads a Rollout's writes from an audit log, from where it stood when the trail was opened."""

    def __init__(self, path: Path, *, namespace: str, name: str) -> None:
        self.path, self.namespace, self.name = path, namespace, name
        self.offset = path.stat().st_size if path.is_file() else 0
        self._partial = b""

    def writes(self) -> list[Write]:
        """Writes logged since the last call (or since the trail was opened)."""
        if not self.path.is_file():
            return []
        size = self.path.stat().st_size
        if size < self.offset:  # rotated (--audit-log-maxsize): the new file is all new
            self.offset, self._partial = 0, b""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # a line the server is still writing
        found = []
        for line in lines:
            if not line.strip():
                continue
            try:
                write = parse(json.loads(line), namespace=self.namespace, name=self.name)
            except (ValueError, KeyError):
                continue
            if write is not None:
                found.append(write)
        return found
