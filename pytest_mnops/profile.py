"""The app profile: what the drills need to know about the app under test, resolved once per run.

A profile is discovered from the cluster where it can be (the workload's own ``spec.selector``, its first
container, the SLO queries of its Prometheus AnalysisTemplates) and completed by an optional YAML file
(``--mnops-profile``) for what cannot be discovered: the alerts each drill expects, the faulty version of
canary-failure, the secret of secret-rotation. docs/drilling-your-own-app.md is the reference.

The resolved profile is plain data (:meth:`AppProfile.to_wire`): it travels in the chaostoolkit configuration
to the activities and into the fault ledger. A drill that needs a key the profile lacks fails at setup with a
:class:`ConfigError` naming the key (:meth:`AppProfile.need`).
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mnops import assets
from pytest_mnops.errors import ConfigError
from pytest_mnops.k8s import resources
from pytest_mnops.names import EXPECTATION_SETS
from pytest_mnops.placeholders import fill
from pytest_mnops.timescale import scale_promql

if TYPE_CHECKING:
    from pytest_mnops.k8s import Kube
    from pytest_mnops.observability.prometheus import Prometheus
    from pytest_mnops.target import Target

Obj = dict[str, Any]
DOCS = "docs/drilling-your-own-app.md"
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
# An SLO key, the words that classify an AnalysisTemplate metric as it, and whether its limit is a maximum.
SLO_KEYS: dict[str, tuple[tuple[str, ...], bool]] = {
    "p95_latency_s": (("latency", "response", "duration", "p95", "histogram_quantile"), True),
    "error_rate": (("error", "5xx", "fail"), True),
    "success_rate": (("success", "availability"), False),
}
# The harmless change emergency-rollback rolls out and back when the profile names no version of its own.
RUN_ANNOTATION = "mnops.dev/drill-run"
_CONDITION = re.compile(r"result\[0\]\s*(<=|<|>=|>)\s*([0-9.eE+-]+)")
_ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")
# How long, in production seconds, an SLO query may take to return data (a new app's first scrapes and rate
# windows) before the drill fails with "no data".
DATA_WAIT_S = 120.0
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _fail(source: str, key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"app profile {source}: {key}: {problem}. Fix: {fix} (see {DOCS}).")


def prom_label(name: str) -> str:
    """A label name as Prometheus' relabelling writes it: app.kubernetes.io/name -> app_kubernetes_io_name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def image_with_tag(image: str, tag: str) -> str:
    """``repo:tag`` for a new tag, whether ``image`` was pinned by tag or by digest (``repo@sha256:...``)."""
    repo = _DIGEST.sub("", image)
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    return f"{repo}:{tag}"


def version_patch(template: Obj, spec: Obj, *, container: str, run_id: str, sandbox: bool) -> Obj:
    """The merge patch of a Rollout that rolls out ``spec`` (a profile's ``faulty_version``/``rollout_version``).

    ``image`` replaces the app container's image, ``tag`` retags it (digest-pinned images too), ``env`` sets
    variables on it, ``annotations`` (plus ``sandbox_annotations`` on the sandbox) go on the pod template. The
    run id annotation makes every drill's version a new pod template, never a return to an old ReplicaSet
    (which Argo Rollouts would treat as a rollback and skip the canary steps for).
    """
    containers = copy.deepcopy(template["spec"]["containers"])
    app = next(c for c in containers if c["name"] == container)
    if spec.get("image"):
        app["image"] = str(spec["image"])
    elif spec.get("tag"):
        app["image"] = image_with_tag(app["image"], str(spec["tag"]))
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    if env:
        kept = [e for e in app.get("env") or [] if e["name"] not in env]
        app["env"] = kept + [{"name": k, "value": v} for k, v in env.items()]
    annotations = {**(spec.get("annotations") or {}), **((spec.get("sandbox_annotations") or {}) if sandbox else {})}
    annotations = {str(k): str(v) for k, v in annotations.items()}
    # Strategic merge is not available for custom resources: a merge patch replaces the whole list.
    return {
        "spec": {
            "template": {
                "metadata": {"annotations": {**annotations, RUN_ANNOTATION: run_id}},
                "spec": {"containers": containers},
            }
        }
    }


@dataclass(frozen=True)
class SloCheck:
    key: str
    query: str  # ready to run: placeholders filled, range selectors at the target's time scale
    limit: float
    upper_bound: bool  # True: the value must stay at or below the limit
    source: str  # where the query came from, for "no data for ..." messages

    def met(self, value: float) -> bool:
        return value <= self.limit if self.upper_bound else value >= self.limit

    def describe(self, value: float | None) -> str:
        shown = "no data" if value is None else f"{value:.4g}"
        return f"{self.key}={shown} (SLO {'<=' if self.upper_bound else '>='} {self.limit:g})"


@dataclass(frozen=True)
class ExpectedAlert:
    key: str
    name: str
    labels: dict[str, str]
    receiver: str | None  # the Alertmanager receiver its notification must reach


@dataclass(frozen=True)
class AppProfile:
    """The resolved profile. ``data`` is plain JSON; accessors raise a ConfigError naming a missing key."""

    data: Obj
    source: str

    # -- wire ---------------------------------------------------------------------------------------
    def to_wire(self) -> Obj:
        return {"source": self.source, **self.data}

    @classmethod
    def from_wire(cls, wire: Obj) -> AppProfile:
        data = dict(wire)
        return cls(data, str(data.pop("source", "(profile)")))

    # -- lookup ---------------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def need(self, key: str, why: str) -> Any:
        value = self.get(key)
        if value in (None, "", [], {}):
            raise ConfigError(
                f"app profile {self.source} has no `{key}`, which {why} needs. Fix: add `{key}` to the profile "
                f"file (--mnops-profile; see {DOCS})."
            )
        return value

    @property
    def namespace(self) -> str:
        return str(self.data["namespace"])

    @property
    def app(self) -> str:
        return str(self.data["app"])

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "Rollout"))

    @property
    def selector(self) -> dict[str, str]:
        return dict(self.data["selector"])

    @property
    def label_selector(self) -> str:
        """The selector as the Kubernetes API and chaostoolkit-kubernetes take it: ``k=v,k=v``."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))

    @property
    def container(self) -> str:
        return str(self.data["container"])

    def slo(self, key: str, why: str) -> SloCheck:
        entry = self.need(f"slo.{key}", why)
        return SloCheck(key, entry["query"], float(entry["limit"]), bool(entry["upper_bound"]), entry["source"])

    def slos(self) -> list[SloCheck]:
        return [self.slo(key, "the SLO check") for key in SLO_KEYS if self.get(f"slo.{key}")]

    def alert(self, key: str, why: str) -> ExpectedAlert:
        entry = self.need(f"alerts.{key}", why)
        if not entry.get("name"):
            raise ConfigError(f"app profile {self.source}: alerts.{key} has no `name` (the alertname). Fix: add it.")
        return ExpectedAlert(key, entry["name"], dict(entry.get("labels") or {}), entry.get("receiver"))


# -- resolution ------------------------------------------------------------------------------------------


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
        labels = {"namespace": "$namespace", **(entry.get("labels") or {})}
        labels = {label: fill(str(value), placeholders) for label, value in labels.items()}
        out[key] = {"name": entry["name"], "labels": labels, "receiver": entry.get("receiver")}
    return out


# -- the SLOs of the app's own AnalysisTemplates ------------------------------------------------------------


def analysis_template_refs(rollout: Obj) -> list[tuple[Obj, list[Obj]]]:
    """(template reference, args) for every analysis of the canary: background and step analyses."""
    canary = (rollout["spec"].get("strategy") or {}).get("canary") or {}
    analyses = [canary.get("analysis") or {}]
    analyses += [step["analysis"] for step in canary.get("steps") or [] if step.get("analysis")]
    return [(ref, list(a.get("args") or [])) for a in analyses for ref in a.get("templates") or []]


def _analysis_slos(kube: Kube, rollout: Obj, namespace: str) -> Obj:
    out: Obj = {}
    for ref, args in analysis_template_refs(rollout):
        resource = resources.CLUSTER_ANALYSIS_TEMPLATE if ref.get("clusterScope") else resources.ANALYSIS_TEMPLATE
        template = kube.find(resource, ref["templateName"], namespace=None if ref.get("clusterScope") else namespace)
        if template is None:
            continue  # Argo Rollouts reports a missing template itself; the profile may still give the SLO
        for key, slo in slos_of_template(template, args, namespace).items():
            out.setdefault(key, slo)
    return out


def slos_of_template(template: Obj, rollout_args: list[Obj], namespace: str) -> Obj:
    """The app-wide SLOs a template's Prometheus metrics define: args filled, the canary-hash matcher dropped."""
    values: dict[str, str | None] = {a["name"]: a.get("value") for a in template["spec"].get("args") or []}
    for arg in rollout_args:
        source = arg.get("valueFrom") or {}
        if "podTemplateHashValue" in source:
            values[arg["name"]] = None  # the canary's hash: the app-wide SLO covers every pod
        elif (source.get("fieldRef") or {}).get("fieldPath") == "metadata.namespace":
            values[arg["name"]] = namespace
        elif "value" in arg:
            values[arg["name"]] = arg["value"]
    out: Obj = {}
    for metric in template["spec"].get("metrics") or []:
        query = ((metric.get("provider") or {}).get("prometheus") or {}).get("query")
        if not query:
            continue
        key = _classify(metric["name"], query)
        condition = _CONDITION.search(metric.get("successCondition") or "")
        if key is None or condition is None:
            continue
        filled = _fill_args(query, values)
        if filled is None:
            continue
        out[key] = {
            "query": " ".join(filled.split()),
            "limit": float(condition.group(2)),
            "upper_bound": condition.group(1).startswith("<"),
            "source": f"AnalysisTemplate {template['metadata']['name']} metric {metric['name']}",
        }
    return out


def _classify(name: str, query: str) -> str | None:
    for key, (words, _) in SLO_KEYS.items():
        if any(word in name.lower() for word in words):
            return key
    return "p95_latency_s" if "histogram_quantile" in query else None


def _fill_args(query: str, values: dict[str, str | None]) -> str | None:
    """``{{args.x}}`` filled; a label matcher on a dropped arg removed; None if an arg stays unknown."""
    for name, value in values.items():
        if value is None:
            matcher = rf'\s*,?\s*[a-zA-Z_]\w*\s*=~?\s*"\{{\{{\s*args\.{re.escape(name)}\s*\}}\}}"'
            query = re.sub(matcher, "", query)
    query = re.sub(r"\{\s*,", "{", query)
    unknown = [n for n in _ARG.findall(query) if values.get(n) is None]
    if unknown:
        return None
    return _ARG.sub(lambda m: str(values[m.group(1)]), query)


# -- checks at setup ------------------------------------------------------------------------------------------


def matching_pods(kube: Kube, profile: AppProfile) -> list[str]:
    pods, _ = kube.list(resources.POD, namespace=profile.namespace, label_selector=profile.label_selector)
    return sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))


def require_pods(kube: Kube, profile: AppProfile) -> list[str]:
    names = matching_pods(kube, profile)
    if not names:
        raise ConfigError(
            f"selector {profile.label_selector} (app profile {profile.source}) matches no pods in namespace "
            f"{profile.namespace!r}: a drill would touch and prove nothing. Fix: check the {profile.kind}'s "
            "spec.selector and its pods, or correct `selector:` in the profile."
        )
    return names


def wait_for_data(prometheus: Prometheus, slo: SloCheck, *, timeout_s: float) -> float:
    """The SLO query's value once it has one (a freshly deployed app's first scrapes); no data is a failure."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = prometheus.value(slo.query)
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise ConfigError(no_data(slo))
        time.sleep(1)


def no_data(slo: SloCheck) -> str:
    return (
        f"no data for {slo.query} (profile key slo.{slo.key}, from {slo.source}): the app exports no such series, "
        "so the drill could prove nothing. Fix: check the app's metrics are scraped, or set "
        f"`slo.{slo.key}.query` in the profile to a query over its own metrics."
    )


# -- what each drill needs -----------------------------------------------------------------------------------

# Per drill: SLO keys it judges the steady state by, alerts it expects, other profile keys, target settings
# (attribute, option), the SLO its report plots. docs/drilling-your-own-app.md has the same table for people.
DRILL_NEEDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "pod-failure": {"slo": ("success_rate",)},
    "high-latency": {"slo": ("p95_latency_s",), "alerts": ("latency",), "plot": ("p95_latency_s",)},
    "canary-failure": {
        "slo": ("error_rate",),
        "alerts": ("abort",),
        "keys": ("faulty_version",),
        "plot": ("error_rate",),
    },
    "secret-rotation": {
        "keys": ("secret.kubernetes.name", "secret.kubernetes.key", "secret.github.name", "secret.consumer"),
        "target": (("github_repo", "--mnops-github-repo"),),
        "plot": ("success_rate",),
    },
    "resource-exhaustion": {"alerts": ("memory", "cpu")},
    "emergency-rollback": {"plot": ("success_rate",)},
    "monitoring-alerts": {
        "keys": ("rule_files", "synthetic_alerts.receivers"),
        "target": (("alertmanager_url", "--mnops-alertmanager-url"),),
    },
}


def check_drill(drill: str, profile: AppProfile, target: Target) -> list[SloCheck]:
    """Fail now, naming the setting, if ``drill`` lacks anything it needs; returns the SLOs it judges by."""
    needs = DRILL_NEEDS.get(drill, {})
    if profile.kind != "Rollout":
        raise ConfigError(
            f"{drill} drills an Argo Rollout (it reads and changes the Rollout's status), but the app profile "
            f"{profile.source} names a {profile.kind}. Fix: drill the app's Rollout (--mnops-app), kind: Rollout."
        )
    target.require("prometheus_url", "--mnops-prometheus-url")
    slos = [profile.slo(key, drill) for key in needs.get("slo", ())]
    for key in needs.get("alerts", ()):
        if profile.alert(key, drill).receiver:
            target.require("alertmanager_url", "--mnops-alertmanager-url")
    for key in needs.get("keys", ()):
        profile.need(key, drill)
    for attribute, option in needs.get("target", ()):
        target.require(attribute, option)
    if drill == "secret-rotation" and "http" in (profile.get("secret.consumer") or {}):
        target.require("app_url", "--mnops-app-url")
    return slos


# What an SLO's plot shows, in words (the report's title and unit).
SLO_WORDS = {
    "success_rate": {"title": "Success rate (app profile)", "unit": "ratio"},
    "error_rate": {"title": "Error rate (app profile)", "unit": "ratio"},
    "p95_latency_s": {"title": "p95 response time (app profile)", "unit": "seconds"},
}


def plot_of(drill: str, profile: AppProfile) -> dict[str, Any]:
    """``plot`` (the app's SLO query) and ``plot_words`` for a drill's report, when the profile has that SLO."""
    keys = DRILL_NEEDS.get(drill, {}).get("plot", ())
    key = next((k for k in keys if profile.get(f"slo.{k}.query")), None)
    return {"plot": profile.get(f"slo.{key}.query"), "plot_words": SLO_WORDS[key]} if key else {}
