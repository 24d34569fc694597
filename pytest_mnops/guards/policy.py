"""Checked before any change: allowed context, and for every action's derived target the namespace allowlist and
the blast-radius cap; the dry-run plan."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pytest_mnops.errors import GuardViolation
from pytest_mnops.guards.targets import ActionTarget
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.names import SANDBOX_CONTEXT
from pytest_mnops.target import Target

DECLARED = "extensions[mnops].blast"
# chaostoolkit-kubernetes reads these from an activity's secrets before the environment: a scenario setting them
# would aim its actions at another cluster than the allowed target.
CLUSTER_SECRETS = ("KUBERNETES_HOST", "KUBERNETES_CONTEXT", "KUBECONFIG", "KUBERNETES_API_KEY", "KUBERNETES_CERT_FILE")


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
        self._check_namespace(namespace, what)

    def _check_namespace(self, namespace: str, what: str) -> None:
        if namespace not in self.target.allowed_namespaces:
            raise GuardViolation(
                f"{what}: namespace {namespace!r} is outside the allowlist "
                f"({', '.join(self.target.allowed_namespaces)}); nothing was changed. "
                f"Fix: --mnops-allow-namespace={namespace}."
            )

    def check_secrets(self, secrets: dict[str, Any], *, what: str) -> None:
        """Refuse secrets that would point chaostoolkit-kubernetes at a cluster of their own choosing."""
        for scope, values in (secrets or {}).items():
            for key in CLUSTER_SECRETS:
                if isinstance(values, dict) and key in values:
                    raise GuardViolation(
                        f"{what}: secrets.{scope}.{key} would aim the experiment's Kubernetes actions at a cluster "
                        "of its own choosing, past the context allowlist; nothing was changed. Fix: remove it; the "
                        "target cluster comes from --mnops-kubeconfig / --mnops-context."
                    )

    def declared(self, kube: Kube, blast: dict[str, Any], *, namespace: str) -> ActionTarget | None:
        """The pods the scenario's declared blast radius (``extensions[mnops].blast``) touches."""
        if not blast:
            return None
        namespace = blast.get("namespace", namespace)
        selector = blast["selector"]
        pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=selector)
        matching = tuple(
            sorted(f"{namespace}/{p['metadata']['name']}" for p in pods if not p["metadata"].get("deletionTimestamp"))
        )
        if "pods" in blast:
            touched = min(int(blast["pods"]), len(matching))
        else:
            touched = math.ceil(len(matching) * float(blast.get("percent", 100)) / 100)
        return ActionTarget(DECLARED, "declared", (namespace,), selector, matching, touched)

    def judge(
        self, actions: list[ActionTarget], reverts: list[ActionTarget], declared: ActionTarget | None, *, what: str
    ) -> list[ActionTarget]:
        """Every action within the allowlist and the cap, or GuardViolation naming the action; returns the
        actions with the declared blast filled in where their pods cannot be derived."""
        judged = []
        for action in actions:
            label = f"{what}: action {action.activity!r} ({action.call})"
            if not action.pods_known:
                if declared is None:
                    raise GuardViolation(
                        f"{label}: which pods it touches cannot be derived from its arguments"
                        f"{f' ({action.note})' if action.note else ''}, and the scenario declares no blast radius; "
                        f"nothing was changed. Fix: declare {DECLARED} (selector, and percent or pods) in the "
                        "scenario, or use a chaostoolkit-kubernetes action the guards know."
                    )
                action = replace(
                    action,
                    namespaces=action.namespaces or declared.namespaces,
                    selector=declared.selector,
                    matching=declared.matching,
                    touched=declared.touched,
                    pods_known=True,
                    note=f"pods as {DECLARED} declares",
                )
            for namespace in action.namespaces:
                self._check_namespace(namespace, label)
            self._check_cap(action, label)
            judged.append(action)
        if declared is not None:
            for namespace in declared.namespaces:
                self._check_namespace(namespace, f"{what}: {DECLARED}")
            self._check_cap(declared, f"{what}: {DECLARED}")
        for revert in reverts:
            for namespace in revert.namespaces:
                self._check_namespace(namespace, f"{what}: rollback {revert.activity!r} ({revert.call})")
        return judged

    def _check_cap(self, action: ActionTarget, label: str) -> None:
        if action.touched > self.max_pods:
            raise GuardViolation(
                f"{label}: would touch {action.touched} pods ({action.selector or 'every pod'}), over the cap of "
                f"{self.max_pods}; nothing was changed. Fix: raise --mnops-max-pods or narrow the scenario's blast "
                "radius."
            )
        if action.percent > self.max_percent:
            raise GuardViolation(
                f"{label}: would touch {action.percent:.0f}% of the {len(action.matching)} pods matching "
                f"{action.selector or 'every pod'}, over the cap of {self.max_percent:.0f}%; nothing was changed. "
                "Fix: raise --mnops-max-percent or narrow the scenario's blast radius."
            )

    def print_plan(
        self, scenario: str, experiment: dict[str, Any], actions: list[ActionTarget], reverts: list[ActionTarget]
    ) -> None:
        """Each activity; for each action and revert, what it resolves to. Nothing is changed."""
        self.echo(f"[dry-run] {scenario}: target {self.target.describe()}")
        targets = {t.activity: t for t in actions}
        for activity in experiment["method"]:
            provider = activity["provider"]
            call = f"{provider.get('module', provider['type'])}.{provider.get('func', '')}"
            self.echo(f"[dry-run]   {activity['type']} {activity['name']}: {call}")
            if activity["name"] in targets:
                self.echo(f"[dry-run]     -> {targets[activity['name']].describe()}")
        for revert in reverts:
            self.echo(f"[dry-run]   revert {revert.activity}: {revert.call}")
            if revert.namespaces or revert.objects:
                self.echo(f"[dry-run]     -> {revert.describe()}")
        self.echo("[dry-run]   nothing was changed")
