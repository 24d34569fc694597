"""Safety guards before any change: allowed context/namespace, blast-radius caps, the dry-run plan."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.chaos.runner import ChaosRunner
from pytest_mnops.chaos.scenarios import load
from pytest_mnops.errors import DryRunPlanned, GuardViolation, ScenarioError
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.guards.policy import Guards
from pytest_mnops.guards.targets import derive
from pytest_mnops.k8s import resources
from pytest_mnops.names import SANDBOX_CONTEXT
from pytest_mnops.target import Target
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
    """Only what the guards read: pods (and other objects) listed by namespace, label and field selector."""

    def __init__(
        self, pods: list[dict[str, Any]], objects: dict[tuple[str, str], dict[str, Any]] | None = None
    ) -> None:
        self.pods = pods
        self.objects = objects or {}
        self.calls: list[tuple[Any, str | None, str | None]] = []

    def list(
        self,
        resource: Any,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        self.calls.append((resource, namespace, label_selector))
        if resource is not resources.POD:
            items = [o for (kind, _), o in self.objects.items() if kind == resource.kind]
            return items, "4711"
        wanted = dict(part.split("=", 1) for part in (label_selector or "").split(",") if part)
        node = (field_selector or "").removeprefix("spec.nodeName=") or None
        return [
            p
            for p in self.pods
            if (namespace is None or p["metadata"].get("namespace", "drills") == namespace)
            and all((p["metadata"].get("labels") or {"app": "demo"}).get(k) == v for k, v in wanted.items())
            and (node is None or p.get("spec", {}).get("nodeName") == node)
        ], "4711"

    def find(self, resource: Any, name: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        return self.objects.get((resource.kind, name))


def _pods(count: int, *, terminating: int = 0, namespace: str = "drills") -> list[dict[str, Any]]:
    pods = [
        {"metadata": {"name": f"demo-{i:02d}", "namespace": namespace, "labels": {"app": "demo"}}} for i in range(count)
    ]
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


# -- blast radius: declared ------------------------------------------------------------------------


def test_declared_blast_by_percent_rounds_up_and_skips_terminating_pods() -> None:
    kube = FakeKube(_pods(11, terminating=1))
    plan = _guards().declared(kube, {"selector": "app=demo", "percent": 30}, namespace="drills")  # type: ignore[arg-type]
    assert kube.calls == [(resources.POD, "drills", "app=demo")]
    assert plan is not None
    assert plan.matching == tuple(f"drills/demo-{i:02d}" for i in range(1, 11))
    assert plan.touched == 3 and plan.percent == 30.0


def test_declared_blast_by_count_is_capped_by_what_matches() -> None:
    plan = _guards().declared(FakeKube(_pods(2)), {"selector": "app=demo", "pods": 5}, namespace="drills")  # type: ignore[arg-type]
    assert plan is not None and plan.touched == 2 and plan.percent == 100.0


def test_no_declared_blast_lists_nothing() -> None:
    kube = FakeKube(_pods(3))
    assert _guards().declared(kube, {}, namespace="drills") is None  # type: ignore[arg-type]
    assert kube.calls == []


# -- blast radius: derived from every action's own arguments ---------------------------------------


def _action(module: str, func: str, activity: str = "inject", **arguments: Any) -> dict[str, Any]:
    return {
        "type": "action",
        "name": activity,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments},
    }


def _terminate(**arguments: Any) -> dict[str, Any]:
    return _action("chaosk8s.pod.actions", "terminate_pods", **arguments)


@pytest.mark.parametrize(
    ("arguments", "touched"),
    [
        ({"label_selector": "app=demo", "ns": "drills"}, 1),  # chaosk8s' default: mode fixed, qty 1
        ({"label_selector": "app=demo", "ns": "drills", "mode": "percentage", "qty": 25}, 3),  # rounded up
        ({"label_selector": "app=demo", "ns": "drills", "qty": 40}, 10),  # capped by what matches
        ({"label_selector": "app=demo", "ns": "drills", "all": True}, 10),
        ({"ns": "drills", "name_pattern": "demo-0[0-2]", "all": True}, 3),
    ],
)
def test_terminate_pods_target_follows_chaosk8s_selection(arguments: dict[str, Any], touched: int) -> None:
    target = derive(FakeKube(_pods(10)), _terminate(**arguments), {})  # type: ignore[arg-type]
    assert target.namespaces == ("drills",) and target.pods_known
    assert target.touched == touched


def test_an_action_naming_another_namespace_is_refused_for_that_namespace() -> None:
    """The bug the guard closes: the target namespace is allowed, the action's own ``ns`` is not."""
    kube = FakeKube(_pods(4, namespace="payments"))
    target = derive(kube, _terminate(label_selector="app=demo", ns="payments"), {"namespace": "drills"})  # type: ignore[arg-type]
    with pytest.raises(GuardViolation) as info:
        _guards().judge([target], [], None, what="scenario x")
    assert str(info.value) == (
        "scenario x: action 'inject' (chaosk8s.pod.actions.terminate_pods): namespace 'payments' is outside the "
        "allowlist (drills); nothing was changed. Fix: --mnops-allow-namespace=payments."
    )


def test_an_action_without_declared_blast_is_still_capped() -> None:
    target = derive(FakeKube(_pods(10)), _terminate(label_selector="app=demo", ns="drills", all=True), {})  # type: ignore[arg-type]
    with pytest.raises(GuardViolation) as info:
        _guards(max_pods=1).judge([target], [], None, what="scenario x")
    assert "would touch 10 pods (app=demo), over the cap of 1; nothing was changed" in str(info.value)
    with pytest.raises(GuardViolation, match="would touch 100% of the 10 pods matching app=demo, over the cap of 50%"):
        _guards().judge([target], [], None, what="scenario x")


def test_an_underivable_action_needs_a_declared_blast() -> None:
    kube = FakeKube(_pods(4))
    target = derive(kube, _action("mychaos.actions", "break_things"), {})  # type: ignore[arg-type]
    assert not target.pods_known
    with pytest.raises(GuardViolation) as info:
        _guards().judge([target], [], None, what="scenario x")
    assert "action 'inject' (mychaos.actions.break_things): which pods it touches cannot be derived" in str(info.value)
    assert "Fix: declare extensions[mnops].blast" in str(info.value)
    declared = _guards().declared(kube, {"selector": "app=demo", "pods": 1}, namespace="drills")  # type: ignore[arg-type]
    [judged] = _guards().judge([target], [], declared, what="scenario x")
    assert judged.touched == 1 and judged.namespaces == ("drills",) and "declares" in judged.note


def test_chaos_mesh_action_selects_by_namespaces_labels_and_mode() -> None:
    kube = FakeKube([*_pods(10), *_pods(10, namespace="other")])
    action = _action(
        "chaosk8s.chaosmesh.network.actions",
        "add_latency",
        name="delay",
        ns="drills",
        namespaces_selectors="drills,other",
        label_selectors="app=demo",
        mode="fixed-percent",
        mode_value="40",
    )
    target = derive(kube, action, {})  # type: ignore[arg-type]
    assert target.namespaces == ("drills", "other") and target.touched == 8 and len(target.matching) == 20
    assert target.objects == ("NetworkChaos drills/delay",)
    with pytest.raises(GuardViolation, match="namespace 'other' is outside the allowlist"):
        _guards().judge([target], [], None, what="scenario x")


def test_chaos_mesh_object_through_the_crd_action_is_judged_by_its_selector() -> None:
    body = {
        "kind": "PodChaos",
        "metadata": {"name": "kill"},
        "spec": {
            "action": "pod-kill",
            "mode": "all",
            "selector": {"namespaces": ["drills"], "labelSelectors": {"app": "demo"}},
        },
    }
    action = _action("chaosk8s.crd.actions", "create_custom_object", group="chaos-mesh.org", ns="drills", resource=body)
    target = derive(FakeKube(_pods(6)), action, {})  # type: ignore[arg-type]
    assert target.touched == 6 and target.objects == ("PodChaos drills/kill",)
    other = _action("chaosk8s.crd.actions", "create_custom_object", group="example.com", ns="drills", resource=body)
    assert not derive(FakeKube(_pods(6)), other, {}).pods_known  # type: ignore[arg-type]


def test_draining_a_node_touches_every_pod_on_it_in_every_namespace() -> None:
    pods = _pods(3) + _pods(2, namespace="kube-system")
    for pod in pods:
        pod["spec"] = {"nodeName": "node-1"}
    kube = FakeKube(pods, {("Node", "node-1"): {"metadata": {"name": "node-1"}}})
    target = derive(kube, _action("chaosk8s.node.actions", "drain_nodes", name="node-1"), {})  # type: ignore[arg-type]
    assert target.namespaces == ("drills", "kube-system") and target.touched == 5
    with pytest.raises(GuardViolation, match="namespace 'kube-system' is outside the allowlist"):
        _guards().judge([target], [], None, what="scenario x")


def test_scaling_a_deployment_down_touches_the_pods_above_the_new_count() -> None:
    deployment = {"metadata": {"name": "demo"}, "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "demo"}}}}
    kube = FakeKube(_pods(10), {("Deployment", "demo"): deployment})
    action = _action("chaosk8s.deployment.actions", "scale_deployment", name="demo", replicas=4, ns="drills")
    target = derive(kube, action, {})  # type: ignore[arg-type]
    assert target.touched == 6 and target.objects == ("Deployment drills/demo",)


def test_a_secret_action_is_checked_against_the_allowlist() -> None:
    target = derive(FakeKube([]), _action("chaosk8s.secret.actions", "delete_secret", name="db", ns="vault"), {})  # type: ignore[arg-type]
    assert target.objects == ("Secret vault/db",) and target.touched == 0
    with pytest.raises(GuardViolation, match="namespace 'vault' is outside the allowlist"):
        _guards().judge([target], [], None, what="scenario x")


def test_a_rollback_in_another_namespace_is_refused_too() -> None:
    revert = derive(FakeKube([]), _action("chaosk8s.chaosmesh.stress.actions", "delete_stressor", name="s", ns="x"), {})  # type: ignore[arg-type]
    with pytest.raises(GuardViolation, match=r"rollback 'inject' .* namespace 'x' is outside the allowlist"):
        _guards().judge([], [revert], None, what="scenario x")


def test_secrets_aiming_at_another_cluster_are_refused() -> None:
    with pytest.raises(GuardViolation, match=r"secrets\.k8s\.KUBERNETES_HOST would aim"):
        _guards().check_secrets({"k8s": {"KUBERNETES_HOST": "https://prod:6443"}}, what="scenario x")
    _guards().check_secrets({"app": {"token": "x"}}, what="scenario x")


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
    )
    with pytest.raises(DryRunPlanned):
        runner.run("pod-failure", selector="app=demo")
    return lines


def test_kill_percent_sets_the_blast_radius_the_guard_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lines = _pod_failure_plan(monkeypatch, tmp_path, "10", max_pods=100)
    assert any(
        line.startswith("[dry-run]     -> namespace drills; selector app=demo; pods 100/1000: drills/demo-00, ")
        for line in lines
    ), lines
    with pytest.raises(GuardViolation, match=r"would touch 100 pods \(app=demo\), over the cap of 50; nothing"):
        _pod_failure_plan(monkeypatch, tmp_path, "10", max_pods=50)  # the default cap still holds at scale
    with pytest.raises(GuardViolation, match="would touch 60% of the 10 pods matching app=demo, over the cap of 50%"):
        _pod_failure_plan(monkeypatch, tmp_path, "60", max_pods=50, pods=10)
    assert not (tmp_path / "ledger.jsonl").exists()  # refused or planned: nothing was injected


# -- dry-run plan ----------------------------------------------------------------------------------


def test_print_plan_lists_each_action_with_its_resolved_target() -> None:
    lines: list[str] = []
    scenario = load("pod-failure")
    kube = FakeKube(_pods(4))
    action = derive(kube, _terminate(label_selector="app=demo", ns="drills", qty=2), {})  # type: ignore[arg-type]
    action = dataclasses.replace(action, activity="terminate-app-pods")
    revert = derive(kube, scenario.rollbacks[0], {"namespace": "drills"})  # type: ignore[arg-type]
    _guards(lines=lines).print_plan("pod-failure", scenario.experiment, [action], [revert])
    assert lines == [
        "[dry-run] pod-failure: target staging: drills/demo",
        "[dry-run]   probe watch-replacements: pytest_mnops.chaos.activities.pods.watch_pod_replacements",
        "[dry-run]   action terminate-app-pods: chaosk8s.pod.actions.terminate_pods",
        "[dry-run]     -> namespace drills; selector app=demo; pods 2/4: drills/demo-00, drills/demo-01",
        "[dry-run]   revert replicas-restored: pytest_mnops.chaos.activities.stable_revision.wait_for_stable_serving",
        "[dry-run]     -> namespace drills",
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
LAB = (
    "--mnops-kubeconfig=kubeconfig.yaml",
    "--mnops-context=drill-lab",
    "--mnops-prometheus-url=http://127.0.0.1:1",
    "--mnops-alertmanager-url=http://127.0.0.1:2",
)


def test_dry_run_plans_and_skips_without_touching_anything(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makefile(".yaml", kubeconfig=KUBECONFIG)
    mnops_pytester.makepyfile(test_drill=DRILL)
    result = mnops_pytester.runpytest(*LAB, "--mnops-allow-context=drill-lab", "--mnops-dry-run", "-rs")
    result.assert_outcomes(skipped=1, failed=1)
    experiment = load("monitoring-alerts").experiment
    result.stdout.fnmatch_lines(
        [
            "[[]dry-run] monitoring-alerts: target drill-lab: default/machine-native-ops",
            f"[[]dry-run]   {experiment['method'][0]['type']} {experiment['method'][0]['name']}: *",
            "[[]dry-run]     -> namespace -; no cluster change: alerts posted to http*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            *(f"[[]dry-run]   revert {a['name']}: *" for a in experiment["rollbacks"]),
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


# -- public experiments: what the runner accepts before anything runs -----------------------------------


def _runner(tmp_path: Path, kube: FakeKube) -> ChaosRunner:
    guards = Guards(TARGET, max_pods=50, max_percent=50.0, dry_run=True, echo=[].append)
    return ChaosRunner(
        kube=kube,  # type: ignore[arg-type]
        target=TARGET,
        timeline=Timeline(),
        ledger=Ledger(tmp_path / "ledger.jsonl"),
        guards=guards,
    )


def _experiment(tmp_path: Path, *actions: dict[str, Any], hypothesis: bool = True) -> Path:
    experiment: dict[str, Any] = {"title": "t", "description": "d", "method": list(actions)}
    if hypothesis:
        probe = {
            "type": "probe",
            "name": "ok",
            "tolerance": True,
            "provider": {"type": "python", "module": "os", "func": "getcwd"},
        }
        experiment["steady-state-hypothesis"] = {"title": "ok", "probes": [probe]}
    path = tmp_path / "public.json"
    path.write_text(json.dumps(experiment))
    return path


def test_an_experiment_without_rollbacks_is_refused_unless_kubernetes_heals_its_faults(tmp_path: Path) -> None:
    kube = FakeKube(_pods(10))
    scale = _action(
        "chaosk8s.deployment.actions", "scale_deployment", "scale-down", name="demo", replicas=0, ns="drills"
    )
    with pytest.raises(ScenarioError) as info:
        _runner(tmp_path, kube).run(str(_experiment(tmp_path, scale)))
    assert (
        "action 'scale-down' (chaosk8s.deployment.actions.scale_deployment) injects a fault Kubernetes does not "
        in (str(info.value))
    )
    assert "heals_itself=True" in str(info.value)
    kill = _terminate(label_selector="app=demo", ns="drills")
    with pytest.raises(DryRunPlanned):  # accepted: planned in the dry run
        _runner(tmp_path, kube).run(str(_experiment(tmp_path, kill)))


def test_an_experiment_with_no_way_to_show_recovery_is_refused(tmp_path: Path) -> None:
    kill = _terminate(label_selector="app=demo", ns="drills")
    with pytest.raises(ScenarioError, match="no steady-state-hypothesis and no recovery probe"):
        _runner(tmp_path, FakeKube(_pods(10))).run(str(_experiment(tmp_path, kill, hypothesis=False)))


def test_an_injection_that_would_touch_no_pod_fails(tmp_path: Path) -> None:
    kill = _terminate(label_selector="app=nothing", ns="drills")
    runner = _runner(tmp_path, FakeKube(_pods(10)))
    runner.guards.dry_run = False
    with pytest.raises(AssertionError, match="would touch no pod: app=nothing matches none in namespace drills"):
        runner.run(str(_experiment(tmp_path, kill)))
    assert not (tmp_path / "ledger.jsonl").exists()
