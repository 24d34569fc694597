"""The API verbs the drills make in the target namespace, and the Role rules that grant them.

The table is what the drills' clients call: this plugin's Kube (gets, lists and the watches behind every wait,
patches, server-side applies) and chaostoolkit-kubernetes (pod deletion, Chaos Mesh objects). The parallel
drill test compares it with the API server's audit log of a real run of every drill, so a verb a drill starts
using, or one listed here that nothing uses, fails there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str
    resource: str  # "rollouts" or, for a subresource, "rollouts/status"
    needed_by: str = ""

    @property
    def plural(self) -> str:
        return self.resource.split("/")[0]

    @property
    def subresource(self) -> str:
        return self.resource.partition("/")[2]

    @property
    def key(self) -> tuple[str, str, str]:
        return self.verb, self.group, self.resource

    def describe(self) -> str:
        group = f".{self.group}" if self.group else ""
        return f"{self.verb} {self.resource}{group}"


DRILL_PERMISSIONS = (
    Permission("list", "", "pods", "every drill's steady-state probes and the blast-radius guard"),
    Permission("watch", "", "pods", "drills pod-failure, secret-rotation (wait for the replacements, by watch)"),
    Permission("delete", "", "pods", "drill pod-failure (terminates pods)"),
    Permission("get", "argoproj.io", "rollouts", "every drill and `mnops rollback`"),
    Permission("list", "argoproj.io", "rollouts", "every wait on the Rollout (a list, then a watch from it)"),
    Permission("watch", "argoproj.io", "rollouts", "every wait on the Rollout (abort, Healthy, canary step)"),
    Permission("patch", "argoproj.io", "rollouts", "drills canary-failure, emergency-rollback (image, undo, restart)"),
    Permission("patch", "argoproj.io", "rollouts/status", "`mnops rollback` (abort, retry, promote)"),
    Permission("get", "argoproj.io", "analysistemplates", "every drill (the app profile's SLOs from its analyses)"),
    Permission("patch", "", "configmaps", "drills on the sandbox (the traffic stand-in plays the app's profile)"),
    Permission("list", "argoproj.io", "analysisruns", "drill canary-failure (reads the AnalysisRun)"),
    Permission("watch", "argoproj.io", "analysisruns", "drill canary-failure (waits for the AnalysisRun)"),
    Permission("list", "apps", "replicasets", "`mnops rollback` (finds the revision to undo to)"),
    Permission("get", "", "secrets", "drill secret-rotation (reads the current value)"),
    Permission("patch", "", "secrets", "drill secret-rotation (syncs the rotated value, server-side apply)"),
    Permission("create", "", "secrets", "drill secret-rotation (the first apply creates the Secret)"),
    Permission("create", "chaos-mesh.org", "networkchaos", "drill high-latency (injects the delay)"),
    Permission("delete", "chaos-mesh.org", "networkchaos", "drill high-latency (reverts the delay)"),
    Permission("create", "chaos-mesh.org", "stresschaos", "drill resource-exhaustion (injects the stress)"),
    Permission("delete", "chaos-mesh.org", "stresschaos", "drill resource-exhaustion (reverts the stress)"),
)
# Authorised without appearing as the audit event's verb: a server-side apply of an object that does not
# exist yet is logged as `patch`, and the API server also requires `create` for it.
IMPLIED = frozenset({("create", "", "secrets")})


def from_audit_event(event: dict[str, Any]) -> tuple[str, str, str]:
    """(verb, group, resource[/subresource]) of one audit.k8s.io/v1 Event, as a Role rule names it."""
    ref = event.get("objectRef") or {}
    resource = ref.get("resource", "")
    if ref.get("subresource"):
        resource += f"/{ref['subresource']}"
    return event["verb"], ref.get("apiGroup", ""), resource


# Cluster-wide reads the drills and validation checks make (nodes, CRDs, the controller's namespace): every
# group they read, and from the core group everything but Secrets. Granted get, list and watch.
CLUSTER_READS = (
    {
        "apiGroups": [""],
        "resources": [
            "pods",
            "services",
            "endpoints",
            "serviceaccounts",
            "configmaps",
            "events",
            "nodes",
            "namespaces",
            "persistentvolumeclaims",
        ],
    },
    {
        "apiGroups": [
            "apps",
            "argoproj.io",
            "chaos-mesh.org",
            "apiextensions.k8s.io",
            "admissionregistration.k8s.io",
            "events.k8s.io",
            "coordination.k8s.io",
            "discovery.k8s.io",
            "rbac.authorization.k8s.io",
        ],
        "resources": ["*"],
    },
)
READ_VERBS = ("get", "list", "watch")


def rules(permissions: list[Permission] | tuple[Permission, ...]) -> list[dict[str, list[str]]]:
    """The smallest Role rules granting ``permissions``: one rule per (apiGroup, resource), verbs in table order."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for perm in permissions:
        grouped.setdefault((perm.group, perm.resource), []).append(perm.verb)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": verbs} for (group, resource), verbs in grouped.items()
    ]


def cluster_read_rules() -> list[dict[str, list[str]]]:
    return [{**rule, "verbs": list(READ_VERBS)} for rule in CLUSTER_READS]


def role_rules(missing: list[Permission]) -> str:
    """The smallest Role rules (YAML) that grant ``missing``, one rule per (apiGroup, resource)."""
    return "\n".join(
        f"- apiGroups: {json.dumps(rule['apiGroups'])}\n  resources: {json.dumps(rule['resources'])}\n"
        f"  verbs: {json.dumps(rule['verbs'])}"
        for rule in rules(missing)
    )
