"""Checked before any change: allowed context and namespace, blast-radius cap, dry-run plan."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_mnops.errors import GuardViolation
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.target import SANDBOX_CONTEXT, Target


@dataclass(frozen=True)
class BlastPlan:
    selector: str
    matching: list[str]
    touched: int

    @property
    def percent(self) -> float:
        return 100.0 * self.touched / len(self.matching) if self.matching else 0.0


class Guards:
    def __init__(
        self, target: Target, *, max_pods: int, max_percent: float, dry_run: bool, echo: Callable[[str], None]
    ) -> None:
        self.target, self.max_pods, self.max_percent = target, max_pods, max_percent
        self.dry_run, self.echo = dry_run, echo

    def check_target(self, *, namespace: str, what: str) -> None:
        """Refuse a destructive change outside the allowed contexts and namespaces."""
        context = self.target.context
        if not self.target.sandbox and context != SANDBOX_CONTEXT and context not in self.target.allowed_contexts:
            raise GuardViolation(
                f"{what}: kube context {context or '(current)'!r} is not allowed for destructive drills; nothing "
                f"was changed. Fix: add it with --mnops-allow-context={context or 'NAME'} (and pass "
                "--mnops-context) if you really mean to break this cluster, or use --mnops-sandbox."
            )
        if namespace not in self.target.allowed_namespaces:
            raise GuardViolation(
                f"{what}: namespace {namespace!r} is outside the allowlist "
                f"({', '.join(self.target.allowed_namespaces)}); nothing was changed. "
                f"Fix: --mnops-allow-namespace={namespace}."
            )

    def blast_plan(self, kube: Kube, blast: dict[str, Any], *, namespace: str) -> BlastPlan | None:
        """Which pods a fault would touch, from the scenario's declared blast radius."""
        if not blast:
            return None
        selector = blast["selector"]
        pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=selector)
        matching = sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))
        if "pods" in blast:
            touched = min(int(blast["pods"]), len(matching))
        else:
            touched = math.ceil(len(matching) * float(blast.get("percent", 100)) / 100)
        return BlastPlan(selector, matching, touched)

    def check_blast(self, plan: BlastPlan | None, *, what: str) -> None:
        if plan is None:
            return
        if plan.touched > self.max_pods:
            raise GuardViolation(
                f"{what}: would touch {plan.touched} pods ({plan.selector}), over the cap of {self.max_pods}; "
                f"nothing was changed. Fix: raise --mnops-max-pods or narrow the scenario's blast radius."
            )
        if plan.percent > self.max_percent:
            raise GuardViolation(
                f"{what}: would touch {plan.percent:.0f}% of the {len(plan.matching)} pods matching "
                f"{plan.selector}, over the cap of {self.max_percent:.0f}%; nothing was changed. "
                "Fix: raise --mnops-max-percent or narrow the scenario's blast radius."
            )

    def print_plan(self, scenario: str, experiment: dict[str, Any], plan: BlastPlan | None, *, namespace: str) -> None:
        self.echo(f"[dry-run] {scenario}: target {self.target.describe()} (namespace {namespace})")
        if plan is not None:
            shown = ", ".join(plan.matching[: plan.touched]) or "none"
            self.echo(
                f"[dry-run]   would touch {plan.touched}/{len(plan.matching)} pods matching {plan.selector}: {shown}"
            )
        for activity in experiment["method"]:
            provider = activity["provider"]
            self.echo(
                f"[dry-run]   {activity['type']} {activity['name']}: "
                f"{provider.get('module', provider['type'])}.{provider.get('func', '')}"
            )
        for activity in experiment["rollbacks"]:
            self.echo(f"[dry-run]   revert {activity['name']}")
        self.echo("[dry-run]   nothing was changed")
