"""The profile file loaded and validated, and the profile resolved: what the cluster says about the app,
completed by the file."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_mnops import assets
from pytest_mnops.errors import ConfigError
from pytest_mnops.k8s import resources
from pytest_mnops.names import EXPECTATION_SETS
from pytest_mnops.placeholders import fill
from pytest_mnops.profile.analysis_slos import _analysis_slos
from pytest_mnops.profile.model import DOCS, SLO_KEYS, AppProfile, Obj
from pytest_mnops.timescale import scale_promql

if TYPE_CHECKING:
    from pytest_mnops.k8s import Kube
    from pytest_mnops.target import Target

# The reference app's own profile, next to its charts; the sandbox uses it when the target is that app.
REFERENCE_PROFILE = ("charts", "mnops-profile.yaml")
KEYS = (
    "expect",
    "kind",
    "container",
    "selector",
    "slo",
    "alerts",
    "rule_files",
    "synthetic_alerts",
    "faulty_version",
    "rollout_version",
    "secret",
    "traffic",
)
KINDS = {"Rollout": resources.ROLLOUT, "Deployment": resources.DEPLOYMENT}


def _fail(source: str, key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"app profile {source}: {key}: {problem}. Fix: {fix} (see {DOCS}).")


def prom_label(name: str) -> str:
    """A label name as Prometheus' relabelling writes it: app.kubernetes.io/name -> app_kubernetes_io_name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def load_file(path: Path) -> Obj:
    docs = assets.load_yaml_documents(path)
    if len(docs) != 1:
        raise ConfigError(f"app profile {path}: expected one YAML mapping, found {len(docs)} documents. Fix: keep one.")
    unknown = sorted(set(docs[0]) - set(KEYS))
    if unknown:
        raise _fail(str(path), ", ".join(unknown), "unknown key", f"use only {', '.join(KEYS)}")
    if docs[0].get("expect", EXPECTATION_SETS[0]) not in EXPECTATION_SETS:
        raise _fail(
            str(path), "expect", f"{docs[0]['expect']!r} is no expectation set", f"use {' or '.join(EXPECTATION_SETS)}"
        )
    return docs[0]


def expectation_set(file: Path | None) -> str | None:
    """The profile's ``expect``: the validation suite's expectation set for this app (read without the cluster)."""
    return load_file(file).get("expect") if file else None


def profile_file(target: Target, explicit: str | None) -> Path | None:
    """The profile file: the one given, else on the sandbox the reference app's own when it is the target."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"app profile {path}: no such file. Fix: pass an existing file to --mnops-profile.")
        return path
    from pytest_mnops.app import APP_NAME

    return assets.path(*REFERENCE_PROFILE) if target.sandbox and target.app == APP_NAME else None


def resolve(
    kube: Kube,
    *,
    namespace: str,
    app: str,
    file: Path | None,
    time_scale: float = 1.0,
    container: str | None = None,
) -> AppProfile:
    """Discover what the cluster says about ``app`` and complete it with the profile file."""
    raw = load_file(file) if file else {}
    source = str(file) if file else f"(discovered from {namespace}/{app}; no --mnops-profile)"
    kind = raw.get("kind", "Rollout")
    if kind not in KINDS:
        raise _fail(source, "kind", f"{kind!r} is not supported", f"use one of {', '.join(KINDS)}")
    workload = kube.find(KINDS[kind], app, namespace=namespace)
    if workload is None:
        raise ConfigError(
            f"{kind} {app!r} not found in namespace {namespace!r} (app profile {source}). "
            "Fix: pass --mnops-app and --mnops-namespace of the app under test."
        )
    template = workload["spec"]["template"]
    data: Obj = {
        "namespace": namespace,
        "app": app,
        "kind": kind,
        "selector": _selector(raw, workload, source),
        "container": _container(container or raw.get("container"), template, source),
    }
    placeholders = {
        "namespace": namespace,
        "app": app,
        "container": data["container"],
        "selector": ",".join(f'{prom_label(k)}="{v}"' for k, v in sorted(data["selector"].items())),
    }
    discovered = _analysis_slos(kube, workload, namespace) if kind == "Rollout" else {}
    data["slo"] = {**discovered, **_profile_slos(raw.get("slo") or {}, placeholders, time_scale, source)}
    data["alerts"] = _alerts(raw.get("alerts") or {}, placeholders, source)
    base = file.parent if file else Path.cwd()
    data["rule_files"] = [str((base / f).resolve()) for f in raw.get("rule_files") or []]
    for key in ("synthetic_alerts", "faulty_version", "rollout_version", "secret", "traffic"):
        if raw.get(key) is not None:
            if not isinstance(raw[key], dict):
                raise _fail(source, key, "is not a mapping", "write it as key: value pairs")
            data[key] = copy.deepcopy(raw[key])
    return AppProfile(data, source)


def _selector(raw: Obj, workload: Obj, source: str) -> dict[str, str]:
    if raw.get("selector"):
        if not isinstance(raw["selector"], dict):
            raise _fail(source, "selector", "is not a mapping of labels", "write it as label: value pairs")
        return {str(k): str(v) for k, v in raw["selector"].items()}
    selector = workload["spec"].get("selector") or {}
    name = workload["metadata"]["name"]
    if selector.get("matchExpressions"):
        raise _fail(
            source,
            "selector",
            f"{workload['kind']} {name!r} selects its pods with matchExpressions, which drills cannot pass on",
            "give `selector:` labels that select exactly its pods",
        )
    labels = selector.get("matchLabels") or {}
    if not labels:
        raise _fail(source, "selector", f"{workload['kind']} {name!r} has no spec.selector.matchLabels", "add one")
    return {str(k): str(v) for k, v in labels.items()}


def _container(wanted: str | None, template: Obj, source: str) -> str:
    names = [c["name"] for c in template["spec"]["containers"]]
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise _fail(source, "container", f"no container {wanted!r} (containers: {', '.join(names)})", "name one")
    return wanted


def _profile_slos(entries: Obj, placeholders: dict[str, str], time_scale: float, source: str) -> Obj:
    out = {}
    for key, entry in entries.items():
        if key not in SLO_KEYS:
            raise _fail(source, f"slo.{key}", "unknown SLO", f"use one of {', '.join(SLO_KEYS)}")
        bounds = [b for b in ("max", "min") if b in (entry or {})]
        if not isinstance(entry, dict) or not entry.get("query") or len(bounds) != 1:
            raise _fail(source, f"slo.{key}", "needs `query` and one of `max`/`min`", "add them")
        query = fill(entry["query"], placeholders)
        out[key] = {
            "query": scale_promql(query.strip(), time_scale),
            "limit": float(entry[bounds[0]]),
            "upper_bound": bounds[0] == "max",
            "source": f"profile slo.{key}",
        }
    return out


def _alerts(entries: Obj, placeholders: dict[str, str], source: str) -> Obj:
    out = {}
    for key, entry in entries.items():
        if not isinstance(entry, dict) or not entry.get("name"):
            raise _fail(source, f"alerts.{key}", "needs `name` (the alertname)", "add it")
        labels = {"namespace": "${namespace}", **(entry.get("labels") or {})}
        labels = {label: fill(str(value), placeholders) for label, value in labels.items()}
        out[key] = {"name": entry["name"], "labels": labels, "receiver": entry.get("receiver")}
    return out
