"""The SLOs of the app's own AnalysisTemplates: their Prometheus metrics classified, args filled, app-wide."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pytest_mnops.k8s import resources
from pytest_mnops.profile.model import SLO_KEYS, Obj

if TYPE_CHECKING:
    from pytest_mnops.k8s import Kube

_CONDITION = re.compile(r"result\[0\]\s*(<=|<|>=|>)\s*([0-9.eE+-]+)")
_ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")


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
