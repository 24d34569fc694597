"""Every claim the docs say a drill proves has a negative control that breaks exactly it, and every control
breaks a documented claim (docs/drilling-your-own-app.md, "What each drill proves")."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_mnops.drills import DRILLS
from tests.integration.claim_controls import IN_THE_APP, SANDBOX_WIDE
from tests.integration.negative_controls import DETECTION_OFF

DOC = Path(__file__).resolve().parents[2] / "docs" / "drilling-your-own-app.md"


def _documented() -> list[tuple[str, str]]:
    table = re.search(r"<!-- mnops:claims -->\n(.*?)<!-- /mnops:claims -->", DOC.read_text(), re.S)
    assert table, f"{DOC}: no <!-- mnops:claims --> table"
    rows = [line.strip("|").split("|") for line in table.group(1).splitlines()[2:]]
    return [(drill.strip(), claim.strip()) for drill, claim, *_ in rows]


def test_every_documented_claim_has_exactly_one_control_and_every_control_a_claim() -> None:
    controls = [(c.drill, c.claim) for c in (*DETECTION_OFF, *SANDBOX_WIDE, *IN_THE_APP)]
    assert sorted(controls) == sorted(_documented())
    assert len(set(controls)) == len(controls)


def test_every_drill_has_claims_and_its_controls_name_the_failed_activity() -> None:
    assert {drill for drill, _ in _documented()} == set(DRILLS)
    for control in (*DETECTION_OFF, *SANDBOX_WIDE, *IN_THE_APP):
        assert re.fullmatch(r"(NOT DETECTED|NOT RECOVERED|FAILED): [a-z0-9-]+", control.expected[0]), control
