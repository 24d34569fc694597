"""The seven drills of the delivery summary, each proving detection and recovery on the target.

Run them all with ``pytest suites/drills -m drill``, one with ``--drill canary-failure``. Every drill works on
the app under test through its app profile (``mnops_drill``: discovered from the Rollout, completed by
``--mnops-profile``; docs/drilling-your-own-app.md), and fails at setup naming what its profile lacks.
Budgets are in production seconds (the seed's figures); the target's time scale shrinks them, never below
30 s. Order matters on a shared cluster only for speed: each drill first waits for the steady state.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mnops import ChaosRunner, DrillJournal, drill_facts


def record_proof(request: pytest.FixtureRequest, journal: DrillJournal) -> None:
    """Which evidence proved delivery (receiver read-back, Alertmanager, the notifier): JUnit + HTML show it."""
    proofs = sorted(
        {a.output["proof"] for a in journal.activities if isinstance(a.output, dict) and a.output.get("proof")}
    )
    if proofs:
        drill_facts(request.node)["proof"] = ",".join(proofs)


@pytest.mark.drill("monitoring-alerts", budget_s=600)
def test_monitoring_alerts_reach_receivers_and_silences_hold(
    request: pytest.FixtureRequest, chaos: ChaosRunner, mnops_drill: dict[str, Any]
) -> None:
    journal = chaos.run("monitoring-alerts", **mnops_drill)
    record_proof(request, journal)
    chaos.prove(journal)
    delivered = journal.activity("all-reached-receivers").output["delivered"]
    assert delivered, "the profile's rule_files define no alert of its synthetic_alerts.severity to drill"
    assert journal.activity("silence-suppresses-delivery").output["suppressed"] is True


@pytest.mark.drill("pod-failure", budget_s=300)
def test_pod_failure_replacements_become_ready(chaos: ChaosRunner, mnops_drill: dict[str, Any]) -> None:
    journal = chaos.run("pod-failure", **mnops_drill)
    chaos.prove(journal)
    watch = journal.activity("watch-replacements").output
    # kill_percent (MNOPS_KILL_PERCENT, default 30) of the Rollout's replicas, as the activity computed it
    assert watch["replaced"] >= watch["expected"], (
        f"expected {watch['expected']} replacement pods, saw {watch['replaced']}"
    )


@pytest.mark.drill("high-latency", budget_s=900)
def test_high_latency_alert_fires_notifies_and_resolves(
    request: pytest.FixtureRequest, chaos: ChaosRunner, mnops_drill: dict[str, Any]
) -> None:
    journal = chaos.run("high-latency", **mnops_drill)
    record_proof(request, journal)
    chaos.prove(journal)
    assert journal.activity("p95-alert-firing").output["receiver"]


@pytest.mark.drill("resource-exhaustion", budget_s=1200)
def test_resource_exhaustion_alerts_fire_and_workload_recovers(
    request: pytest.FixtureRequest, chaos: ChaosRunner, mnops_drill: dict[str, Any]
) -> None:
    journal = chaos.run("resource-exhaustion", **mnops_drill)
    record_proof(request, journal)
    chaos.prove(journal)


@pytest.mark.drill("secret-rotation", budget_s=600)
def test_secret_rotation_consumers_switch_to_new_value(chaos: ChaosRunner, mnops_drill: dict[str, Any]) -> None:
    journal = chaos.run("secret-rotation", **mnops_drill)
    chaos.prove(journal)
    verdict = journal.activity("consumers-use-new-value").output
    assert verdict["new_accepted"] and verdict["old_rejected"]


@pytest.mark.drill("canary-failure", budget_s=900, human_step=True)
def test_canary_failure_aborts_to_stable(
    request: pytest.FixtureRequest, chaos: ChaosRunner, mnops_drill: dict[str, Any]
) -> None:
    journal = chaos.run("canary-failure", **mnops_drill)
    record_proof(request, journal)
    chaos.prove(journal)
    stopped = journal.activity("analysis-failed").output
    # In training mode a trainee may abort before the analysis could fail; otherwise the analysis must say why.
    if stopped.get("stopped_by", "analysis") == "analysis":
        assert stopped["failed_metrics"], "the AnalysisRun failed without a failed metric"


@pytest.mark.drill("emergency-rollback", budget_s=240, human_step=True)
def test_emergency_rollback_restores_stable_and_notifies(
    request: pytest.FixtureRequest, chaos: ChaosRunner, mnops_drill: dict[str, Any]
) -> None:
    journal = chaos.run("emergency-rollback", **mnops_drill)
    record_proof(request, journal)
    chaos.prove(journal)
