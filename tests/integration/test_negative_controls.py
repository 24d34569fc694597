"""Negative controls (negative_controls.py) whose switch is in the cluster: analysis, controller, Secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mnops.drills import DRILLS
from pytest_mnops.k8s import Kube
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.negative_controls import (
    DETECTION_OFF_BY_DRILL,
    IN_MONITORING,
    IN_THE_CLUSTER,
    drill_fails_on_the_broken_claim,
)

pytestmark = pytest.mark.own_sandbox("negative-controls")


@pytest.mark.parametrize("drill", IN_THE_CLUSTER)
def test_drill_fails_when_detection_is_disabled(
    drill: str, kube: Kube, sandbox: SandboxSettings, namespace: str, tmp_path: Path
) -> None:
    drill_fails_on_the_broken_claim(DETECTION_OFF_BY_DRILL[drill], kube, sandbox, namespace, tmp_path)


def test_the_two_modules_control_every_drill() -> None:
    assert sorted(IN_THE_CLUSTER + IN_MONITORING) == sorted(DETECTION_OFF_BY_DRILL) == sorted(DRILLS)
