"""Run a scenario against the target: guarded, dry-run planned, ledgered before the first injection, on the
timeline, every fault reverted whatever happens, and the verdict proved (chaoslib itself: chaos/engine.py)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mnops.chaos import engine
from pytest_mnops.chaos.facts import record_facts
from pytest_mnops.chaos.journal import DrillJournal
from pytest_mnops.chaos.scenarios import TARGET_KEYS, Scenario, load
from pytest_mnops.drills import DrillSpec
from pytest_mnops.errors import DryRunPlanned, ScenarioError
from pytest_mnops.guards import stop
from pytest_mnops.guards.ledger import Entry, Ledger
from pytest_mnops.guards.policy import Guards
from pytest_mnops.guards.signals import ManualStop
from pytest_mnops.guards.targets import SELF_HEALING, ActionTarget, call_of, derive
from pytest_mnops.k8s import Kube
from pytest_mnops.names import STOP_FILE
from pytest_mnops.observability import reach
from pytest_mnops.rollouts import Rollout
from pytest_mnops.target import Target
from pytest_mnops.timeline import (
    DETECTED,
    INJECT,
    RECOVERED,
    REVERTED,
    Timeline,
)

# How long (production seconds) an experiment without declared phases may take to reach its steady state again.
RECOVERY_S = 600.0
RECOVERY_PROBE = "steady-state-restored"
# Ends every other method with a hypothesis: chaoslib judges the hypothesis after the method once, while a window
# query (an error rate over its last minute) still holds the fault's samples for a while after the system
# recovered (seen in CI: a canary-failure drill failed on its error rate seconds after the abort).
SETTLED_PROBE = "steady-state-settled"


@dataclass
class DrillTest:
    """What the runner knows of the test it runs in; the pytest layer fills it from the test item (no pytest here,
    so `mnops recover` and any other caller run without it)."""

    test_id: str = ""
    spec: DrillSpec | None = None  # the test's drill marker
    facts: dict[str, Any] = field(default_factory=dict)  # what the reports show of the drill (filled here)
    stop_when: list[str] = field(default_factory=list)  # --mnops-stop-when
    stop_defaults: str = "auto"  # --mnops-stop-defaults
    manual_stop: ManualStop = field(default_factory=lambda: ManualStop(Path(STOP_FILE)))  # --mnops-stop-file


class Handoff(dict[str, Any]):
    """Values one activity passes to a later one in the same run (chaoslib copies configuration shallowly,
    so this one mapping is shared). Never serialised: its repr hides what it holds."""

    def __repr__(self) -> str:
        return f"Handoff({len(self)} values)"


def configuration_for(target: Target, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    # Plain JSON values only: the configuration is written to the fault ledger.
    values = {key: str(v) if isinstance(v := getattr(target, key), Path) else v for key in TARGET_KEYS}
    return {k: v for k, v in {**values, **(extra or {})}.items() if v is not None}


def plain(configuration: dict[str, Any]) -> dict[str, Any]:
    """What the ledger may hold: JSON values only, never the run's handoff."""
    return {k: v for k, v in configuration.items() if k != "handoff" and isinstance(v, str | int | float | bool | list)}


class ChaosRunner:
    def __init__(
        self,
        *,
        kube: Kube,
        target: Target,
        timeline: Timeline,
        ledger: Ledger,
        guards: Guards,
        test: DrillTest | None = None,
        training: bool = False,
        trainee_timeout_s: float = 120,
        scenario_dirs: Sequence[Path] = (),
        relative_to: Sequence[Path] = (),
    ) -> None:
        self.kube, self.target, self.timeline = kube, target, timeline
        self.ledger, self.guards = ledger, guards
        self.test = test or DrillTest()
        self.spec, self.facts = self.test.spec, self.test.facts
        self.training, self.trainee_timeout_s = training, trainee_timeout_s
        # Where scenario names and relative paths are looked up (ini mnops_scenarios; the test file, the rootdir).
        self.scenario_dirs, self.relative_to = tuple(scenario_dirs), tuple(relative_to)

    def run(
        self,
        scenario: str | os.PathLike[str],
        *,
        detected: str | None = None,
        recovered: str | None = None,
        **configuration: Any,
    ) -> DrillJournal:
        """Run a chaostoolkit experiment against the target; extra keyword values fill its configuration.

        ``scenario`` is a path (absolute, or relative to the test file or the rootdir) or a name looked up in
        the ini ``mnops_scenarios`` directories, then in the built-in scenarios/. An experiment without the
        ``mnops`` extension's phases injects with its first action; ``detected``/``recovered`` name the probes
        of its method that measure those phases, else recovery is its steady state met again after the method.
        In training mode, activities the scenario marks as human steps wait for the trainee instead.

        Long on purpose: the order of these steps is the safety argument (guards and dry run before anything,
        the monitoring checked, the ledger written before the first injection, leftovers reverted whatever
        happened), so it reads top to bottom in one place.
        """
        loaded = load(os.fspath(scenario), search=self.scenario_dirs, relative_to=self.relative_to)
        phases, how = self._phases(loaded, detected=detected, recovered=recovered)
        # A unique run id and start time let activities tell this run's notifications from earlier ones.
        config = configuration_for(
            self.target,
            {
                "run_id": uuid.uuid4().hex[:12],
                "run_started": time.time(),
                "trainee_timeout_s": self.trainee_timeout_s,
                **configuration,
            },
        )
        what = f"scenario {loaded.name}"
        self.guards.check_target(namespace=config["namespace"], what=what)
        handoff = Handoff()
        experiment = loaded.with_configuration({**config, "handoff": handoff}, training=self.training)
        resolved, secrets = engine.resolve(experiment)
        self.guards.check_secrets(secrets, what=what)
        self._check_reverts(loaded, what)
        actions, reverts = self._targets(loaded, experiment, resolved, secrets, what)
        if self.guards.dry_run:
            self.guards.print_plan(loaded.name, experiment, actions, reverts)
            raise DryRunPlanned(f"--mnops-dry-run: {loaded.name} planned, nothing changed")
        self._check_something_injected(actions, phases, what)
        if loaded.hypothesis is not None:
            handoff[engine.STEADY_STATE_KEY] = (experiment, secrets)
            experiment["method"].append(self._steady_state_probe(recovery=RECOVERY_PROBE in phases))
        self.facts["phases"] = how
        # Fail closed: no fault goes in while the monitoring that would show its blast (and a real incident
        # meanwhile) does not answer.
        for service, key in (("Prometheus", "prometheus_url"), ("Alertmanager", "alertmanager_url")):
            if resolved.get(key):
                reach.require(service, resolved[key], needed_by=f"drill {loaded.name}")
        watch = self._stop_watch(experiment, resolved, loaded.name)
        self._settle(experiment, resolved, secrets)

        def record() -> Entry:
            return self.ledger.record_injection(
                scenario=loaded.name,
                test=self.test.test_id,
                configuration=plain(resolved),
                rollbacks=loaded.rollbacks,
                secrets=_references(loaded.experiment.get("secrets") or {}),
                hypothesis=None if loaded.rollbacks else loaded.hypothesis,
            )

        recorder = engine.Recorder(phases, self.timeline, self.ledger, record)
        try:
            with engine.kube_environment(resolved), watch:
                raw = engine.run(experiment, [recorder, engine.StopEvents(watch)])
        finally:
            # Whatever happened inside chaoslib (it swallows Ctrl-C and SIGTERM), nothing stays injected.
            self._revert_leftovers(recorder)
        journal = DrillJournal.from_journal(loaded.name, raw, phases)
        record_facts(self.facts, loaded, config, journal, self.timeline, plot=bool(self.target.prometheus_url))
        if watch.stopped is not None:
            self.facts["stopped"] = watch.stopped.facts()
            watch.raise_if_stopped()
        if journal.status == "interrupted":
            raise KeyboardInterrupt(f"{loaded.name} interrupted; its faults were reverted")
        return journal

    def _phases(self, scenario: Scenario, *, detected: str | None, recovered: str | None) -> tuple[dict[str, str], str]:
        """The timeline phase of each activity, and how they were found (said in the report)."""
        phases = scenario.phases_for(training=self.training)
        named = {n: phase for n, phase in ((detected, DETECTED), (recovered, RECOVERED)) if n}
        names = {a["name"] for a in scenario.activities()}
        for name, phase in named.items():
            if name not in names:
                raise ScenarioError(
                    f"{scenario.path}: the test names {name!r} as the {phase} probe, but the method has no such "
                    f"activity. Fix: use one of {', '.join(sorted(names))}."
                )
        phases = {**phases, **named}
        if not scenario.inferred:
            return phases, "declared (extensions[mnops].phases)" + (" and named by the test" if named else "")
        inject = next(iter(scenario.phases), None)
        if inject is None:
            raise ScenarioError(
                f"{scenario.path}: method has no action, so nothing is injected and the drill would prove nothing. "
                "Fix: add the fault's action to the method."
            )
        how = [f"inject = first action {inject!r}"]
        how += [f"{phase} = probe {name!r} (named by the test)" for name, phase in named.items()]
        if RECOVERED not in phases.values():
            if scenario.hypothesis is None:
                raise ScenarioError(
                    f"{scenario.path}: no steady-state-hypothesis and no recovery probe: nothing could show the "
                    "system recovered. Fix: add a steady-state-hypothesis, or pass recovered='PROBE' to chaos.run."
                )
            phases[RECOVERY_PROBE] = RECOVERED
            how.append("recovered = steady state met again after the method")
        return phases, "inferred: " + "; ".join(how)

    def _steady_state_probe(self, *, recovery: bool) -> dict[str, Any]:
        """The probe that waits for the experiment's steady state to be met again (see wait_for_steady_state):
        the recovery itself when no probe measures it, else the settling before chaoslib's hypothesis after."""
        if recovery:
            spec = self.spec
            production = spec.budget_s if spec and spec.budget_s else RECOVERY_S
            # Twice the budget: room to measure an over-budget recovery.
            name, timeout = RECOVERY_PROBE, 2 * production * self.target.time_scale
        else:
            name, timeout = SETTLED_PROBE, engine.SETTLE_S * self.target.time_scale
        return {
            "type": "probe",
            "name": name,
            "provider": {
                "type": "python",
                "module": engine.__name__,
                "func": "wait_for_steady_state",
                "arguments": {"timeout_s": max(engine.MIN_BUDGET_S, timeout)},
            },
        }

    def _check_reverts(self, scenario: Scenario, what: str) -> None:
        """An experiment that injects without rollbacks: only faults Kubernetes heals by itself, or an opt-in."""
        if scenario.rollbacks or (self.spec is not None and self.spec.heals_itself):
            return
        lasting = [a for a in scenario.actions if call_of(a) not in SELF_HEALING]
        if lasting:
            action = lasting[0]
            raise ScenarioError(
                f"{scenario.path}: {what}: action {action['name']!r} ({call_of(action)}) injects a fault Kubernetes "
                "does not heal by itself, and the experiment declares no rollbacks to revert it; nothing was "
                "changed. Fix: add rollbacks that undo it (safe to run twice), or, if the system under test heals "
                "it, opt in with @pytest.mark.drill(..., heals_itself=True)."
            )

    def _targets(
        self,
        scenario: Scenario,
        experiment: dict[str, Any],
        resolved: dict[str, Any],
        secrets: dict[str, Any],
        what: str,
    ) -> tuple[list[ActionTarget], list[ActionTarget]]:
        """Every action's and rollback's target, from their resolved arguments, judged by the guards."""
        actions = [derive(self.kube, engine.fill(a, resolved, secrets), resolved) for a in scenario.actions]
        reverts = [derive(self.kube, engine.fill(a, resolved, secrets), resolved) for a in scenario.rollbacks]
        blast = engine.fill(scenario.blast, resolved, secrets)
        declared = self.guards.declared(self.kube, blast, namespace=resolved["namespace"])
        return self.guards.judge(actions, reverts, declared, what=what), reverts

    def _check_something_injected(self, actions: list[ActionTarget], phases: dict[str, str], what: str) -> None:
        """A fault on no pod proves nothing: fail, saying which selector matched none."""
        for action in actions:
            if phases.get(action.activity) == INJECT and action.selector is not None and not action.matching:
                raise AssertionError(
                    f"{what}: action {action.activity!r} would touch no pod: {action.selector or 'every pod'} "
                    f"matches none in namespace {', '.join(action.namespaces)}, so nothing would be injected. "
                    "Fix: point the experiment at the app's pods (its selector and namespace)."
                )

    def prove(self, journal: DrillJournal) -> None:
        """Fail the drill, naming what was not detected or recovered, or a recovery over its budget."""
        problems = list(journal.problems())
        if "revert_error" in self.facts:
            problems.append(self.facts["revert_error"])
        spec = self.spec
        mttr = self.timeline.mttr_s
        if spec and spec.budget_s is not None and mttr is not None:
            budget = max(engine.MIN_BUDGET_S, spec.budget_s * self.target.time_scale)
            self.facts["budget_s"] = round(budget, 1)
            if mttr > budget:
                problems.append(
                    f"OVER BUDGET: recovered after {mttr:.1f}s, budget {budget:.0f}s "
                    f"({spec.budget_s:.0f}s in production terms x time scale {self.target.time_scale:.3f})"
                )
        if problems:
            raise AssertionError(
                f"drill {journal.scenario} did not prove detection and recovery:\n  - " + "\n  - ".join(problems)
            )

    def _stop_watch(self, experiment: dict[str, Any], config: dict[str, Any], name: str) -> stop.StopWatch:
        """The drill's stop conditions, checked once now: one that holds already means nothing is injected."""
        spec = self.spec
        conditions = stop.conditions_for(
            option=self.test.stop_when,
            marker=spec.stop_when if spec else (),
            defaults=self.test.stop_defaults,
            sandbox=self.target.sandbox,
            experiment=experiment,
            # The app profile's success rate (mnops_drill), as its own canary analysis measures it.
            success_rate=((config.get("profile") or {}).get("slo") or {}).get("success_rate", {}).get("query"),
        )
        watch = stop.watch_for(
            conditions,
            configuration=config,
            manual=self.test.manual_stop,
            what=f"drill {name}",
            checks=(
                stop.api_server_answers(self.kube.server_version),
                Rollout(self.kube, namespace=config["namespace"], name=config["app"]).reconciling_check(),
            ),
            interrupt=engine.interrupt,  # SIGUSR1: SystemExit(20) in the main thread, then chaoslib's rollbacks
        )
        try:
            watch.check_before()
        except stop.DrillStopped:
            self.facts["stopped"] = watch.stopped.facts() if watch.stopped else {}
            raise
        return watch

    def _settle(self, experiment: dict[str, Any], configuration: dict[str, Any], secrets: dict[str, Any]) -> None:
        """Wait (bounded) for the steady state before injecting: an earlier drill may still be healing.

        chaoslib evaluates the hypothesis once and would otherwise abort a drill that merely started early. The
        experiment's own configuration and secrets fill its probes, as chaoslib's will.
        """
        if experiment.get("steady-state-hypothesis"):
            with engine.kube_environment(configuration):
                engine.steady_state_within(experiment, configuration, secrets, engine.SETTLE_S)

    def _revert_leftovers(self, recorder: engine.Recorder) -> None:
        entry = recorder.entry
        if entry is None or entry.id not in {e.id for e in self.ledger.pending()}:
            return
        try:
            engine.revert(entry)
        except Exception as exc:
            self.facts["revert_error"] = (
                f"REVERT FAILED: {entry.describe()}: {exc}. It stays in the ledger: run `mnops recover`."
            )
            return
        self.ledger.record_reverted(entry.id, how="runner after chaoslib")
        self.timeline.mark(REVERTED, "reverted from the ledger")


def _references(secrets: dict[str, Any]) -> dict[str, Any]:
    """The experiment's secrets as the ledger may hold them: where to read each (``type: env``...), never a value.
    ``mnops recover`` resolves them again; an inline value is left out."""
    return {
        scope: {k: v for k, v in values.items() if isinstance(v, dict) and "type" in v}
        for scope, values in secrets.items()
        if isinstance(values, dict)
    }
