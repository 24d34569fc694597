"""The rollback mechanism: health watch, snapshot, abort + undo with retries, verification, notifications.

Manual (:meth:`RollbackHelper.rollback`) and automatic (:meth:`RollbackHelper.watch`) mode share one path:

1. plan: which revision to return to — the stable ReplicaSet (``status.stableRS``) while an update is in
   flight, else the previous revision — computed from the objects alone (:func:`plan_rollback`);
2. snapshot: the Rollout and its ReplicaSets as JSON, written before anything changes;
3. act: abort (status patch), undo (the target revision's pod template), resume a manual pause and
   promote-full when needed, retried with backoff as one idempotent unit;
4. verify: Healthy on a trusted status, the target as stable *and* current, and every Ready pod carrying
   the target's pod-template-hash, i.e. the stable version serves 100% of traffic;
5. notify: every real rollback, verified or not, goes to the configured channels.

A dry run stops after the snapshot and a server-side dry run of the undo patch: it changes nothing.

The modules: ``health`` (the Rollout's status plus the SLO readings), ``plan`` (where a rollback goes, the
snapshot document), ``result`` (the record of what was done, its summary and notification), ``helper``
(``RollbackHelper``: the rollback on the cluster and the health watch). This package re-exports their names.
"""

from __future__ import annotations

from pytest_mnops.rollback.health import HealthReport, SloReading
from pytest_mnops.rollback.helper import DEFAULT_TIMEOUT_S, RollbackHelper
from pytest_mnops.rollback.plan import SNAPSHOT_KIND, Obj, RollbackPlan, plan_rollback, snapshot_document
from pytest_mnops.rollback.result import RollbackResult

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "SNAPSHOT_KIND",
    "HealthReport",
    "Obj",
    "RollbackHelper",
    "RollbackPlan",
    "RollbackResult",
    "SloReading",
    "plan_rollback",
    "snapshot_document",
]
