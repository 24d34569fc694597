"""What each action of a scenario would touch, derived from its own resolved arguments before anything runs.

The guards (policy.py) judge these targets, never the scenario's word for them: an experiment whose
``terminate_pods`` names another namespace is refused for that namespace, whatever it declares. Known are the
chaostoolkit-kubernetes pod, deployment, node and secret actions, its Chaos Mesh actions, Chaos Mesh objects
created through its CRD actions, and this project's own activities. For anything else ``pods_known`` is False:
the scenario must declare its blast radius (``extensions[mnops].blast``), or it is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from pytest_mnops.k8s import Kube, resources

Obj = dict[str, Any]
OWN_ACTIVITIES = "pytest_mnops.chaos.activities"
# Chaos Mesh's own default for an object's selector without namespaces: the object's namespace.
CHAOS_MESH_GROUP = "chaos-mesh.org"


@dataclass(frozen=True)
class ActionTarget:
    activity: str
    call: str
    namespaces: tuple[str, ...] = ()
    selector: str | None = None
    matching: tuple[str, ...] = ()  # the pods (namespace/name) the action selects from
    touched: int = 0  # how many of them it changes
    pods_known: bool = True  # False: not derivable from the arguments; the declared blast must say
    objects: tuple[str, ...] = ()  # what else it changes: "Secret shop/api", "NetworkChaos shop/delay", "Node n1"
    images: tuple[str, ...] = ()
    github_repo: str | None = None
    note: str = ""

    @property
    def percent(self) -> float:
        return 100.0 * self.touched / len(self.matching) if self.matching else 0.0

    def describe(self) -> str:
        parts = [f"namespace {', '.join(self.namespaces) or '-'}"]
        if self.selector is not None:
            parts.append(f"selector {self.selector or '(every pod)'}")
        if self.pods_known and (self.matching or self.selector is not None):
            shown = ", ".join(self.matching[: self.touched]) or "none"
            parts.append(f"pods {self.touched}/{len(self.matching)}: {shown}")
        parts += [
            f"{label} {', '.join(values)}"
            for label, values in (("objects", self.objects), ("images", self.images))
            if values
        ]
        if self.github_repo:
            parts.append(f"GitHub repo {self.github_repo}")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


Deriver = Callable[[Kube, ActionTarget, Obj, Obj], ActionTarget]


def _labels(value: Any) -> str | None:
    """A label selector string from chaostoolkit's ``k=v,k2=v2`` or a mapping."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return value or None


def _selector_of(selector: Obj) -> str:
    """A Kubernetes LabelSelector object as a selector string."""
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(op, f"!{key}")
        )
    return ",".join(parts)


def _pods(kube: Kube, namespace: str | None, selector: str | None, field: str | None = None) -> list[Obj]:
    pods, _ = kube.list(resources.POD, namespace=namespace, label_selector=selector, field_selector=field)
    return sorted((p for p in pods if not p["metadata"].get("deletionTimestamp")), key=lambda p: p["metadata"]["name"])


def _names(pods: list[Obj]) -> tuple[str, ...]:
    return tuple(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods)


# -- chaostoolkit-kubernetes: pods, deployments, nodes, secrets -----------------------------------------------------


def _select_pods(kube: Kube, target: ActionTarget, args: Obj, _: Obj) -> ActionTarget:
    """``terminate_pods`` / ``exec_in_pods`` / ``delete_pods``: chaosk8s' own selection rules (pod/actions.py)."""
    namespace, selector = args.get("ns", "default"), _labels(args.get("label_selector"))
    pods = _pods(kube, namespace, selector)
    pattern = args.get("name_pattern") or args.get("name")
    if pattern:
        pods = [p for p in pods if re.search(pattern, p["metadata"]["name"])]
    if args.get("all"):
        touched = len(pods)
    else:
        qty = int(args.get("qty", 1))
        if args.get("mode", "fixed") == "percentage":
            qty = math.ceil(qty * len(pods) / 100)
        touched = min(qty, len(pods))
    note = "any of them, at random" if args.get("rand") and touched < len(pods) else ""
    return replace(
        target, namespaces=(namespace,), selector=selector or "", matching=_names(pods), touched=touched, note=note
    )


def _deployments(kube: Kube, namespace: str, args: Obj) -> list[Obj]:
    if args.get("name"):
        found = kube.find(resources.DEPLOYMENT, args["name"], namespace=namespace)
        return [found] if found else []
    items, _ = kube.list(resources.DEPLOYMENT, namespace=namespace, label_selector=_labels(args.get("label_selector")))
    return items


def _deployment_pods(kube: Kube, target: ActionTarget, args: Obj, _: Obj) -> ActionTarget:
    """delete/rollout (every pod replaced) or scale (the pods above the new count) a Deployment."""
    namespace = args.get("ns", "default")
    deployments = _deployments(kube, namespace, args)
    pods: list[Obj] = []
    for deployment in deployments:
        pods += _pods(kube, namespace, _selector_of(deployment["spec"]["selector"]))
    touched = len(pods)
    if "replicas" in args:
        touched = sum(max(0, int(d["spec"].get("replicas", 1)) - int(args["replicas"])) for d in deployments)
    objects = tuple(f"Deployment {namespace}/{d['metadata']['name']}" for d in deployments)
    selector = ";".join(_selector_of(d["spec"]["selector"]) for d in deployments)
    return replace(
        target, namespaces=(namespace,), selector=selector, matching=_names(pods), touched=touched, objects=objects
    )


def _nodes(kube: Kube, target: ActionTarget, args: Obj, _: Obj) -> ActionTarget:
    """cordon/drain/delete nodes: every pod on them is affected, whichever namespace it is in."""
    if args.get("name") and not args.get("label_selector"):
        nodes = kube.list(resources.NODE, field_selector=f"metadata.name={args['name']}")[0]
    else:
        nodes = kube.list(resources.NODE, label_selector=_labels(args.get("label_selector")))[0]
    hosted = {n["metadata"]["name"]: _pods(kube, None, None, f"spec.nodeName={n['metadata']['name']}") for n in nodes}
    if args.get("pod_label_selector"):
        wanted = {p["spec"].get("nodeName") for p in _pods(kube, args.get("pod_namespace"), args["pod_label_selector"])}
        hosted = {name: pods for name, pods in hosted.items() if name in wanted}
    # ``count`` nodes are picked at random: judge the worst pick, the nodes hosting most pods.
    chosen = sorted(hosted, key=lambda name: -len(hosted[name]))[: int(args["count"]) if args.get("count") else None]
    pods = [p for name in chosen for p in hosted[name]]
    namespaces = tuple(sorted({p["metadata"]["namespace"] for p in pods}))
    # The share is of every pod in those namespaces, the drained ones listed first.
    drained = _names(pods)
    seen = set(drained)
    others = [n for n in _names([p for ns in namespaces for p in _pods(kube, ns, None)]) if n not in seen]
    return replace(
        target,
        namespaces=namespaces,
        matching=drained + tuple(others),
        touched=len(pods),
        objects=tuple(f"Node {name}" for name in chosen),
    )


def _uncordon(kube: Kube, target: ActionTarget, args: Obj, _: Obj) -> ActionTarget:
    return replace(target, objects=(f"Node {args.get('name') or args.get('label_selector')}",))


def _secret(kube: Kube, target: ActionTarget, args: Obj, _: Obj) -> ActionTarget:
    namespace, name = args.get("ns", "default"), args.get("name")
    if name is None and args.get("spec_path"):
        try:
            name = (yaml.safe_load(Path(args["spec_path"]).read_text()) or {}).get("metadata", {}).get("name")
        except (OSError, yaml.YAMLError):
            name = None
    return replace(target, namespaces=(namespace,), objects=(f"Secret {namespace}/{name or '?'}",))


# -- Chaos Mesh: chaostoolkit-kubernetes' actions, and objects created through its CRD actions -----------------------

MODE_COUNT: dict[str, Callable[[int, float], int]] = {
    "one": lambda n, _: min(1, n),
    "all": lambda n, _: n,
    "fixed": lambda n, v: min(int(v), n),
    "fixed-percent": lambda n, v: math.ceil(n * v / 100),
    "random-max-percent": lambda n, v: math.ceil(n * v / 100),
}


def _chaos_selection(
    kube: Kube, target: ActionTarget, *, namespace: str, selector: Obj, mode: str, value: Any, kind: str, name: str
) -> ActionTarget:
    """Pods a Chaos Mesh selector (namespaces, labelSelectors, annotationSelectors, pods) and mode pick."""
    namespaces = tuple(selector.get("namespaces") or [namespace])
    labels = _labels(selector.get("labelSelectors"))
    annotations = selector.get("annotationSelectors") or {}
    pods = [p for ns in namespaces for p in _pods(kube, ns, labels)]
    pods = [
        p for p in pods if all((p["metadata"].get("annotations") or {}).get(k) == v for k, v in annotations.items())
    ]
    named = selector.get("pods") or {}
    if named:
        namespaces = tuple(sorted(set(namespaces) | set(named)))
        pods = [p for p in pods if p["metadata"]["name"] in named.get(p["metadata"]["namespace"], [])]
    count = MODE_COUNT.get(mode)
    if count is None:
        return replace(target, namespaces=namespaces, pods_known=False, note=f"unknown Chaos Mesh mode {mode!r}")
    touched = count(len(pods), float(value or 0))
    return replace(
        target,
        namespaces=namespaces,
        selector=labels or "",
        matching=_names(pods),
        touched=touched,
        objects=(f"{kind} {namespace}/{name}",),
    )


def _chaos_mesh_action(kind: str) -> Deriver:
    def derive(kube: Kube, target: ActionTarget, args: Obj, _: Obj) -> ActionTarget:
        namespace = args.get("ns", "default")
        selector = {
            "namespaces": _list(args.get("namespaces_selectors")),
            "labelSelectors": args.get("label_selectors"),
            "annotationSelectors": _mapping(args.get("annotations_selectors")),
        }
        picked = _chaos_selection(
            kube,
            target,
            namespace=namespace,
            selector=selector,
            mode=args.get("mode", "one"),
            value=args.get("mode_value"),
            kind=kind,
            name=args.get("name", "?"),
        )
        # The far end of a NetworkChaos link is affected too: its namespaces must be allowed as well.
        far = _list(args.get("target_namespaces_selectors")) or (
            [namespace] if args.get("target_label_selectors") else []
        )
        return replace(picked, namespaces=tuple(sorted(set(picked.namespaces) | set(far))))

    return derive


def _chaos_mesh_delete(kind: str) -> Deriver:
    def derive(kube: Kube, target: ActionTarget, args: Obj, _: Obj) -> ActionTarget:
        namespace = args.get("ns", "default")
        return replace(target, namespaces=(namespace,), objects=(f"{kind} {namespace}/{args.get('name', '?')}",))

    return derive


def _custom_object(kube: Kube, target: ActionTarget, args: Obj, _: Obj) -> ActionTarget:
    """A custom object: a Chaos Mesh one is judged by its selector and mode; any other kind is not derivable."""
    namespace = args.get("ns", "default")
    body = args.get("resource")
    if body is None and args.get("resource_as_yaml_file"):
        try:
            body = yaml.safe_load(Path(args["resource_as_yaml_file"]).read_text())
        except (OSError, yaml.YAMLError):
            body = None
    if not isinstance(body, dict) or args.get("group") != CHAOS_MESH_GROUP:
        return replace(
            target, namespaces=(namespace,), pods_known=False, note=f"custom object of group {args.get('group')!r}"
        )
    spec = body.get("spec") or {}
    return _chaos_selection(
        kube,
        target,
        namespace=namespace,
        selector=spec.get("selector") or {},
        mode=spec.get("mode", "one"),
        value=spec.get("value"),
        kind=body.get("kind", "?"),
        name=(body.get("metadata") or {}).get("name", "?"),
    )


def _list(value: Any) -> list[str]:
    return value.split(",") if isinstance(value, str) else list(value or [])


def _mapping(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        return dict(part.split("=", 1) for part in value.split(",") if part)
    return dict(value or {})


# -- this project's activities: they act on the configured namespace and app ----------------------------------------


def _own(kube: Kube, target: ActionTarget, args: Obj, configuration: Obj) -> ActionTarget:
    """The app's own pods are touched as the scenario's declared blast says (a canary's share, a restart...)."""
    namespace = configuration.get("namespace", "default")
    objects: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    if "secret_name" in args:
        objects = (f"Secret {namespace}/{args['secret_name']}",)
    if "version" in args and configuration.get("profile"):
        from pytest_mnops.profile.model import AppProfile
        from pytest_mnops.profile.versions import version_patch

        app = AppProfile.from_wire(configuration["profile"])
        rollout = kube.find(resources.ROLLOUT, app.app, namespace=namespace)
        if rollout:
            body = version_patch(
                rollout["spec"]["template"],
                app.get(args["version"]) or {},
                container=app.container,
                run_id=str(configuration.get("run_id", "")),
                sandbox=bool(configuration.get("sandbox")),
            )
            containers = body["spec"]["template"]["spec"]["containers"]
            images = tuple(c["image"] for c in containers if c["name"] == app.container)
    repo = configuration.get("github_repo") if "github_secret" in args else None
    return replace(target, namespaces=(namespace,), pods_known=False, objects=objects, images=images, github_repo=repo)


def _alertmanager_only(kube: Kube, target: ActionTarget, args: Obj, configuration: Obj) -> ActionTarget:
    return replace(target, note=f"no cluster change: alerts posted to {configuration.get('alertmanager_url')}")


CHAOSK8S = "chaosk8s"
DERIVERS: dict[str, Deriver] = {
    **{f"{CHAOSK8S}.pod.actions.{f}": _select_pods for f in ("terminate_pods", "delete_pods", "exec_in_pods")},
    **{
        f"{CHAOSK8S}.deployment.actions.{f}": _deployment_pods
        for f in ("delete_deployment", "scale_deployment", "rollout_deployment")
    },
    **{f"{CHAOSK8S}.node.actions.{f}": _nodes for f in ("cordon_node", "drain_nodes", "delete_nodes")},
    f"{CHAOSK8S}.node.actions.uncordon_node": _uncordon,
    **{f"{CHAOSK8S}.secret.actions.{f}": _secret for f in ("create_secret", "delete_secret")},
    **{
        f"{CHAOSK8S}.chaosmesh.network.actions.{f}": _chaos_mesh_action("NetworkChaos")
        for f in ("add_latency", "set_loss", "duplicate_packets", "reorder_packets", "corrupt_packets", "set_bandwidth")
    },
    **{
        f"{CHAOSK8S}.chaosmesh.stress.actions.{f}": _chaos_mesh_action("StressChaos")
        for f in ("stress_cpu", "stress_memory")
    },
    f"{CHAOSK8S}.chaosmesh.network.actions.delete_network_fault": _chaos_mesh_delete("NetworkChaos"),
    f"{CHAOSK8S}.chaosmesh.stress.actions.delete_stressor": _chaos_mesh_delete("StressChaos"),
    **{
        f"{CHAOSK8S}.crd.actions.{f}": _custom_object
        for f in ("create_custom_object", "replace_custom_object", "patch_custom_object", "delete_custom_object")
    },
    # By the package's stable name (users' experiments) and by the module they live in (the shipped scenarios).
    **{
        f"{module}.{f}": _alertmanager_only
        for module in (OWN_ACTIVITIES, f"{OWN_ACTIVITIES}.synthetic_alerts")
        for f in ("post_synthetic_alerts", "resolve_synthetic_alerts")
    },
}
# Kubernetes heals these by itself (a controller replaces the pods): an experiment may inject them without rollbacks.
SELF_HEALING = frozenset(f"{CHAOSK8S}.pod.actions.{f}" for f in ("terminate_pods", "delete_pods"))


def call_of(activity: Obj) -> str:
    provider = activity.get("provider") or {}
    if provider.get("type") == "python":
        return f"{provider.get('module')}.{provider.get('func')}"
    return f"{provider.get('type')} provider"


def derive(kube: Kube, activity: Obj, configuration: Obj) -> ActionTarget:
    """The target of one action whose arguments are already resolved (``${...}`` filled)."""
    call = call_of(activity)
    target = ActionTarget(activity=activity["name"], call=call)
    args = dict((activity.get("provider") or {}).get("arguments") or {})
    deriver = DERIVERS.get(call)
    if deriver is not None:
        return deriver(kube, target, args, configuration)
    if call.startswith(OWN_ACTIVITIES + "."):
        return _own(kube, target, args, configuration)
    namespace = args.get("ns") or args.get("namespace")
    return replace(target, namespaces=(namespace,) if namespace else (), pods_known=False)
