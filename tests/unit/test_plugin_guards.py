"""Safety guards before any change: allowed context/namespace, blast-radius caps, the dry-run plan."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.chaos.runner import ChaosRunner
from pytest_mnops.chaos.scenarios import load
from pytest_mnops.errors import GuardViolation
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.guards.policy import BlastPlan, Guards
from pytest_mnops.k8s import resources
from pytest_mnops.target import SANDBOX_CONTEXT, Target
from pytest_mnops.timeline import Timeline

TARGET = Target(
    kubeconfig="/nonexistent",
    context="staging",
    namespace="drills",
    app="demo",
    prometheus_url="http://127.0.0.1:1",
    alertmanager_url=None,
    receivers_url=None,
    app_url=None,
    github_url="https://api.github.com",
    github_repo=None,
    time_scale=1.0,
    sandbox=False,
    sandbox_dir=Path(".mnops/sandbox"),
    allowed_contexts=("staging",),
    allowed_namespaces=("drills",),
)


class FakeKube:
    """Only what the guards call: ``list(resource, namespace=, label_selector=)`` -> (objects, version)."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.calls: list[tuple[Any, str, str]] = []

    def list(self, resource: Any, *, namespace: str, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        self.calls.append((resource, namespace, label_selector))
        return self.pods, "4711"


def _pods(count: int, *, terminating: int = 0) -> list[dict[str, Any]]:
    pods = [{"metadata": {"name": f"demo-{i:02d}"}} for i in range(count)]
    for pod in pods[:terminating]:
        pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return pods


def _guards(
    target: Target = TARGET, *, max_pods: int = 50, max_percent: float = 50.0, lines: list[str] | None = None
) -> Guards:
    sink = lines if lines is not None else []
    return Guards(target, max_pods=max_pods, max_percent=max_percent, dry_run=False, echo=sink.append)


# -- check_target ----------------------------------------------------------------------------------


def test_allowed_context_and_namespace_pass() -> None:
    _guards().check_target(namespace="drills", what="scenario pod-failure")


@pytest.mark.parametrize(
    ("context", "shown", "fix"), [("production", "'production'", "production"), (None, "'(current)'", "NAME")]
)
def test_a_context_not_allowed_is_refused_with_the_fix(context: str | None, shown: str, fix: str) -> None:
    target = dataclasses.replace(TARGET, context=context)
    with pytest.raises(GuardViolation) as info:
        _guards(target).check_target(namespace="drills", what="scenario pod-failure")
    message = str(info.value)
    assert message.startswith(f"scenario pod-failure: kube context {shown} is not allowed for destructive")
    assert "nothing was changed" in message
    assert f"Fix: add it with --mnops-allow-context={fix}" in message and "--mnops-sandbox" in message


def test_a_namespace_outside_the_allowlist_is_refused_with_the_fix() -> None:
    target = dataclasses.replace(TARGET, allowed_namespaces=("drills", "drills-2"))
    with pytest.raises(GuardViolation) as info:
        _guards(target).check_target(namespace="kube-system", what="scenario high-latency")
    assert str(info.value) == (
        "scenario high-latency: namespace 'kube-system' is outside the allowlist (drills, drills-2); "
        "nothing was changed. Fix: --mnops-allow-namespace=kube-system."
    )


@pytest.mark.parametrize(
    "target",
    [
        dataclasses.replace(TARGET, context="anything", sandbox=True),
        dataclasses.replace(TARGET, context=SANDBOX_CONTEXT, allowed_contexts=()),
    ],
)
def test_the_sandbox_is_always_allowed(target: Target) -> None:
    _guards(target).check_target(namespace="drills", what="x")
    with pytest.raises(GuardViolation, match="namespace 'default' is outside the allowlist"):
        _guards(target).check_target(namespace="default", what="x")  # the namespace allowlist still applies


# -- blast radius ----------------------------------------------------------------------------------


def test_blast_plan_by_percent_rounds_up_and_skips_terminating_pods() -> None:
    kube = FakeKube(_pods(11, terminating=1))
    plan = _guards().blast_plan(kube, {"selector": "app=demo", "percent": 30}, namespace="drills")  # type: ignore[arg-type]
    assert kube.calls == [(resources.POD, "drills", "app=demo")]
    assert plan is not None
    assert plan.matching == [f"demo-{i:02d}" for i in range(1, 11)]
    assert plan.touched == 3 and plan.percent == 30.0


def test_blast_plan_by_count_is_capped_by_what_matches() -> None:
    plan = _guards().blast_plan(FakeKube(_pods(2)), {"selector": "app=demo", "pods": 5}, namespace="drills")  # type: ignore[arg-type]
    assert plan is not None and plan.touched == 2 and plan.percent == 100.0


def test_blast_plan_defaults_to_every_matching_pod() -> None:
    plan = _guards().blast_plan(FakeKube(_pods(4)), {"selector": "app=demo"}, namespace="drills")  # type: ignore[arg-type]
    assert plan is not None and plan.touched == 4


def test_no_declared_blast_lists_nothing() -> None:
    kube = FakeKube(_pods(3))
    assert _guards().blast_plan(kube, {}, namespace="drills") is None  # type: ignore[arg-type]
    assert kube.calls == []
    _guards().check_blast(None, what="scenario monitoring-alerts")


def test_nothing_matching_is_zero_percent() -> None:
    plan = _guards().blast_plan(FakeKube([]), {"selector": "app=demo", "percent": 30}, namespace="drills")  # type: ignore[arg-type]
    assert plan == BlastPlan("app=demo", [], 0) and plan.percent == 0.0
    _guards(max_pods=1, max_percent=1).check_blast(plan, what="x")


def test_check_blast_pod_cap() -> None:
    plan = BlastPlan("app=demo", [f"p{i}" for i in range(20)], 6)
    _guards(max_pods=6).check_blast(plan, what="x")  # at the cap is fine
    with pytest.raises(GuardViolation) as info:
        _guards(max_pods=5).check_blast(plan, what="scenario pod-failure")
    assert str(info.value) == (
        "scenario pod-failure: would touch 6 pods (app=demo), over the cap of 5; nothing was changed. "
        "Fix: raise --mnops-max-pods or narrow the scenario's blast radius."
    )


def test_check_blast_percent_cap() -> None:
    plan = BlastPlan("app=demo", ["a", "b", "c", "d"], 3)
    _guards(max_percent=75).check_blast(plan, what="x")
    with pytest.raises(GuardViolation) as info:
        _guards(max_percent=50).check_blast(plan, what="scenario high-latency")
    assert str(info.value) == (
        "scenario high-latency: would touch 75% of the 4 pods matching app=demo, over the cap of 50%; "
        "nothing was changed. Fix: raise --mnops-max-percent or narrow the scenario's blast radius."
    )


def _pod_failure_plan(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kill_percent: str, *, max_pods: int, pods: int = 1000
) -> list[str]:
    """The pod-failure drill through the runner, as far as its dry-run plan, with MNOPS_KILL_PERCENT set."""
    monkeypatch.setenv("MNOPS_KILL_PERCENT", kill_percent)
    lines: list[str] = []
    guards = Guards(TARGET, max_pods=max_pods, max_percent=50.0, dry_run=True, echo=lines.append)
    runner = ChaosRunner(
        kube=FakeKube(_pods(pods)),  # type: ignore[arg-type]
        target=TARGET,
        timeline=Timeline(),
        ledger=Ledger(tmp_path / "ledger.jsonl"),
        guards=guards,
        node=None,  # type: ignore[arg-type]  # a dry run stops before anything is recorded on the test
    )
    with pytest.raises(pytest.skip.Exception):
        runner.run("pod-failure")
    return lines


def test_kill_percent_sets_the_blast_radius_the_guard_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lines = _pod_failure_plan(monkeypatch, tmp_path, "10", max_pods=100)
    assert lines[1].startswith("[dry-run]   would touch 100/1000 pods matching app=demo: demo-00, ")
    with pytest.raises(GuardViolation, match=r"would touch 100 pods \(app=demo\), over the cap of 50; nothing"):
        _pod_failure_plan(monkeypatch, tmp_path, "10", max_pods=50)  # the default cap still holds at scale
    with pytest.raises(GuardViolation, match="would touch 60% of the 10 pods matching app=demo, over the cap of 50%"):
        _pod_failure_plan(monkeypatch, tmp_path, "60", max_pods=50, pods=10)
    assert not (tmp_path / "ledger.jsonl").exists()  # refused or planned: nothing was injected


# -- dry-run plan ----------------------------------------------------------------------------------


def test_print_plan_lists_target_pods_activities_and_reverts() -> None:
    lines: list[str] = []
    scenario = load("pod-failure")
    plan = BlastPlan("app=demo", ["demo-a", "demo-b", "demo-c", "demo-d"], 2)
    _guards(lines=lines).print_plan("pod-failure", scenario.experiment, plan, namespace="drills")
    assert lines == [
        "[dry-run] pod-failure: target staging: drills/demo (namespace drills)",
        "[dry-run]   would touch 2/4 pods matching app=demo: demo-a, demo-b",
        "[dry-run]   probe watch-replacements: pytest_mnops.chaos.activities.watch_pod_replacements",
        "[dry-run]   action terminate-app-pods: chaosk8s.pod.actions.terminate_pods",
        "[dry-run]   revert replicas-restored",
        "[dry-run]   nothing was changed",
    ]


def test_print_plan_without_pods_or_python_providers() -> None:
    lines: list[str] = []
    experiment = {
        "method": [{"type": "probe", "name": "ping", "provider": {"type": "http", "url": "http://x"}}],
        "rollbacks": [],
    }
    _guards(lines=lines).print_plan("custom", experiment, BlastPlan("app=demo", [], 0), namespace="drills")
    assert lines == [
        "[dry-run] custom: target staging: drills/demo (namespace drills)",
        "[dry-run]   would touch 0/0 pods matching app=demo: none",
        "[dry-run]   probe ping: http.",
        "[dry-run]   nothing was changed",
    ]


# -- through a pytest run: the chaos fixture in dry-run mode, against no cluster -------------------

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: lab
  user: {token: not-a-real-token}
contexts:
- name: drill-lab
  context: {cluster: lab, user: lab}
current-context: drill-lab
"""
DRILL = """
import pytest

@pytest.mark.drill("monitoring-alerts")
def test_monitoring_alerts(chaos):
    chaos.run("monitoring-alerts")

@pytest.mark.drill("monitoring-alerts")
def test_monitoring_alerts_elsewhere(chaos):
    chaos.run("monitoring-alerts", namespace="kube-system")
"""
LAB = ("--mnops-kubeconfig=kubeconfig.yaml", "--mnops-context=drill-lab", "--mnops-prometheus-url=http://127.0.0.1:1")


def test_dry_run_plans_and_skips_without_touching_anything(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makefile(".yaml", kubeconfig=KUBECONFIG)
    mnops_pytester.makepyfile(test_drill=DRILL)
    result = mnops_pytester.runpytest(*LAB, "--mnops-allow-context=drill-lab", "--mnops-dry-run", "-rs")
    result.assert_outcomes(skipped=1, failed=1)
    experiment = load("monitoring-alerts").experiment
    result.stdout.fnmatch_lines(
        [
            "[[]dry-run] monitoring-alerts: target drill-lab: default/machine-native-ops (namespace default)",
            *(
                f"[[]dry-run]   {a['type']} {a['name']}: {a['provider']['module']}.{a['provider']['func']}"
                for a in experiment["method"]
            ),
            *(f"[[]dry-run]   revert {a['name']}" for a in experiment["rollbacks"]),
            "[[]dry-run]   nothing was changed",
        ]
    )
    result.stdout.fnmatch_lines(["SKIPPED *--mnops-dry-run: monitoring-alerts planned, nothing changed"])
    # the guards run before the plan: another namespace is refused even in a dry run
    result.stdout.fnmatch_lines(
        [
            "E *GuardViolation: scenario monitoring-alerts: namespace 'kube-system' is "
            "outside the allowlist (default)*Fix: --mnops-allow-namespace=kube-system."
        ]
    )
    assert not (mnops_pytester.path / ".mnops").exists()  # no ledger: nothing was injected


def test_a_context_not_allowed_fails_the_drill_before_any_change(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makefile(".yaml", kubeconfig=KUBECONFIG)
    mnops_pytester.makepyfile(test_drill=DRILL)
    result = mnops_pytester.runpytest(*LAB, "--mnops-allow-namespace=default,kube-system")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "E *GuardViolation: scenario monitoring-alerts: kube context 'drill-lab' is not allowed for "
            "destructive drills; nothing was changed. Fix: add it with --mnops-allow-context=drill-lab *"
        ]
    )
    assert not (mnops_pytester.path / ".mnops").exists()
