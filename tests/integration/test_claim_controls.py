"""Claim controls (claim_controls.py) with a sandbox-wide switch: the nodes, the receivers, the silences."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mnops.k8s import Kube
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.claim_controls import SANDBOX_WIDE, control_id
from tests.integration.negative_controls import ClaimControl, drill_fails_on_the_broken_claim

pytestmark = pytest.mark.own_sandbox("claims")


@pytest.mark.parametrize("control", SANDBOX_WIDE, ids=control_id)
def test_the_drill_fails_on_exactly_the_broken_claim(
    control: ClaimControl, kube: Kube, sandbox: SandboxSettings, namespace: str, tmp_path: Path
) -> None:
    drill_fails_on_the_broken_claim(control, kube, sandbox, namespace, tmp_path)
