"""Training mode's judgement without a cluster: effects of Rollout changes, audit records, verdicts, the
scoreboard, the room's names and environment, and the client tools' lookup."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.errors import ConfigError
from pytest_mnops.reporting.narration import narrate
from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.binaries import path_export
from pytest_mnops.timeline import OPERATOR_PROMPT, Event
from pytest_mnops.training import effects, scoreboard, scoreboard_html, steps
from pytest_mnops.training.audit import AuditTrail, Write, parse
from pytest_mnops.training.room import Room, Trainee, trainee_names

STABLE, CANARY, OLD = "stable1", "canary2", "older0"


def rollout(**status: Any) -> dict[str, Any]:
    """A canary Rollout mid-flight (step 1, timed pause), with ``status`` fields overridden."""
    spec_over = status.pop("spec", {})
    generation = status.pop("generation", 2)
    base = {
        "observedGeneration": str(generation),
        "currentStepIndex": 1,
        "pauseConditions": [{"reason": "CanaryPauseStep"}],
        "stableRS": STABLE,
        "currentPodHash": CANARY,
        "message": "",
    }
    image = status.pop("image", "app:1.1.0-faulty")
    return {
        "metadata": {"name": "machine-native-ops", "generation": generation, "resourceVersion": "1"},
        "spec": {"replicas": 10, "template": {"spec": {"containers": [{"image": image}]}}, **spec_over},
        "status": {**base, **status},
    }


def snap(**status: Any) -> effects.Snapshot:
    return effects.Snapshot.of(rollout(**status))


EARLIER = frozenset({STABLE, OLD})


@pytest.mark.parametrize(
    ("after", "action"),
    [
        ({"abort": True, "pauseConditions": None, "currentStepIndex": 0}, effects.ABORT),
        ({"generation": 3, "currentPodHash": STABLE, "image": "app:1.0.0"}, effects.UNDO),
        ({"generation": 3, "currentPodHash": "new3", "image": "app:1.2.0"}, effects.SET_IMAGE),
        ({"pauseConditions": None}, effects.PROMOTE),
        ({"currentStepIndex": 2}, effects.PROMOTE),
        ({"promoteFull": True}, effects.PROMOTE_FULL),
        ({"spec": {"paused": True}}, effects.PAUSE),
    ],
)
def test_each_command_is_recognised_by_its_effect(after: dict[str, Any], action: str) -> None:
    found = effects.classify(snap(), snap(**after), EARLIER)
    assert found and found[0].action == action, found


def test_retry_and_resume_undo_an_earlier_state() -> None:
    aborted = snap(abort=True)
    assert [e.action for e in effects.classify(aborted, snap(), EARLIER)] == [effects.RETRY]
    paused = snap(spec={"paused": True})
    assert effects.RESUME in [e.action for e in effects.classify(paused, snap(), EARLIER)]


def test_an_analysis_abort_is_marked_and_an_unobserved_template_is_pending() -> None:
    message = 'RolloutAborted: Metric "error-rate" assessed Failed due to failed (2) > failureLimit (1)'
    found = effects.classify(snap(), snap(abort=True, message=message), EARLIER)
    assert found == [effects.Effect(effects.ABORT, "analysis failed")]
    unobserved = effects.Snapshot.of({**rollout(image="app:1.0.0"), "metadata": {"name": "x", "generation": 3}})
    assert effects.pending_template(snap(), unobserved) and not effects.classify(snap(), unobserved, EARLIER)
    # observed, but its hash not reported yet (the controller can write the two a moment apart)
    unhashed = snap(generation=3, image="app:1.0.0")
    assert effects.pending_template(snap(), unhashed) and not effects.classify(snap(), unhashed, EARLIER)
    assert effects.classify(snap(), snap(), EARLIER) == []
    assert not effects.pending_template(snap(), snap(generation=3, spec={"paused": True}))


def test_verdicts_name_why_a_move_is_wrong() -> None:
    assert steps.STOP_CANARY.judge(effects.ABORT)[0] == steps.RIGHT
    assert steps.STOP_CANARY.judge(effects.UNDO)[0] == steps.RIGHT
    verdict, why = steps.STOP_CANARY.judge(effects.PROMOTE)
    assert verdict == steps.WRONG and "failing canary" in why
    assert steps.RESTORE_STABLE.judge(effects.RETRY) == (steps.WRONG, "retry starts the failing canary again")
    assert steps.ROLL_BACK.judge(effects.RESUME)[0] == steps.WRONG


def test_the_prompt_narrates_the_real_commands() -> None:
    line = narrate("canary-failure", Event(OPERATOR_PROMPT, time.time(), "rollout-aborted"), training=True)
    assert "kubectl argo rollouts abort machine-native-ops" in line
    assert "kubectl argo rollouts get rollout machine-native-ops --watch" in line
    assert "kubectl argo rollouts undo shop" in steps.prompt_for("operator-restores-stable", "shop")
    assert steps.prompt_for("some-other-activity", "shop") is None
    plain = narrate("canary-failure", Event(OPERATOR_PROMPT, time.time(), "rollout-aborted"), training=False)
    assert "kubectl" not in plain


def audit_line(**over: Any) -> dict[str, Any]:
    event = {
        "stage": "ResponseComplete",
        "verb": "patch",
        "user": {"username": "system:serviceaccount:room-ada:trainee"},
        "userAgent": "kubectl-argo-rollouts/v0.0.0 (linux/amd64) kubernetes/$Format",
        "objectRef": {"resource": "rollouts", "subresource": "status", "namespace": "room-ada",
                      "name": "machine-native-ops"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-12-01T08:00:01.250000Z",
    }  # fmt: skip
    return {**event, **over}


def test_audit_records_name_the_person_and_the_tool() -> None:
    write_name = "machine-native-ops"
    write = parse(audit_line(), namespace="room-ada", name=write_name)
    assert write is not None and write.tool == "kubectl argo rollouts" and not write.by_controller
    assert (
        write.describe()
        == "system:serviceaccount:room-ada:trainee via kubectl argo rollouts: patch rollouts/status -> 200"
    )
    assert write.at == pytest.approx(1796112001.25)
    controller = parse(
        audit_line(userAgent="rollouts-controller/v1.9.2"), namespace="room-ada", name="machine-native-ops"
    )
    assert controller is not None and controller.by_controller
    for other in ({"verb": "get"}, {"stage": "ResponseStarted"}, {"objectRef": {"resource": "pods"}}):
        assert parse(audit_line(**other), namespace="room-ada", name="machine-native-ops") is None
    assert parse(audit_line(), namespace="room-bob", name="machine-native-ops") is None
    refused = parse(audit_line(responseStatus={"code": 403}), namespace="room-ada", name="machine-native-ops")
    assert refused is not None and not refused.allowed


def test_audit_trail_reads_only_new_whole_lines_and_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(audit_line()) + "\n")
    trail = AuditTrail(log, namespace="room-ada", name="machine-native-ops")
    assert trail.writes() == []  # what was there before the trail opened is not this step's
    line = json.dumps(audit_line(verb="update"))
    with log.open("a") as out:
        out.write(line[:40])
    assert trail.writes() == []  # half a line: the server is still writing it
    with log.open("a") as out:
        out.write(line[40:] + "\nnot json\n")
    assert [w.verb for w in trail.writes()] == ["update"]
    log.write_text(json.dumps(audit_line(verb="delete")) + "\n")  # rotated: a new, shorter file
    assert [w.verb for w in trail.writes()] == ["delete"]


def test_room_names_are_checked() -> None:
    assert trainee_names(2, []) == ["trainee-1", "trainee-2"]
    assert trainee_names(2, ["ada", "bob"]) == ["ada", "bob"]
    for bad in (["ada"], ["Ada", "bob"], ["ada", "ada"], ["a_b", "c"]):
        with pytest.raises(ConfigError):
            trainee_names(2, bad)


def test_scoreboard_lists_every_trainee_with_their_figures_in_text_html_and_json(tmp_path: Path) -> None:
    step = {"step": "operator-rollback", "action": "abort", "verdict": "right", "why": "abort is the move here",
            "response_s": 3.4, "stable_restored_s": 4.1, "by": "system:serviceaccount:room-a:trainee",
            "tool": "kubectl argo rollouts"}  # fmt: skip
    report = tmp_path / "a.json"
    report.write_text(json.dumps({"drills": [{"drill": "emergency-rollback", "verdict": "proved", "mttr_s": 9.5,
                                              "human_steps": [step], "problems": []}]}))  # fmt: skip
    trainees = [
        Trainee("a", "room-a", "k", "e", str(tmp_path / "a.log"), str(report)),
        Trainee("b", "room-b", "k", "e", str(tmp_path / "b.log"), str(tmp_path / "missing.json")),
    ]
    scores = scoreboard.collect(Room(str(tmp_path), "room", trainees), "emergency-rollback")
    assert [s.trainee for s in scores] == ["a", "b"]
    assert scores[0].right == 1 and scores[0].steps[0].response_s == 3.4
    assert scores[1].drill_verdict == "no report" and "b.log" in scores[1].problems[0]
    text = scoreboard.render_text("emergency-rollback", scores)
    assert "3.4s" in text and "4.1s" in text and "a: 1/1 right, drill proved, MTTR 9.5s" in text
    assert "the drill wrote no result" in text
    page = scoreboard_html.render("emergency-rollback", scores)
    assert "<tr class='right'><td>a</td>" in page and "3.4 s" in page
    wire = scoreboard.to_json("emergency-rollback", scores)
    assert wire["trainees"][0]["steps"][0]["verdict"] == "right" and wire["trainees"][1]["steps"] == []


def fake_binary(directory: Path, name: str, output: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_client_tools_on_path_are_used_only_at_a_supported_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNOPS_CACHE_DIR", str(tmp_path / "cache"))
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    fake_binary(old, "kubectl", "Client Version: v1.20.15")
    current = fake_binary(new, "kubectl", "Client Version: v1.34.2")
    plugin = fake_binary(new, "kubectl-argo-rollouts", "kubectl-argo-rollouts: v1.9.2")
    monkeypatch.setenv("PATH", f"{old}")
    monkeypatch.delenv("MNOPS_SANDBOX_BIN", raising=False)
    assert binaries.find("kubectl") is None  # Debian's 1.20 is passed over; nothing built in this cache
    monkeypatch.setenv("PATH", f"{old}:{new}")
    assert binaries.find("kubectl") is None  # the first one on PATH decides, as a shell would
    monkeypatch.setenv("PATH", f"{new}:{old}")
    assert binaries.find("kubectl") == current and binaries.find("kubectl-argo-rollouts") == plugin
    assert binaries.client_tool_dirs() == [new]
    assert path_export([new, Path("/a b")]) == f"export PATH={new}:'/a b':\"$PATH\""


def test_a_write_is_judged_only_by_what_it_could_do() -> None:
    """The controller moved the canary on (step 1 -> 2) in the moment the trainee undid: still an undo."""
    watcher = steps._Watcher(rollout=None, trail=None)  # type: ignore[arg-type]
    at = time.time()
    undo = Write(at=at, user="sa", agent="kubectl-argo-rollouts/v1.9.2", verb="patch", subresource="", code=200)
    watcher.seen = [(at - 1, snap()), (at + 0.1, snap(currentStepIndex=2, pauseConditions=None))]
    watcher.seen.append((at + 0.2, snap(generation=3, currentStepIndex=2, pauseConditions=None, image="app:1.0.0")))
    assert steps._judge_write(steps.ROLL_BACK, watcher, undo, EARLIER) is None  # hash not reported yet
    hashed = snap(generation=3, currentStepIndex=0, currentPodHash=STABLE, image="app:1.0.0")
    watcher.seen.append((at + 0.3, hashed))
    judged = steps._judge_write(steps.ROLL_BACK, watcher, undo, EARLIER)
    assert judged is not None and judged["action"].startswith("undo") and judged["verdict"] == steps.RIGHT
    assert judged["tool"] == "kubectl argo rollouts" and judged["detected_at"] == at


def test_a_status_write_is_judged_by_the_state_it_made_even_when_the_next_one_undoes_it() -> None:
    """`mnops rollback` aborts, then undoes 23 ms later, and the undo clears the abort: still an abort."""
    watcher = steps._Watcher(rollout=None, trail=None)  # type: ignore[arg-type]
    at = time.time()
    abort = Write(at=at, user="sa", agent="pytest-mnops/0.1", verb="patch", subresource="status", code=200)
    aborted = snap(abort=True, pauseConditions=None, currentStepIndex=0)
    undone = snap(generation=3, currentPodHash=STABLE, image="app:1.0.0")
    watcher.seen = [(at - 1, snap()), (at + 0.01, aborted), (at + 0.03, undone)]
    judged = steps._judge_write(steps.ROLL_BACK, watcher, abort, EARLIER)
    assert judged is not None and (judged["action"], judged["verdict"]) == ("abort", steps.RIGHT), judged
    assert judged["tool"] == "mnops"
