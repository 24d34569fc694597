"""Claim controls (claim_controls.py) whose switch is on the app in its own namespace: its credential's consumers,
a stray pod. They share the sandbox with other modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mnops.k8s import Kube
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.claim_controls import IN_THE_APP, control_id
from tests.integration.negative_controls import ClaimControl, drill_fails_on_the_broken_claim


@pytest.mark.parametrize("control", IN_THE_APP, ids=control_id)
def test_the_drill_fails_on_exactly_the_broken_claim(
    control: ClaimControl, kube: Kube, sandbox: SandboxSettings, namespace: str, tmp_path: Path
) -> None:
    drill_fails_on_the_broken_claim(control, kube, sandbox, namespace, tmp_path)
