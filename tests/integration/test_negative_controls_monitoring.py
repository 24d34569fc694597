"""Negative controls (negative_controls.py) whose switch is in monitoring: alert rules, a route, receivers."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mnops.k8s import Kube
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.negative_controls import (
    DETECTION_OFF_BY_DRILL,
    IN_MONITORING,
    drill_fails_on_the_broken_claim,
)

pytestmark = pytest.mark.own_sandbox("negative-controls-monitoring")


@pytest.mark.parametrize("drill", IN_MONITORING)
def test_drill_fails_when_detection_is_disabled(
    drill: str, kube: Kube, sandbox: SandboxSettings, namespace: str, tmp_path: Path
) -> None:
    drill_fails_on_the_broken_claim(DETECTION_OFF_BY_DRILL[drill], kube, sandbox, namespace, tmp_path)
