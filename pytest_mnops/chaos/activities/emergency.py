"""emergency-rollback: the operator's rollback (the helper `mnops rollback` uses) and its notification on every
channel."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pytest_mnops.chaos.activities._shared import (
    Configuration,
    _alerts,
    _handoff,
    _kube,
    _profile,
    _prometheus,
    _rollout,
    _run_started,
    budget,
)
from pytest_mnops.errors import ClusterError, ConfigError
from pytest_mnops.names import SNAPSHOT_DIR
from pytest_mnops.profile.versions import RUN_ANNOTATION
from pytest_mnops.rollback.result import rollback_of


def _notifier(configuration: Configuration) -> Any:
    from pytest_mnops.notify import Notifier

    return Notifier.for_run(
        sandbox=bool(configuration.get("sandbox")),
        sandbox_dir=configuration.get("sandbox_dir", ""),
        receivers_url=configuration.get("receivers_url"),
    )


def emergency_rollback(reason: str, configuration: Configuration) -> dict[str, Any]:
    """The operator's move, through the same helper `mnops rollback` uses (snapshot, abort, undo, verify)."""
    from pytest_mnops.rollback.helper import RollbackHelper

    notifier = _notifier(configuration)
    if not notifier.channels():
        raise ConfigError(
            "emergency-rollback proves the rollback notification, but no channel is configured. Fix: set "
            "MNOPS_SLACK_WEBHOOK_URL and/or MNOPS_SMTP_HOST + MNOPS_NOTIFY_EMAIL_TO (docs/runbooks.md)."
        )
    helper = RollbackHelper(
        _kube(configuration),
        namespace=configuration["namespace"],
        name=configuration["app"],
        prometheus=_prometheus(configuration),
        snapshot_dir=Path(SNAPSHOT_DIR),
        notifier=notifier,
        slos=_profile(configuration).slos(),
    )
    result = helper.rollback(reason)
    if not result.verified:
        raise ClusterError(f"rollback of {configuration['app']} did not verify: {result}")
    sent = [{"channel": n.channel, "ok": n.ok, "detail": n.detail} for n in result.notifications]
    _handoff(configuration)["rollback_notifications"] = sent
    return {"duration_s": result.duration_s, "notified": [n["channel"] for n in sent if n["ok"]]}


def _this_runs_rollback(configuration: Configuration) -> str:
    """The words of a notification about this run's rollback: the Rollout and the revision of this run's canary
    (its pod template carries the run id), as `mnops rollback` words it (rollback_of)."""
    run_id, rollout = configuration["run_id"], _rollout(configuration)
    for revision, replica_set in rollout.revisions().items():
        if (replica_set["spec"]["template"]["metadata"].get("annotations") or {}).get(RUN_ANNOTATION) == run_id:
            return rollback_of(f"{rollout.namespace}/{rollout.name}", revision)
    raise ClusterError(
        f"no revision of Rollout {rollout.namespace}/{rollout.name} carries this run's id ({RUN_ANNOTATION}="
        f"{run_id}): this run's canary never started, so no notification can be of its rollback"
    )


def rollback_notified(configuration: Configuration, within_s: float = 300) -> dict[str, Any]:
    """Every channel got the notification of this run's rollback: read back from the receivers when there are some
    (proof=receiver; in training mode the trainee's `mnops rollback` sent it), else each channel's own
    acknowledgement of the drill's rollback (Slack's 2xx, the SMTP relay's acceptance: proof=notifier).

    A notification of an earlier rollback of the same app, or one that arrived before this run, is no evidence:
    the words looked for name the revision this run's canary got."""
    sent = _handoff(configuration).get("rollback_notifications")
    failed = [f"{n['channel']} ({n['detail']})" for n in sent or [] if not n["ok"]]
    if failed:
        raise ClusterError(f"the rollback notification was not accepted by: {', '.join(failed)}")
    alerts = _alerts(configuration)
    if alerts.proof == "alertmanager":
        if sent is None:
            raise ClusterError("no rollback notification was sent by the drill, and no receiver can be read back")
        return {"channels": [n["channel"] for n in sent], "proof": "notifier"}
    channels = [n["channel"] for n in sent] if sent is not None else _notifier(configuration).channel_names()
    words, started = _this_runs_rollback(configuration), _run_started(configuration)
    deadline = time.monotonic() + budget(configuration, within_s)
    missing = set(channels)
    while missing and time.monotonic() < deadline:
        for channel in sorted(missing):
            if any(i["received_at"] >= started and words in str(i["payload"]) for i in alerts.received(channel)):
                missing.discard(channel)
        time.sleep(0.25)
    if missing:
        raise ClusterError(
            f"no notification of this run's rollback ({words.strip()} ...) reached receiver(s) "
            f"{', '.join(sorted(missing))} within {budget(configuration, within_s):.0f}s. Fix: check the notifier's "
            "webhook/SMTP settings."
        )
    return {"channels": channels, "proof": "receiver", "rollback": words.strip()}
