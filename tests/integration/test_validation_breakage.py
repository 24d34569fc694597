"""Each validation category broken on purpose: the check must FAIL, its message naming the object and the fix.

Everything here runs against a sandbox of its own (own_sandbox, tests/integration/conftest.py), never the
shared one: probes are removed from the Rollout, rules from Prometheus, verbs from an identity. The suite runs
in-process through ``pytester`` from a copy of suites/validation, pointed at the sandbox with explicit
--mnops-* options. Every break is undone in a ``finally``, and each test then runs the same check again and
requires it to pass: a check that always fails would prove nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube, Resource, resources
from pytest_mnops.names import SANDBOX_CONTEXT
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.observability.rules import RULES_FILE, reload_prometheus
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.pki import Pki
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import run_validation

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.own_sandbox("validation")

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "validation"
NAMESPACE, APP = "default", "machine-native-ops"
GITHUB_REPO = "machinenativeops/machine-native-ops"
ASSET_DIRS = ("charts", "monitoring", "scenarios", "docs")
RESTRICTED = "mnops-validation-restricted"
BREAKAGE_ALERT = "MnopsValidationBreakage"
WAIT_S = 120


@pytest.fixture(scope="module")
def healthy(kube: Kube) -> Rollout:
    """The sandbox's Rollout, Healthy on its stable revision before any test breaks something."""
    rollout = Rollout(kube, namespace=NAMESPACE, name=APP)
    rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=WAIT_S)
    return rollout


KEEP_ENV = ("MNOPS_ASSETS_DIR", "MNOPS_CACHE_DIR", "MNOPS_SANDBOX_BIN", "MNOPS_GITHUB_TOKEN")


@pytest.fixture
def run_check(
    pytester: pytest.Pytester, sandbox: SandboxSettings, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., pytest.RunResult]:
    """Run checks of a fresh copy of suites/validation in-process against the validation sandbox."""
    shutil.copytree(SUITE, pytester.path / "validation", ignore=shutil.ignore_patterns("__pycache__"))
    # Only the options below choose the target: e.g. an exported MNOPS_SANDBOX=1 must not make the inner run
    # reach for (or start) a sandbox of its own.
    for name in [n for n in os.environ if n.startswith("MNOPS_") and n not in KEEP_ENV]:
        monkeypatch.delenv(name)
    ledger = pytester.path / "ledger.jsonl"

    def run(*node_ids: str, **options: str) -> pytest.RunResult:
        settings = {
            "kubeconfig": str(sandbox.layout.kubeconfig),
            "context": SANDBOX_CONTEXT,
            "namespace": NAMESPACE,
            "app": APP,
            "prometheus-url": sandbox.prometheus_url,
            "alertmanager-url": sandbox.alertmanager_url,
            "receivers-url": sandbox.receivers_url,
            "github-url": sandbox.github_url,
            "github-repo": GITHUB_REPO,
            "time-scale": str(sandbox.time_scale),
            "ledger": str(ledger),
            **options,
        }
        # The outer session imported pytest_mnops already: the inner one cannot assert-rewrite it, fine.
        args = ["-p", "no:cacheprovider", "--strict-markers", "-rA", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
        args += [f"--mnops-{name}={value}" for name, value in settings.items()]
        return pytester.runpytest(*args, *(f"validation/{node}" for node in node_ids))

    return run


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str()


def _assert_failed_with(result: pytest.RunResult, *fragments: str) -> None:
    out = _output(result)
    result.assert_outcomes(failed=1)
    missing = [f for f in fragments if f not in out]
    assert not missing, f"the failure message lacks {missing}:\n{out}"


# -- infrastructure ------------------------------------------------------------------------------------------

ROLE = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLE_BINDING = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
ROLE_RULES_WITHOUT = [  # everything the drills need except `delete pods`, `watch rollouts`, `patch rollouts/status`
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "patch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["analysisruns"], "verbs": ["list", "watch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["analysistemplates"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "patch", "create"]},
    {"apiGroups": ["chaos-mesh.org"], "resources": ["networkchaos", "stresschaos"], "verbs": ["create", "delete"]},
]


def _token(kube: Kube, account: str) -> str:
    # TokenRequest is the serviceaccounts/token subresource: a Resource addressing it builds its URL.
    token_request = Resource("", "v1", f"serviceaccounts/{account}/token", "TokenRequest")
    review = kube.create(
        token_request,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}},
        namespace=NAMESPACE,
    )
    return review["status"]["token"]


def test_the_healthy_sandbox_has_every_check_applicable_and_passing(sandbox: SandboxSettings, tmp_path: Path) -> None:
    """First in the module, on the sandbox as it came up: the reference app released through its analysis (two
    revisions, the stable one judged), its profile asking for the reference numbers. No check may be "not
    applicable" there: a green run that skipped a check would have checked nothing."""
    outcomes, out = run_validation(sandbox, tmp_path, NAMESPACE)
    assert len(outcomes) >= 25, out
    assert {name: kind for name, (kind, _) in outcomes.items() if kind != "passed"} == {}, out


def _token_kubeconfig(path: Path, sandbox: SandboxSettings, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": RESTRICTED,
                "clusters": [
                    {
                        "name": "sandbox",
                        "cluster": {
                            "server": f"https://127.0.0.1:{sandbox.ports.apiserver}",
                            "certificate-authority": str(Pki(sandbox.layout.pki).ca_cert.resolve()),
                        },
                    }
                ],
                "users": [{"name": RESTRICTED, "user": {"token": token}}],
                "contexts": [
                    {"name": RESTRICTED, "context": {"cluster": "sandbox", "user": RESTRICTED, "namespace": NAMESPACE}}
                ],
            }
        )
    )
    return path


def test_infrastructure_rbac_names_missing_verbs_and_role_rule(
    run_check: Callable[..., pytest.RunResult], kube: Kube, sandbox: SandboxSettings, tmp_path: Path
) -> None:
    meta = {"name": RESTRICTED, "namespace": NAMESPACE}
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": ROLE_RULES_WITHOUT},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RESTRICTED},
            "subjects": [{"kind": "ServiceAccount", "name": RESTRICTED, "namespace": NAMESPACE}],
        },
    ]
    try:
        for obj in objects:
            kube.apply(obj)
        config = _token_kubeconfig(tmp_path / "restricted.kubeconfig", sandbox, _token(kube, RESTRICTED))
        as_restricted = {"kubeconfig": str(config), "context": RESTRICTED}
        check = "test_infrastructure.py::test_rbac_allows_drill_verbs"

        result = run_check(check, **as_restricted)
        _assert_failed_with(
            result,
            f"system:serviceaccount:{NAMESPACE}:{RESTRICTED} may not",
            "delete pods (needed by drill pod-failure",
            "watch rollouts.argoproj.io (needed by every wait on the Rollout",
            "patch rollouts/status.argoproj.io",
            f"Fix: add these rules to a Role in namespace {NAMESPACE}",
            '- apiGroups: [""]\n  resources: ["pods"]\n  verbs: ["delete"]',
            '- apiGroups: ["argoproj.io"]\n  resources: ["rollouts"]\n  verbs: ["watch"]',
            '- apiGroups: ["argoproj.io"]\n  resources: ["rollouts/status"]\n  verbs: ["patch"]',
        )
        output = _output(result)
        assert "list pods" not in output and "list rollouts" not in output, "granted verbs reported"

        # The fix the message gives, applied as given, makes the check pass.
        objects[1]["rules"] = [
            *ROLE_RULES_WITHOUT,
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
            {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["watch"]},
            {"apiGroups": ["argoproj.io"], "resources": ["rollouts/status"], "verbs": ["patch"]},
        ]
        kube.apply(objects[1])
        run_check(check, **as_restricted).assert_outcomes(passed=1)
    finally:
        for kind in (ROLE_BINDING, ROLE, resources.SERVICE_ACCOUNT):
            kube.delete(kind, RESTRICTED, namespace=NAMESPACE)


# -- deployment ----------------------------------------------------------------------------------------------


def test_deployment_missing_readiness_probe_is_named(
    run_check: Callable[..., pytest.RunResult], kube: Kube, healthy: Rollout
) -> None:
    container = healthy.get()["spec"]["template"]["spec"]["containers"][0]
    path = "/spec/template/spec/containers/0/readinessProbe"
    check = "test_deployment.py::test_containers_have_probes"

    def patch(operation: dict[str, object]) -> None:
        kube.patch(resources.ROLLOUT, APP, [operation], namespace=NAMESPACE, patch_type="json")

    patch({"op": "remove", "path": path})
    try:
        _assert_failed_with(
            run_check(check),
            f"Rollout {NAMESPACE}/{APP}",
            f"container {container['name']!r} has no readinessProbe",
            f"Fix: add them to the container in spec.template of Rollout {NAMESPACE}/{APP}",
        )
    finally:
        # The template is the stable one again: Argo Rollouts drops the canary it started, no analysis.
        patch({"op": "add", "path": path, "value": container["readinessProbe"]})
        healthy.wait_for(phase="Healthy", stable_is_current=True, timeout_s=WAIT_S)
    run_check(check).assert_outcomes(passed=1)


# -- rollouts ------------------------------------------------------------------------------------------------


def test_rollouts_loosened_analysis_threshold_is_named(
    run_check: Callable[..., pytest.RunResult], kube: Kube, healthy: Rollout
) -> None:
    template = kube.get(resources.ANALYSIS_TEMPLATE, "success-rate", namespace=NAMESPACE)
    metrics = template["spec"]["metrics"]
    loosened = [
        dict(
            m,
            successCondition=m["successCondition"].replace(">= 0.95", ">= 0.90"),
            failureCondition=m["failureCondition"].replace("< 0.95", "< 0.90"),
        )
        for m in metrics
    ]
    assert loosened != metrics, "the sandbox's success-rate template no longer compares with 0.95"
    check = "test_rollouts.py::test_cluster_analysis_templates_and_thresholds"
    kube.patch(resources.ANALYSIS_TEMPLATE, "success-rate", {"spec": {"metrics": loosened}}, namespace=NAMESPACE)
    try:
        # The reference thresholds are an opt-in expectation set; without it a looser threshold is no finding.
        run_check(check).assert_outcomes(skipped=1)
        _assert_failed_with(
            run_check(check, expect="reference"),
            f"AnalysisTemplate {NAMESPACE}/success-rate",
            "successCondition is result[0] >= 0.9, expected result[0] >= 0.95",
            "failureCondition is result[0] < 0.90, expected result[0] < 0.95",
            "Fix: re-apply charts/",
        )
    finally:
        kube.patch(resources.ANALYSIS_TEMPLATE, "success-rate", {"spec": {"metrics": metrics}}, namespace=NAMESPACE)
    run_check(check, expect="reference").assert_outcomes(passed=1)


def test_rollouts_missing_analysis_template_is_named(
    run_check: Callable[..., pytest.RunResult], kube: Kube, healthy: Rollout
) -> None:
    """A property every canary needs: the templates it references exist (here: the user's Rollout's own)."""
    template = kube.get(resources.ANALYSIS_TEMPLATE, "error-rate", namespace=NAMESPACE)
    check = "test_rollouts.py::test_analysis_templates_exist_and_providers_answer"
    kube.delete(resources.ANALYSIS_TEMPLATE, "error-rate", namespace=NAMESPACE)
    try:
        _assert_failed_with(
            run_check(check),
            f"Rollout {NAMESPACE}/{APP}: AnalysisTemplate {NAMESPACE}/error-rate (background analysis) does not exist",
            "Fix: create or correct the named template",
        )
    finally:
        kept = {
            k: template["metadata"][k]
            for k in ("name", "namespace", "labels", "annotations")
            if k in template["metadata"]
        }
        kube.create(resources.ANALYSIS_TEMPLATE, {**template, "metadata": kept}, namespace=NAMESPACE)
        healthy.wait_for(phase="Healthy", stable_is_current=True, timeout_s=WAIT_S)
    run_check(check).assert_outcomes(passed=1)


def test_rollouts_stable_revision_judged_failed_is_named(
    run_check: Callable[..., pytest.RunResult], kube: Kube, healthy: Rollout
) -> None:
    """A stable revision serving although its analysis Failed (someone promoted past it) must fail.

    The AnalysisRun is written as the controller leaves a finished one (AnalysisRuns have no status
    subresource): Failed, labelled with the stable pod-template hash, owned by the Rollout but not controlled
    by it, so Argo Rollouts neither re-runs nor collects it.
    """
    obj = healthy.get()
    stable = obj["status"]["stableRS"]
    name = "machine-native-ops-validation-breakage"
    message = 'Metric "success-rate" assessed Failed due to failed (2) > failureLimit (1)'
    labels = {"app": APP, "rollouts-pod-template-hash": stable, "rollout-type": "Background"}
    owner = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": APP, "uid": obj["metadata"]["uid"]}
    run = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": labels,
            "ownerReferences": [owner],
            "annotations": {"rollout.argoproj.io/revision": "1"},
        },
        "spec": {
            "metrics": [
                {
                    "name": "success-rate",
                    "successCondition": "result[0] >= 0.95",
                    "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "vector(1)"}},
                }
            ]
        },
        "status": {
            "phase": "Failed",
            "message": message,
            "metricResults": [{"name": "success-rate", "phase": "Failed", "count": 2, "failed": 2, "message": message}],
        },
    }
    check = "test_rollouts.py::test_stable_revision_analysis_not_failed"
    kube.create(resources.ANALYSIS_RUN, run, namespace=NAMESPACE)
    try:
        _assert_failed_with(
            run_check(check),
            f"the stable revision ({stable}) of Rollout {NAMESPACE}/{APP}",
            f"AnalysisRun {NAMESPACE}/{name} (revision 1) Failed: success-rate: Failed",
            "Fix: roll back to the last revision whose analysis succeeded",
        )
    finally:
        kube.delete(resources.ANALYSIS_RUN, name, namespace=NAMESPACE)
    # Without it the stable revision is the sandbox's release, which went live through its passing analyses.
    run_check(check).assert_outcomes(passed=1)


@pytest.fixture
def assets_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's assets that MNOPS_ASSETS_DIR points the checks at."""
    root = tmp_path / "repo"
    for name in ASSET_DIRS:
        shutil.copytree(ROOT / name, root / name)
    monkeypatch.setenv("MNOPS_ASSETS_DIR", str(root))
    return root


def test_rollouts_chart_rejected_by_server_dry_run_is_named(
    run_check: Callable[..., pytest.RunResult], assets_copy: Path, healthy: Rollout
) -> None:
    chart = assets_copy / "charts" / "argo-rollout.yaml"
    text = chart.read_text()
    assert "\n  replicas: 10\n" in text
    chart.write_text(text.replace("\n  replicas: 10\n", '\n  replicas: "ten"\n'))
    check = "test_rollouts.py::test_charts_pass_server_side_dry_run"
    _assert_failed_with(
        run_check(check),
        f"charts/argo-rollout.yaml: Rollout {NAMESPACE}/{APP}",
        "spec.replicas",
        "Fix: correct the named manifest",
    )
    chart.write_text(text)
    run_check(check).assert_outcomes(passed=1)
    assert healthy.get()["spec"]["replicas"] != "ten"  # a dry run, so nothing reached the cluster


# -- monitoring ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _rules_changed(sandbox: SandboxSettings, file: str, content: str | None) -> Iterator[None]:
    """Replace (content) or delete (None) one of the sandbox Prometheus' rule files; put it back after."""
    path = sandbox.layout.config / "rules" / file
    saved = path.read_text() if path.exists() else None
    try:
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(content)
        reload_prometheus(sandbox.prometheus_url)
        yield
    finally:
        if saved is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(saved)
        reload_prometheus(sandbox.prometheus_url)


def test_monitoring_unloaded_alert_rule_is_named(
    run_check: Callable[..., pytest.RunResult], sandbox: SandboxSettings
) -> None:
    loaded = yaml.safe_load((sandbox.layout.config / "rules" / RULES_FILE).read_text())
    for group in loaded["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") != "HighErrorRate"]
    check = "test_monitoring.py::test_alert_rules_loaded_and_healthy"
    with _rules_changed(sandbox, RULES_FILE, yaml.safe_dump(loaded, sort_keys=False)):
        _assert_failed_with(
            run_check(check),
            f"Prometheus {sandbox.prometheus_url}",
            f"alert rule(s) of monitoring/{RULES_FILE} are not loaded: HighErrorRate",
            f"fix: add the file to Prometheus' rule_files and reload: `curl -X POST {sandbox.prometheus_url}/-/reload`",
        )
    run_check(check).assert_outcomes(passed=1)


def test_monitoring_alert_firing_at_rest_is_named(
    run_check: Callable[..., pytest.RunResult], sandbox: SandboxSettings
) -> None:
    rule = {
        "groups": [
            {
                "name": "validation-breakage",
                "rules": [
                    {
                        "alert": BREAKAGE_ALERT,
                        "expr": "vector(1)",
                        "for": "0s",
                        "labels": {"severity": "warning", "namespace": NAMESPACE},
                    }
                ],
            }
        ]
    }
    alerts = Alerts(Prometheus(sandbox.prometheus_url), alertmanager_url=sandbox.alertmanager_url)
    check = "test_monitoring.py::test_no_alert_firing_at_rest"
    try:
        with _rules_changed(sandbox, "zz-validation-breakage.yaml", yaml.safe_dump(rule)):
            alerts.wait_for(BREAKAGE_ALERT, "firing", within=30)
            _assert_failed_with(
                run_check(check),
                "alerts firing at rest on",
                f"{BREAKAGE_ALERT} {{alertname={BREAKAGE_ALERT}, namespace={NAMESPACE}, severity=warning}}",
                "Fix: follow each alert's runbook",
            )
    finally:
        alerts.wait_for(BREAKAGE_ALERT, "resolved", within=30)
    run_check(check).assert_outcomes(passed=1)


# -- automation ----------------------------------------------------------------------------------------------


def test_automation_unreverted_fault_in_ledger_is_named(
    run_check: Callable[..., pytest.RunResult], tmp_path: Path
) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    entry = ledger.record_injection(
        scenario="pod-failure",
        test="test_pod_failure",
        configuration={"namespace": NAMESPACE},
        rollbacks=[{"name": "wait-for-replacements"}],
    )
    check = "test_automation.py::test_fault_ledger_empty"
    _assert_failed_with(
        run_check(check, ledger=str(ledger.path)),
        f"fault ledger {ledger.path}: 1 injected fault(s) were never reverted",
        f"pod-failure in namespace {NAMESPACE}",
        "wait-for-replacements",
        "Fix: once no drill runs, `mnops recover`",
    )
    ledger.record_reverted(entry.id, how="test")
    run_check(check, ledger=str(ledger.path)).assert_outcomes(passed=1)


# -- documentation -------------------------------------------------------------------------------------------


def test_documentation_missing_runbook_anchor_is_named(
    run_check: Callable[..., pytest.RunResult], assets_copy: Path
) -> None:
    runbooks = assets_copy / "docs" / "runbooks.md"
    text = runbooks.read_text()
    assert "\n## HighErrorRate\n" in text
    runbooks.write_text(text.replace("\n## HighErrorRate\n", "\n## High error rate (5xx)\n"))
    check = "test_documentation.py::test_runbook_urls_resolve"
    _assert_failed_with(
        run_check(check),
        "monitoring/prometheus-alerts.yaml: alert HighErrorRate",
        "docs/runbooks.md has no heading with anchor #higherrorrate",
        "(add the section `## HighErrorRate`)",
        "Fix: keep one section per alert",
    )
    runbooks.write_text(text)
    run_check(check).assert_outcomes(passed=1)


README_BLOCK = """# pytest-mnops

<!-- mnops:commands -->
```bash
pytest suites/validation -m validation --mnops-sandbox --junitxml=validation.xml
pytest suites/drills --mnops-sandbox \\
    --junitxml=drills.xml
```
<!-- /mnops:commands -->
"""


def test_documentation_readme_command_not_in_ci_is_named(
    run_check: Callable[..., pytest.RunResult], assets_copy: Path
) -> None:
    (assets_copy / "README.md").write_text(README_BLOCK)
    (assets_copy / ".ci").mkdir()
    script = assets_copy / ".ci" / "run"
    script.write_text(
        "#!/bin/sh\nset -eu\n"
        "pytest suites/validation -m validation --mnops-sandbox --junitxml=validation.xml\n"
        "pytest suites/drills --mnops-sandbox --junitxml=drill.xml\n"
    )
    check = "test_documentation.py::test_readme_commands_are_what_ci_runs"
    _assert_failed_with(
        run_check(check),
        "README.md: command(s) `pytest suites/drills --mnops-sandbox --junitxml=drills.xml`",
        "do not appear in .ci/run",
        "Fix: make them identical",
    )
    script.write_text(script.read_text().replace("drill.xml", "drills.xml"))
    run_check(check).assert_outcomes(passed=1)


def test_every_category_has_a_breakage_test() -> None:
    from pytest_mnops.drills import CATEGORIES

    names = [name for name in globals() if name.startswith("test_")]
    assert all(any(name.startswith(f"test_{c}_") for name in names) for c in CATEGORIES), json.dumps(names)
