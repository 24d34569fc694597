"""The rotation audit log: JSON Lines, one record per API attempt and per outcome, never a secret value.

A record identifies a value only by the first 12 hex digits of its SHA-256. The generators refuse values
under 128 bits of entropy, so that prefix can neither be reversed nor brute-forced, yet it lets an auditor
match GitHub's value to the one a Kubernetes Secret carries.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from pytest_mnops.errors import ConfigError

DEFAULT_AUDIT_LOG = Path(".mnops/secrets-audit.jsonl")
ACTIONS = ("check", "rotate", "verify", "dry-run")
HASH_CHARS = 12


def short_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:HASH_CHARS]


def current_actor() -> str:
    # In GitHub Actions the person who triggered the workflow matters more than the runner's Unix user.
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown"


@dataclass(frozen=True)
class AuditRecord:
    ts: str
    actor: str
    repo: str
    environment: str | None
    secret: str
    action: str
    attempt: int
    outcome: str
    http_status: int | None
    value_sha256: str | None
    detail: str = ""


class AuditLog:
    """Append-only JSONL; each record is one ``write`` of one line, so concurrent runs keep lines whole."""

    def __init__(self, path: Path | str = DEFAULT_AUDIT_LOG, *, actor: str | None = None) -> None:
        self.path = Path(path)
        self.actor = actor or current_actor()
        self._lock = threading.Lock()

    def record(
        self,
        *,
        repo: str,
        environment: str | None,
        secret: str,
        action: str,
        attempt: int,
        outcome: str,
        http_status: int | None = None,
        value_sha256: str | None = None,
        detail: str = "",
    ) -> AuditRecord:
        if action not in ACTIONS:
            raise ConfigError(f"audit action {action!r} is not one of {ACTIONS}. Fix: use one of them.")
        entry = AuditRecord(
            ts=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            actor=self.actor,
            repo=repo,
            environment=environment,
            secret=secret,
            action=action,
            attempt=attempt,
            outcome=outcome,
            http_status=http_status,
            value_sha256=value_sha256,
            detail=detail,
        )
        line = json.dumps(asdict(entry)) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line)
        return entry

    def read(self, *, secret: str | None = None) -> list[AuditRecord]:
        """Every record, oldest first; ``secret`` keeps one secret's records (case-insensitive, as GitHub)."""
        if not self.path.is_file():
            raise ConfigError(
                f"audit log {self.path} does not exist. Fix: pass --audit-log with the file that "
                "`mnops secrets rotate` wrote (default .mnops/secrets-audit.jsonl, relative to where it ran)."
            )
        known = {f.name for f in fields(AuditRecord)}
        records = []
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    if not isinstance(raw, dict):
                        raise TypeError("not a JSON object")
                    entry = AuditRecord(**{k: v for k, v in raw.items() if k in known})
                except (ValueError, TypeError) as exc:
                    raise ConfigError(
                        f"audit log {self.path} line {number} is not an audit record ({exc}). "
                        "Fix: restore the line from a backup, or move the damaged file aside (records are "
                        "append-only)."
                    ) from None
                if secret is None or entry.secret.upper() == secret.upper():
                    records.append(entry)
        return records
