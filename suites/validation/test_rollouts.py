"""Argo Rollouts. Of your Rollout: the canary reaches 100% through increasing steps, each guarded by an analysis,
every referenced AnalysisTemplate exists, has pass/fail conditions and its provider answers; the stable revision
was not judged Failed. Of the reference app: its five-step canary and thresholds (in charts/, and in the cluster
with --mnops-expect=reference), charts/ admitted by the real API server."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pytest_mnops import (
    REVISION_ANNOTATION,
    ROLLOUT_HASH_LABEL,
    ClusterError,
    Kube,
    Resource,
    Rollout,
    Target,
    app,
    assets,
    resources,
)

Obj = dict[str, Any]
CANARY_WEIGHTS = [10, 30, 50, 80, 100]
# template name -> (comparison on result[0] that passes, threshold); failureCondition must be its complement.
THRESHOLDS = {"success-rate": (">=", 0.95), "error-rate": ("<=", 0.01), "response-time": ("<=", 0.5)}
COMPLEMENT = {">=": "<", "<=": ">", ">": "<=", "<": ">="}
FIELDS = ("query", "address")
ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")
CONDITION = re.compile(r"result\[0\]\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)")
BAD_ANALYSIS = ("Failed", "Error")
CLUSTER_ANALYSIS_TEMPLATE = Resource(
    "argoproj.io", "v1alpha1", "clusteranalysistemplates", "ClusterAnalysisTemplate", namespaced=False
)


def chart_files(root: Path) -> list[tuple[str, Obj]]:
    """(charts/FILE, document) for every manifest kustomization.yaml lists, in its order."""
    kustomization = yaml.safe_load((root / "charts" / "kustomization.yaml").read_text())
    return [
        (f"charts/{name}", doc)
        for name in kustomization["resources"]
        for doc in assets.load_yaml_documents(root / "charts" / name)
    ]


def canary_properties(rollout: Obj) -> list[str]:
    """What every canary should have: weights that increase to full traffic, each step watched by an analysis."""
    canary = (rollout["spec"].get("strategy") or {}).get("canary")
    if not canary:
        return ["spec.strategy.canary is missing (not a canary Rollout)"]
    steps = canary.get("steps") or []
    weighted = [(index, step["setWeight"]) for index, step in enumerate(steps) if "setWeight" in step]
    if not weighted:
        return ["spec.strategy.canary.steps sets no weight (no setWeight step), so there is no canary phase"]
    problems = []
    weights = [w for _, w in weighted]
    if any(not 0 < w <= 100 for w in weights) or any(b <= a for a, b in itertools.pairwise(weights)):
        problems.append(f"canary weights {weights} do not increase step by step within 1..100")
    background = canary.get("analysis") or {}
    start = int(background.get("startingStep") or 0) if background.get("templates") else None
    unguarded = []
    for position, (index, weight) in enumerate(weighted):
        if weight >= 100:
            continue
        end = weighted[position + 1][0] if position + 1 < len(weighted) else len(steps)
        inline = any("analysis" in step for step in steps[index + 1 : end])
        if not inline and (start is None or start > index):
            unguarded.append(f"{weight}% (step {index})")
    if unguarded:
        problems.append(
            f"canary step(s) {', '.join(unguarded)} run with no analysis watching them (no background analysis "
            "from that step, no analysis step before the next weight)"
        )
    return problems


def canary_problems(rollout: Obj) -> list[str]:
    """The reference app's canary: 10/30/50/80/100 under the three background analyses from the first step."""
    canary = (rollout["spec"].get("strategy") or {}).get("canary")
    if not canary:
        return ["spec.strategy.canary is missing (not a canary Rollout)"]
    problems = []
    weights = [step["setWeight"] for step in canary.get("steps") or [] if "setWeight" in step]
    if weights != CANARY_WEIGHTS:
        problems.append(f"canary weights are {weights or 'none'}, expected {CANARY_WEIGHTS}")
    analysis = canary.get("analysis") or {}
    names = sorted(t.get("templateName", "?") for t in analysis.get("templates") or [])
    if names != sorted(THRESHOLDS):
        problems.append(
            "background analysis (spec.strategy.canary.analysis) uses templates "
            f"{names or 'none'}, expected {sorted(THRESHOLDS)}"
        )
    elif int(analysis.get("startingStep") or 0) > 1:
        problems.append(
            f"background analysis starts only at step {analysis['startingStep']}, expected "
            "from the first step (no startingStep)"
        )
    return problems


def threshold_problems(template: Obj) -> list[str]:
    name = template["metadata"]["name"]
    wanted_op, wanted = THRESHOLDS[name]
    metrics = template["spec"].get("metrics") or []
    if not metrics:
        return [f"AnalysisTemplate {name} has no metrics"]
    problems = []
    for metric in metrics:
        success = CONDITION.search(metric.get("successCondition") or "")
        failure = CONDITION.search(metric.get("failureCondition") or "")
        if success is None:
            problems.append(
                f"metric {metric.get('name')!r}: successCondition "
                f"{metric.get('successCondition')!r} compares no result[0] with a threshold"
            )
            continue
        op, value = success.group(1), float(success.group(2))
        if (op, value) != (wanted_op, wanted):
            problems.append(
                f"metric {metric.get('name')!r}: successCondition is result[0] {op} {value:g}, "
                f"expected result[0] {wanted_op} {wanted:g}"
            )
        opposite = COMPLEMENT[wanted_op]
        if failure is not None and (failure.group(1), float(failure.group(2))) != (opposite, wanted):
            found = f"{failure.group(1)} {failure.group(2)}"
            problems.append(
                f"metric {metric.get('name')!r}: failureCondition is result[0] {found}, "
                f"expected result[0] {opposite} {wanted:g}"
            )
    return problems


@pytest.mark.validation("rollouts", reads="repo")
def test_chart_canary_steps_and_analysis(repo_root: Path) -> None:
    rollouts = [(file, doc) for file, doc in chart_files(repo_root) if doc.get("kind") == "Rollout"]
    assert rollouts, (
        "charts/: no Rollout manifest is listed in charts/kustomization.yaml. Fix: list argo-rollout.yaml there."
    )
    problems = [
        f"{file}: Rollout {doc['metadata']['name']}: {p}" for file, doc in rollouts for p in canary_problems(doc)
    ]
    assert not problems, f"{'; '.join(problems)}. Fix: restore the 10/30/50/80/100 steps and the 3 analyses."


def _fix(rollout: Obj) -> str:
    meta = rollout["metadata"]
    return f"`kubectl edit rollout {meta['name']} -n {meta['namespace']}`"


@pytest.mark.validation("rollouts", reads="cluster")
def test_cluster_canary_steps_and_analysis(rollout_obj: Obj, expect_reference: bool) -> None:
    meta = rollout_obj["metadata"]
    problems = canary_properties(rollout_obj)
    assert not problems, (
        f"Rollout {meta['namespace']}/{meta['name']}: {'; '.join(problems)}. Fix: in its spec.strategy.canary, "
        "let setWeight steps increase towards 100 and guard each with an analysis (a background "
        f"spec.strategy.canary.analysis from the first step, or an analysis step after it): {_fix(rollout_obj)}."
    )
    reference = canary_problems(rollout_obj) if expect_reference else []
    assert not reference, (
        f"Rollout {meta['namespace']}/{meta['name']}: {'; '.join(reference)} (--mnops-expect=reference). Fix: "
        f"re-apply the reference app's charts/ (`kubectl apply -k charts/ -n {meta['namespace']}`)."
    )


def template_refs(rollout: Obj) -> list[tuple[str, Obj]]:
    """(where, templates[] entry) for every AnalysisTemplate the Rollout's canary references."""
    canary = (rollout["spec"].get("strategy") or {}).get("canary") or {}
    refs = [("background analysis", t) for t in (canary.get("analysis") or {}).get("templates") or []]
    for index, step in enumerate(canary.get("steps") or []):
        refs += [(f"steps[{index}].analysis", t) for t in (step.get("analysis") or {}).get("templates") or []]
    return refs


def _args(rollout: Obj) -> dict[str, str]:
    """The analysis args as a run now would get them: literal values, and pod-template hashes from the status."""
    canary = (rollout["spec"].get("strategy") or {}).get("canary") or {}
    status = rollout.get("status") or {}
    hashes = {"Stable": status.get("stableRS"), "Latest": status.get("currentPodHash")}
    analyses = [canary.get("analysis") or {}] + [s.get("analysis") or {} for s in canary.get("steps") or []]
    values = {}
    for arg in (a for analysis in analyses for a in analysis.get("args") or []):
        value = arg.get("value", hashes.get((arg.get("valueFrom") or {}).get("podTemplateHashValue", "")))
        if value is not None:
            values[arg["name"]] = str(value)
    return values


def provider_problem(metric: Obj, args: dict[str, str]) -> str | None:
    """Why a metric's provider does not answer, or None. Only Prometheus is queried; others are not judged."""
    prometheus = (metric.get("provider") or {}).get("prometheus")
    if not prometheus:
        return None
    query, address = (ARG.sub(lambda m: args.get(m.group(1), m.group(0)), str(prometheus.get(k, ""))) for k in FIELDS)
    address = address.rstrip("/")
    if ARG.search(query + address):
        return None  # an arg Argo Rollouts resolves per run (valueFrom): nothing to query with here
    try:
        answer = requests.get(f"{address}/api/v1/query", params={"query": query}, timeout=10)
        body = answer.json()
    except (requests.RequestException, ValueError) as exc:
        return f"its Prometheus {address} does not answer ({type(exc).__name__}: {exc})"
    if body.get("status") != "success":
        return f"its query fails at {address}: {body.get('error') or answer.status_code} (`{query}`)"
    if not body["data"]["result"]:
        return f"its query returns no data from {address}, so every analysis run errors (`{query}`)"
    return None


@pytest.mark.validation("rollouts", reads="cluster")
def test_analysis_templates_exist_and_providers_answer(k8s: Kube, rollout_obj: Obj) -> None:
    meta = rollout_obj["metadata"]
    namespace, args = meta["namespace"], _args(rollout_obj)
    refs = template_refs(rollout_obj)
    assert refs, (
        f"Rollout {namespace}/{meta['name']} references no AnalysisTemplate: nothing judges its canary. Fix: add "
        f"spec.strategy.canary.analysis.templates (or analysis steps): {_fix(rollout_obj)}."
    )
    problems = []
    for where, ref in refs:
        name, cluster = ref.get("templateName", "?"), bool(ref.get("clusterScope"))
        kind = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
        resource = CLUSTER_ANALYSIS_TEMPLATE if cluster else resources.ANALYSIS_TEMPLATE
        template = k8s.find(resource, name, namespace=None if cluster else namespace)
        label = f"{kind} {name if cluster else f'{namespace}/{name}'} ({where})"
        if template is None:
            problems.append(f"{label} does not exist: that analysis cannot start")
            continue
        defaults = {a["name"]: str(a["value"]) for a in template["spec"].get("args") or [] if "value" in a}
        for metric in template["spec"].get("metrics") or []:
            if not metric.get("successCondition") and not metric.get("failureCondition"):
                problems.append(f"{label} metric {metric.get('name')!r} has no successCondition or failureCondition")
            if why := provider_problem(metric, {**defaults, **args}):
                problems.append(f"{label} metric {metric.get('name')!r}: {why}")
    assert not problems, (
        f"Rollout {namespace}/{meta['name']}: {'; '.join(problems)}. Fix: create or correct the named template "
        f"(`kubectl get analysistemplates -n {namespace}`): its conditions, its provider's query and address."
    )


@pytest.mark.validation("rollouts", reads="repo")
def test_chart_analysis_thresholds(repo_root: Path) -> None:
    templates = {
        doc["metadata"]["name"]: (file, doc)
        for file, doc in chart_files(repo_root)
        if doc.get("kind") == "AnalysisTemplate"
    }
    problems = [
        f"AnalysisTemplate {name} is not in charts/ (listed in kustomization.yaml)"
        for name in THRESHOLDS
        if name not in templates
    ]
    problems += [
        f"{templates[name][0]}: {p}"
        for name in THRESHOLDS
        if name in templates
        for p in threshold_problems(templates[name][1])
    ]
    assert not problems, f"{'; '.join(problems)}. Fix: restore the thresholds 0.95 / 0.01 / 0.5 in charts/."


@pytest.mark.validation("rollouts", reads="cluster")
def test_cluster_analysis_templates_and_thresholds(
    k8s: Kube, mnops_target: Target, argo_rollouts: None, expect_reference: bool, not_applicable: Any
) -> None:
    if not expect_reference:
        not_applicable(
            "the reference app's templates and thresholds (success-rate >= 0.95, error-rate <= 0.01, "
            "response-time <= 0.5 s) are an opt-in expectation set: --mnops-expect=reference"
        )
    namespace = mnops_target.namespace
    problems = []
    for name in THRESHOLDS:
        template = k8s.find(resources.ANALYSIS_TEMPLATE, name, namespace=namespace)
        if template is None:
            problems.append(
                f"AnalysisTemplate {namespace}/{name} does not exist: every canary of "
                f"{mnops_target.app} would fail to start its analysis"
            )
        else:
            problems += [f"AnalysisTemplate {namespace}/{name}: {p}" for p in threshold_problems(template)]
    assert not problems, (
        f"{'; '.join(problems)}. Fix: re-apply charts/ (`kubectl apply -k charts/ -n {namespace}`); the "
        "thresholds are success-rate >= 0.95, error-rate <= 0.01, response-time p95 <= 0.5 s."
    )


@pytest.mark.validation("rollouts", reads="cluster")
def test_charts_pass_server_side_dry_run(k8s: Kube, mnops_target: Target, argo_rollouts: None, repo_root: Path) -> None:
    namespace = mnops_target.namespace
    origin = {(doc["kind"], doc["metadata"]["name"]): file for file, doc in chart_files(repo_root)}
    address = mnops_target.prometheus_url or "http://prometheus.monitoring.svc:9090"
    problems = []
    for doc in app.render(namespace, prometheus_address=address, time_scale=1):
        kind, name = doc["kind"], doc["metadata"]["name"]
        try:
            k8s.apply(doc, namespace=namespace, dry_run=True)
        except ClusterError as exc:
            problems.append(f"{origin.get((kind, name), 'charts/')}: {kind} {namespace}/{name}: {exc}")
    assert not problems, (
        f"the API server {k8s.host} rejects charts/ in a server-side dry run (nothing was changed): "
        f"{'; '.join(problems)}. Fix: correct the named manifest until "
        f"`kubectl apply --server-side --dry-run=server -k charts/ -n {namespace}` passes."
    )


@pytest.mark.validation("rollouts", reads="cluster")
def test_stable_revision_analysis_not_failed(rollout: Rollout, rollout_obj: Obj, not_applicable: Any) -> None:
    """The AnalysisRuns that judged the revision now serving as stable must not have Failed or Errored.

    Scoped to the stable ReplicaSet's pod-template hash on purpose: drills leave Failed runs of aborted
    canaries behind, and those say the analysis *worked*; what an SRE must know is whether the version
    serving traffic was promoted past a failed analysis.
    """
    meta, status = rollout_obj["metadata"], rollout_obj.get("status") or {}
    stable = status.get("stableRS")
    if not stable:
        pytest.fail(
            f"Rollout {meta['namespace']}/{meta['name']} has no status.stableRS: it never became "
            "available. Fix: see the deployment checks and `kubectl argo rollouts get rollout`.",
            pytrace=False,
        )
    runs = [r for r in rollout.analysis_runs() if (r["metadata"].get("labels") or {}).get(ROLLOUT_HASH_LABEL) == stable]
    if not runs:
        revisions = {
            h: rev
            for rev, rs in rollout.revisions().items()
            if (h := (rs["metadata"].get("labels") or {}).get(ROLLOUT_HASH_LABEL))
        }
        not_applicable(
            f"stable revision {revisions.get(stable, '?')} ({stable}) of Rollout "
            f"{meta['namespace']}/{meta['name']} went live without a canary analysis (first "
            "deployment, full promotion or rollback to it), so no AnalysisRun judged it"
        )
    bad = [r for r in runs if (r.get("status") or {}).get("phase") in BAD_ANALYSIS]
    details = []
    for run in bad:
        results = (run.get("status") or {}).get("metricResults") or []
        failed = [
            f"{m['name']}: {m.get('phase')} {m.get('message', '')}".strip()
            for m in results
            if m.get("phase") in BAD_ANALYSIS
        ]
        revision = (run["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "?")
        details.append(
            f"AnalysisRun {meta['namespace']}/{run['metadata']['name']} (revision {revision}) "
            f"{run['status']['phase']}: {'; '.join(failed) or run['status'].get('message', '')}"
        )
    assert not bad, (
        f"the stable revision ({stable}) of Rollout {meta['namespace']}/{meta['name']} is serving although "
        f"its analysis did not pass: {'; '.join(details)}. It was promoted past its analysis (promote-full "
        "or a manual promote). Fix: roll back to the last revision whose analysis succeeded "
        "(`mnops rollback`), or confirm the release was deliberate and redeploy it through a clean canary."
    )
