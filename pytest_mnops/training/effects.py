"""What a change to a Rollout did, read from the object itself, whichever tool made it.

Pure functions over two snapshots of the Rollout (no cluster access), so every verdict can be unit-tested.
The Argo Rollouts controller makes some of the same changes on its own (it aborts a canary whose analysis
failed, and advances steps when a pause ends); who made a change is the audit log's answer (``audit.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pytest_mnops.rollouts import read_status

Obj = dict[str, Any]

ABORT = "abort"
RETRY = "retry"
UNDO = "undo"
SET_IMAGE = "set image"
PROMOTE = "promote"
PROMOTE_FULL = "promote --full"
PAUSE = "pause"
RESUME = "resume"
ACTIONS = (ABORT, RETRY, UNDO, SET_IMAGE, PROMOTE, PROMOTE_FULL, PAUSE, RESUME)
# Effects the controller also produces by itself: without an audit log they are not credited to a person.
CONTROLLER_TOO = frozenset({PROMOTE})
# What a write can have done, by where it wrote: the plugin patches the status subresource to abort, retry
# and promote, and the object itself to undo, set an image, pause or resume.
STATUS_EFFECTS = frozenset({ABORT, RETRY, PROMOTE, PROMOTE_FULL})
SPEC_EFFECTS = frozenset({UNDO, SET_IMAGE, PAUSE, RESUME})
# Argo Rollouts' abort message when an analysis, not a person, aborted: `Metric "error-rate" assessed Failed ...`.
ANALYSIS_ABORT_MARK = "assessed"


@dataclass(frozen=True)
class Snapshot:
    """The parts of a Rollout that an operator's command changes."""

    resource_version: str
    trusted: bool
    aborted: bool
    step_index: int | None
    pause_conditions: bool
    paused: bool
    promote_full: bool
    stable_hash: str
    current_hash: str
    images: tuple[str, ...]
    template: str  # the pod template, canonical JSON: a new one is an undo or a new revision
    message: str

    @classmethod
    def of(cls, obj: Obj) -> Snapshot:
        st = read_status(obj)
        status = obj.get("status") or {}
        containers = obj["spec"]["template"]["spec"].get("containers") or []
        return cls(
            resource_version=obj["metadata"].get("resourceVersion", ""),
            trusted=st.trusted,
            aborted=st.aborted,
            step_index=st.step_index,
            pause_conditions=bool(status.get("pauseConditions")),
            paused=bool(obj["spec"].get("paused")),
            promote_full=bool(status.get("promoteFull")),
            stable_hash=st.stable_hash,
            current_hash=st.current_hash,
            images=tuple(c.get("image", "") for c in containers),
            template=json.dumps(obj["spec"]["template"], sort_keys=True),
            message=st.message,
        )


@dataclass(frozen=True)
class Effect:
    action: str
    detail: str = ""

    def describe(self) -> str:
        return f"{self.action} ({self.detail})" if self.detail else self.action


def classify(before: Snapshot, after: Snapshot, earlier_hashes: frozenset[str]) -> list[Effect]:
    """The operator actions that explain the change from ``before`` to ``after``.

    ``earlier_hashes``: pod-template hashes of the Rollout's earlier revisions (its older ReplicaSets). A new
    template is only told apart as undo or set image once the controller has observed it (``after.trusted``).
    """
    effects: list[Effect] = []
    if after.aborted and not before.aborted:
        effects.append(Effect(ABORT, "analysis failed" if ANALYSIS_ABORT_MARK in after.message else ""))
    if after.template != before.template and after.trusted and after.current_hash != before.current_hash:
        if after.current_hash in earlier_hashes:
            effects.append(Effect(UNDO, f"back to {after.current_hash}"))
        else:
            effects.append(Effect(SET_IMAGE, ", ".join(after.images)))
    elif before.aborted and not after.aborted and after.current_hash == before.current_hash:
        effects.append(Effect(RETRY))
    if after.promote_full and not before.promote_full:
        effects.append(Effect(PROMOTE_FULL))
    elif _moved_on(before, after):
        moved = (
            f"step {before.step_index} -> {after.step_index}"
            if after.step_index != before.step_index
            else f"out of the pause at step {after.step_index}"
        )
        effects.append(Effect(PROMOTE, moved))
    if after.paused and not before.paused:
        effects.append(Effect(PAUSE))
    elif before.paused and not after.paused:
        effects.append(Effect(RESUME))
    return effects


def _moved_on(before: Snapshot, after: Snapshot) -> bool:
    """The same canary went past a step or out of a pause (the controller does this too, when a pause ends)."""
    advanced = (after.step_index or 0) > (before.step_index or 0)
    unpaused = before.pause_conditions and not after.pause_conditions
    return not after.aborted and after.current_hash == before.current_hash and (advanced or unpaused)


def pending_template(before: Snapshot, after: Snapshot) -> bool:
    """A new pod template whose hash the controller has not reported yet: undo or set image, not known which.
    (It may write the observed generation a moment before the template's hash.)"""
    changed = after.template != before.template
    return changed and (not after.trusted or after.current_hash == before.current_hash)
