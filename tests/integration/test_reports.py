"""The seven drills on a sandbox of their own, once (the game day): all prove detection and recovery, and the
reports people read show it. Their negative controls are in test_negative_controls.py.

- the JUnit, the JSON summary and the ledger of the game day: every drill proved within its budget, every
  injected fault reverted;
- report.html rendered by headless Chromium: the game-day summary lists every drill with its figures, each
  drill's timeline figure is on the page, and the screenshot shows them (it is not blank);
- the results pushed to the sandbox's Pushgateway, read back through the sandbox's Prometheus;
- a recovery slowed for real (the controller-manager's API client throttled) is flagged as a regression
  against the run history in the terminal, JUnit and HTML, and ``--mnops-fail-on-regression`` fails the run.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.drills import DRILLS
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.reporting import browser
from pytest_mnops.reporting.figure import FAULT_WINDOW_COLOUR
from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.components import CONTROLLER_MANAGER
from pytest_mnops.sandbox.processes import Supervisor
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT, drill_argv, start_component

# The regression test restarts the controller-manager and the game day drills the shared namespace: sandbox-wide.
pytestmark = pytest.mark.own_sandbox("reports")
# The controller-manager's API client at one request per second (the sandbox runs it at 100): the
# ReplicaSet controller then creates a killed pod's replacement seconds later, as a throttled controller does.
THROTTLED_QPS = "1"


@dataclass(frozen=True)
class Run:
    result: subprocess.CompletedProcess[str]
    directory: Path
    started: float

    @property
    def report(self) -> Path:
        return self.directory / "report.html"

    @property
    def figures(self) -> dict[str, dict[str, Any]]:
        return {d["drill"]: d for d in json.loads((self.directory / "drills.json").read_text())["drills"]}

    def junit_properties(self, drill: str) -> dict[str, str]:
        for case in ET.parse(self.directory / "junit.xml").getroot().iter("testcase"):
            properties = {p.get("name"): p.get("value") for p in case.iter("property")}
            if properties.get("drill") == drill:
                return properties
        raise AssertionError(f"no testcase of drill {drill} in the JUnit")


def run_drills(sandbox: SandboxSettings, directory: Path, history: Path, *args: str) -> Run:
    directory.mkdir(parents=True, exist_ok=True)
    started = time.time()
    argv = drill_argv(
        sandbox,
        directory / "ledger.jsonl",
        f"--html={directory / 'report.html'}",
        "--self-contained-html",
        f"--junitxml={directory / 'junit.xml'}",
        f"--mnops-report-json={directory / 'drills.json'}",
        f"--mnops-history-dir={history}",
        *args,
    )
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return Run(result, directory, started)


@pytest.fixture(scope="module")
def game_day(sandbox: SandboxSettings, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The seven drills once, with every report (and the sandbox's Pushgateway filled in by --mnops-sandbox)."""
    directory = tmp_path_factory.mktemp("game-day")
    run = run_drills(sandbox, directory, directory / "history", "-m", "drill")
    assert run.result.returncode == 0, run.result.stdout[-4000:]
    return run


JUNIT_PROPERTIES = ("drill", "scenario", "mttr_s", "verdict", "score")


def test_all_seven_drills_prove_detection_and_recovery_and_revert_every_fault(game_day: Run) -> None:
    assert "resilience score: 100/100 over 7 drills" in game_day.result.stdout
    cases = ET.parse(game_day.directory / "junit.xml").getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert sorted(p["drill"] for p in properties) == sorted(DRILLS)
    for props in properties:
        assert set(JUNIT_PROPERTIES) <= set(props), props
        # Recovered after the injection and within the drill's budget (the verdict holds it to it).
        assert props["verdict"] == "proved" and 0 < float(props["mttr_s"]) <= float(props["budget_s"]), props
    summary = json.loads((game_day.directory / "drills.json").read_text())
    assert summary["resilience_score"] == 100
    by_name = game_day.figures
    for name, drill in by_name.items():
        assert drill["mttd_s"] is None or 0 <= drill["mttd_s"] <= drill["mttr_s"], (name, drill)
        assert drill["problems"] == [], (name, drill["problems"])
    assert 0 < by_name["canary-failure"]["abort_s"] <= by_name["canary-failure"]["mttr_s"]
    assert "HighLatencyP95" in by_name["high-latency"]["alerts"]
    # Every drill injected its fault through the ledger, and every fault was reverted: nothing pending.
    path = game_day.directory / "ledger.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    injected = {r["id"]: r["scenario"] for r in records if r["event"] == "injected"}
    assert sorted(injected.values()) == sorted(DRILLS)
    assert {r["id"] for r in records if r["event"] == "reverted"} == set(injected)
    assert Ledger(path).pending() == []


class _GameDayDom(HTMLParser):
    """From the DOM: the cells of each drill's summary row, each drill card's figure and its texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.figures: dict[str, list[str]] = {}  # card -> texts inside its <svg>
        self.hidden: list[str] = []
        self._row: str | None = None
        self._cell: str | None = None
        self._card: str | None = None
        self._in_svg = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if "hidden" in classes or "display:none" in (a.get("style") or "").replace(" ", ""):
            self.hidden.append(a.get("id") or tag)
        if tag == "tr" and a.get("data-drill"):
            self._row = a["data-drill"] or ""
            self.rows[self._row] = {}
        elif tag == "td" and self._row is not None:
            self._cell = next((c.removeprefix("mnops-") for c in classes if c.startswith("mnops-")), "drill")
            self.rows[self._row][self._cell] = ""
        elif tag == "div" and "mnops-card" in classes:
            self._card = (a.get("id") or "").removeprefix("mnops-drill-")
        elif tag == "svg" and "mnops-figure-svg" in classes and self._card:
            self._in_svg = True
            self.figures[self._card] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "svg" and self._in_svg:
            self._in_svg = False

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell is not None:
            self.rows[self._row][self._cell] += data
        if self._in_svg and self._card and data.strip():
            self.figures[self._card].append(data.strip())


def _same_seconds(shown: str, value: float | None) -> bool:
    """The summary shows the drill's seconds to one decimal; JSON keeps two (48.85 may show as 48.8 or 48.9)."""
    if value is None:
        return shown == "—"
    return shown.endswith(" s") and abs(float(shown[:-2]) - value) <= 0.051


def colour_bands(png: Path, colour: str, *, gap: int = 40) -> int:
    """How many separate horizontal bands of the page hold ``colour`` (one per drawn figure): rows with it,
    merged across gaps of up to ``gap`` pixels (a figure's grid lines cross its shaded fault window)."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    wanted = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    width, height = image.size
    pixels = image.load()
    rows = [y for y in range(height) if sum(pixels[x, y] == wanted for x in range(0, width, 4)) >= 5]
    return sum(1 for before, y in zip([-gap - 1, *rows], rows, strict=False) if y - before > gap)


def test_report_in_chromium_shows_the_summary_and_every_figure(game_day: Run, tmp_path: Path) -> None:
    dom = browser.dump_dom(game_day.report)
    assert 'id="mnops-gameday"' in dom and "results-table-row" in dom  # pytest-html's scripts ran too
    page = _GameDayDom()
    page.feed(dom)
    assert sorted(page.rows) == sorted(DRILLS)
    for name, figures in game_day.figures.items():
        row = page.rows[name]
        assert row["verdict"] == figures["verdict"] == "proved", row
        for cell in ("mttd", "mttr", "abort", "rollback", "budget"):
            assert _same_seconds(row[cell], figures[f"{cell}_s"]), (cell, row)
        assert row["score-cell"] == f"{figures['score']:.0f}"
        assert row["alerts"] == (", ".join(figures["alerts"]) or "—"), row
        assert row["trend"] == "first run" and row["regression-cell"] == "—"
        texts = " ".join(page.figures[name])
        assert "seconds since the fault was injected" in texts and "fault injected" in texts, (name, texts)
    assert "HighLatencyP95" in " ".join(page.figures["high-latency"])  # its alert band
    assert "HighLatencyP95 → slack" in page.rows["high-latency"]["delivered"]
    assert not [h for h in page.hidden if h.startswith("mnops")], page.hidden

    # 1400 px wide and tall enough for the summary and all seven figures
    png = browser.screenshot(game_day.report, tmp_path / "report.png", height=7000)
    from PIL import Image

    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 100, "the screenshot is blank or nearly so"
    assert colour_bands(png, FAULT_WINDOW_COLOUR) == len(DRILLS), "not every drill's figure is displayed"


def test_pushed_metrics_are_read_back_through_prometheus(game_day: Run, sandbox: SandboxSettings) -> None:
    prometheus = Prometheus(sandbox.prometheus_url)
    where = '{job="mnops",context="mnops-sandbox",namespace="default",app="machine-native-ops"}'

    def values(metric: str) -> dict[str, float]:
        return {s["metric"].get("drill", ""): float(s["value"][1]) for s in prometheus.query(metric + where)}

    deadline = time.monotonic() + 30  # Prometheus scrapes the Pushgateway every second
    while time.monotonic() < deadline:
        pushed = values("mnops_last_run_timestamp_seconds")
        if pushed and pushed[""] >= game_day.started:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"this run's metrics never reached Prometheus: {pushed}")
    figures = game_day.figures
    assert values("mnops_drill_mttr_seconds") == pytest.approx({n: f["mttr_s"] for n, f in figures.items()}, abs=0.01)
    assert values("mnops_drill_mttd_seconds") == pytest.approx(
        {n: f["mttd_s"] for n, f in figures.items() if f["mttd_s"] is not None}, abs=0.01
    )
    assert values("mnops_drill_score") == {n: f["score"] for n, f in figures.items()}
    verdicts = prometheus.query('mnops_drill_verdict{job="mnops",verdict="proved"} == 1')
    assert sorted(s["metric"]["drill"] for s in verdicts) == sorted(DRILLS)
    assert values("mnops_resilience_score") == {"": 100.0}


def restart_controller_manager(sandbox: SandboxSettings, *flags: str) -> None:
    """The sandbox's controller-manager restarted with ``flags`` in place of its API rate limits (none: its own)."""
    argv = CONTROLLER_MANAGER.argv(sandbox, {"kube-controller-manager": binaries.require("kube-controller-manager")})
    if flags:
        argv = [a for a in argv if not a.startswith(("--kube-api-qps=", "--kube-api-burst="))] + list(flags)
    Supervisor(sandbox.layout.processes).stop(CONTROLLER_MANAGER.name)
    start_component(sandbox, CONTROLLER_MANAGER, argv)


@contextlib.contextmanager
def throttled_controller_manager(sandbox: SandboxSettings) -> Iterator[None]:
    """The controller-manager with its API client throttled; the sandbox's own flags after."""
    restart_controller_manager(sandbox, f"--kube-api-qps={THROTTLED_QPS}", "--kube-api-burst=1")
    try:
        yield
    finally:
        restart_controller_manager(sandbox)


def test_slowed_recovery_is_a_regression_and_fails_the_gate(sandbox: SandboxSettings, tmp_path: Path) -> None:
    history = tmp_path / "history"
    gate = ("--drill", "pod-failure", "--mnops-fail-on-regression")
    first = run_drills(sandbox, tmp_path / "first", history, *gate)
    assert first.result.returncode == 0, first.result.stdout[-4000:]  # no history yet: nothing to regress from
    assert "REGRESSION" not in first.result.stdout
    with throttled_controller_manager(sandbox):
        second = run_drills(sandbox, tmp_path / "second", history, *gate)
    out = second.result.stdout
    assert second.result.returncode == pytest.ExitCode.TESTS_FAILED, out[-4000:]
    assert "1 passed" in out  # the drill itself still recovered within its budget: only the gate failed
    before, after = first.figures["pod-failure"]["mttr_s"], second.figures["pod-failure"]["mttr_s"]
    why = second.figures["pod-failure"]["regression"]
    # the reason quotes the unrounded figures the JSON rounds to 0.01 s
    match = re.fullmatch(r"MTTR ([\d.]+)s is above 1\.5 x the median ([\d.]+)s of the last 1 run", why or "")
    assert match, why
    assert float(match[1]) == pytest.approx(after, abs=0.06) and float(match[2]) == pytest.approx(before, abs=0.06)
    assert f"REGRESSION pod-failure: {why}" in out, out[-3000:]
    assert f"mnops: --mnops-fail-on-regression: regression in pod-failure ({why})" in out
    assert second.junit_properties("pod-failure")["regression"] == why
    assert f"<span class='mnops-regression'>REGRESSION</span> {why}" in second.report.read_text()
