"""Shared fixtures of the validation suite, and the category markers that make ``-m`` selection work.

The checks are properties every canary system should have, checked on *your* Rollout, rule files and
Alertmanager (--mnops-app, --mnops-rule-files, ...). ``--mnops-expect=reference`` adds the reference app's exact
numbers (its canary weights, thresholds, rules and receivers) as an opt-in expectation set.

Every check carries ``@pytest.mark.validation(category, reads=...)``. pytest's ``-m`` cannot select on a
marker's arguments, so each check also gets a marker named after its category, added at collection:

    pytest suites/validation -m "validation and monitoring" --mnops-sandbox

A check that cannot apply to the target (the cluster lacks the feature it checks) is reported as skipped
with "not applicable: <reason>" through :func:`not_applicable`, the suite's only way to skip. A server that
does not answer is never "not applicable": it is a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_mnops import CATEGORIES

if TYPE_CHECKING:
    from pytest_mnops import Kube, Rollout, Target

Obj = dict[str, Any]
ARGO_ROLLOUTS_CRDS = ("rollouts.argoproj.io", "analysistemplates.argoproj.io", "analysisruns.argoproj.io")
NOT_APPLICABLE = "not applicable: "


def not_applicable(reason: str) -> NoReturn:
    """Report the running check as not applicable to this target, saying why. The suite's only skip.

    The report points at the check (not at this helper), as a skip marker's would.
    """
    raise pytest.skip.Exception(NOT_APPLICABLE + reason, _use_item_location=True)


# -- category markers ------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    for category in CATEGORIES:
        config.addinivalue_line(
            "markers",
            f"{category}: validation checks of category {category!r}, added "
            f"from @pytest.mark.validation({category!r}); select them with "
            f'-m "validation and {category}"',
        )


def _category(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("validation")
    if marker is None:
        return None
    category = marker.args[0] if marker.args else marker.kwargs.get("category")
    # An invalid category is reported by the plugin's marker validation; just do not guess here.
    return category if category in CATEGORIES else None


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m deselection reads the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        category = _category(item)
        if category is not None and item.get_closest_marker(category) is None:
            item.add_marker(getattr(pytest.mark, category))


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(name="not_applicable", scope="session")
def not_applicable_fixture() -> Any:
    """:func:`not_applicable`, for checks (fixtures cannot be imported from a conftest reliably)."""
    return not_applicable


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Where the repo checks read the reference app's assets: ``$MNOPS_ASSETS_DIR``, this package's checkout,
    or the copy an installed wheel carries."""
    from pytest_mnops import assets

    return assets.root()


@pytest.fixture(scope="session")
def expect_reference(request: pytest.FixtureRequest, mnops_target: Target) -> bool:
    """Also hold the target to the reference app's exact numbers: ``--mnops-expect=reference``, or else the app
    profile's ``expect: reference`` (the reference app's own profile says so)."""
    from pytest_mnops import option, profile

    given = option(request.config, "expect")
    return (
        given or profile.expectation_set(profile.profile_file(mnops_target, option(request.config, "profile")))
    ) == "reference"


def _files(request: pytest.FixtureRequest, name: str) -> list[Path]:
    from pytest_mnops import option

    base = request.config.invocation_params.dir
    files = [base / file for file in option(request.config, name)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        pytest.fail(f"--mnops-{name}: no such file {', '.join(missing)}. Fix: correct the path.", pytrace=False)
    return files


@pytest.fixture(scope="session")
def rule_files(request: pytest.FixtureRequest) -> list[Path]:
    """Your Prometheus rule files (--mnops-rule-files), else the reference app's monitoring/prometheus-alerts.yaml."""
    from pytest_mnops.observability.rules import reference_rules

    return _files(request, "rule-files") or [reference_rules()]


@pytest.fixture(scope="session")
def rule_tests(request: pytest.FixtureRequest, repo_root: Path) -> list[Path]:
    """Your promtool unit tests (--mnops-rule-tests), else the reference app's monitoring/tests/*.yaml."""
    return _files(request, "rule-tests") or sorted((repo_root / "monitoring" / "tests").glob("*.yaml"))


@pytest.fixture(scope="session")
def argo_rollouts(k8s: Kube) -> None:
    """Checks of the Rollout need Argo Rollouts; on a cluster without its CRDs they are not applicable."""
    from pytest_mnops import resources

    missing = [name for name in ARGO_ROLLOUTS_CRDS if k8s.find(resources.CRD, name) is None]
    if missing:
        not_applicable(
            f"the cluster at {k8s.host} has no Argo Rollouts (CRD {', '.join(missing)} not "
            "installed); the infrastructure check of the CRDs reports it as the failure"
        )


@pytest.fixture
def rollout_obj(rollout: Rollout, argo_rollouts: None) -> Obj:
    """The Rollout under test as the API serves it (fails, naming it and the fix, when it does not exist)."""
    return rollout.get()


@pytest.fixture
def pod_template(k8s: Kube, rollout_obj: Obj) -> Obj:
    """The Rollout's pod template: ``spec.template``, or that of the Deployment its workloadRef names."""
    from pytest_mnops import resources

    spec = rollout_obj["spec"]
    if spec.get("template"):
        return spec["template"]
    ref = spec.get("workloadRef") or {}
    namespace = rollout_obj["metadata"]["namespace"]
    if ref.get("kind") == "Deployment" and ref.get("name"):
        return k8s.get(resources.DEPLOYMENT, ref["name"], namespace=namespace)["spec"]["template"]
    pytest.fail(
        f"Rollout {namespace}/{rollout_obj['metadata']['name']} has neither spec.template nor a "
        "workloadRef to a Deployment. Fix: give it a pod template (spec.template) or a "
        "workloadRef to the Deployment that has one."
    )


@pytest.fixture
def app_pods(k8s: Kube, rollout_obj: Obj) -> list[Obj]:
    """The pods the Rollout's selector selects."""
    from pytest_mnops import resources

    selector = rollout_obj["spec"]["selector"].get("matchLabels") or {}
    label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
    pods, _ = k8s.list(resources.POD, namespace=rollout_obj["metadata"]["namespace"], label_selector=label_selector)
    return pods
