"""The only module importing chaoslib: experiments run with rollbacks always, a steady state awaited, a ledger
entry reverted, and chaoslib's run events fed to the timeline, the ledger and the stop watch."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from chaoslib import substitute
from chaoslib.activity import run_activity
from chaoslib.configuration import load_configuration
from chaoslib.exceptions import ActivityFailed
from chaoslib.exit import exit_gracefully
from chaoslib.experiment import run_experiment
from chaoslib.hypothesis import run_steady_state_hypothesis
from chaoslib.run import RunEventHandler
from chaoslib.secret import load_secrets
from chaoslib.types import Strategy

from pytest_mnops.chaos.journal import METHOD_ENDED, timestamp
from pytest_mnops.errors import ClusterError
from pytest_mnops.guards import signals, stop
from pytest_mnops.guards.ledger import Entry, Ledger
from pytest_mnops.k8s import Kube, default_kubeconfig
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
# Fixed costs (scheduling, a scrape, a watch event) do not shrink with the time scale.
MIN_BUDGET_S = 30.0
# How long a drill waits for the steady state before it starts (and then lets chaoslib judge it), and
# `mnops recover` for a self-healing fault's (production seconds, time-scaled).
SETTLE_S = 90.0
STEADY_STATE_KEY = "steady-state"
# A revert outlasts an API server restart (seconds; a managed control plane's failover: a minute or two).
REVERT_RETRY_S = 180.0
REVERT_PAUSE_S = 2.0
# What the runner uses of chaoslib besides the functions below: its placeholder filling, and its SIGUSR1
# handler (SystemExit(20) in the main thread, then the rollbacks).
fill = substitute
interrupt = exit_gracefully


def run(experiment: dict[str, Any], handlers: list[RunEventHandler]) -> dict[str, Any]:
    """Run ``experiment`` with rollbacks always played, its method ended by its first failed activity; chaoslib's
    journal."""
    return run_experiment(
        experiment,
        settings=SETTINGS,
        strategy=Strategy.DEFAULT,
        event_handlers=[TerminateAsInterrupt(), *handlers, FirstFailureEndsMethod()],
    )


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


def resolve(experiment: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The experiment's configuration and secrets as chaoslib resolves them for its run (``type: env`` read now)."""
    configuration = load_configuration(experiment.get("configuration") or {})
    return configuration, load_secrets(experiment.get("secrets") or {}, configuration)


def steady_state_within(
    experiment: dict[str, Any], configuration: dict[str, Any], secrets: dict[str, Any], timeout_s: float
) -> tuple[float | None, str]:
    """Evaluate the steady-state hypothesis until it is met (returns when it was) or ``timeout_s`` passes
    (returns None and which probe last missed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        started = time.time()
        state = run_steady_state_hypothesis(experiment, configuration, secrets, None, None) or {}
        if state.get("steady_state_met"):
            return started, ""
        if time.monotonic() > deadline:
            missed = [
                f"{r['activity']['name']} (output {r.get('output')!r})"
                for r in state.get("probes") or []
                if not r.get("tolerance_met")
            ]
            return None, ", ".join(missed) or "no probe answered"
        time.sleep(1)


def wait_for_steady_state(timeout_s: float, configuration: dict[str, Any]) -> dict[str, Any]:
    """The probe an experiment without declared phases ends with: recovery is its steady state met again.

    Its hypothesis and secrets ride in the run's handoff (never in the journal)."""
    experiment, secrets = configuration["handoff"][STEADY_STATE_KEY]
    at, missed = steady_state_within(experiment, configuration, secrets, float(timeout_s))
    if at is None:
        raise ActivityFailed(f"steady state not met again within {float(timeout_s):.0f}s: {missed}")
    return {"recovered_at": at}


def revert(entry: Entry, *, retry_s: float = REVERT_RETRY_S) -> None:
    """Play an entry's rollbacks with the experiment's own configuration and secrets; each is idempotent, so a
    second revert is harmless. A fault Kubernetes heals by itself (no rollbacks) is reverted once the
    experiment's steady state is back.

    While the API server does not answer (restarting, failing over), the revert is tried again, for at most
    ``retry_s``; a failure with the API answering before and after the attempt is the revert's own and is raised.
    """
    deadline = time.monotonic() + retry_s
    answered = _api_answers(entry.configuration)
    while True:
        try:
            _play_rollbacks(entry)
            return
        except Exception as exc:
            was_answering, answered = answered, _api_answers(entry.configuration)
            if time.monotonic() > deadline:
                raise ClusterError(f"{exc} (still failing after {retry_s:.0f}s of retries)") from None
            if answered and was_answering:
                raise
            time.sleep(REVERT_PAUSE_S)


def _play_rollbacks(entry: Entry) -> None:
    with kube_environment(entry.configuration):
        secrets = load_secrets(entry.secrets or {}, entry.configuration)
        for activity in entry.rollbacks:
            run_activity(activity, entry.configuration, secrets)
        if not entry.rollbacks and entry.hypothesis:
            experiment = {"steady-state-hypothesis": entry.hypothesis}
            timeout = max(MIN_BUDGET_S, SETTLE_S * float(entry.configuration.get("time_scale", 1.0)))
            at, missed = steady_state_within(experiment, entry.configuration, secrets, timeout)
            if at is None:
                raise ClusterError(
                    f"{entry.describe()}: the steady state is not back after {timeout:.0f}s: {missed}. Fix: heal "
                    "what the probes name, then run `mnops recover` again."
                )


def _api_answers(configuration: dict[str, Any]) -> bool:
    try:
        Kube(kubeconfig=configuration.get("kubeconfig"), context=configuration.get("context")).server_version()
    except ClusterError:
        return False
    return True


class Recorder(RunEventHandler):
    """Feeds chaoslib's events into the drill timeline and writes the ledger before the first injection."""

    def __init__(self, phases: dict[str, str], timeline: Timeline, ledger: Ledger, record: Callable[[], Entry]) -> None:
        self.phases, self.timeline, self.ledger, self.record = phases, timeline, ledger, record
        self.entry: Entry | None = None

    def hypothesis_before_completed(self, experiment: Any, state: Any, journal: Any) -> None:
        if state and state.get("steady_state_met"):
            self.timeline.mark(STEADY_STATE, "hypothesis met before injection")

    def start_activity(self, activity: dict[str, Any]) -> None:
        phase = self.phases.get(activity.get("name", ""))
        if phase == HUMAN_STEP:
            self.timeline.mark(OPERATOR_PROMPT, activity["name"])
        if phase == INJECT and self.entry is None:
            self.entry = self.record()

    def activity_completed(self, activity: dict[str, Any], run: dict[str, Any]) -> None:
        """Mark the phase when the activity measured it (``detected_at``...), else at its end (an injection: start)."""
        phase = self.phases.get(activity.get("name", ""))
        if not phase or run.get("status") != "succeeded":
            return
        output: dict[str, Any] = run["output"] if isinstance(run.get("output"), dict) else {}
        measured = {p: output[f"{p}_at"] for p in (DETECTED, RECOVERED, HUMAN_STEP) if f"{p}_at" in output}
        if phase not in measured:
            # A fault starts with its action: chaostoolkit-kubernetes deletes 100 pods one by one for seconds,
            # and the system reacts to the first one.
            measured[phase] = timestamp(run.get("start") if phase == INJECT else run.get("end"))
        for marked, at in sorted(measured.items(), key=lambda item: item[1]):
            self.timeline.mark(marked, activity["name"], at=at)

    def rollbacks_completed(self, experiment: Any, journal: dict[str, Any]) -> None:
        runs = journal.get("rollbacks") or []
        if (
            self.entry is not None
            and self.entry.rollbacks
            and runs
            and all(r.get("status") == "succeeded" for r in runs)
        ):
            self.ledger.record_reverted(self.entry.id, how="chaoslib rollbacks")
            self.timeline.mark(REVERTED, "rollbacks succeeded")


class TerminateAsInterrupt(RunEventHandler):
    """SIGTERM ends a run as Ctrl-C does. chaoslib's own handler raises InterruptExecution, an Exception: inside a
    probe it became a failed probe, and inside a log handler or chaoslib's event registry (both catch Exception)
    it was lost, so the drill ran on to a pass (seen in CI). KeyboardInterrupt passes every ``except Exception``
    to chaoslib's "interrupted" path, which plays the rollbacks."""

    def started(self, experiment: Any, journal: Any) -> None:
        # chaoslib installed its handler just before this event and puts back the one it found at the end.
        signals.install_sigterm_as_interrupt()


class FirstFailureEndsMethod(RunEventHandler):
    """A drill's first unproved claim ends its method, as a failed assert ends a test: every later probe would only
    wait out its timeout to prove nothing (a negative control waited 200 s for four). chaoslib leaves the method
    when the journal's status is "aborted", skips the hypothesis after (the fault may still be in) and plays the
    rollbacks (strategy always); the verdict names the activities that did not run (DrillJournal.problems)."""

    def __init__(self) -> None:
        self.journal: dict[str, Any] | None = None
        self.in_method = False

    def started(self, experiment: Any, journal: Any) -> None:
        self.journal = journal

    def start_method(self, experiment: Any) -> None:
        self.in_method = True

    def method_completed(self, experiment: Any, state: Any = None) -> None:
        self.in_method = False

    def activity_completed(self, activity: dict[str, Any], run: dict[str, Any]) -> None:
        if self.in_method and self.journal is not None and run.get("status") == "failed":
            self.journal["status"] = METHOD_ENDED


class StopEvents(RunEventHandler):
    """chaoslib's run events the stop watch needs: when its signal handler is in place and the method runs."""

    def __init__(self, watch: stop.StopWatch) -> None:
        self.watch = watch

    def started(self, experiment: Any, journal: Any) -> None:
        self.watch.started()

    def start_method(self, experiment: Any) -> None:
        self.watch.start_method()

    def method_completed(self, experiment: Any, state: Any = None) -> None:
        self.watch.method_completed()
