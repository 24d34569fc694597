"""Stop conditions and the manual stop: a drill that endangers more than it rehearses is interrupted and reverted.

A stop condition is a PromQL expression that *holds* when it returns at least one series, like an alert rule's
``expr`` (``... > 0.5``). The conditions of a drill come from ``--mnops-stop-when`` (repeatable; ini
``mnops_stop_when``, one a line), the marker (``@pytest.mark.drill(..., stop_when=[...])``) and, on a target
that is not the sandbox, a default set (``--mnops-stop-defaults``): the app's success rate far below the SLO
the drills hold it to, and a critical alert the drill does not expect firing in the target namespace.

A :class:`StopWatch` evaluates them before the drill (a condition that already holds means nothing is injected)
and every ``POLL_S`` through the experiment's method. When one holds, or the manual stop is pulled (the stop
file appears, or SIGUSR1 arrives), it interrupts the method the way chaoslib provides for
(:func:`chaoslib.exit.exit_gracefully`: SIGUSR1, raised in the main thread as ``SystemExit(20)``, after which
chaoslib still plays the rollbacks), and the drill fails with its own verdict, STOPPED. A condition that cannot
be evaluated (Prometheus unreachable) stops the drill too: a guard that cannot see is not a guard. So do the
platform's own faults: the Kubernetes API server going silent (the faults are reverted as soon as it answers
again) and the Argo Rollouts controller no longer reconciling (nothing would abort a bad canary).
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from pytest_mnops.errors import ClusterError, ConfigError, MnopsError, MonitoringUnreachable
from pytest_mnops.guards.signals import MANUAL_SIGNAL, ManualStop
from pytest_mnops.placeholders import fill
from pytest_mnops.timescale import scale_promql

if TYPE_CHECKING:
    from pytest_mnops.observability.prometheus import Prometheus

POLL_S = 1.0  # Prometheus evaluates every second on the sandbox; a real one at 15-60 s gains nothing faster.
# The default stop on the app's success rate (its profile's `slo.success_rate`, as its canary analysis measures
# it) is far below any SLO: a drill may dent the SLO, it must not take the app down.
SLO_FLOOR = 0.5
API_RETRY_PAUSE_S = 0.5


class DrillStopped(MnopsError, AssertionError):
    """A stop condition held or the manual stop was pulled; the drill was interrupted and its faults reverted."""


@dataclass(frozen=True)
class Condition:
    expr: str
    source: str  # where it came from, for the verdict: an option, the marker, a default
    scaled: bool = False  # already at the target's time scale (an app profile's SLO query)

    def describe(self) -> str:
        return f"`{self.expr}` ({self.source})"


@dataclass(frozen=True)
class Stop:
    why: str  # what held or who pulled the stop, with the value
    at: float

    def verdict(self) -> str:
        when = dt.datetime.fromtimestamp(self.at, dt.UTC).strftime("%H:%M:%S UTC")
        return f"STOPPED: {self.why}, at {when}"

    def facts(self) -> dict[str, Any]:
        return {"why": self.why, "at": self.at}


def default_conditions(expected_alerts: list[str], success_rate: str | None) -> list[Condition]:
    """The stops a drill on a real target gets unless told otherwise (``--mnops-stop-defaults=off``): the app's
    success rate (``success_rate``: its profile's query, time-scaled; none without one) and critical alerts."""
    unexpected = f',alertname!~"{"|".join(expected_alerts)}"' if expected_alerts else ""
    floor = (
        []
        if success_rate is None
        else [Condition(f"({success_rate}) < {SLO_FLOOR}", f"default: success rate below {SLO_FLOOR}", scaled=True)]
    )
    return [
        *floor,
        Condition(
            f'ALERTS{{alertstate="firing",severity="critical",namespace="${{namespace}}"{unexpected}}}',
            "default: a critical alert the drill does not expect, firing in the target namespace",
        ),
    ]


def expected_alerts(experiment: dict[str, Any]) -> list[str]:
    """Alerts the scenario waits for (``alertname`` arguments): its own fault is meant to fire them."""
    names = set()
    for activity in [*experiment.get("method", []), *experiment.get("rollbacks", [])]:
        name = ((activity.get("provider") or {}).get("arguments") or {}).get("alertname")
        if isinstance(name, str):
            names.add(name)
    return sorted(names)


class StopWatch:
    """Evaluates a drill's stop conditions from before injection to the end of its method; one per drill.

    The runner (the only module importing chaoslib) feeds it chaoslib's run events and gives it ``interrupt``:
    :func:`chaoslib.exit.exit_gracefully`.
    """

    def __init__(
        self,
        conditions: list[Condition],
        *,
        prometheus: Prometheus | None,
        configuration: dict[str, Any],
        manual: ManualStop,
        checks: tuple[Callable[[], str | None], ...] = (),
        interrupt: Callable[[], None] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.conditions, self.prometheus, self.manual, self.poll_s = conditions, prometheus, manual, poll_s
        # Health of what the drill relies on (the API server, the Rollouts controller): a problem, or None.
        self.checks = checks
        self.interrupt = interrupt
        self.namespace, self.app = configuration["namespace"], configuration["app"]
        self.time_scale = float(configuration.get("time_scale", 1.0))
        self.stopped: Stop | None = None
        self._lock = threading.Lock()
        self._in_method = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _expr(self, condition: Condition) -> str:
        expr = fill(condition.expr, {"namespace": self.namespace, "app": self.app})
        return expr if condition.scaled else scale_promql(expr, self.time_scale)

    def _query(self, condition: Condition) -> list[dict[str, Any]]:
        if self.prometheus is None:  # watch_for gives one whenever there are conditions
            raise ConfigError(f"stop condition {condition.describe()} needs Prometheus, and the watch has none")
        return self.prometheus.query(self._expr(condition))

    def _evaluate(self) -> Stop | None:
        why = self.manual.pulled()
        if why:
            return Stop(why, time.time())
        for check in self.checks:
            try:
                problem = check()
            except ClusterError:
                continue  # the API server's own check says when it is down; a blip is asked again next poll
            if problem:
                return Stop(problem, time.time())
        for condition in self.conditions:
            try:
                result = self._query(condition)
            except MonitoringUnreachable as exc:
                return Stop(f"stop condition {condition.describe()} cannot be evaluated: {exc}", time.time())
            except ClusterError:
                continue  # an answer with an error (a 503 while Prometheus reloads): asked again next poll
            if result:
                sample = result[0]
                labels = {k: v for k, v in sample["metric"].items() if k != "__name__"}
                shown = f" {labels}" if labels else ""
                value = sample["value"][1]
                return Stop(f"stop condition {condition.describe()} held, value {value}{shown}", time.time())
        return None

    def check_before(self) -> None:
        """Before anything is injected: a malformed condition is a ConfigError, one that holds stops the drill."""
        for condition in self.conditions:
            try:
                self._query(condition)
            except MonitoringUnreachable:
                break  # _evaluate reports it as the stop
            except ClusterError as exc:
                raise ConfigError(
                    f"stop condition {condition.describe()} does not evaluate: {exc}. Fix: correct the PromQL "
                    "(it must return a series when the drill must stop, e.g. `... > 0.5`)."
                ) from None
        self.stopped = self._evaluate()
        self.raise_if_stopped(injected=False)

    def raise_if_stopped(self, *, injected: bool = True) -> None:
        if self.stopped is None:
            return
        what = "the drill was interrupted and its faults reverted" if injected else "nothing was injected"
        raise DrillStopped(f"{self.stopped.verdict()}; {what}")

    # -- the watch ---------------------------------------------------------------------------------------
    def __enter__(self) -> StopWatch:
        self._thread = threading.Thread(target=self._watch, name="mnops-stop-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(self.poll_s):
            if self.stopped is None:
                self.stopped = self._evaluate()
            if self.stopped is not None:
                self._interrupt()
                return

    def _interrupt(self) -> None:
        # Only while chaoslib's signal handler is in place and the method runs: SIGUSR1 there raises SystemExit(20)
        # inside chaoslib's run, which then plays the rollbacks. Outside it, the default action would kill pytest.
        with self._lock:
            if self._in_method and self.interrupt is not None:
                self.interrupt()

    # -- chaoslib events (main thread) -------------------------------------------------------------------------
    def started(self) -> None:
        """chaoslib has just put its own SIGUSR1 handler in place of the session's: keep the manual stop working."""
        if threading.current_thread() is not threading.main_thread():
            return
        chaoslib_handler = signal.getsignal(MANUAL_SIGNAL)

        def manual(signum: int, frame: FrameType | None) -> None:
            if self.stopped is None:  # not the watch's own exit_gracefully
                self.manual.signalled_at = time.time()
                self.stopped = self._evaluate()
            if self._in_method and callable(chaoslib_handler):
                chaoslib_handler(signum, frame)  # SystemExit(20): chaoslib interrupts and plays the rollbacks

        signal.signal(MANUAL_SIGNAL, manual)

    def start_method(self) -> None:
        with self._lock:
            self._in_method = True
        if self.stopped is not None:
            self._interrupt()

    def method_completed(self) -> None:
        with self._lock:
            self._in_method = False
        self._done.set()  # the faults are being reverted now: the drill's own verdict takes over


def api_server_answers(server_version: Callable[[], object]) -> Callable[[], str | None]:
    """A check: None while the API server answers (asked twice, as the monitoring is); else what it said."""

    def check() -> str | None:
        try:
            server_version()
            return None
        except ClusterError:
            time.sleep(API_RETRY_PAUSE_S)
        try:
            server_version()
            return None
        except ClusterError as exc:
            return (
                f"the Kubernetes API server stopped answering mid-drill ({exc}); no fault can be reverted until "
                "it answers again"
            )

    return check


def conditions_for(
    *,
    option: list[str],
    marker: tuple[str, ...],
    defaults: str,
    sandbox: bool,
    experiment: dict[str, Any],
    success_rate: str | None = None,
) -> list[Condition]:
    """A drill's conditions: the option's (CLI, env or ini), the marker's, and the defaults where they apply."""
    conditions = [Condition(expr, "--mnops-stop-when") for expr in option]
    conditions += [Condition(expr, "marker stop_when") for expr in marker]
    if defaults == "on" or (defaults == "auto" and not sandbox):
        conditions += default_conditions(expected_alerts(experiment), success_rate)
    return conditions


def watch_for(
    conditions: list[Condition],
    *,
    configuration: dict[str, Any],
    manual: ManualStop,
    what: str,
    checks: tuple[Callable[[], str | None], ...] = (),
    interrupt: Callable[[], None] | None = None,
) -> StopWatch:
    prometheus = None
    if conditions:
        url = configuration.get("prometheus_url")
        if not url:
            raise ConfigError(
                f"{what} has stop conditions ({conditions[0].describe()}...) but the target has no Prometheus. "
                "Fix: pass --mnops-prometheus-url, or drop the conditions (--mnops-stop-defaults=off)."
            )
        from pytest_mnops.observability.prometheus import Prometheus

        prometheus = Prometheus(url)
    return StopWatch(
        conditions,
        prometheus=prometheus,
        configuration=configuration,
        manual=manual,
        checks=checks,
        interrupt=interrupt,
    )
