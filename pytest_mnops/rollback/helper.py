"""``RollbackHelper``: one Rollout's rollback on the cluster (health, snapshot, abort + undo with retries,
verification, notifications) and the health watch of automatic mode."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from pytest_mnops.errors import ClusterError, RollbackError
from pytest_mnops.k8s import Kube, pod_ready, resources
from pytest_mnops.notify import Notifier
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.profile.model import SloCheck
from pytest_mnops.rollback.health import HealthReport, SloReading
from pytest_mnops.rollback.plan import Obj, RollbackPlan, _hash, plan_rollback, snapshot_document
from pytest_mnops.rollback.result import RollbackResult
from pytest_mnops.rollouts import Rollout

DEFAULT_TIMEOUT_S = 300.0


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
