"""Load and validate the chaostoolkit experiments in scenarios/; a malformed one is named with its field and fix."""

from __future__ import annotations

import copy
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mnops import assets
from pytest_mnops.errors import ScenarioError
from pytest_mnops.timeline import DETECTED, HUMAN_STEP, INJECT, RECOVERED

REQUIRED = ("title", "description", "tags", "configuration", "steady-state-hypothesis", "method", "rollbacks")
EXTENSION = "mnops"
ACTIVITY_PHASES = (INJECT, DETECTED, RECOVERED, HUMAN_STEP)
# Values the runner fills from the resolved target; a scenario may use them as ${name}.
TARGET_KEYS = (
    "namespace",
    "app",
    "kubeconfig",
    "context",
    "prometheus_url",
    "alertmanager_url",
    "receivers_url",
    "app_url",
    "github_url",
    "github_repo",
    "time_scale",
    "sandbox",
    "sandbox_dir",
)
# chaoslib's ``env_var_type`` names for the numbers a scenario reads from the environment.
ENV_TYPES: dict[str, Callable[[str], Any]] = {"int": int, "integer": int, "float": float, "number": float}


@dataclass(frozen=True)
class Scenario:
    path: Path
    experiment: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def phases(self) -> dict[str, str]:
        """Activity name -> timeline phase, from the experiment's ``mnops`` extension."""
        return dict(_extension(self.experiment).get("phases", {}))

    @property
    def plot(self) -> str | None:
        """The PromQL series the HTML report plots over the drill window."""
        return _extension(self.experiment).get("plot")

    @property
    def blast(self) -> dict[str, Any]:
        return dict(_extension(self.experiment).get("blast", {}))

    def configuration_values(self) -> dict[str, Any]:
        """The scenario's own configuration as chaoslib will resolve it, ``type: env`` entries read now.

        The runner needs these values before chaoslib runs: a blast radius may be ``${kill_percent}``.
        """
        entries = self.experiment.get("configuration") or {}
        return {key: _resolve_entry(self.path, key, entry) for key, entry in entries.items()}

    def with_configuration(self, values: dict[str, Any], *, training: bool = False) -> dict[str, Any]:
        """The experiment to run: configuration filled, human steps swapped for their training providers."""
        experiment = copy.deepcopy(self.experiment)
        experiment.setdefault("configuration", {}).update(values)
        if training:
            swaps = _extension(self.experiment).get("training", {})
            for activity in experiment["method"]:
                if activity["name"] in swaps:
                    activity["provider"] = copy.deepcopy(swaps[activity["name"]])
        return experiment

    def activities(self) -> list[dict[str, Any]]:
        return list(self.experiment["method"])


def _extension(experiment: dict[str, Any]) -> dict[str, Any]:
    return next((e for e in experiment.get("extensions") or [] if e.get("name") == EXTENSION), {})


def _resolve_entry(path: Path, key: str, entry: Any) -> Any:
    if not (isinstance(entry, dict) and entry.get("type") == "env"):
        return entry
    raw = os.environ.get(entry["key"], entry.get("default"))
    convert = ENV_TYPES.get(entry.get("env_var_type", ""))
    if convert is None or raw is None:
        return raw
    try:
        return convert(raw)
    except ValueError:
        raise _fail(
            path,
            f"configuration.{key}",
            f"${entry['key']}={raw!r} is not {entry['env_var_type']}",
            f"set {entry['key']} to a number, or unset it for the default {entry.get('default')!r}",
        ) from None


def scenario_path(name: str) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml", ".json") and candidate.is_file():
        return candidate
    path = assets.path("scenarios", f"{name}.yaml")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in assets.path("scenarios").glob("*.yaml")))
        raise ScenarioError(f"scenario {name!r}: no file {path}. Known scenarios: {known}.")
    return path


def load(name: str) -> Scenario:
    path = scenario_path(name)
    docs = assets.load_yaml_documents(path)
    if len(docs) != 1:
        raise ScenarioError(f"{path}: expected exactly one YAML document (a chaostoolkit experiment).")
    validate(path, docs[0])
    return Scenario(path, docs[0])


def _fail(path: Path, field: str, problem: str, fix: str) -> ScenarioError:
    return ScenarioError(f"{path}: {field}: {problem}. Fix: {fix}")


def _check_activity(path: Path, where: str, activity: Any) -> None:
    if not isinstance(activity, dict):
        raise _fail(path, where, "is not a mapping", "write the activity as a mapping with type/name/provider")
    if activity.get("type") not in ("action", "probe"):
        raise _fail(path, f"{where}.type", f"is {activity.get('type')!r}", "use 'action' or 'probe'")
    if not isinstance(activity.get("name"), str) or not activity["name"]:
        raise _fail(path, f"{where}.name", "is missing", "give every activity a unique name")
    provider = activity.get("provider")
    if not isinstance(provider, dict) or provider.get("type") not in ("python", "process", "http"):
        raise _fail(
            path,
            f"{where}.provider",
            "is missing or has no valid type",
            "use a provider with type python, process or http",
        )
    if provider["type"] == "python":
        module, func = provider.get("module"), provider.get("func")
        if not module or not func:
            raise _fail(path, f"{where}.provider", "needs module and func", "name the Python module and function")
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):  # a missing parent package, or a parent that is a plain module
            spec = None
        if spec is None:
            raise _fail(
                path,
                f"{where}.provider.module",
                f"{module!r} is not importable",
                "install the extension that provides it (e.g. chaostoolkit-kubernetes) or fix the name",
            )
    arguments = provider.get("arguments", {})
    if not isinstance(arguments, dict):
        raise _fail(path, f"{where}.provider.arguments", "is not a mapping", "write arguments as key: value")


def validate(path: Path, experiment: dict[str, Any]) -> None:
    missing = [key for key in REQUIRED if key not in experiment]
    if missing:
        raise _fail(path, ", ".join(missing), "missing", "every drill scenario declares " + ", ".join(REQUIRED))
    if not isinstance(experiment["tags"], list) or not experiment["tags"]:
        raise _fail(path, "tags", "must be a non-empty list", "tag the scenario with its drill name")
    method = experiment["method"]
    if not isinstance(method, list) or not method:
        raise _fail(path, "method", "must be a non-empty list of activities", "add the fault injection action")
    names = set()
    for index, activity in enumerate(method):
        _check_activity(path, f"method[{index}]", activity)
        if activity["name"] in names:
            raise _fail(path, f"method[{index}].name", f"{activity['name']!r} is used twice", "make names unique")
        names.add(activity["name"])
    probes = (experiment["steady-state-hypothesis"] or {}).get("probes") or []
    for index, probe in enumerate(probes):
        _check_activity(path, f"steady-state-hypothesis.probes[{index}]", probe)
        if "tolerance" not in probe:
            raise _fail(
                path,
                f"steady-state-hypothesis.probes[{index}].tolerance",
                "missing",
                "say what value of the probe means steady state (e.g. tolerance: true)",
            )
    rollbacks = experiment["rollbacks"]
    if not isinstance(rollbacks, list):
        raise _fail(path, "rollbacks", "must be a list", "list the actions that revert the fault")
    if any(a["type"] == "action" for a in method) and not rollbacks:
        raise _fail(
            path,
            "rollbacks",
            "is empty but the method injects faults",
            "add an action that reverts every injected fault (it must be safe to run twice)",
        )
    for index, activity in enumerate(rollbacks):
        _check_activity(path, f"rollbacks[{index}]", activity)
    for activity_name, phase in _extension(experiment).get("phases", {}).items():
        if activity_name not in names:
            raise _fail(
                path,
                f"extensions[mnops].phases.{activity_name}",
                "names no activity of the method",
                f"use one of: {', '.join(sorted(names))}",
            )
        if phase not in ACTIVITY_PHASES:
            raise _fail(
                path,
                f"extensions[mnops].phases.{activity_name}",
                f"unknown phase {phase!r}",
                f"use one of: {', '.join(ACTIVITY_PHASES)}",
            )
    if INJECT not in _extension(experiment).get("phases", {}).values():
        raise _fail(
            path,
            "extensions[mnops].phases",
            "marks no activity as 'inject'",
            "mark the fault injection action with phase inject",
        )
