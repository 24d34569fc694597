"""Every activity by the package's name: the stable `module: pytest_mnops.chaos.activities` users' experiments use."""

from __future__ import annotations

from pytest_mnops.chaos.activities._shared import budget
from pytest_mnops.chaos.activities.alerts import record_delivery_baseline, wait_for_alert
from pytest_mnops.chaos.activities.canary import (
    deploy_version,
    wait_for_abort,
    wait_for_analysis_failed,
    wait_for_canary_step,
)
from pytest_mnops.chaos.activities.chaos_mesh import delete_chaos
from pytest_mnops.chaos.activities.emergency import emergency_rollback, rollback_notified
from pytest_mnops.chaos.activities.pods import replacements_expected, watch_pod_replacements
from pytest_mnops.chaos.activities.secret_rotation import rotate_app_secret, verify_rotated_credentials
from pytest_mnops.chaos.activities.stable_revision import restore_stable_version, wait_for_stable_serving
from pytest_mnops.chaos.activities.steady_state import query_below, rollout_healthy, slo_met
from pytest_mnops.chaos.activities.synthetic_alerts import (
    check_synthetic_route,
    post_synthetic_alerts,
    resolve_synthetic_alerts,
    silence_and_check,
    synthetic_alerts_active,
    wait_all_delivered,
)

__all__ = [
    "budget",
    "check_synthetic_route",
    "delete_chaos",
    "deploy_version",
    "emergency_rollback",
    "post_synthetic_alerts",
    "query_below",
    "record_delivery_baseline",
    "replacements_expected",
    "resolve_synthetic_alerts",
    "restore_stable_version",
    "rollback_notified",
    "rollout_healthy",
    "rotate_app_secret",
    "silence_and_check",
    "slo_met",
    "synthetic_alerts_active",
    "verify_rotated_credentials",
    "wait_all_delivered",
    "wait_for_abort",
    "wait_for_alert",
    "wait_for_analysis_failed",
    "wait_for_canary_step",
    "wait_for_stable_serving",
    "watch_pod_replacements",
]
