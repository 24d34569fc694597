"""Scenario files: every shipped one loads and validates; a malformed copy names file, field and fix."""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mnops import assets
from pytest_mnops.chaos import scenarios
from pytest_mnops.drills import DRILLS
from pytest_mnops.errors import ConfigError, ScenarioError

SHIPPED = sorted(assets.path("scenarios").glob("*.yaml"))
BASE = "pod-failure"  # method[0] is a background probe, method[1] the injecting action


def test_every_drill_has_a_scenario() -> None:
    assert sorted(p.stem for p in SHIPPED) == sorted(DRILLS)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_loads_and_validates(path: Path) -> None:
    scenario = scenarios.load(str(path))
    assert scenario.name == path.stem
    assert path.stem in scenario.experiment["tags"]
    assert "inject" in scenario.phases.values()
    assert set(scenario.phases) <= {a["name"] for a in scenario.activities()}
    assert scenario.experiment["rollbacks"], "a drill must revert what it injects"
    # by name, the same file is found through the assets directory
    assert scenarios.load(path.stem).experiment == scenario.experiment


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_python_providers_resolve(path: Path) -> None:
    """Validation checks that a provider's module imports; here every func must also exist in it."""
    experiment = scenarios.load(str(path)).experiment
    activities = [
        *(experiment["steady-state-hypothesis"].get("probes") or []),
        *experiment["method"],
        *experiment["rollbacks"],
    ]
    training = scenarios._extension(experiment).get("training", {})
    providers = [a["provider"] for a in activities] + list(training.values())
    for provider in providers:
        if provider["type"] == "python":
            module = importlib.import_module(provider["module"])
            assert callable(getattr(module, provider["func"], None)), f"{path.name}: {provider}"
    assert set(training) <= {a["name"] for a in experiment["method"]}


def test_with_configuration_fills_values_and_swaps_training_providers() -> None:
    scenario = scenarios.load("emergency-rollback")
    swaps = scenarios._extension(scenario.experiment)["training"]
    name = next(iter(swaps))
    plain = scenario.with_configuration({"namespace": "drills", "app": "demo"})
    trained = scenario.with_configuration({"namespace": "drills"}, training=True)
    assert plain["configuration"]["namespace"] == "drills" and plain["configuration"]["app"] == "demo"
    by_name = {a["name"]: a for a in trained["method"]}
    assert by_name[name]["provider"] == swaps[name]
    assert {a["name"]: a for a in plain["method"]}[name]["provider"] != swaps[name]
    # the loaded scenario itself is never modified
    assert "namespace" not in scenario.experiment["configuration"]
    assert {a["name"]: a for a in scenario.experiment["method"]}[name]["provider"] != swaps[name]


def test_kill_percent_is_configuration_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = scenarios.load("pod-failure")
    monkeypatch.delenv("MNOPS_KILL_PERCENT", raising=False)
    assert scenario.configuration_values()["kill_percent"] == 30
    monkeypatch.setenv("MNOPS_KILL_PERCENT", "10")
    values = scenario.configuration_values()
    assert values["kill_percent"] == 10  # typed as chaoslib types it (env_var_type: int)
    assert values["time_scale"] == 1 and "app" not in values  # the target is the runner's, never a default
    # the blast radius, the kill and the expected replacements all read the same value
    by_name = {a["name"]: a["provider"]["arguments"] for a in scenario.activities()}
    assert scenario.blast["percent"] == by_name["terminate-app-pods"]["qty"] == "${kill_percent}"
    assert by_name["watch-replacements"]["kill_percent"] == "${kill_percent}"


def test_a_kill_percent_that_is_no_number_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNOPS_KILL_PERCENT", "ten")
    with pytest.raises(ScenarioError) as info:
        scenarios.load("pod-failure").configuration_values()
    assert str(info.value).endswith(
        "pod-failure.yaml: configuration.kill_percent: $MNOPS_KILL_PERCENT='ten' is not int. "
        "Fix: set MNOPS_KILL_PERCENT to a number, or unset it for the default 30"
    )


def test_unknown_scenario_name_lists_where_it_looked_and_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        scenarios.load("nope", search=[tmp_path])
    message = str(info.value)
    assert message.startswith(f"scenario 'nope' not found: looked for nope.yaml, .yml and .json in {tmp_path}, ")
    assert str(assets.path("scenarios")) in message and "Known scenarios: canary-failure," in message
    assert (
        "Fix: correct the name, pass the file's path, or add its directory to the ini key mnops_scenarios." in message
    )


def test_a_name_is_found_in_the_user_directories_before_the_built_in_ones(tmp_path: Path) -> None:
    own = tmp_path / "pod-failure.json"
    own.write_text(json.dumps(_base()))
    assert scenarios.load("pod-failure", search=[tmp_path]).path == own
    assert scenarios.load("pod-failure").path == assets.path("scenarios", "pod-failure.yaml")


def test_a_relative_path_is_found_next_to_the_test_file_or_in_the_rootdir(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "chaos").mkdir()
    (tmp_path / "chaos" / "kill.yaml").write_text(yaml.safe_dump(_base()))
    found = scenarios.load("chaos/kill.yaml", relative_to=[tmp_path / "tests", tmp_path])
    assert found.path == tmp_path / "chaos" / "kill.yaml" and found.name == "kill"
    with pytest.raises(ScenarioError) as info:
        scenarios.load("chaos/gone.yaml", relative_to=[tmp_path / "tests", tmp_path])
    assert f"looked at {tmp_path}/tests/chaos/gone.yaml, {tmp_path}/chaos/gone.yaml" in str(info.value)


PUBLIC = {
    "title": "Terminate a pod",
    "description": "a community experiment: no rollbacks, no extension",
    "configuration": {"ns": {"type": "env", "key": "NS"}},
    "method": [
        {
            "type": "action",
            "name": "terminate-pod",
            "provider": {"type": "python", "module": "chaosk8s.pod.actions", "func": "terminate_pods"},
        },
        {
            "type": "probe",
            "name": "count",
            "provider": {"type": "python", "module": "chaosk8s.pod.probes", "func": "count_pods"},
        },
    ],
}


def test_a_public_experiment_loads_as_it_is_with_its_phases_inferred(tmp_path: Path) -> None:
    path = tmp_path / "terminate.json"
    path.write_text(json.dumps(PUBLIC))
    scenario = scenarios.load(str(path))
    assert scenario.inferred and scenario.phases == {"terminate-pod": "inject"}
    assert scenario.rollbacks == [] and scenario.hypothesis is None and scenario.blast == {}


# -- malformed copies ------------------------------------------------------------------------------


def _base() -> dict[str, Any]:
    return copy.deepcopy(scenarios.load(BASE).experiment)


def _method(exp: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in exp["method"] if a["name"] == name)


def _phases(exp: dict[str, Any]) -> dict[str, str]:
    return scenarios._extension(exp)["phases"]


def _drop_method(exp: dict[str, Any]) -> None:
    del exp["method"]


def _unknown_phase(exp: dict[str, Any]) -> None:
    _phases(exp)["watch-replacements"] = "exploded"


def _no_provider(exp: dict[str, Any]) -> None:
    del exp["method"][1]["provider"]


def _unimportable(exp: dict[str, Any]) -> None:
    exp["method"][1]["provider"]["module"] = "chaosk8s.no_such_module.actions"


def _uninstalled_extension(exp: dict[str, Any]) -> None:
    exp["method"][1]["provider"]["module"] = "chaosnowhere.pod.actions"


def _function_in_module_path(exp: dict[str, Any]) -> None:
    # a common typo: the function written into the module path (``chaosk8s.pod.actions`` is not a package)
    exp["method"][1]["provider"]["module"] = "chaosk8s.pod.actions.terminate_pods"


def _duplicate_names(exp: dict[str, Any]) -> None:
    exp["method"][1]["name"] = exp["method"][0]["name"]


def _no_tolerance(exp: dict[str, Any]) -> None:
    del exp["steady-state-hypothesis"]["probes"][1]["tolerance"]


def _rollback_without_provider(exp: dict[str, Any]) -> None:
    del exp["rollbacks"][0]["provider"]


def _rollbacks_not_a_list(exp: dict[str, Any]) -> None:
    exp["rollbacks"] = {"type": "action"}


def _bad_activity_type(exp: dict[str, Any]) -> None:
    exp["method"][1]["type"] = "actoin"


def _nameless(exp: dict[str, Any]) -> None:
    exp["method"][0]["name"] = ""


def _python_provider_without_func(exp: dict[str, Any]) -> None:
    del exp["method"][1]["provider"]["func"]


def _arguments_not_mapping(exp: dict[str, Any]) -> None:
    exp["method"][1]["provider"]["arguments"] = ["app=demo"]


def _empty_method(exp: dict[str, Any]) -> None:
    exp["method"] = []


def _tags_not_a_list(exp: dict[str, Any]) -> None:
    exp["tags"] = "drill"


def _phase_for_unknown_activity(exp: dict[str, Any]) -> None:
    _phases(exp)["no-such-activity"] = "detected"


def _training_phase_for_unknown_activity(exp: dict[str, Any]) -> None:
    scenarios._extension(exp)["training-phases"] = {"no-such-step": "human-step"}


def _no_inject_phase(exp: dict[str, Any]) -> None:
    _phases(exp)["terminate-app-pods"] = "detected"


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("missing-method", _drop_method, "method: missing"),
    ("unknown-phase", _unknown_phase, "extensions[mnops].phases.watch-replacements: unknown phase 'exploded'"),
    ("activity-without-provider", _no_provider, "method[1].provider: is missing"),
    (
        "unimportable-module",
        _unimportable,
        "method[1].provider.module: 'chaosk8s.no_such_module.actions' is not importable",
    ),
    (
        "uninstalled-extension",
        _uninstalled_extension,
        "method[1].provider.module: 'chaosnowhere.pod.actions' is not importable",
    ),
    (
        "function-in-module-path",
        _function_in_module_path,
        "method[1].provider.module: 'chaosk8s.pod.actions.terminate_pods' is not importable",
    ),
    ("duplicate-names", _duplicate_names, "method[1].name: 'watch-replacements' is used twice"),
    ("missing-tolerance", _no_tolerance, "steady-state-hypothesis.probes[1].tolerance: missing"),
    ("rollback-without-provider", _rollback_without_provider, "rollbacks[0].provider: is missing"),
    ("rollbacks-not-a-list", _rollbacks_not_a_list, "rollbacks: must be a list"),
    ("bad-activity-type", _bad_activity_type, "method[1].type: is 'actoin'"),
    ("nameless-activity", _nameless, "method[0].name: is missing"),
    ("provider-without-func", _python_provider_without_func, "method[1].provider: needs module and func"),
    ("arguments-not-a-mapping", _arguments_not_mapping, "method[1].provider.arguments: is not a mapping"),
    ("empty-method", _empty_method, "method: must be a non-empty list"),
    ("tags-not-a-list", _tags_not_a_list, "tags: must be a list"),
    (
        "phase-for-unknown-activity",
        _phase_for_unknown_activity,
        "extensions[mnops].phases.no-such-activity: names no activity of the method",
    ),
    (
        "training-phase-for-unknown-activity",
        _training_phase_for_unknown_activity,
        "extensions[mnops].training-phases.no-such-step: names no activity of the method",
    ),
    ("no-inject-phase", _no_inject_phase, "extensions[mnops].phases: marks no activity as 'inject'"),
]


@pytest.mark.parametrize(("break_it", "expected"), [(b, e) for _, b, e in MALFORMED], ids=[i for i, _, _ in MALFORMED])
def test_malformed_scenario_is_named_with_field_and_fix(
    tmp_path: Path, break_it: Callable[[dict[str, Any]], None], expected: str
) -> None:
    experiment = _base()
    break_it(experiment)
    path = tmp_path / "broken-drill.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        scenarios.load(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message
    assert "Fix: " in message
    assert message.split("Fix: ", 1)[1].strip(), "the fix must say something"


def test_a_valid_copy_outside_the_repo_loads(tmp_path: Path) -> None:
    path = tmp_path / "my-drill.yml"
    path.write_text(yaml.safe_dump(_base()))
    scenario = scenarios.load(str(path))
    assert scenario.name == "my-drill"
    assert scenario.blast == {"selector": "${selector}", "percent": "${kill_percent}"}


def test_a_probe_only_method_needs_no_rollbacks(tmp_path: Path) -> None:
    experiment = _base()
    experiment["method"] = [a for a in experiment["method"] if a["type"] == "probe"]
    _phases(experiment).clear()
    _phases(experiment)["watch-replacements"] = "inject"
    experiment["rollbacks"] = []
    path = tmp_path / "observe-only.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert scenarios.load(str(path)).experiment["rollbacks"] == []


def test_two_documents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(_base()) + "---\n" + yaml.safe_dump(_base()))
    with pytest.raises(ScenarioError, match=r"two\.yaml: expected exactly one YAML document"):
        scenarios.load(str(path))


def test_unparsable_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "torn.yaml"
    path.write_text("title: [unclosed\n")
    with pytest.raises(ConfigError, match=r"(?s)torn\.yaml: cannot be read as YAML: .*Fix:"):
        scenarios.load(str(path))


def test_training_phases_apply_only_in_training_mode() -> None:
    scenario = scenarios.load("canary-failure")
    assert "rollout-aborted" not in scenario.phases_for(training=False)
    assert scenario.phases_for(training=True)["rollout-aborted"] == "human-step"
    assert scenario.phases_for(training=True)["analysis-failed"] == scenario.phases["analysis-failed"]
