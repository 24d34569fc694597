"""Find, load and validate chaostoolkit experiments (JSON or YAML); a malformed one is named with its field and fix.

A scenario is the project's own (scenarios/, with the ``mnops`` extension) or anyone's: a public chaostoolkit
experiment runs as it is, its phases inferred (see :attr:`Scenario.phases`).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mnops import assets
from pytest_mnops.errors import ScenarioError
from pytest_mnops.timeline import DETECTED, HUMAN_STEP, INJECT, RECOVERED

REQUIRED = ("title", "description", "method")  # what chaostoolkit itself requires
SUFFIXES = (".yaml", ".yml", ".json")
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
    def declared_phases(self) -> dict[str, str]:
        """Activity name -> timeline phase, as the experiment's ``mnops`` extension declares them."""
        return dict(_extension(self.experiment).get("phases", {}))

    def phases_for(self, *, training: bool) -> dict[str, str]:
        """The phases, with ``training-phases`` on top in training mode (an activity that is a person's step
        only there, such as stopping a failing canary before the analysis does)."""
        extra = _extension(self.experiment).get("training-phases", {}) if training else {}
        return {**self.phases, **extra}

    @property
    def inferred(self) -> bool:
        """True for an experiment without declared phases (a public one): its first action injects."""
        return not self.declared_phases

    @property
    def phases(self) -> dict[str, str]:
        """The declared phases, else the inferred ones: the first action of the method injects."""
        if not self.inferred:
            return self.declared_phases
        first = next((a["name"] for a in self.experiment["method"] if a["type"] == "action"), None)
        return {first: INJECT} if first else {}

    @property
    def actions(self) -> list[dict[str, Any]]:
        return [a for a in self.experiment["method"] if a["type"] == "action"]

    @property
    def rollbacks(self) -> list[dict[str, Any]]:
        return list(self.experiment.get("rollbacks") or [])

    @property
    def hypothesis(self) -> dict[str, Any] | None:
        hypothesis = self.experiment.get("steady-state-hypothesis")
        return hypothesis if hypothesis and hypothesis.get("probes") else None

    @property
    def plot(self) -> str | None:
        """The PromQL series the HTML report plots over the drill window."""
        return _extension(self.experiment).get("plot")

    @property
    def plot_words(self) -> dict[str, str]:
        """What the plot shows in words (``plot_title``, e.g. "5xx rate by ReplicaSet") and its ``plot_unit``."""
        extension = _extension(self.experiment)
        return {k: extension[f"plot_{k}"] for k in ("title", "unit") if extension.get(f"plot_{k}")}

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


def scenario_path(name: str, *, search: Sequence[Path] = (), relative_to: Sequence[Path] = ()) -> Path:
    """A path (absolute, or relative to each of ``relative_to``: the test file's directory, the rootdir), or a
    name looked up as NAME.yaml/.yml/.json in ``search`` (the user's scenario directories), then in the
    built-in scenarios/."""
    candidate = Path(name)
    if candidate.suffix in SUFFIXES or len(candidate.parts) > 1:
        tried = [candidate] if candidate.is_absolute() else [base / candidate for base in relative_to] or [candidate]
        for path in tried:
            if path.is_file():
                return path
        raise ScenarioError(
            f"scenario {name!r}: no such file; looked at {', '.join(map(str, tried))}. Fix: give a path that "
            "is absolute or relative to the test file or the rootdir."
        )
    directories = [*search, assets.path("scenarios")]
    for directory in directories:
        for suffix in SUFFIXES:
            if (path := directory / f"{name}{suffix}").is_file():
                return path
    known = sorted({p.stem for d in directories if d.is_dir() for p in d.iterdir() if p.suffix in SUFFIXES})
    raise ScenarioError(
        f"scenario {name!r} not found: looked for {name}.yaml, .yml and .json in "
        f"{', '.join(map(str, directories))}. Known scenarios: {', '.join(known) or 'none'}. Fix: correct the "
        "name, pass the file's path, or add its directory to the ini key mnops_scenarios."
    )


def read(path: Path) -> dict[str, Any]:
    """One experiment from a JSON or YAML file."""
    if path.suffix == ".json":
        try:
            experiment = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"{path}: cannot be read as JSON: {exc}. Fix: correct the file.") from exc
        if not isinstance(experiment, dict):
            raise ScenarioError(f"{path}: is not a JSON object. Fix: write the experiment as one object.")
        return experiment
    docs = assets.load_yaml_documents(path)
    if len(docs) != 1:
        raise ScenarioError(f"{path}: expected exactly one YAML document (a chaostoolkit experiment).")
    return docs[0]


def load(name: str, *, search: Sequence[Path] = (), relative_to: Sequence[Path] = ()) -> Scenario:
    path = scenario_path(name, search=search, relative_to=relative_to)
    experiment = read(path)
    validate(path, experiment)
    return Scenario(path, experiment)


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
        raise _fail(path, ", ".join(missing), "missing", "a chaostoolkit experiment declares " + ", ".join(REQUIRED))
    if not isinstance(experiment.get("tags", []), list):
        raise _fail(path, "tags", "must be a list", "list the tags, e.g. [drill, pod-failure]")
    method = experiment["method"]
    if not isinstance(method, list) or not method:
        raise _fail(path, "method", "must be a non-empty list of activities", "add the fault injection action")
    names = set()
    for index, activity in enumerate(method):
        _check_activity(path, f"method[{index}]", activity)
        if activity["name"] in names:
            raise _fail(path, f"method[{index}].name", f"{activity['name']!r} is used twice", "make names unique")
        names.add(activity["name"])
    probes = (experiment.get("steady-state-hypothesis") or {}).get("probes") or []
    for index, probe in enumerate(probes):
        _check_activity(path, f"steady-state-hypothesis.probes[{index}]", probe)
        if "tolerance" not in probe:
            raise _fail(
                path,
                f"steady-state-hypothesis.probes[{index}].tolerance",
                "missing",
                "say what value of the probe means steady state (e.g. tolerance: true)",
            )
    # An experiment without rollbacks is judged by the runner: only faults Kubernetes heals by itself may lack them.
    rollbacks = experiment.get("rollbacks", [])
    if not isinstance(rollbacks, list):
        raise _fail(path, "rollbacks", "must be a list", "list the actions that revert the fault")
    for index, activity in enumerate(rollbacks):
        _check_activity(path, f"rollbacks[{index}]", activity)
    extension = _extension(experiment)
    phase_maps = [(key, extension.get(key, {})) for key in ("phases", "training-phases")]
    for key, activity_name, phase in [(k, a, p) for k, m in phase_maps for a, p in m.items()]:
        if activity_name not in names:
            raise _fail(
                path,
                f"extensions[mnops].{key}.{activity_name}",
                "names no activity of the method",
                f"use one of: {', '.join(sorted(names))}",
            )
        if phase not in ACTIVITY_PHASES:
            raise _fail(
                path,
                f"extensions[mnops].{key}.{activity_name}",
                f"unknown phase {phase!r}",
                f"use one of: {', '.join(ACTIVITY_PHASES)}",
            )
    declared = _extension(experiment).get("phases", {})
    if declared and INJECT not in declared.values():
        raise _fail(
            path,
            "extensions[mnops].phases",
            "marks no activity as 'inject'",
            "mark the fault injection action with phase inject",
        )
