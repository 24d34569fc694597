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
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_mnops.errors import ClusterError, RollbackError
from pytest_mnops.k8s import Kube, pod_ready, resources
from pytest_mnops.names import ROLLOUT_HASH_LABEL
from pytest_mnops.notify import Delivery, Message, Notifier
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.profile import SloCheck
from pytest_mnops.rollouts import REVISION_ANNOTATION, Rollout, RolloutStatus, read_status

Obj = dict[str, Any]
DEFAULT_TIMEOUT_S = 300.0
SNAPSHOT_KIND = "mnops.dev/rollback-snapshot"


# -- health ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SloReading:
    """One SLO measurement; ``value`` is None when Prometheus has no data (no traffic is no evidence)."""

    name: str
    expr: str
    value: float | None
    limit: float
    upper_bound: bool  # True: the value must stay at or below the limit; False: at or above it

    @property
    def breached(self) -> bool:
        if self.value is None:
            return False
        return self.value > self.limit if self.upper_bound else self.value < self.limit

    def describe(self) -> str:
        shown = "no data" if self.value is None else f"{self.value:.4g}"
        return f"{self.name}={shown} (SLO {'<=' if self.upper_bound else '>='} {self.limit:g})"


@dataclass(frozen=True)
class HealthReport:
    """The Rollout's own status plus the app's SLOs.

    ``healthy`` and ``unhealthy`` are not opposites: a canary in progress is neither.
    """

    status: RolloutStatus
    slos: tuple[SloReading, ...] = ()
    slo_error: str | None = None

    @property
    def degraded(self) -> bool:
        return self.status.trusted and self.status.phase == "Degraded"

    @property
    def slo_breached(self) -> bool:
        return any(slo.breached for slo in self.slos)

    @property
    def unhealthy(self) -> bool:
        return self.degraded or self.slo_breached

    @property
    def rollback_warranted(self) -> bool:
        """Unhealthy while a release is in flight or aborted (current != stable), so there is one to undo.

        Once stable is current, a breach is left to people: the SLO window still holds the bad canary's
        errors right after a rollback, and "previous revision" would then be the bad release itself.
        """
        st = self.status
        return self.unhealthy and st.trusted and bool(st.current_hash) and not st.stable_is_current

    @property
    def healthy(self) -> bool:
        st = self.status
        return (
            st.trusted
            and st.phase == "Healthy"
            and not st.aborted
            and st.available >= st.replicas
            and not self.slo_breached
        )

    def problems(self) -> list[str]:
        found = [f"Rollout Degraded ({self.status.message or 'no message'})"] if self.degraded else []
        return found + [slo.describe() for slo in self.slos if slo.breached]

    def describe(self) -> str:
        unknown = f"SLOs unknown ({self.slo_error or 'no Prometheus'})"
        return f"{self.status.describe()} | {'; '.join(slo.describe() for slo in self.slos) or unknown}"


# -- plan and snapshot (pure) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackPlan:
    namespace: str
    name: str
    from_revision: int | None
    from_hash: str
    to_revision: int
    to_hash: str
    abort: bool  # an update is in flight: send its traffic back to stable first
    resume: bool  # spec.paused is set: a manual pause would hold the rollback in phase Paused
    promote_full: bool  # the target is not the stable ReplicaSet: skip the canary steps towards it

    def steps(self) -> list[str]:
        steps = (
            [
                f"abort the update to revision {self.from_revision} (pod-template-hash {self.from_hash}): "
                "status.abort=true sends its traffic back to stable"
            ]
            if self.abort
            else []
        )
        steps.append(
            f"undo: spec.template := pod template of revision {self.to_revision} (pod-template-hash {self.to_hash})"
        )
        if self.resume:
            steps.append("resume: clear the manual pause (spec.paused=false)")
        if self.promote_full:
            steps.append(
                f"promote-full: revision {self.to_revision} is not the stable ReplicaSet, skip the canary steps"
            )
        return steps


def _revision(rs: Obj) -> int | None:
    raw = (rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
    return int(raw) if raw is not None else None


def _hash(rs: Obj) -> str:
    return (rs["metadata"].get("labels") or {}).get(ROLLOUT_HASH_LABEL, "")


def plan_rollback(rollout: Obj, replica_sets: list[Obj], *, to_revision: int | None = None) -> RollbackPlan:
    """Where a rollback would go: ``to_revision``, else the stable ReplicaSet, else the previous revision."""
    status = read_status(rollout)
    namespace, name = rollout["metadata"].get("namespace", ""), status.name
    where = f"Rollout {name!r} in namespace {namespace!r}"
    hashes = {rev: _hash(rs) for rs in replica_sets if (rev := _revision(rs)) is not None}
    by_hash = {h: rev for rev, h in hashes.items()}
    if not hashes:
        raise RollbackError(
            f"{where} has no ReplicaSet revisions. Fix: check the Rollout's selector matches "
            "its pods (`kubectl get rs -l <selector>`); there is nothing to roll back to."
        )
    from_revision = by_hash.get(status.current_hash)
    listed = ", ".join(map(str, sorted(hashes)))
    if to_revision is not None:
        if to_revision not in hashes:
            raise RollbackError(
                f"{where} has no revision {to_revision} (revisions: {listed}). "
                "Fix: pass --to-revision with one of them."
            )
        target = to_revision
    elif status.stable_hash in by_hash and status.stable_hash != status.current_hash:
        target = by_hash[status.stable_hash]
    else:
        older = [rev for rev in sorted(hashes) if from_revision is None or rev < from_revision]
        if not older:
            raise RollbackError(
                f"{where} runs revision {from_revision} and has no earlier one (revisions: "
                f"{listed}). Fix: nothing to roll back to; deploy a fixed version instead."
            )
        target = older[-1]
    if hashes[target] == status.current_hash:
        raise RollbackError(
            f"{where} already runs revision {target} (pod-template-hash {hashes[target]}). "
            "Fix: pick another --to-revision, or nothing needs rolling back."
        )
    update_in_flight = bool(status.current_hash) and status.current_hash != status.stable_hash
    return RollbackPlan(
        namespace=namespace,
        name=name,
        from_revision=from_revision,
        from_hash=status.current_hash,
        to_revision=target,
        to_hash=hashes[target],
        abort=update_in_flight and not status.aborted,
        resume=bool(rollout["spec"].get("paused")),
        promote_full=hashes[target] != status.stable_hash,
    )


def snapshot_document(rollout: Obj, replica_sets: list[Obj], *, taken_at: str) -> Obj:
    """The Rollout (spec + status) and its ReplicaSets, enough to see and redo what was running."""
    meta = rollout["metadata"]
    return {
        "kind": SNAPSHOT_KIND,
        "taken_at": taken_at,
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "rollout": {
            "metadata": {
                key: meta.get(key)
                for key in ("name", "namespace", "uid", "generation", "resourceVersion", "labels", "annotations")
            },
            "spec": rollout.get("spec"),
            "status": rollout.get("status"),
        },
        "replica_sets": [
            {
                "name": rs["metadata"]["name"],
                "revision": _revision(rs),
                "pod_template_hash": _hash(rs),
                "replicas": (rs.get("spec") or {}).get("replicas", 0),
                "ready_replicas": (rs.get("status") or {}).get("readyReplicas", 0),
                "images": [c.get("image") for c in rs["spec"]["template"]["spec"].get("containers", [])],
                "template": rs["spec"]["template"],
            }
            for rs in replica_sets
        ],
    }


# -- result -------------------------------------------------------------------------------------------------


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
            subject=f"[mnops] Rollback {'verified' if self.verified else 'FAILED'}: {self.target} "
            f"revision {self.from_revision} -> {self.to_revision}",
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


# -- the helper ---------------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RollbackHelper:
    """Rollback for one Rollout; ``prometheus`` adds SLOs to health, ``notifier`` announces real rollbacks."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        prometheus: Prometheus | None = None,
        snapshot_dir: Path | str,
        notifier: Notifier | None = None,
        slos: Sequence[SloCheck] = (),
        backoff_s: float = 1.0,
    ) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.rollout = Rollout(kube, namespace=namespace, name=name)
        self.prometheus, self.notifier = prometheus, notifier
        self.snapshot_dir = Path(snapshot_dir)
        self.backoff_s = backoff_s
        # The app's own SLOs (its app profile: by default its AnalysisTemplates' queries, app-wide).
        self.slos = tuple(slos)

    def __repr__(self) -> str:
        return f"RollbackHelper({self.namespace}/{self.name})"

    def health(self) -> HealthReport:
        status = self.rollout.status()
        if self.prometheus is None:
            return HealthReport(status)
        try:
            slos = tuple(
                SloReading(slo.key, slo.query, self.prometheus.value(slo.query), slo.limit, slo.upper_bound)
                for slo in self.slos
            )
        except ClusterError as exc:
            # An unreachable Prometheus is no evidence either way: report it, decide on the Rollout alone.
            return HealthReport(status, slo_error=str(exc))
        return HealthReport(status, slos)

    def snapshot(self) -> Path:
        return self._write_snapshot(self.rollout.get(), self.rollout.replica_sets())

    def _write_snapshot(self, rollout: Obj, replica_sets: list[Obj]) -> Path:
        taken = _now()
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.snapshot_dir / f"rollback-{self.namespace}-{self.name}-{taken:%Y%m%dT%H%M%S.%fZ}.json"
        document = snapshot_document(rollout, replica_sets, taken_at=taken.isoformat(timespec="milliseconds"))
        path.write_text(json.dumps(document, indent=2, sort_keys=True))
        return path

    def rollback(
        self,
        reason: str,
        *,
        dry_run: bool = False,
        to_revision: int | None = None,
        retries: int = 3,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> RollbackResult:
        """Abort and undo to the planned revision, verify, notify.

        ``retries`` are the attempts after the first; ``timeout_s`` bounds the verification.
        """
        started, clock = _now(), time.monotonic()
        rollout, replica_sets = self.rollout.get(), self.rollout.replica_sets()
        plan = plan_rollback(rollout, replica_sets, to_revision=to_revision)
        snapshot = self._write_snapshot(rollout, replica_sets)
        attempts, error, verified = 0, None, False
        if dry_run:
            # The API server validates the undo patch and persists nothing (dryRun=All).
            self.rollout.undo(plan.to_revision, dry_run=True)
        else:
            attempts, error = self._act(plan, retries)
            if error is None:
                try:
                    self._verify(plan, timeout_s)
                    verified = True
                except (ClusterError, RollbackError) as exc:
                    error = f"verification failed: {exc}"
        result = RollbackResult(
            reason=reason,
            plan=plan,
            dry_run=dry_run,
            started_at=started.isoformat(timespec="milliseconds"),
            finished_at=_now().isoformat(timespec="milliseconds"),
            duration_s=time.monotonic() - clock,
            snapshot=snapshot,
            attempts=attempts,
            verified=verified,
            error=error,
        )
        if dry_run or self.notifier is None:
            return result
        return replace(result, notifications=tuple(self.notifier.send(result.message())))

    def _act(self, plan: RollbackPlan, retries: int) -> tuple[int, str | None]:
        """Abort, undo, resume, promote-full: one idempotent unit, retried on API errors with backoff."""
        last: ClusterError | None = None
        for attempt in range(1, retries + 2):
            try:
                if plan.abort:
                    self.rollout.abort()
                self.rollout.undo(plan.to_revision)
                if plan.resume:
                    self.rollout.resume()
                if plan.promote_full:
                    self.rollout.promote_full()
                return attempt, None
            except ClusterError as exc:
                last = exc
                if attempt <= retries:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
        error = RollbackError(
            f"Rollout {self.name!r} in namespace {self.namespace!r}: abort/undo to revision "
            f"{plan.to_revision} failed after {retries + 1} attempts: {last}. Fix: check access "
            f"(`kubectl auth can-i patch rollouts -n {self.namespace}`), then run "
            f"`kubectl argo rollouts undo {self.name} --to-revision={plan.to_revision} -n {self.namespace}`."
        )
        return retries + 1, str(error)

    def _verify(self, plan: RollbackPlan, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        # Stable == current means spec.template equals the stable template, so a status.abort left set
        # can no longer hold traffic back; trusted Healthy means the controller has seen this generation.
        status = self.rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=timeout_s)
        if status.stable_hash != plan.to_hash:
            raise RollbackError(
                f"Rollout {self.name!r} in namespace {self.namespace!r} is Healthy on pod-template-hash "
                f"{status.stable_hash}, not on revision {plan.to_revision} ({plan.to_hash}). Fix: someone "
                f"changed the Rollout meanwhile; inspect `kubectl argo rollouts get rollout {self.name} -n "
                f"{self.namespace}` and roll back again."
            )
        selector = self.rollout.get()["spec"]["selector"]["matchLabels"]
        self.kube.wait(
            resources.POD,
            lambda pods: _only_hash_serves(pods, plan.to_hash),
            namespace=self.namespace,
            label_selector=",".join(f"{k}={v}" for k, v in selector.items()),
            timeout_s=max(1.0, deadline - time.monotonic()),
            what=f"every Ready pod of Rollout {self.name!r} to carry pod-template-hash {plan.to_hash}",
        )

    def watch(
        self,
        *,
        interval_s: float = 5.0,
        unhealthy_for_s: float = 30.0,
        max_duration_s: float = 600.0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_check: Callable[[HealthReport], None] | None = None,
    ) -> RollbackResult | None:
        """Automatic mode: roll back once a rollback stays warranted for ``unhealthy_for_s``.

        Returns the rollback's result (``timeout_s`` bounds its verification), or None when
        ``max_duration_s`` passed without a rollback. ``on_check`` sees every health report.
        """
        deadline = time.monotonic() + max_duration_s
        unhealthy_since: float | None = None
        while True:
            report = self.health()
            now = time.monotonic()
            if on_check is not None:
                on_check(report)
            if not report.rollback_warranted:
                unhealthy_since = None
            else:
                unhealthy_since = now if unhealthy_since is None else unhealthy_since
                if now - unhealthy_since >= unhealthy_for_s:
                    problems = "; ".join(report.problems())
                    return self.rollback(f"automatic: {problems} for {now - unhealthy_since:.0f}s", timeout_s=timeout_s)
            if now + interval_s > deadline:
                return None
            time.sleep(interval_s)


def _only_hash_serves(pods: list[Obj], pod_hash: str) -> int | None:
    """The number of Ready pods when there are some and all carry ``pod_hash``."""
    ready = [p for p in pods if pod_ready(p)]
    return len(ready) if ready and all(_hash(p) == pod_hash for p in ready) else None
