"""The record of a rollback: what was planned and done, how it ended, as the CLI prints and notifications say it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pytest_mnops.notify import Delivery, Message
from pytest_mnops.rollback.plan import RollbackPlan


@dataclass(frozen=True)
class RollbackResult:
    reason: str
    plan: RollbackPlan
    dry_run: bool
    started_at: str
    finished_at: str
    duration_s: float
    snapshot: Path
    attempts: int
    verified: bool
    error: str | None = None
    notifications: tuple[Delivery, ...] = field(default_factory=tuple)

    @property
    def from_revision(self) -> int | None:
        return self.plan.from_revision

    @property
    def to_revision(self) -> int:
        return self.plan.to_revision

    @property
    def target(self) -> str:
        return f"{self.plan.namespace}/{self.plan.name}"

    def summary(self) -> list[str]:
        """Short human-readable lines, as the CLI prints them."""
        revisions = f"revision {self.from_revision} -> {self.to_revision}"
        if self.dry_run:
            head = [f"DRY RUN, nothing changed. Rollback plan for {self.target} ({revisions}):"]
            head += [f"  {n}. {step}" for n, step in enumerate(self.plan.steps(), 1)]
        else:
            outcome = "VERIFIED" if self.verified else "NOT VERIFIED"
            attempts = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
            head = [f"Rollback of {self.target}: {outcome} in {self.duration_s:.1f}s ({revisions}, {attempts})"]
        lines = [*head, f"  reason: {self.reason}", f"  snapshot: {self.snapshot}"]
        lines += [f"  error: {self.error}"] if self.error else []
        return lines + [f"  notify: {d.describe()}" for d in self.notifications]

    def message(self) -> Message:
        verb = "Rolled back" if self.verified else "Rollback NOT verified for"
        return Message(
            subject=f"[mnops] Rollback {'verified' if self.verified else 'FAILED'}: "
            f"{rollback_of(self.target, self.from_revision)}{self.to_revision}",
            text=f"{verb} Rollout {self.target} from revision {self.from_revision} to {self.to_revision} "
            f"in {self.duration_s:.1f}s. Reason: {self.reason}",
            fields=(
                ("Rollout", self.target),
                ("Reason", self.reason),
                ("Revisions", f"{self.from_revision} -> {self.to_revision}"),
                ("Duration", f"{self.duration_s:.1f}s"),
                ("Verified", "yes" if self.verified else "no"),
                ("Attempts", str(self.attempts)),
                ("Snapshot", str(self.snapshot)),
                *((("Error", self.error),) if self.error else ()),
            ),
            ok=self.verified,
        )


def rollback_of(target: str, from_revision: int | None) -> str:
    """How a rollback's notification names what it rolled back: the Rollout and the revision it left, which a
    drill looks for to tell the notification of its own rollback from any other."""
    return f"{target} revision {from_revision} -> "
