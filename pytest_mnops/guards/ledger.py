"""The fault ledger: written before every injection, so any fault can be reverted after any crash.

One JSON line per event, fsync'ed: ``injected`` (with the scenario's rollback activities, the experiment's own
resolved configuration they need, where its secrets are read from - never their values - and, for a fault
Kubernetes heals by itself, the steady-state hypothesis that shows it healed) and ``reverted``. An ``injected``
entry without its ``reverted`` line is a fault still in the cluster; ``mnops recover`` replays its rollbacks.
Appends are locked, so parallel workers (pytest-xdist) can share one ledger.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Entry:
    id: str
    scenario: str
    test: str
    at: float
    pid: int
    configuration: dict[str, Any]
    rollbacks: list[dict[str, Any]]
    secrets: dict[str, Any] = field(default_factory=dict)
    hypothesis: dict[str, Any] | None = None

    def describe(self) -> str:
        names = ", ".join(r.get("name", "?") for r in self.rollbacks) or "its steady state coming back (self-healing)"
        ns = self.configuration.get("namespace", "?")
        return f"{self.scenario} in namespace {ns} (test {self.test or '-'}, pid {self.pid}): revert with {names}"


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        with self.path.open("a+b") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            try:
                # A crash mid-write leaves a line without its newline: start on a fresh line, or this record
                # would be glued to the fragment and lost with it.
                size = out.seek(0, os.SEEK_END)
                if size:
                    out.seek(size - 1)
                    if out.read(1) != b"\n":
                        line = b"\n" + line
                out.write(line)
                out.flush()
                os.fsync(out.fileno())
            finally:
                fcntl.flock(out, fcntl.LOCK_UN)

    def record_injection(
        self,
        *,
        scenario: str,
        test: str,
        configuration: dict[str, Any],
        rollbacks: list[dict[str, Any]],
        secrets: dict[str, Any] | None = None,
        hypothesis: dict[str, Any] | None = None,
    ) -> Entry:
        entry = Entry(
            id=uuid.uuid4().hex,
            scenario=scenario,
            test=test,
            at=time.time(),
            pid=os.getpid(),
            configuration=configuration,
            rollbacks=rollbacks,
            secrets=secrets or {},
            hypothesis=hypothesis,
        )
        self._append({"event": "injected", **entry.__dict__})
        return entry

    def record_reverted(self, entry_id: str, *, how: str) -> None:
        self._append({"event": "reverted", "id": entry_id, "at": time.time(), "how": how})

    def pending(self) -> list[Entry]:
        """Injections with no matching revert, oldest first."""
        if not self.path.is_file():
            return []
        injected: dict[str, Entry] = {}
        for line in self.path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash mid-write carries nothing to revert yet
            if record.get("event") == "injected":
                # Entries written before a field existed lack it: its default stands.
                values = {f.name: record[f.name] for f in fields(Entry) if f.name in record}
                injected[record["id"]] = Entry(**values)
            elif record.get("event") == "reverted":
                injected.pop(record["id"], None)
        return sorted(injected.values(), key=lambda e: e.at)

    def recover(self, revert: Callable[[Entry], None], *, how: str) -> list[tuple[Entry, str | None]]:
        """Revert every pending entry; returns (entry, error or None). A failed revert stays pending."""
        outcome: list[tuple[Entry, str | None]] = []
        for entry in self.pending():
            try:
                revert(entry)
            except Exception as exc:
                outcome.append((entry, f"{type(exc).__name__}: {exc}"))
                continue
            self.record_reverted(entry.id, how=how)
            outcome.append((entry, None))
        return outcome
