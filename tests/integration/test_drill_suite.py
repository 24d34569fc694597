"""The seven drills on a sandbox of their own: all prove detection and recovery, with their reports.

Their negative controls are in test_negative_controls.py.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_mnops.drills import DRILLS
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import run_drills

pytestmark = pytest.mark.own_sandbox("drills")
PROPERTIES = ("drill", "scenario", "mttr_s", "verdict", "score")


def test_all_seven_drills_prove_detection_and_recovery_with_reports(sandbox: SandboxSettings, tmp_path: Path) -> None:
    junit, html, summary = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "drills.json"
    result = run_drills(
        sandbox,
        tmp_path,
        "-m",
        "drill",
        f"--junitxml={junit}",
        f"--html={html}",
        "--self-contained-html",
        f"--mnops-report-json={summary}",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "resilience score: 100/100 over 7 drills" in result.stdout

    cases = ET.parse(junit).getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert sorted(p["drill"] for p in properties) == sorted(DRILLS)
    for props in properties:
        assert set(PROPERTIES) <= set(props), props
        # Recovered after the injection and within the drill's budget (the verdict holds it to it).
        assert props["verdict"] == "proved" and 0 < float(props["mttr_s"]) <= float(props["budget_s"]), props
    report = html.read_text()
    assert report.count('<svg class="mnops-figure-svg"') == len(DRILLS)  # one timeline figure per drill
    figures = json.loads(summary.read_text())
    assert figures["resilience_score"] == 100
    by_name = {d["drill"]: d for d in figures["drills"]}
    for name, drill in by_name.items():
        assert drill["mttd_s"] is None or 0 <= drill["mttd_s"] <= drill["mttr_s"], (name, drill)
        assert drill["problems"] == [], (name, drill["problems"])
    assert 0 < by_name["canary-failure"]["abort_s"] <= by_name["canary-failure"]["mttr_s"]
    assert "HighLatencyP95" in by_name["high-latency"]["alerts"]
    # Every drill injected its fault through the ledger, and every fault was reverted: nothing pending.
    ledger = Ledger(tmp_path / "ledger.jsonl")
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    injected = {r["id"]: r["scenario"] for r in records if r["event"] == "injected"}
    assert sorted(injected.values()) == sorted(DRILLS)
    assert {r["id"] for r in records if r["event"] == "reverted"} == set(injected)
    assert ledger.pending() == []
