"""`mnops report merge`: many runs' results (``--mnops-report-json`` or JUnit XML) as one game day.

A game day across twenty apps is twenty runs (one Indexed Job pod each); this reads what each wrote and gives
one scorecard, one HTML page and one gate over all of them. A drill's score is the one its run recorded (the
JUnit carries no timeline to score again), and the merged score is the same mean as a single run's
(reporting/scorecard.py): over every drill of every run, skipped ones left out.
"""

from __future__ import annotations

import html
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mnops.errors import ConfigError
from pytest_mnops.reporting.gameday import STYLE, validation_table
from pytest_mnops.reporting.results import FIGURES
from pytest_mnops.reporting.scorecard import overall_score, weakest

NUMBERS = {"mttd_s", "mttr_s", "abort_s", "rollback_s", "human_response_s", "budget_s", "score"}
LISTS = {"alerts", "delivered"}


@dataclass(frozen=True)
class MergedDrill:
    """One drill of one run, with the figures its run recorded (report JSON keys)."""

    run: str
    name: str
    verdict: str
    score: float
    figures: dict[str, Any]


@dataclass(frozen=True)
class Run:
    source: Path
    label: str  # the app the run drilled (its drills' target), else the file it came from
    drills: list[MergedDrill]
    validation: list[tuple[str, str, str, str]]  # (test, category, reads, outcome)

    @property
    def score(self) -> float | None:
        return overall_score(self.drills) if self.drills else None


@dataclass(frozen=True)
class GameDay:
    runs: list[Run]
    generated_at: float = field(default_factory=time.time)

    @property
    def drills(self) -> list[MergedDrill]:
        return [d for run in self.runs for d in run.drills]

    @property
    def score(self) -> float:
        return overall_score(self.drills)

    def gates(self, *, fail_under: float | None, expect: int | None) -> list[tuple[str, str | None]]:
        """(gate, why it failed or None) for each gate asked for, as a single run's report lists them."""
        gates: list[tuple[str, str | None]] = []
        if expect is not None:
            missing = len(self.runs) < expect
            gates.append(
                (
                    f"--expect {expect}",
                    f"{len(self.runs)} run(s) merged, {expect} expected (--expect): an index wrote no report. "
                    "Fix: read the missing index's pod log (kubectl logs job/NAME --all-containers)."
                    if missing
                    else None,
                )
            )
        if fail_under is not None:
            why = None
            if not self.drills:
                why = f"no drill in the merged runs: nothing to hold against --fail-under {fail_under:g}"
            elif self.score < fail_under:
                worst = weakest(self.drills)
                why = (
                    f"resilience score {self.score:.0f} is below --fail-under {fail_under:g}; weakest drill: "
                    f"{worst.name} of {worst.run} ({worst.score:.0f}, {worst.verdict})"
                )
            gates.append((f"--fail-under {fail_under:g}", why))
        return gates


def load(paths: Sequence[Path]) -> GameDay:
    """Each file one run: a report JSON (``--mnops-report-json``) or a JUnit XML (``--junitxml``)."""
    if not paths:
        raise ConfigError("no run to merge. Fix: name each run's drills.json or junit.xml (shell globs work).")
    runs = [_load_run(path) for path in paths]
    labels = [run.label for run in runs if run.drills]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ConfigError(
            f"{', '.join(twice)} is in more than one of the runs given: each run counts once. Fix: pass either its "
            "JSON or its JUnit, and each run's files once."
        )
    return GameDay(runs)


def _load_run(path: Path) -> Run:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}). Fix: name an existing report file.") from None
    run = _from_json(path, text) if text.lstrip().startswith("{") else _from_junit(path, text)
    if not run.drills and not run.validation:
        raise ConfigError(
            f"{path} holds no drill or validation result: did the run select any? Fix: check its log, or leave it out."
        )
    return run


def _from_json(path: Path, text: str) -> Run:
    try:
        payload = json.loads(text)
        drills = [dict(d) for d in payload["drills"]]
        validation = [(v["test"], v["category"], v["reads"], v["outcome"]) for v in payload.get("validation", [])]
        rows = _rows(drills, path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: not a pytest-mnops report JSON ({type(exc).__name__}: {exc}). Fix: pass the file "
            "--mnops-report-json wrote."
        ) from None
    return Run(path, _label(drills, path), rows, validation)


def _from_junit(path: Path, text: str) -> Run:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ConfigError(
            f"{path}: neither report JSON nor JUnit XML ({exc}). Fix: pass drills.json or junit.xml."
        ) from None
    drills, validation = [], []
    for case in root.iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        if "drill" in props:
            drills.append({"drill": props["drill"], "test": test, **_figures(props)})
        elif "validation_category" in props:
            validation.append((test, props["validation_category"], props.get("reads", ""), _outcome(case)))
    if not drills and not validation and root.tag not in ("testsuites", "testsuite"):
        raise ConfigError(f"{path}: XML, but not JUnit (root <{root.tag}>). Fix: pass the file --junitxml wrote.")
    try:
        rows = _rows(drills, path)
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"{path}: a drill test case lacks its verdict or score property ({exc}). Fix: write the JUnit with "
            "pytest-mnops installed (it adds them), junit_family=xunit1."
        ) from None
    return Run(path, _label(drills, path), rows, validation)


def _rows(drills: list[dict[str, Any]], path: Path) -> list[MergedDrill]:
    label = _label(drills, path)
    return [MergedDrill(label, d["drill"], d["verdict"], float(d["score"]), d) for d in drills]


def _figures(props: dict[str, str]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name in ("target", *FIGURES):
        if name not in props:
            continue
        value = props[name]
        figures[name] = float(value) if name in NUMBERS else value.split(",") if name in LISTS else value
    return figures


def _outcome(case: ET.Element) -> str:
    if case.find("skipped") is not None:
        return "skipped"
    return "failed" if case.find("failure") is not None or case.find("error") is not None else "passed"


def _label(drills: list[dict[str, Any]], path: Path) -> str:
    return ", ".join(sorted({d.get("target") or "" for d in drills} - {""})) or str(path)


# -- output ----------------------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def render_text(day: GameDay, gates: list[tuple[str, str | None]]) -> str:
    width = max((len(d.run) for d in day.drills), default=3) + 2
    head = f"{'run':<{width}}{'drill':<22}{'verdict':<9}{'MTTD':>8}{'MTTR':>8}{'score':>7}"
    lines = [f"mnops game day: {len(day.runs)} runs merged", head, "-" * len(head)]
    for d in day.drills:
        lines.append(
            f"{d.run:<{width}}{d.name:<22}{d.verdict:<9}{_seconds(d.figures.get('mttd_s')):>8}"
            f"{_seconds(d.figures.get('mttr_s')):>8}{d.score:>7.0f}"
        )
    lines.append("")
    for run in day.runs:
        score = "-" if run.score is None else f"{run.score:.0f}/100"
        checks = f", validation {_counts([o for *_, o in run.validation])}" if run.validation else ""
        lines.append(f"{run.label}: {score} over {len(run.drills)} drills{checks}  ({run.source})")
    gate = f" (gate: {', '.join(name for name, _ in gates)})" if gates else ""
    if day.drills:
        lines.append(
            f"resilience score: {day.score:.0f}/100 over {len(day.drills)} drills in {len(day.runs)} runs{gate}"
        )
    lines += [f"mnops: {why}" for _, why in gates if why]
    return "\n".join(lines)


def _counts(outcomes: list[str]) -> str:
    return ", ".join(f"{outcomes.count(o)} {o}" for o in ("passed", "failed", "skipped") if o in outcomes)


def render_html(day: GameDay, gates: list[tuple[str, str | None]]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(day.generated_at))
    gate = (
        "".join(
            f"<div class='{'mnops-gate-failed' if why else 'mnops-gate-passed'}'>gate {html.escape(name)}: "
            f"{'FAILED — ' + html.escape(why) if why else 'passed'}</div>"
            for name, why in gates
        )
        or "<div>no gate set (--fail-under, --expect)</div>"
    )
    score = (
        f"<div class='mnops-score'>resilience score {day.score:.0f}/100 over {len(day.drills)} drills in "
        f"{len(day.runs)} runs</div>"
        if day.drills
        else ""
    )
    runs = "".join(
        f"<tr class='mnops-run-row'><td>{html.escape(run.label)}</td><td class='num'>{len(run.drills)}</td>"
        f"<td class='num'>{'—' if run.score is None else f'{run.score:.0f}'}</td>"
        f"<td>{html.escape(_counts([o for *_, o in run.validation]) or '—')}</td>"
        f"<td><code>{html.escape(str(run.source))}</code></td></tr>"
        for run in day.runs
    )
    drills = "".join(
        f"<tr class='mnops-drill-row' data-run='{html.escape(d.run)}' data-drill='{html.escape(d.name)}'>"
        f"<td>{html.escape(d.run)}</td><td>{html.escape(d.name)}</td>"
        f"<td class='mnops-verdict {html.escape(d.verdict)}'>{html.escape(d.verdict)}</td>"
        + "".join(
            f"<td class='num'>{'—' if d.figures.get(k) is None else f'{d.figures[k]:.1f} s'}</td>"
            for k in ("mttd_s", "mttr_s", "abort_s", "rollback_s", "budget_s")
        )
        + f"<td class='num mnops-score-cell'>{d.score:.0f}</td>"
        f"<td>{html.escape(', '.join(d.figures.get('alerts') or []) or '—')}</td>"
        f"<td>{html.escape('; '.join(d.figures.get('problems') or []) or '—')}</td></tr>"
        for d in day.drills
    )
    validation = [v for run in day.runs for v in run.validation]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>mnops game day</title>"
        f"{STYLE}</head><body><section class='mnops-gameday' id='mnops-gameday'>"
        f"<h2>Game day: {len(day.runs)} runs merged</h2><div class='mnops-run'><div><span>merged</span>{when}</div>"
        f"</div>{score}{gate}"
        "<h3>Runs</h3><table class='mnops-runs'><tr><th>run</th><th>drills</th><th>score</th><th>validation</th>"
        f"<th>from</th></tr>{runs}</table>"
        + (
            "<h3>Drills</h3><table class='mnops-drills'><tr><th>run</th><th>drill</th><th>verdict</th><th>MTTD</th>"
            "<th>MTTR</th><th>time to abort</th><th>rollback</th><th>budget</th><th>score</th><th>alerts seen</th>"
            f"<th>problems</th></tr>{drills}</table>"
            if drills
            else ""
        )
        + (f"<h3>Validation by category</h3>{validation_table(validation)}" if validation else "")
        + "</section></body></html>"
    )


def to_json(day: GameDay, gates: list[tuple[str, str | None]]) -> dict[str, Any]:
    """The shape of one run's report JSON (so a merged game day can be merged again), each drill with its run."""
    return {
        "generated_at": day.generated_at,
        "resilience_score": round(day.score, 1) if day.drills else None,
        "drills": [{**d.figures, "run": d.run} for d in day.drills],
        "validation": [
            {"test": t, "category": c, "reads": r, "outcome": o} for run in day.runs for t, c, r, o in run.validation
        ],
        "runs": [
            {"source": str(run.source), "label": run.label, "score": run.score, "drills": len(run.drills)}
            for run in day.runs
        ],
        "gate_failures": [why for _, why in gates if why],
    }
