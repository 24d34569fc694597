"""Argo Rollouts: the five-step canary with its three background analyses, in charts/ and in the cluster; the
analysis thresholds; charts/ admitted by the real API server; the stable revision not judged Failed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mnops import app, assets
from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.rollouts import HASH_LABEL, REVISION_ANNOTATION, Rollout
from pytest_mnops.target import Target

Obj = dict[str, Any]
CANARY_WEIGHTS = [10, 30, 50, 80, 100]
# template name -> (comparison on result[0] that passes, threshold); failureCondition must be its complement.
THRESHOLDS = {"success-rate": (">=", 0.95), "error-rate": ("<=", 0.01), "response-time": ("<=", 0.5)}
COMPLEMENT = {">=": "<", "<=": ">", ">": "<=", "<": ">="}
CONDITION = re.compile(r"result\[0\]\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)")
BAD_ANALYSIS = ("Failed", "Error")
ROLLOUT_CHART = "charts/argo-rollout.yaml"


def chart_files(root: Path) -> list[tuple[str, Obj]]:
    """(charts/FILE, document) for every manifest kustomization.yaml lists, in its order."""
    kustomization = yaml.safe_load((root / "charts" / "kustomization.yaml").read_text())
    return [
        (f"charts/{name}", doc)
        for name in kustomization["resources"]
        for doc in assets.load_yaml_documents(root / "charts" / name)
    ]


def canary_problems(rollout: Obj) -> list[str]:
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


@pytest.mark.validation("rollouts", reads="cluster")
def test_cluster_canary_steps_and_analysis(rollout_obj: Obj) -> None:
    problems = canary_problems(rollout_obj)
    meta = rollout_obj["metadata"]
    assert not problems, (
        f"Rollout {meta['namespace']}/{meta['name']}: {'; '.join(problems)}. The cluster runs a different "
        f"canary than {ROLLOUT_CHART}. Fix: re-apply charts/ "
        f"(`kubectl apply -k charts/ -n {meta['namespace']}`)."
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
def test_cluster_analysis_templates_and_thresholds(k8s: Kube, mnops_target: Target, argo_rollouts: None) -> None:
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
    runs = [r for r in rollout.analysis_runs() if (r["metadata"].get("labels") or {}).get(HASH_LABEL) == stable]
    if not runs:
        revisions = {
            h: rev
            for rev, rs in rollout.revisions().items()
            if (h := (rs["metadata"].get("labels") or {}).get(HASH_LABEL))
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
