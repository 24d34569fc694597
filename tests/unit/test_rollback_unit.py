"""Rollback logic without a cluster: plans, snapshots, health rules, retries, watch, notifications, CLI."""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pytest_mnops.cli import rollback as rollback_cli
from pytest_mnops.errors import ClusterError, ConfigError, RollbackError, WaitTimeout
from pytest_mnops.names import ROLLOUT_HASH_LABEL, SANDBOX_CONTEXT
from pytest_mnops.notify import Delivery, Message, Notifier, redact_url, slack_payload
from pytest_mnops.rollback import (
    HealthReport,
    RollbackHelper,
    RollbackResult,
    SloReading,
    plan_rollback,
    snapshot_document,
)
from pytest_mnops.rollouts import REVISION_ANNOTATION, read_status
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.standins.receivers import Receivers
from pytest_mnops.target import Target

Obj = dict[str, Any]
NS, NAME = "shop", "machine-native-ops"


def rollout_obj(
    *,
    current: str,
    stable: str,
    aborted: bool = False,
    phase: str = "Paused",
    observed: str = "2",
    paused: bool = False,
) -> Obj:
    status: Obj = {
        "phase": phase,
        "currentPodHash": current,
        "stableRS": stable,
        "observedGeneration": observed,
        "availableReplicas": 10,
    }
    if aborted:
        status["abort"] = True
    return {
        "metadata": {"name": NAME, "namespace": NS, "generation": 2, "resourceVersion": "41"},
        "spec": {
            "replicas": 10,
            "paused": paused,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {"metadata": {"labels": {"app": NAME}}, "spec": {"containers": []}},
        },
        "status": status,
    }


def replica_set(revision: int, pod_hash: str, image: str = "app:1") -> Obj:
    return {
        "metadata": {
            "name": f"{NAME}-{pod_hash}",
            "labels": {"app": NAME, ROLLOUT_HASH_LABEL: pod_hash},
            "annotations": {REVISION_ANNOTATION: str(revision)},
        },
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"labels": {"app": NAME, ROLLOUT_HASH_LABEL: pod_hash}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
        "status": {"readyReplicas": 1},
    }


def pod(pod_hash: str, *, ready: bool = True) -> Obj:
    return {
        "metadata": {"name": f"{NAME}-{pod_hash}-x", "labels": {"app": NAME, ROLLOUT_HASH_LABEL: pod_hash}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


HISTORY = [replica_set(1, "aaa", "app:1"), replica_set(2, "bbb", "app:2"), replica_set(3, "ccc", "app:3")]


# -- plan -----------------------------------------------------------------------------------------------


def test_mid_canary_plan_aborts_and_returns_to_the_stable_replica_set() -> None:
    plan = plan_rollback(rollout_obj(current="ccc", stable="bbb"), HISTORY)
    assert (plan.from_revision, plan.to_revision, plan.to_hash) == (3, 2, "bbb")
    assert plan.abort and not plan.promote_full
    assert plan.steps()[0].startswith("abort the update to revision 3")


def test_an_update_already_aborted_is_only_undone() -> None:
    plan = plan_rollback(rollout_obj(current="ccc", stable="bbb", aborted=True, phase="Degraded"), HISTORY)
    assert plan.to_revision == 2 and not plan.abort and not plan.promote_full


def test_a_completed_update_goes_to_the_previous_revision_skipping_the_canary_steps() -> None:
    plan = plan_rollback(rollout_obj(current="ccc", stable="ccc", phase="Healthy"), HISTORY)
    assert plan.to_revision == 2 and not plan.abort and plan.promote_full
    assert any(step.startswith("promote-full") for step in plan.steps())


def test_a_manually_paused_rollout_is_resumed_after_the_undo(tmp_path: Path) -> None:
    obj = rollout_obj(current="ccc", stable="bbb", paused=True)
    assert plan_rollback(obj, HISTORY).resume
    fake = FakeRollout(obj, HISTORY)
    helper, _ = make_helper(tmp_path, fake, [pod("bbb")])
    assert helper.rollback("paused canary").verified and fake.calls == ["abort", "undo 2", "resume"]


def test_an_explicit_revision_wins_over_the_stable_one() -> None:
    plan = plan_rollback(rollout_obj(current="ccc", stable="bbb"), HISTORY, to_revision=1)
    assert (plan.to_revision, plan.to_hash) == (1, "aaa") and plan.abort and plan.promote_full


@pytest.mark.parametrize(
    ("obj", "history", "to_revision", "expected"),
    [
        (rollout_obj(current="ccc", stable="bbb"), HISTORY, 7, "has no revision 7 (revisions: 1, 2, 3)"),
        (rollout_obj(current="aaa", stable="aaa"), HISTORY[:1], None, "has no earlier one"),
        (rollout_obj(current="ccc", stable="bbb"), HISTORY, 3, "already runs revision 3"),
        (rollout_obj(current="ccc", stable="bbb"), [], None, "has no ReplicaSet revisions"),
    ],
)
def test_impossible_plans_name_the_rollout_and_the_fix(
    obj: Obj, history: list[Obj], to_revision: int | None, expected: str
) -> None:
    with pytest.raises(RollbackError, match="Fix:") as info:
        plan_rollback(obj, history, to_revision=to_revision)
    assert expected in str(info.value) and f"Rollout {NAME!r} in namespace {NS!r}" in str(info.value)


def test_snapshot_document_lists_revisions_hashes_and_images() -> None:
    doc = snapshot_document(rollout_obj(current="ccc", stable="bbb"), HISTORY, taken_at="2024-01-01T00:00Z")
    assert json.loads(json.dumps(doc)) == doc
    assert doc["rollout"]["status"]["stableRS"] == "bbb"
    assert doc["rollout"]["metadata"]["resourceVersion"] == "41"
    assert [(rs["revision"], rs["pod_template_hash"], rs["images"]) for rs in doc["replica_sets"]] == [
        (1, "aaa", ["app:1"]),
        (2, "bbb", ["app:2"]),
        (3, "ccc", ["app:3"]),
    ]


# -- health ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "limit", "upper", "breached"),
    [
        (0.5, 0.95, False, True),
        (0.99, 0.95, False, False),
        (0.02, 0.01, True, True),
        (None, 0.01, True, False),
    ],
)
def test_slo_breach_rules(value: float | None, limit: float, upper: bool, breached: bool) -> None:
    assert SloReading("x", "expr", value, limit, upper).breached is breached


def test_degraded_counts_only_on_a_trusted_status() -> None:
    stale = HealthReport(read_status(rollout_obj(current="c", stable="b", phase="Degraded", observed="1")))
    seen = HealthReport(read_status(rollout_obj(current="c", stable="b", phase="Degraded")))
    assert not stale.unhealthy and seen.unhealthy and seen.problems()[0].startswith("Rollout Degraded")


def test_a_canary_in_progress_is_neither_healthy_nor_unhealthy() -> None:
    report = HealthReport(read_status(rollout_obj(current="c", stable="b", phase="Paused")))
    assert not report.healthy and not report.unhealthy


# -- the helper with a fake cluster ---------------------------------------------------------------------


class FakeRollout:
    """Records verbs; ``failures`` API errors are raised by undo before it succeeds."""

    def __init__(self, obj: Obj, history: list[Obj], *, failures: int = 0) -> None:
        self.obj, self.history, self.failures = obj, history, failures
        self.calls: list[str] = []

    def get(self) -> Obj:
        return self.obj

    def replica_sets(self) -> list[Obj]:
        return self.history

    def abort(self) -> None:
        self.calls.append("abort")

    def undo(self, to_revision: int | None = None, *, dry_run: bool = False) -> None:
        self.calls.append(f"undo {to_revision}{' dry-run' if dry_run else ''}")
        if not dry_run and self.failures:
            self.failures -= 1
            raise ClusterError("PATCH rollouts/machine-native-ops: 503 etcdserver: leader changed")
        if not dry_run:
            stable = next(
                rs for rs in self.history if int(rs["metadata"]["annotations"][REVISION_ANNOTATION]) == to_revision
            )["metadata"]["labels"][ROLLOUT_HASH_LABEL]
            self.obj["status"].update(phase="Healthy", currentPodHash=stable, stableRS=stable)

    def resume(self) -> None:
        self.calls.append("resume")

    def promote_full(self) -> None:
        self.calls.append("promote-full")

    def wait_for(self, **expected: Any) -> Any:
        status = read_status(self.obj)
        if status.phase != expected["phase"] or not status.stable_is_current:
            raise WaitTimeout(f"last seen: {status.describe()}")
        return status


class FakeKube:
    def __init__(self, pods: list[Obj]) -> None:
        self.pods = pods

    def wait(self, resource: Any, predicate: Callable[[list[Obj]], Any], **kwargs: Any) -> Any:
        result = predicate(self.pods)
        if not result:
            raise WaitTimeout(f"timed out waiting for {kwargs['what']}")
        return result


class RecordingNotifier(Notifier):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Message] = []

    def send(self, message: Message) -> list[Delivery]:
        self.sent.append(message)
        return [Delivery("slack", "http://hooks.example/...", True, "HTTP 200")]


def make_helper(tmp_path: Path, rollout: FakeRollout, pods: list[Obj]) -> tuple[RollbackHelper, RecordingNotifier]:
    notifier = RecordingNotifier()
    helper = RollbackHelper(
        cast(Any, FakeKube(pods)), namespace=NS, name=NAME, snapshot_dir=tmp_path, notifier=notifier, backoff_s=0
    )
    helper.rollout = cast(Any, rollout)
    return helper, notifier


def test_rollback_retries_api_errors_then_verifies_and_notifies(tmp_path: Path) -> None:
    fake = FakeRollout(rollout_obj(current="ccc", stable="bbb"), HISTORY, failures=2)
    helper, notifier = make_helper(tmp_path, fake, [pod("bbb"), pod("bbb"), pod("ccc", ready=False)])
    result = helper.rollback("p95 over budget", retries=3)
    assert result.verified and result.error is None and result.attempts == 3
    assert fake.calls == ["abort", "undo 2"] * 3
    assert json.loads(result.snapshot.read_text())["rollout"]["status"]["currentPodHash"] == "ccc"
    assert [m.subject for m in notifier.sent] == [f"[mnops] Rollback verified: {NS}/{NAME} revision 3 -> 2"]
    assert result.notifications[0].ok and "VERIFIED" in result.summary()[0]


def test_rollback_that_keeps_failing_is_reported_and_still_notified(tmp_path: Path) -> None:
    fake = FakeRollout(rollout_obj(current="ccc", stable="bbb"), HISTORY, failures=10)
    helper, notifier = make_helper(tmp_path, fake, [])
    result = helper.rollback("error rate", retries=1)
    assert not result.verified and result.attempts == 2
    assert result.error is not None and "failed after 2 attempts" in result.error and "Fix:" in result.error
    assert notifier.sent[0].subject.startswith("[mnops] Rollback FAILED") and not notifier.sent[0].ok
    assert dict(notifier.sent[0].fields)["Error"] == result.error


def test_verification_fails_while_a_canary_pod_still_serves(tmp_path: Path) -> None:
    fake = FakeRollout(rollout_obj(current="ccc", stable="bbb"), HISTORY)
    helper, _ = make_helper(tmp_path, fake, [pod("bbb"), pod("ccc")])
    result = helper.rollback("drill", timeout_s=1)
    assert not result.verified and result.error is not None and "pod-template-hash bbb" in result.error


def test_dry_run_validates_the_undo_server_side_and_sends_nothing(tmp_path: Path) -> None:
    fake = FakeRollout(rollout_obj(current="ccc", stable="bbb"), HISTORY)
    helper, notifier = make_helper(tmp_path, fake, [])
    result = helper.rollback("rehearsal", dry_run=True)
    assert fake.calls == ["undo 2 dry-run"] and notifier.sent == [] and result.attempts == 0
    assert result.summary()[0].startswith("DRY RUN, nothing changed") and result.snapshot.is_file()


class ScriptedHelper(RollbackHelper):
    """Health from a script; rollback only records its reason."""

    def __init__(self, script: list[HealthReport], tmp_path: Path) -> None:
        super().__init__(cast(Any, None), namespace=NS, name=NAME, snapshot_dir=tmp_path)
        self.script, self.reasons = iter(script), []

    def health(self) -> HealthReport:
        return next(self.script)

    def rollback(self, reason: str, **kwargs: Any) -> Any:
        self.reasons.append(reason)
        return reason


def _report(phase: str, error_rate: float | None = None, *, current: str = "c") -> HealthReport:
    slos = () if error_rate is None else (SloReading("error_rate", "q", error_rate, 0.01, True),)
    return HealthReport(read_status(rollout_obj(current=current, stable="b", phase=phase)), slos)


def test_watch_rolls_back_when_an_slo_breach_persists(tmp_path: Path) -> None:
    helper = ScriptedHelper([_report("Paused", 0.2)] * 50, tmp_path)
    seen: list[HealthReport] = []
    assert helper.watch(interval_s=0.01, unhealthy_for_s=0.03, max_duration_s=5, on_check=seen.append)
    assert len(seen) >= 3 and helper.reasons[0].startswith("automatic: error_rate=0.2 (SLO <= 0.01) for")


def test_watch_leaves_a_completed_release_alone(tmp_path: Path) -> None:
    # Right after a rollback the SLO window still holds the bad canary's errors; "previous revision" would
    # now be that bad release.
    residue = _report("Healthy", 0.2, current="b")
    assert residue.unhealthy and not residue.rollback_warranted
    helper = ScriptedHelper([residue] * 50, tmp_path)
    assert helper.watch(interval_s=0.01, unhealthy_for_s=0.02, max_duration_s=0.1) is None


def test_watch_forgives_a_blip_and_ends_healthy(tmp_path: Path) -> None:
    script = [_report("Degraded"), _report("Healthy", 0.0)] * 25
    helper = ScriptedHelper(script, tmp_path)
    assert helper.watch(interval_s=0.01, unhealthy_for_s=0.05, max_duration_s=0.2) is None
    assert helper.reasons == []


# -- notifications against the in-process receivers -----------------------------------------------------


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with Receivers() as running:
        yield running


def _result(tmp_path: Path, *, verified: bool = True) -> RollbackResult:
    plan = plan_rollback(rollout_obj(current="ccc", stable="bbb"), HISTORY)
    return RollbackResult(
        reason="p95 1.2s on the canary",
        plan=plan,
        dry_run=False,
        started_at="2024-01-01T00:00:00.000+00:00",
        finished_at="2024-01-01T00:00:06.200+00:00",
        duration_s=6.2,
        snapshot=tmp_path / "snap.json",
        attempts=1,
        verified=verified,
    )


def test_notifications_reach_slack_and_email_receivers(receivers: Receivers, tmp_path: Path) -> None:
    host, port = receivers.smtp_address
    notifier = Notifier(slack_url=f"{receivers.url}/slack", smtp=(host, port), email_to=("sre@example.test",))
    deliveries = notifier.send(_result(tmp_path).message())
    assert [(d.channel, d.ok) for d in deliveries] == [("slack", True), ("email", True)]
    slack = receivers.inbox.items("slack")[0]["payload"]
    assert slack["text"].startswith(f"[mnops] Rollback verified: {NS}/{NAME} revision 3 -> 2")
    fields = " ".join(f["text"] for f in slack["blocks"][2]["fields"])
    assert "p95 1.2s on the canary" in fields and "6.2s" in fields
    mail = receivers.inbox.items("email")[0]["payload"]
    assert mail["to"] == ["sre@example.test"] and "revision 3 -> 2" in mail["subject"]
    assert "Reason: p95 1.2s on the canary" in mail["body"] and "Duration: 6.2s" in mail["body"]


def test_a_dead_channel_is_reported_not_raised_and_hides_the_webhook_token(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        secret_url = f"http://127.0.0.1:{port}/services/T000/B000/s3cr3t-token"
        notifier = Notifier(slack_url=secret_url, smtp=("127.0.0.1", port), email_to=("a@example.test",), timeout_s=2)
        deliveries = notifier.send(_result(tmp_path, verified=False).message())
    assert [(d.channel, d.ok) for d in deliveries] == [("slack", False), ("email", False)]
    shown = " ".join(d.describe() for d in deliveries) + repr(notifier)
    assert "s3cr3t" not in shown and redact_url(secret_url) == f"http://127.0.0.1:{port}/..."


def test_slack_payload_caps_fields_at_slacks_limit() -> None:
    message = Message("s", "t", tuple((f"k{i}", "v") for i in range(12)))
    assert len(slack_payload(message)["blocks"][2]["fields"]) == 10


def test_notifier_from_env() -> None:
    env = {
        "MNOPS_SLACK_WEBHOOK_URL": "https://hooks.example/x",
        "MNOPS_SMTP_HOST": "smtp.example",
        "MNOPS_SMTP_PORT": "587",
        "MNOPS_NOTIFY_EMAIL_TO": "a@x.test, b@x.test",
    }
    notifier = Notifier.from_env(env)
    assert (notifier.slack_url, notifier.smtp, notifier.email_to) == (
        "https://hooks.example/x",
        ("smtp.example", 587),
        ("a@x.test", "b@x.test"),
    )
    assert Notifier.from_env({}).channels() == []
    with pytest.raises(ConfigError, match="MNOPS_SMTP_PORT"):
        Notifier.from_env({**env, "MNOPS_SMTP_PORT": "smtp"})
    with pytest.raises(ConfigError, match="MNOPS_NOTIFY_EMAIL_TO"):
        Notifier.from_env({"MNOPS_SMTP_HOST": "smtp.example"})


def test_notifier_for_a_sandbox_target_uses_its_receivers(tmp_path: Path) -> None:
    settings = SandboxSettings(state_dir=str(tmp_path), port_base=41000)
    tmp_path.mkdir(exist_ok=True)
    settings.save()
    target = cast(Target, SimpleNamespace(sandbox=True, sandbox_dir=tmp_path, receivers_url=settings.receivers_url))
    notifier = Notifier.for_target(target)
    assert notifier.slack_url == f"{settings.receivers_url}/slack"
    assert notifier.smtp == ("127.0.0.1", settings.ports.smtp) and notifier.email_to
    missing = cast(Target, SimpleNamespace(sandbox=True, sandbox_dir=tmp_path / "nope", receivers_url=None))
    with pytest.raises(ConfigError, match="mnops sandbox up"):
        Notifier.for_target(missing)


# -- CLI ------------------------------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mnops")
    rollback_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def test_cli_defaults_come_from_the_mnops_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNOPS_NAMESPACE", "payments")
    args = _parse("rollback", "--dry-run", "--to-revision", "4")
    assert (args.namespace, args.app, args.dry_run, args.to_revision) == ("payments", NAME, True, 4)
    assert args.func is rollback_cli._rollback


def test_cli_options_before_watch_survive_the_subcommand() -> None:
    args = _parse("rollback", "--namespace", "shop", "--sandbox", "watch", "--unhealthy-for", "10")
    assert (args.namespace, args.sandbox, args.unhealthy_for, args.interval) == ("shop", True, 10.0, 5.0)
    assert args.func is rollback_cli._watch


def test_cli_recognises_the_sandbox_context_and_needs_its_settings(tmp_path: Path) -> None:
    args = _parse("rollback", "--context", SANDBOX_CONTEXT, "--sandbox-dir", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match=r"no sandbox in .*mnops sandbox up"):
        rollback_cli._helper(args)
