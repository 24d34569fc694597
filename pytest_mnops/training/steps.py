"""The human steps of the drills, and the chaostoolkit activity that judges a trainee at one.

A step is judged by its effect on the Rollout, whatever tool the trainee used (`kubectl argo rollouts`,
plain `kubectl patch`, `mnops rollback`): the step watches the Rollout from the prompt on, and the first
change a person made (the audit log says who, and with which tool) is the trainee's action. The action is
right or wrong for the step; then the step measures how long until the stable version served again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import Kube, pod_ready, resources
from pytest_mnops.names import ROLLOUT_HASH_LABEL
from pytest_mnops.rollouts import Rollout, read_status
from pytest_mnops.training import effects
from pytest_mnops.training.audit import AuditTrail, Write

Configuration = dict[str, Any]
RIGHT, WRONG, MISSED = "right", "wrong", "missed"
# How long a write with no visible effect is given to show one (a status patch shows at once).
EFFECT_WAIT_S = 15.0
# The audit line of a write can land just after its effect is visible.
AUDIT_LAG_S = 2.0
MIN_RESTORE_WAIT_S = 30.0
POLL_S = 0.2
# A watch request's length: how long the background watch takes to notice the step is over.
WATCH_S = 2.0
COMPLETED = "completed"  # a step's own ending: the canary went all the way, a new stable


@dataclass(frozen=True)
class Step:
    """What the trainee faces at one human step, what they are expected to type, and how it is judged."""

    situation: str
    commands: tuple[str, ...]
    right: frozenset[str]
    wrong_because: dict[str, str]
    # Stable counts as restored only on a Healthy Rollout (not merely traffic back on stable).
    restored_needs_healthy: bool = False
    # The step is over without the trainee when this happens by itself: (effect, what the trainee is told).
    ends_by_itself: tuple[str, str] | None = None
    other_wrong: str = "does not stop the faulty version"

    def prompt(self, app: str) -> str:
        commands = "\n".join(f"                 $ {c.format(app=app)}" for c in self.commands)
        return f"{self.situation}\n             Expected (any tool works, the effect is scored):\n{commands}"

    def judge(self, action: str) -> tuple[str, str]:
        if action in self.right:
            return RIGHT, f"{action} is the move here"
        return WRONG, self.wrong_because.get(action, f"{action} {self.other_wrong}")


STOP_CANARY = Step(
    situation="The new version is failing its canary (about 30% of its requests answer 5xx). Stop it now, "
    "before more users hit it.",
    commands=(
        "kubectl argo rollouts get rollout {app} --watch",
        "kubectl argo rollouts abort {app}",
    ),
    right=frozenset({effects.ABORT, effects.UNDO}),
    wrong_because={
        effects.PROMOTE: "promote pushes a failing canary on to the next step, to more users",
        effects.PROMOTE_FULL: "promote --full sends every user to the failing version",
        effects.RETRY: "retry restarts the canary of the failing version",
        effects.PAUSE: "pause holds the canary where it is: its users still get the errors",
        effects.SET_IMAGE: "a new image mid-incident is a fix forward, not a stop",
    },
    ends_by_itself=(effects.ABORT, "Argo Rollouts aborted the canary by itself (analysis failed) before you acted"),
)
RESTORE_STABLE = Step(
    situation="The canary is aborted: stable serves all traffic, but the Rollout is Degraded on the faulty "
    "revision. Bring it back to Healthy on the stable version.",
    commands=(
        "kubectl argo rollouts get rollout {app}",
        "kubectl argo rollouts undo {app}",
    ),
    right=frozenset({effects.UNDO}),
    wrong_because={
        effects.RETRY: "retry starts the failing canary again",
        effects.PROMOTE: "promote pushes the failing version on",
        effects.PROMOTE_FULL: "promote --full makes the failing version stable",
        effects.SET_IMAGE: "a new image is a fix forward: the stable revision is the known good one",
    },
    restored_needs_healthy=True,
    other_wrong="does not bring the Rollout back to Healthy on stable",
)
ROLL_BACK = Step(
    situation="A new version is mid-canary and must go: roll it back now, before the canary completes.",
    commands=(
        "kubectl argo rollouts abort {app}",
        "kubectl argo rollouts undo {app}",
        'mnops rollback --reason "..."   (abort + undo + verify + notify)',
    ),
    right=frozenset({effects.ABORT, effects.UNDO}),
    wrong_because={
        effects.PROMOTE: "promote moves the release on instead of back",
        effects.PROMOTE_FULL: "promote --full completes the release you had to roll back",
        effects.PAUSE: "pause holds the canary: it is still serving",
        effects.SET_IMAGE: "a new image is a fix forward, not a rollback",
    },
    ends_by_itself=(COMPLETED, "the canary completed on its own: nothing was rolled back"),
    other_wrong="does not roll the release back",
)
# By the activity's name in scenarios/ (the prompt's narration finds its step the same way).
STEPS: dict[str, Step] = {
    "rollout-aborted": STOP_CANARY,
    "operator-restores-stable": RESTORE_STABLE,
    "operator-rollback": ROLL_BACK,
}


def prompt_for(activity: str, app: str) -> str | None:
    step = STEPS.get(activity)
    return None if step is None else step.prompt(app)


def _kube(configuration: Configuration) -> Kube:
    return Kube(kubeconfig=configuration.get("kubeconfig"), context=configuration.get("context"))


def _audit_log(configuration: Configuration) -> Path | None:
    if configuration.get("apiserver_audit_log"):  # a readable copy of another cluster's log
        return Path(configuration["apiserver_audit_log"])
    if configuration.get("sandbox") and configuration.get("sandbox_dir"):
        from pytest_mnops.sandbox.settings import SandboxSettings

        settings = SandboxSettings.load(configuration["sandbox_dir"])
        return settings.layout.audit_log if settings else None
    return None


class _Watcher:
    """Every state the Rollout passed through since the prompt, with when each was seen (a watch, not a poll:
    `mnops rollback` aborts and undoes 20 ms apart, and the undo clears the abort); and the people's writes."""

    def __init__(self, rollout: Rollout, trail: AuditTrail | None) -> None:
        self.rollout, self.trail = rollout, trail
        self.seen: list[tuple[float, effects.Snapshot]] = []
        self.people: list[Write] = []
        self.prompted = time.time()
        self._stop = threading.Event()

    @contextlib.contextmanager
    def following(self) -> Iterator[effects.Snapshot]:
        """Watch the Rollout in the background while the block runs; yields its state at the start."""
        obj = self.rollout.get()
        self._see(obj)
        thread = threading.Thread(target=self._follow, args=(obj,), name="mnops-trainee-watch", daemon=True)
        thread.start()
        try:
            yield self.seen[0][1]
        finally:
            self._stop.set()
            thread.join(timeout=WATCH_S + 5)

    def _follow(self, obj: dict[str, Any]) -> None:
        rollout, version = self.rollout, obj["metadata"]["resourceVersion"]
        while not self._stop.is_set():
            try:
                for kind, event in rollout.kube.watch(
                    resources.ROLLOUT,
                    resource_version=version,
                    namespace=rollout.namespace,
                    field_selector=f"metadata.name={rollout.name}",
                    timeout_s=WATCH_S,
                ):
                    if kind == "ERROR":  # 410 Gone: go on from the object as it is now
                        event = rollout.get()
                    version = event["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self._see(event)
                    if self._stop.is_set():
                        return
            except ClusterError:  # a cut stream or a restarting API server: the judge goes on with what it saw
                time.sleep(POLL_S)

    def _see(self, obj: dict[str, Any]) -> None:
        snap = effects.Snapshot.of(obj)
        if not self.seen or self.seen[-1][1] != snap:
            self.seen.append((time.time(), snap))

    def poll(self) -> effects.Snapshot:
        """The Rollout's latest state, after reading the people's new writes."""
        if self.trail is not None:
            self.people += [w for w in self.trail.writes() if not w.by_controller and w.at >= self.prompted]
        return self.seen[-1][1]

    def before(self, at: float) -> effects.Snapshot:
        """The last snapshot seen before ``at`` (the state a write received at ``at`` changed)."""
        earlier = [snap for seen, snap in self.seen if seen <= at]
        return earlier[-1] if earlier else self.seen[0][1]

    def since(self, at: float) -> list[effects.Snapshot]:
        """Every snapshot seen after ``at``, oldest first; the latest one when none was."""
        later = [snap for seen, snap in self.seen if seen > at]
        return later or [self.seen[-1][1]]


def await_trainee(step: str, configuration: Configuration, timeout_s: float | str = 120) -> dict[str, Any]:
    """Training mode: wait for the trainee's action at human step ``step``, judge it, time the recovery.

    Returns the step's score: ``action``, ``verdict`` (right / wrong / missed), ``why``, ``response_s`` (prompt
    to the trainee's first change, as the API server received it), ``by`` and ``tool`` (from the audit log),
    and ``stable_restored_s`` (prompt to the stable version serving every user again; None if it did not).
    Fails only when nobody acted and the step did not end by itself within ``timeout_s``.
    """
    spec = STEPS[step]
    deadline = time.monotonic() + float(timeout_s)
    rollout = Rollout(_kube(configuration), namespace=configuration["namespace"], name=configuration["app"])
    audit_path = _audit_log(configuration)
    trail = AuditTrail(audit_path, namespace=rollout.namespace, name=rollout.name) if audit_path else None
    watcher = _Watcher(rollout, trail)
    with watcher.following() as start:
        decided = _await_decision(spec, step, rollout, watcher, start, deadline, timeout_s)
    remaining = max(MIN_RESTORE_WAIT_S, deadline - time.monotonic())
    restored = _stable_restored_s(rollout, start.stable_hash, spec, watcher.prompted, remaining)
    return {"step": step, **decided, "stable_restored_s": restored}


def _await_decision(
    spec: Step,
    step: str,
    rollout: Rollout,
    watcher: _Watcher,
    start: effects.Snapshot,
    deadline: float,
    timeout_s: float | str,
) -> dict[str, Any]:
    earlier = frozenset(
        rs["metadata"]["labels"][ROLLOUT_HASH_LABEL]
        for rs in rollout.replica_sets()
        if rs["metadata"].get("labels", {}).get(ROLLOUT_HASH_LABEL) not in (None, start.current_hash)
    )
    ending_seen: float | None = None
    while True:
        now = watcher.poll()
        out_of_time = time.monotonic() > deadline
        if watcher.people:
            decided = _judge_write(spec, watcher, watcher.people[0], earlier, final=out_of_time)
        elif watcher.trail is None:
            decided = _judge_without_audit(spec, watcher, start, now, earlier)
        elif _ended_by_itself(spec, start, now, earlier):
            # The audit line of a person's write can land a moment after its effect: wait that long first.
            ending_seen = ending_seen or time.monotonic()
            decided = _missed(spec) if time.monotonic() - ending_seen > AUDIT_LAG_S else None
        else:
            decided = None
        if decided is not None:
            return decided
        if out_of_time:
            raise ClusterError(
                f"human step {step!r}: nobody acted on {rollout!r} within {float(timeout_s):.0f}s "
                f"(last seen: {now.message or 'no message'}). Expected: "
                + "; ".join(c.format(app=rollout.name) for c in spec.commands)
            )
        time.sleep(POLL_S)


def _judge_write(
    spec: Step, watcher: _Watcher, write: Write, earlier: frozenset[str], *, final: bool = False
) -> dict[str, Any] | None:
    """The trainee's first write: what it changed, once its effect is visible. A new template shows only when
    the controller reports its hash, which a loaded controller can take long over: the step waits for it up
    to its own time limit (``final``), and at least EFFECT_WAIT_S for any effect."""
    before, after = watcher.before(write.at), watcher.seen[-1][1]
    # The controller may move the canary on in the same moment: only what this write could do counts.
    scope = effects.STATUS_EFFECTS if write.subresource == "status" else effects.SPEC_EFFECTS
    # A status write shows in the very next state, which the controller may change back at once (an undo
    # clears an abort): every state since counts. A new template is judged once its hash is reported.
    states = watcher.since(write.at) if scope is effects.STATUS_EFFECTS else [after]
    found = next(
        (
            hits
            for state in states
            if (hits := [e for e in effects.classify(before, state, earlier) if e.action in scope])
        ),
        [],
    )
    pending = scope is effects.SPEC_EFFECTS and effects.pending_template(before, after)
    if not final and (pending or (not found and time.time() < write.at + EFFECT_WAIT_S)):
        return None  # the effect is not visible yet
    who = {
        "by": write.user,
        "tool": write.tool,
        "request": write.describe(),
        "response_s": round(write.at - watcher.prompted, 2),
        "human-step_at": write.at,
    }
    if not write.allowed:
        return {**who, "action": "refused", "verdict": WRONG, "why": f"the API server refused it ({write.code})"}
    if not found:
        return {**who, "action": "no effect", "verdict": WRONG, "why": "the change did not act on the release"}
    verdict, why = spec.judge(found[0].action)
    # A right move means the trainee noticed the problem: in training mode that is the detection.
    noticed = {"detected_at": write.at} if verdict == RIGHT else {}
    return {**who, **noticed, "action": found[0].describe(), "verdict": verdict, "why": why}


def _ended_by_itself(spec: Step, start: effects.Snapshot, now: effects.Snapshot, earlier: frozenset[str]) -> bool:
    if spec.ends_by_itself is None:
        return False
    effect = spec.ends_by_itself[0]
    if effect == COMPLETED:
        return now.trusted and now.stable_hash != start.stable_hash and now.stable_hash == now.current_hash
    return any(e.action == effect for e in effects.classify(start, now, earlier))


def _missed(spec: Step) -> dict[str, Any]:
    told = spec.ends_by_itself[1] if spec.ends_by_itself else "nobody acted"
    return {
        "action": "none",
        "verdict": MISSED,
        "why": told,
        "by": "",
        "tool": "",
        "request": "",
        "response_s": None,
        "human-step_at": time.time(),
    }


def _judge_without_audit(
    spec: Step, watcher: _Watcher, start: effects.Snapshot, now: effects.Snapshot, earlier: frozenset[str]
) -> dict[str, Any] | None:
    """No audit log: an effect only a person makes is the trainee's; an analysis abort or a step advance may
    be the controller's own, and ends the step only as the step's own ending."""
    personal = [
        e
        for e in effects.classify(start, now, earlier)
        if e.action not in effects.CONTROLLER_TOO and not (e.action == effects.ABORT and e.detail)
    ]
    if not personal:
        return _missed(spec) if _ended_by_itself(spec, start, now, earlier) else None
    verdict, why = spec.judge(personal[0].action)
    at = watcher.seen[-1][0]
    return {
        "action": personal[0].describe(),
        "verdict": verdict,
        "why": why,
        "by": "unknown (no audit log)",
        "tool": "unknown",
        "request": "",
        "response_s": round(at - watcher.prompted, 2),
        "human-step_at": at,
    }


def _stable_restored_s(rollout: Rollout, stable: str, spec: Step, prompted: float, timeout_s: float) -> float | None:
    """Seconds from the prompt until every Ready pod runs the stable revision of before the step (and, for a
    step that must leave it Healthy, the Rollout is Healthy on it); None when a new stable took its place
    or it did not happen within ``timeout_s``."""
    desired = int(rollout.get()["spec"].get("replicas", 1))
    selector = ",".join(f"{k}={v}" for k, v in rollout.get()["spec"]["selector"]["matchLabels"].items())

    def restored(pods: list[dict[str, Any]]) -> float | None:
        status = read_status(rollout.get())
        if status.trusted and status.stable_hash != stable:
            return -1.0  # the release went through: the old stable is not coming back
        ready = [p for p in pods if pod_ready(p)]
        on_stable = {p["metadata"].get("labels", {}).get(ROLLOUT_HASH_LABEL) for p in ready} == {stable}
        healthy = status.trusted and status.phase == "Healthy" and status.stable_is_current and not status.aborted
        if on_stable and len(ready) >= desired and (healthy or not spec.restored_needs_healthy):
            return round(time.time() - prompted, 2)
        return None

    try:
        found = rollout.kube.wait(
            resources.POD,
            restored,
            namespace=rollout.namespace,
            label_selector=selector,
            timeout_s=timeout_s,
            what="the stable version serving every user again",
        )
    except ClusterError:
        return None
    return None if found < 0 else found


def wait_for_canary_stopped(configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    """Training mode's detection: the canary's AnalysisRun failed, or the trainee stopped the canary first
    (an abort terminates the analysis before it can fail)."""
    from pytest_mnops.chaos.activities import budget, wait_for_analysis_failed

    rollout = Rollout(_kube(configuration), namespace=configuration["namespace"], name=configuration["app"])
    status = rollout.status()
    by_analysis = status.aborted and effects.ANALYSIS_ABORT_MARK in status.message
    if (status.aborted and not by_analysis) or status.stable_is_current:
        return {"stopped_by": "operator", "failed_metrics": [], "detected_at": time.time()}
    return {"stopped_by": "analysis", **wait_for_analysis_failed(configuration, budget(configuration, timeout_s))}
