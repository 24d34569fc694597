"""The only module importing chaoslib: run a scenario with rollbacks always, ledgered and on the timeline."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.activity import run_activity
from chaoslib.experiment import run_experiment
from chaoslib.hypothesis import run_steady_state_hypothesis
from chaoslib.run import RunEventHandler
from chaoslib.types import Strategy

from pytest_mnops.chaos.journal import DrillJournal, timestamp
from pytest_mnops.chaos.scenarios import TARGET_KEYS, Scenario, load
from pytest_mnops.errors import ClusterError
from pytest_mnops.guards.ledger import Entry, Ledger
from pytest_mnops.guards.policy import Guards
from pytest_mnops.k8s import Kube, default_kubeconfig
from pytest_mnops.markers import drill_spec
from pytest_mnops.session import drill_facts
from pytest_mnops.target import Target
from pytest_mnops.timeline import (
    DETECTED,
    HUMAN_STEP,
    INJECT,
    OPERATOR_PROMPT,
    RECOVERED,
    REVERTED,
    STEADY_STATE,
    Timeline,
)

# chaoslib skips rollbacks of a failed or interrupted run unless told otherwise: a drill must always revert.
SETTINGS = {"runtime": {"rollbacks": {"strategy": "always"}}}
# How long a drill waits for the steady state before it starts (and then lets chaoslib judge it).
SETTLE_S = 90.0
# Fixed costs (scheduling, a scrape, a watch event) do not shrink with the time scale.
MIN_BUDGET_S = 30.0


class Handoff(dict):
    """Values one activity passes to a later one in the same run (chaoslib copies configuration shallowly,
    so this one mapping is shared). Never serialised: its repr hides what it holds."""

    def __repr__(self) -> str:
        return f"Handoff({len(self)} values)"


def configuration_for(target: Target, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    # Plain JSON values only: the configuration is written to the fault ledger.
    values = {key: str(v) if isinstance(v := getattr(target, key), Path) else v for key in TARGET_KEYS}
    return {k: v for k, v in {**values, **(extra or {})}.items() if v is not None}


@contextlib.contextmanager
def kube_environment(configuration: dict[str, Any]) -> Iterator[None]:
    """chaostoolkit-kubernetes reads its cluster from the environment; point it at the target for the run."""
    wanted = {
        "KUBECONFIG": configuration.get("kubeconfig"),
        "KUBERNETES_CONTEXT": configuration.get("context"),
        "KUBERNETES_VERIFY_SSL": "true",
    }
    saved = {key: os.environ.get(key) for key in wanted}
    try:
        for key, value in wanted.items():
            if value:
                os.environ[key] = str(value)
        with default_kubeconfig(configuration.get("kubeconfig")):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _substitute(value: Any, configuration: dict[str, Any]) -> Any:
    if isinstance(value, str):
        for key, replacement in configuration.items():
            value = value.replace("${" + key + "}", str(replacement))
    return value


def revert(entry: Entry) -> None:
    """Play an entry's rollback activities; each is idempotent, so a second revert is harmless."""
    with kube_environment(entry.configuration):
        for activity in entry.rollbacks:
            run_activity(activity, entry.configuration, {})


class _Recorder(RunEventHandler):
    """Feeds chaoslib's events into the drill timeline and writes the ledger before the first injection."""

    def __init__(
        self, scenario: Scenario, configuration: dict[str, Any], timeline: Timeline, ledger: Ledger, test: str
    ) -> None:
        self.scenario, self.configuration = scenario, configuration
        self.timeline, self.ledger, self.test = timeline, ledger, test
        self.phases = scenario.phases
        self.entry: Entry | None = None

    def hypothesis_before_completed(self, experiment: Any, state: Any, journal: Any) -> None:
        if state and state.get("steady_state_met"):
            self.timeline.mark(STEADY_STATE, "hypothesis met before injection")

    def start_activity(self, activity: dict[str, Any]) -> None:
        phase = self.phases.get(activity.get("name", ""))
        if phase == HUMAN_STEP:
            self.timeline.mark(OPERATOR_PROMPT, activity["name"])
        if phase == INJECT and self.entry is None:
            self.entry = self.ledger.record_injection(
                scenario=self.scenario.name,
                test=self.test,
                configuration=self.configuration,
                rollbacks=self.scenario.experiment["rollbacks"],
            )

    def activity_completed(self, activity: dict[str, Any], run: dict[str, Any]) -> None:
        """Mark the phase when the activity measured it (``detected_at``...), else at its end (an injection: start)."""
        phase = self.phases.get(activity.get("name", ""))
        if not phase or run.get("status") != "succeeded":
            return
        output = run.get("output") if isinstance(run.get("output"), dict) else {}
        measured = {p: output[f"{p}_at"] for p in (DETECTED, RECOVERED) if f"{p}_at" in output}
        if phase not in measured:
            # A fault starts with its action: chaostoolkit-kubernetes deletes 100 pods one by one for seconds,
            # and the system reacts to the first one.
            measured[phase] = timestamp(run.get("start") if phase == INJECT else run.get("end"))
        for marked, at in sorted(measured.items(), key=lambda item: item[1]):
            self.timeline.mark(marked, activity["name"], at=at)

    def rollbacks_completed(self, experiment: Any, journal: dict[str, Any]) -> None:
        runs = journal.get("rollbacks") or []
        if self.entry is not None and runs and all(r.get("status") == "succeeded" for r in runs):
            self.ledger.record_reverted(self.entry.id, how="chaoslib rollbacks")
            self.timeline.mark(REVERTED, "rollbacks succeeded")


class ChaosRunner:
    def __init__(
        self,
        *,
        kube: Kube,
        target: Target,
        timeline: Timeline,
        ledger: Ledger,
        guards: Guards,
        node: pytest.Item,
        training: bool = False,
        trainee_timeout_s: float = 120,
    ) -> None:
        self.kube, self.target, self.timeline = kube, target, timeline
        self.ledger, self.guards, self.node = ledger, guards, node
        self.training, self.trainee_timeout_s = training, trainee_timeout_s

    def run(self, scenario_name: str, **configuration: Any) -> DrillJournal:
        """Run ``scenarios/<name>.yaml`` against the target; extra keyword values fill its configuration.

        In training mode, activities the scenario marks as human steps wait for the trainee instead.
        """
        scenario = load(scenario_name)
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
        namespace = config["namespace"]
        what = f"scenario {scenario.name}"
        self.guards.check_target(namespace=namespace, what=what)
        blast = {k: _substitute(v, {**scenario.configuration_values(), **config}) for k, v in scenario.blast.items()}
        plan = self.guards.blast_plan(self.kube, blast, namespace=namespace)
        self.guards.check_blast(plan, what=what)
        experiment = scenario.with_configuration({**config, "handoff": Handoff()}, training=self.training)
        if self.guards.dry_run:
            self.guards.print_plan(scenario.name, experiment, plan, namespace=namespace)
            pytest.skip(f"--mnops-dry-run: {scenario.name} planned, nothing changed")
        self._settle(experiment, config, scenario.name)
        recorder = _Recorder(scenario, config, self.timeline, self.ledger, self.node.nodeid)
        try:
            with kube_environment(config):
                raw = run_experiment(
                    experiment, settings=SETTINGS, strategy=Strategy.DEFAULT, event_handlers=[recorder]
                )
        finally:
            # Whatever happened inside chaoslib (it swallows Ctrl-C and SIGTERM), nothing stays injected.
            self._revert_leftovers(recorder)
        journal = DrillJournal.from_journal(scenario.name, raw, scenario.phases)
        self._record(scenario, config, journal)
        if journal.status == "interrupted":
            raise KeyboardInterrupt(f"{scenario.name} interrupted; its faults were reverted")
        return journal

    def _record(self, scenario: Scenario, config: dict[str, Any], journal: DrillJournal) -> None:
        """Facts for the reports: outputs worth showing, the plotted series, the journal summary."""
        facts = drill_facts(self.node)
        outputs = {a.name: a.output for a in journal.activities if isinstance(a.output, dict)}
        facts.update(scenario=scenario.name, journal=journal.summary(), problems=journal.problems())
        facts["alerts"] = sorted({o["alert"] for o in outputs.values() if o.get("state") == "firing" and "alert" in o})
        inject = self.timeline.first(INJECT)
        aborted = [o["aborted_at"] for o in outputs.values() if "aborted_at" in o]
        if inject and aborted:
            facts["abort_s"] = round(aborted[0] - inject.at, 2)
        rollback = [o["duration_s"] for o in outputs.values() if "duration_s" in o]
        facts["rollback_s"] = (
            round(rollback[0], 2)
            if rollback
            else round(sum((r.end or 0) - (r.start or 0) for r in journal.rollbacks), 2)
        )
        responses = [o["response_s"] for o in outputs.values() if "response_s" in o]
        if responses:
            facts["human_response_s"] = responses[0]
        if scenario.plot and self.target.prometheus_url:
            facts["plot"] = self._series(scenario.plot, config)

    def _series(self, query: str, config: dict[str, Any]) -> dict[str, Any]:
        from pytest_mnops.observability.prometheus import Prometheus
        from pytest_mnops.timescale import scale_promql

        expr = scale_promql(
            query.replace("$namespace", config["namespace"]).replace("$app", config["app"]),
            float(config.get("time_scale", 1.0)),
        )
        start, end = self.timeline.started - 5, time.time() + 1
        try:
            result = Prometheus(config["prometheus_url"]).range(expr, start, end, step_s=1)
        except ClusterError as exc:
            return {"query": expr, "error": str(exc), "series": []}
        series = [{"labels": r["metric"], "points": [(float(t), float(v)) for t, v in r["values"]]} for r in result]
        return {"query": expr, "series": series}

    def prove(self, journal: DrillJournal) -> None:
        """Fail the drill, naming what was not detected or recovered, or a recovery over its budget."""
        problems = list(journal.problems())
        if "revert_error" in drill_facts(self.node):
            problems.append(drill_facts(self.node)["revert_error"])
        spec = drill_spec(self.node)
        mttr = self.timeline.mttr_s
        if spec and spec.budget_s is not None and mttr is not None:
            budget = max(MIN_BUDGET_S, spec.budget_s * self.target.time_scale)
            drill_facts(self.node)["budget_s"] = round(budget, 1)
            if mttr > budget:
                problems.append(
                    f"OVER BUDGET: recovered after {mttr:.1f}s, budget {budget:.0f}s "
                    f"({spec.budget_s:.0f}s in production terms x time scale {self.target.time_scale:.3f})"
                )
        if problems:
            raise AssertionError(
                f"drill {journal.scenario} did not prove detection and recovery:\n  - " + "\n  - ".join(problems)
            )

    def _settle(self, experiment: dict[str, Any], config: dict[str, Any], name: str) -> None:
        """Wait (bounded) for the steady state before injecting: an earlier drill may still be healing.

        chaoslib evaluates the hypothesis once and would otherwise abort a drill that merely started early.
        """
        deadline = time.monotonic() + SETTLE_S
        with kube_environment(config):
            while True:
                state = run_steady_state_hypothesis(experiment, config, {}, None, None)
                if state.get("steady_state_met") or time.monotonic() > deadline:
                    return
                time.sleep(1)

    def _revert_leftovers(self, recorder: _Recorder) -> None:
        entry = recorder.entry
        if entry is None or entry.id not in {e.id for e in self.ledger.pending()}:
            return
        try:
            revert(entry)
        except Exception as exc:
            drill_facts(self.node)["revert_error"] = (
                f"REVERT FAILED: {entry.describe()}: {exc}. It stays in the ledger: run `mnops recover`."
            )
            return
        self.ledger.record_reverted(entry.id, how="runner after chaoslib")
        self.timeline.mark(REVERTED, "reverted from the ledger")
