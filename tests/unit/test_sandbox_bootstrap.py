"""What the sandbox creates and configures once its API server answers, against a recording fake of the cluster:
the reference app rendered for a namespace, KWOK nodes, CRDs, the release through the canary analysis, and the
Prometheus/Alertmanager configuration pointing at this sandbox's ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mnops import app, assets
from pytest_mnops.errors import SandboxError, WaitTimeout
from pytest_mnops.k8s import Resource, resources
from pytest_mnops.k8s.rbac import DRILL_PERMISSIONS, Permission, from_audit_event, role_rules
from pytest_mnops.names import ROLLOUT_HASH_LABEL
from pytest_mnops.rollouts import REVISION_ANNOTATION
from pytest_mnops.sandbox import bootstrap, monitoring_config
from pytest_mnops.sandbox.layout import DEFAULT_PORT_BASE, Ports
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.unit.conftest import FakeServer, Request

PROMETHEUS = "http://127.0.0.1:9090"


class FakeKube:
    """Objects by (plural, namespace, name); waits see the current objects once, as a list would show them."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, ...]] = []
        self.on_wait: dict[str, Any] = {}

    def find(self, resource: Resource, name: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        return self.objects.get((resource.plural, namespace, name))

    def create(self, resource: Resource, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create", resource.plural, body["metadata"]["name"]))
        self.objects[(resource.plural, kwargs.get("namespace"), body["metadata"]["name"])] = body
        return body

    def delete(self, resource: Resource, name: str, **kwargs: Any) -> bool:
        self.calls.append(("delete", resource.plural, name))
        return self.objects.pop((resource.plural, kwargs.get("namespace"), name), None) is not None

    def apply(self, doc: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("apply", doc["kind"], doc["metadata"]["name"]))
        return doc

    def list(self, resource: Resource, **kwargs: Any) -> tuple[list[dict[str, Any]], str]:
        return [o for (plural, _, _), o in self.objects.items() if plural == resource.plural], "1"

    def wait(self, resource: Resource, predicate: Any, *, what: str, **kwargs: Any) -> Any:
        self.calls.append(("wait", resource.plural, what))
        states = self.on_wait.get(resource.plural) or [self.list(resource)[0]]
        for objs in states:
            if result := predicate(objs):
                return result
        raise WaitTimeout(f"the wait for {what} would time out")


# -- the reference app -----------------------------------------------------------------------------------


def test_render_points_the_app_at_prometheus_in_its_namespace_scaled() -> None:
    docs = app.render("drills", prometheus_address=PROMETHEUS, time_scale=1 / 12, replicas=4)
    assert {d["metadata"]["namespace"] for d in docs} == {"drills"}
    assert [d["kind"] for d in docs] == [d["kind"] for d in assets.chart_documents()]
    (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
    assert rollout["spec"]["replicas"] == 4
    canary = rollout["spec"]["strategy"]["canary"]
    assert {a["name"]: a.get("value") for a in canary["analysis"]["args"]}[app.PROMETHEUS_ARG] == PROMETHEUS
    assert {"pause": {"duration": "5s"}} in canary["steps"]
    templates = [d for d in docs if d["kind"] == "AnalysisTemplate"]
    assert len(templates) == 3
    for template in templates:
        assert {a["name"]: a.get("value") for a in template["spec"]["args"]}[app.PROMETHEUS_ARG] == PROMETHEUS
    unscaled = app.render("x", prometheus_address=PROMETHEUS)
    (original,) = [d for d in unscaled if d["kind"] == "Rollout"]
    assert (
        original["spec"]["replicas"] == 10
        and {"pause": {"duration": "1m"}} in original["spec"]["strategy"]["canary"]["steps"]
    )
    assert assets.chart_documents()[0]["metadata"].get("namespace") != "drills", "the charts themselves are untouched"


def test_deploy_creates_the_namespace_with_its_labels_and_applies_every_document() -> None:
    kube = FakeKube()
    applied = app.deploy(kube, "drills", prometheus_address=PROMETHEUS, labels={"team": "sre"})  # type: ignore[arg-type]
    assert kube.calls[0] == ("create", "namespaces", "drills")
    assert kube.objects[("namespaces", None, "drills")]["metadata"]["labels"] == {"team": "sre"}
    assert [c[1:] for c in kube.calls[1:]] == [(d["kind"], d["metadata"]["name"]) for d in applied]
    app.ensure_namespace(kube, "drills")  # type: ignore[arg-type]
    assert [c for c in kube.calls if c[0] == "create"] == [("create", "namespaces", "drills")]


def test_a_namespace_being_deleted_is_waited_for_then_created_again() -> None:
    kube = FakeKube()
    kube.objects[("namespaces", None, "drills")] = {"metadata": {"name": "drills", "deletionTimestamp": "now"}}
    kube.on_wait["namespaces"] = [[{"metadata": {"name": "drills"}}], []]
    app.ensure_namespace(kube, "drills")  # type: ignore[arg-type]
    assert kube.calls == [("wait", "namespaces", "namespace 'drills' deleted"), ("create", "namespaces", "drills")]


def test_namespaces_are_all_deleted_before_the_wait_for_those_it_deleted() -> None:
    kube = FakeKube()
    for name in ("drills-a", "drills-b"):
        kube.objects[("namespaces", None, name)] = {"metadata": {"name": name}}
    kube.on_wait["namespaces"] = [[]]
    app.remove_namespaces(kube, ["drills-a", "gone", "drills-b"], wait=True)  # type: ignore[arg-type]
    assert kube.calls == [
        ("delete", "namespaces", "drills-a"),
        ("delete", "namespaces", "gone"),
        ("delete", "namespaces", "drills-b"),
        ("wait", "namespaces", "namespace 'drills-a' deleted"),
        ("wait", "namespaces", "namespace 'drills-b' deleted"),
    ]


def test_namespaces_removed_without_wait_are_only_deleted() -> None:
    kube = FakeKube()
    kube.objects[("namespaces", None, "drills")] = {"metadata": {"name": "drills"}}
    app.remove_namespaces(kube, ["drills"], wait=False)  # type: ignore[arg-type]
    assert kube.calls == [("delete", "namespaces", "drills")]


# -- nodes, CRDs, base objects ----------------------------------------------------------------------------


def test_fake_nodes_are_kwok_managed_and_schedulable() -> None:
    node = bootstrap.fake_node("kwok-node-0")
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert node["metadata"]["labels"]["type"] == "kwok"  # what FAKE_NODE_SELECTOR selects
    assert bootstrap.FAKE_NODE_SELECTOR == "type=kwok"
    assert node["status"]["allocatable"]["pods"] == "110"


def test_ensure_nodes_creates_only_the_missing_ones_and_waits_for_them_ready() -> None:
    kube, said = FakeKube(), []
    kube.objects[("nodes", None, "kwok-node-1")] = {"metadata": {"name": "kwok-node-1"}}
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    kube.on_wait["nodes"] = [[ready], [ready, ready, ready]]
    bootstrap.ensure_nodes(kube, 3, said.append)  # type: ignore[arg-type]
    assert [c for c in kube.calls if c[0] == "create"] == [
        ("create", "nodes", "kwok-node-0"),
        ("create", "nodes", "kwok-node-2"),
    ]
    assert said == ["[sandbox] 3 KWOK nodes Ready"]


def test_install_crds_applies_every_file_and_waits_for_all_established(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crd = tmp_path / "a-crd.yaml"
    crd.write_text(
        yaml.safe_dump_all([{"kind": "CustomResourceDefinition", "metadata": {"name": n}} for n in ("x.io", "y.io")])
    )
    monkeypatch.setattr(bootstrap, "crd_files", lambda: [crd])
    kube, said = FakeKube(), []

    def crd_obj(name: str, established: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Established", "status": established}]}}

    kube.on_wait["customresourcedefinitions"] = [
        [crd_obj("x.io", "True"), crd_obj("y.io", "False")],
        [crd_obj("x.io", "True"), crd_obj("y.io", "True")],
    ]
    bootstrap.install_crds(kube, said.append)  # type: ignore[arg-type]
    assert kube.calls[:2] == [
        ("apply", "CustomResourceDefinition", "x.io"),
        ("apply", "CustomResourceDefinition", "y.io"),
    ]
    assert said == ["[sandbox] 2 CRDs established (Argo Rollouts, Chaos Mesh)"]


def test_crd_files_are_argo_rollouts_and_chaos_mesh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "manifests" / "crds").mkdir(parents=True)
    for name in ("rollout-crd.yaml", "analysis-run-crd.yaml", "kustomization.yaml"):
        (tmp_path / "manifests" / "crds" / name).write_text("")
    monkeypatch.setattr(bootstrap.binaries, "source_dir", lambda module: tmp_path)
    assert [p.name for p in bootstrap.crd_files()] == [
        "analysis-run-crd.yaml",
        "rollout-crd.yaml",
        "chaos-mesh-crds.yaml",
    ]


def test_base_objects_wait_for_the_default_service_account() -> None:
    kube = FakeKube()
    kube.on_wait["serviceaccounts"] = [[], [{"metadata": {"name": "default"}}]]
    bootstrap.ensure_base_objects(kube)  # type: ignore[arg-type]
    assert kube.calls == [
        ("create", "namespaces", "argo-rollouts"),
        ("wait", "serviceaccounts", "ServiceAccount 'default'"),
    ]


# -- the release through the canary analysis ------------------------------------------------------------


def _rollout_obj(stable: str, current: str, *, generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": app.APP_NAME, "namespace": "default", "generation": generation},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": app.APP_NAME}},
            "template": {"spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1.0.0"}]}},
        },
        "status": {
            "observedGeneration": str(generation),
            "phase": "Healthy" if stable == current else "Progressing",
            "stableRS": stable,
            "currentPodHash": current,
            "availableReplicas": 2,
        },
    }


def _replica_set(revision: int, pod_hash: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"app-{pod_hash}",
            "labels": {ROLLOUT_HASH_LABEL: pod_hash},
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [{"kind": "Rollout", "name": app.APP_NAME}],
        }
    }


def _run(pod_hash: str, phase: str) -> dict[str, Any]:
    meta = {"name": f"run-{pod_hash}-{phase}", "labels": {ROLLOUT_HASH_LABEL: pod_hash}, "creationTimestamp": "t"}
    return {"metadata": {**meta, "ownerReferences": [{"name": app.APP_NAME}]}, "status": {"phase": phase}}


class ReleasingKube(FakeKube):
    """The sandbox's app at revision 1 (never analysed); patching its template starts revision 2, whose canary
    ends with AnalysisRuns of ``phases``."""

    def __init__(self, phases: tuple[str, ...] = ("Successful", "Successful")) -> None:
        super().__init__()
        self.rollout = _rollout_obj("h1", "h1")
        self.sets = [_replica_set(1, "h1")]
        self.runs: list[dict[str, Any]] = []
        self.phases = phases
        self.patches: list[Any] = []

    def get(self, resource: Resource, name: str, **kwargs: Any) -> dict[str, Any]:
        return self.rollout

    def list(self, resource: Resource, **kwargs: Any) -> tuple[list[dict[str, Any]], str]:
        return {"replicasets": self.sets, "analysisruns": self.runs}[resource.plural], "1"

    def patch(self, resource: Resource, name: str, body: Any, **kwargs: Any) -> dict[str, Any]:
        self.patches.append(body)
        self.sets.append(_replica_set(2, "h2"))
        self.runs.extend(_run("h2", phase) for phase in self.phases)
        self.on_wait["rollouts"] = [[_rollout_obj("h1", "h2", generation=2)], [_rollout_obj("h2", "h2", generation=2)]]
        return self.rollout

    def wait(self, resource: Resource, predicate: Any, *, what: str, **kwargs: Any) -> Any:
        result = super().wait(resource, predicate, what=what, **kwargs)
        self.rollout = self.on_wait["rollouts"][-1][0]
        self.on_wait["rollouts"] = [[self.rollout]]  # where it went it stays: a later wait sees only that
        return result


def test_a_fresh_sandbox_releases_a_second_revision_through_its_analyses() -> None:
    kube, said = ReleasingKube(), []
    settings = SandboxSettings(state_dir="/nonexistent")
    assert not bootstrap.judged_stable(_rollout_for(kube))
    bootstrap.release_through_analysis(kube, settings, said.append)  # type: ignore[arg-type]
    (patch,) = kube.patches
    template = patch["spec"]["template"]
    assert template["metadata"] == {"annotations": {bootstrap.RELEASE_ANNOTATION: bootstrap.RELEASE}}
    assert template["spec"]["containers"][0]["image"] == "ghcr.io/x/app:1.0.0", "the image stays charts/'"
    assert said == [f"[sandbox] Rollout {app.APP_NAME!r} released through its canary analysis (h2)"]
    assert bootstrap.judged_stable(_rollout_for(kube))
    bootstrap.release_through_analysis(kube, settings, said.append)  # type: ignore[arg-type]
    assert len(kube.patches) == 1, "an app already released is left alone"


def test_a_release_whose_analysis_did_not_succeed_fails_the_sandbox() -> None:
    kube = ReleasingKube(phases=("Successful", "Inconclusive"))
    with pytest.raises(SandboxError) as failed:
        bootstrap.release_through_analysis(kube, SandboxSettings(state_dir="/s"), print)  # type: ignore[arg-type]
    assert str(failed.value) == (
        f"sandbox: the release of Rollout {app.APP_NAME!r} went live (stable h2) but its analyses did not all "
        "succeed: {'run-h2-Successful': 'Successful', 'run-h2-Inconclusive': 'Inconclusive'}. Logs: /s/logs"
    )


def test_judged_stable_needs_analysis_of_the_stable_hash_and_an_older_revision() -> None:
    kube = ReleasingKube()
    kube.runs.append(_run("h1", "Successful"))
    assert not bootstrap.judged_stable(_rollout_for(kube)), "one revision: nothing to roll back to"
    kube.sets.append(_replica_set(2, "h2"))
    assert bootstrap.judged_stable(_rollout_for(kube))
    kube.runs.append(_run("h1", "Failed"))
    assert not bootstrap.judged_stable(_rollout_for(kube))
    kube.runs[:] = [_run("h2", "Successful")]
    assert not bootstrap.judged_stable(_rollout_for(kube)), "the analysis of another revision"


def _rollout_for(kube: FakeKube) -> Any:
    from pytest_mnops.rollouts import Rollout

    return Rollout(kube, namespace=bootstrap.APP_NAMESPACE, name=app.APP_NAME)  # type: ignore[arg-type]


def test_wait_ready_waits_for_healthy_and_every_scrape_target(
    http_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [
        (500, None),
        (200, {"data": {"activeTargets": []}}),
        (200, {"data": {"activeTargets": [{"labels": {"job": "app"}, "health": "down", "lastError": "refused"}]}}),
        (200, {"data": {"activeTargets": [{"labels": {"job": "app"}, "health": "up"}]}}),
    ]

    def answer(request: Request) -> tuple[int, Any]:
        assert request.path == "/api/v1/targets"
        return answers.pop(0) if len(answers) > 1 else answers[0]

    http_server.answer = answer
    monkeypatch.setattr(SandboxSettings, "prometheus_url", property(lambda self: http_server.url))
    kube, said = ReleasingKube(), []
    kube.on_wait["rollouts"] = [[kube.rollout]]
    bootstrap.wait_ready(kube, SandboxSettings(state_dir="/s"), said.append)  # type: ignore[arg-type]
    assert said == [f"[sandbox] Rollout {app.APP_NAME!r} Healthy", "[sandbox] Prometheus: every scrape target up"]
    assert len(http_server.requests) == 4


def test_targets_never_up_are_named(http_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    down = {"labels": {"job": "app"}, "health": "down", "lastError": "connection refused"}
    http_server.answer = lambda request: (200, {"data": {"activeTargets": [down, {"labels": {}, "health": "unknown"}]}})
    monkeypatch.setattr(SandboxSettings, "prometheus_url", property(lambda self: http_server.url))
    monkeypatch.setattr(bootstrap, "READY_TIMEOUT_S", 0.1)
    with pytest.raises(SandboxError) as failed:
        bootstrap._wait_targets_up(SandboxSettings(state_dir="/s"))
    assert (
        str(failed.value) == "sandbox: Prometheus targets not up after 0.1s: app (connection refused), None (unknown)"
    )


# -- monitoring configuration ---------------------------------------------------------------------------


def test_prometheus_scrapes_every_component_on_this_sandboxs_ports(tmp_path: Path) -> None:
    settings = SandboxSettings(state_dir=str(tmp_path), port_base=28000)
    config = monitoring_config.prometheus_config(settings)
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "prometheus": ["127.0.0.1:28011"],
        "alertmanager": ["127.0.0.1:28012"],
        "argo-rollouts": ["127.0.0.1:28007"],
        "app": ["127.0.0.1:28013"],
        "kube-apiserver": ["127.0.0.1:28003"],
        "pushgateway": ["127.0.0.1:28017"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:28012"]
    assert config["global"]["scrape_interval"] == "1s"
    (apiserver,) = [j for j in config["scrape_configs"] if j["job_name"] == "kube-apiserver"]
    assert apiserver["scheme"] == "https" and apiserver["tls_config"]["ca_file"].endswith("ca.crt")
    assert [j.get("honor_labels") for j in config["scrape_configs"] if j["job_name"] == "app"] == [True]
    assert config["rule_files"] == [str((tmp_path / "config" / "rules" / "*.yaml").resolve())]


def test_alertmanager_receivers_move_to_this_sandboxs_ports_and_timings_scale(tmp_path: Path) -> None:
    default = Ports(DEFAULT_PORT_BASE)
    shipped = assets.path("monitoring", "alertmanager.yml").read_text()
    assert f"127.0.0.1:{default.receivers}" in shipped and f"127.0.0.1:{default.smtp}" in shipped
    config = monitoring_config.alertmanager_config(SandboxSettings(state_dir=str(tmp_path), port_base=28000))
    text = yaml.safe_dump(config)
    assert f"127.0.0.1:{default.receivers}" not in text and f"127.0.0.1:{default.smtp}" not in text
    assert "127.0.0.1:28014" in text and "127.0.0.1:28015" in text
    assert config["route"]["group_wait"] != yaml.safe_load(shipped)["route"]["group_wait"]


def test_write_puts_all_three_files_in_the_config_dir(tmp_path: Path) -> None:
    settings = SandboxSettings(state_dir=str(tmp_path / "s"))
    monitoring_config.write(settings)
    config = tmp_path / "s" / "config"
    assert yaml.safe_load((config / "prometheus.yml").read_text()) == monitoring_config.prometheus_config(settings)
    assert yaml.safe_load((config / "alertmanager.yml").read_text()) == monitoring_config.alertmanager_config(settings)
    assert (config / "rules" / "prometheus-alerts.yaml").is_file()


# -- the drills' RBAC ------------------------------------------------------------------------------------------


def test_role_rules_group_the_missing_verbs_per_resource() -> None:
    missing = [
        Permission("list", "", "pods"),
        Permission("watch", "", "pods"),
        Permission("patch", "argoproj.io", "rollouts/status"),
    ]
    assert role_rules(missing) == (
        '- apiGroups: [""]\n  resources: ["pods"]\n  verbs: ["list", "watch"]\n'
        '- apiGroups: ["argoproj.io"]\n  resources: ["rollouts/status"]\n  verbs: ["patch"]'
    )
    assert [p.describe() for p in missing] == ["list pods", "watch pods", "patch rollouts/status.argoproj.io"]
    assert (missing[2].plural, missing[2].subresource, missing[0].subresource) == ("rollouts", "status", "")


def test_audit_events_read_as_role_rule_keys() -> None:
    status = {
        "verb": "patch",
        "objectRef": {"apiGroup": "argoproj.io", "resource": "rollouts", "subresource": "status"},
    }
    assert from_audit_event(status) == ("patch", "argoproj.io", "rollouts/status")
    assert from_audit_event({"verb": "list", "objectRef": {"resource": "pods"}}) == ("list", "", "pods")
    assert from_audit_event({"verb": "get"}) == ("get", "", "")


def test_every_wait_on_the_rollout_is_covered_list_and_watch() -> None:
    keys = {p.key for p in DRILL_PERMISSIONS}
    assert {("list", "argoproj.io", "rollouts"), ("watch", "argoproj.io", "rollouts")} <= keys
    assert len(keys) == len(DRILL_PERMISSIONS) and all(p.needed_by for p in DRILL_PERMISSIONS)
    assert resources.ROLLOUT.group == "argoproj.io"
