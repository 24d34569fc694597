"""emergency-rollback's notification check is bound to this run: the words it looks for name the revision this
run's canary got (its pod template carries the run id), so an earlier rollback of the same app, another app's, or
one from before the run is no evidence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_mnops.chaos.activities import emergency
from pytest_mnops.chaos.runner import Handoff
from pytest_mnops.errors import ClusterError
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.profile.versions import RUN_ANNOTATION
from pytest_mnops.rollback.result import rollback_of
from pytest_mnops.standins.receivers import Receivers

SENT = [{"channel": "slack", "ok": True, "detail": "HTTP 200"}]


class _Rollout:
    """Revisions 4 (an earlier drill's canary), 5 (stable) and 6 (this run's canary)."""

    namespace, name = "drills", "demo"

    def revisions(self) -> dict[int, dict[str, Any]]:
        def replica_set(run: str | None) -> dict[str, Any]:
            annotations = {RUN_ANNOTATION: run} if run else {}
            return {"spec": {"template": {"metadata": {"annotations": annotations}}}}

        return {4: replica_set("run-0"), 5: replica_set(None), 6: replica_set("run-1")}


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receivers]:
    with Receivers(host="127.0.0.1") as running:
        alerts = Alerts(Prometheus("http://127.0.0.1:9"), alertmanager_url=None, receivers_url=running.url)
        monkeypatch.setattr(emergency, "_alerts", lambda configuration: alerts)
        monkeypatch.setattr(emergency, "_rollout", lambda configuration: _Rollout())
        # A check that must time out does so at once (the real one waits its time-scaled budget).
        monkeypatch.setattr(emergency, "budget", lambda configuration, production_s, floor_s=0: 0.3)
        yield running


def _configuration(**extra: Any) -> dict[str, Any]:
    handoff = Handoff(rollback_notifications=SENT)
    return {"namespace": "drills", "app": "demo", "run_id": "run-1", "handoff": handoff, **extra}


def _subject(revision: int) -> dict[str, str]:
    return {"text": f"[mnops] Rollback verified: {rollback_of('drills/demo', revision)}5\nRolled back ..."}


def test_the_notification_of_this_runs_rollback_on_every_channel_proves_it(receivers: Receivers) -> None:
    configuration = _configuration(run_started=time.time())
    receivers.inbox.add("slack", _subject(6))
    assert emergency.rollback_notified(configuration) == {
        "channels": ["slack"],
        "proof": "receiver",
        "rollback": "drills/demo revision 6 ->",
    }


def test_notifications_of_other_rollbacks_of_the_same_app_are_no_evidence(receivers: Receivers) -> None:
    receivers.inbox.add("slack", _subject(6))  # this revision's words, but before the run started
    configuration = _configuration(run_started=time.time() + 0.01)
    time.sleep(0.02)
    receivers.inbox.add("slack", _subject(4))  # an earlier drill's rollback, delivered late
    receivers.inbox.add("slack", {"text": "rollback of drills/demo"})  # names the app, not the rollback
    receivers.inbox.add("slack", {"text": "Rollback verified: drills/demo-2 revision 6 -> 5"})  # another app
    with pytest.raises(ClusterError) as missing:
        emergency.rollback_notified(configuration)
    assert str(missing.value) == (
        "no notification of this run's rollback (drills/demo revision 6 -> ...) reached receiver(s) slack within "
        "0s. Fix: check the notifier's webhook/SMTP settings."
    )


def test_without_a_canary_of_this_run_no_notification_can_prove_its_rollback(receivers: Receivers) -> None:
    receivers.inbox.add("slack", _subject(6))
    with pytest.raises(ClusterError, match=r"no revision of Rollout drills/demo carries this run's id .*=run-9\)"):
        emergency.rollback_notified(_configuration(run_id="run-9", run_started=0.0))


def test_the_words_are_those_of_the_rollback_message() -> None:
    # test_rollback_unit pins the whole subject ("[mnops] Rollback verified: ns/name revision 3 -> 2").
    assert rollback_of("drills/demo", 6) == "drills/demo revision 6 -> "
