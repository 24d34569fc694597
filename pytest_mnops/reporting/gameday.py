"""The game-day summary at the top of the pytest-html report: what was drilled, when, how it went.

One block of plain HTML (pytest-html's ``pytest_html_results_summary`` prefix): the target and the run, the
resilience score and its gates, one row per drill linking to its card (the timeline figure, its query, what
went wrong), the validation results per category, and each drill's MTTD/MTTR trend over the run history.
"""

from __future__ import annotations

import html
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_mnops.reporting.history import Baseline
from pytest_mnops.reporting.html import anchor
from pytest_mnops.reporting.results import DrillResult
from pytest_mnops.target import Target

STYLE = """
<style>
.mnops-gameday { color: #111827; font-size: 13px; margin: 8px 0 24px; max-width: 1400px; }
.mnops-gameday a { color: #1d4ed8; }
.mnops-gameday h2 { font-size: 20px; margin: 4px 0 8px; }
.mnops-gameday h3 { font-size: 15px; margin: 18px 0 6px; }
.mnops-gameday .mnops-run { display: flex; flex-wrap: wrap; gap: 6px 28px; margin-bottom: 10px; }
.mnops-gameday .mnops-run div span { color: #6b7280; margin-right: 4px; }
.mnops-gameday .mnops-score { font-size: 18px; font-weight: bold; }
.mnops-gameday table { border-collapse: collapse; margin-bottom: 6px; }
.mnops-gameday th, .mnops-gameday td { border: 1px solid #d1d5db; padding: 4px 8px; text-align: left;
  vertical-align: top; }
.mnops-gameday th { background: #f3f4f6; }
.mnops-gameday td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.mnops-gameday .proved { color: #166534; font-weight: bold; }
.mnops-gameday .failed { color: #b91c1c; font-weight: bold; }
.mnops-gameday .skipped { color: #6b7280; font-weight: bold; }
.mnops-gameday .mnops-regression { background: #b91c1c; color: white; border-radius: 3px; padding: 1px 5px;
  font-weight: bold; white-space: nowrap; }
.mnops-gameday .mnops-gate-failed { color: #b91c1c; font-weight: bold; }
.mnops-gameday .mnops-gate-passed { color: #166534; font-weight: bold; }
.mnops-gameday .mnops-card { border: 1px solid #d1d5db; border-radius: 4px; padding: 8px 12px; margin: 12px 0; }
.mnops-gameday .mnops-card h4 { font-size: 14px; margin: 2px 0 6px; }
.mnops-gameday figure { margin: 0; }
.mnops-gameday .mnops-figure-svg { width: 100%; max-width: 1100px; height: auto; display: block; }
.mnops-gameday figcaption { color: #374151; font-size: 12px; margin-top: 4px; }
.mnops-gameday figcaption code { white-space: pre-wrap; word-break: break-all; }
.mnops-gameday .mnops-trend-words { color: #374151; font-size: 11px; white-space: nowrap; }
.mnops-gameday ul.mnops-problems { color: #b91c1c; margin: 4px 0; }
</style>
"""


@dataclass(frozen=True)
class GameDay:
    results: Sequence[DrillResult]
    validation: Sequence[tuple[str, str, str, str]]  # (nodeid, category, reads, outcome)
    target: Target
    started: float
    finished: float
    score: float
    gates: Sequence[tuple[str, str | None]]  # (gate, why it failed or None)
    trends: dict[str, list[Baseline]]
    history_dir: str


def render(day: GameDay) -> str:
    parts = [STYLE, "<section class='mnops-gameday' id='mnops-gameday'><h2>Game day</h2>", _run(day)]
    if day.results:
        parts += ["<h3>Drills</h3>", _drills(day)]
    if day.validation:
        parts += ["<h3>Validation by category</h3>", validation_table(day.validation)]
    if day.results:
        parts += ["<h3>Drill timelines</h3>", *(_card(r) for r in day.results)]
    parts.append("</section>")
    return "".join(parts)


def _run(day: GameDay) -> str:
    t = day.target
    where = "the local sandbox" if t.sandbox else (t.context or "the current kube context")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(day.started))
    facts = [
        ("cluster", f"{where} (context {t.context or 'current'})"),
        ("namespace", t.namespace),
        ("app", t.app),
        ("sandbox", "yes" if t.sandbox else "no"),
        ("when", started),
        ("duration", _duration(day.finished - day.started)),
    ]
    cells = "".join(f"<div><span>{k}</span>{html.escape(v)}</div>" for k, v in facts)
    score = (
        f"<div class='mnops-score'>resilience score {day.score:.0f}/100 over {len(day.results)} drills</div>"
        if day.results
        else ""
    )
    gates = (
        "".join(
            f"<div class='{'mnops-gate-failed' if why else 'mnops-gate-passed'}'>gate {html.escape(gate)}: "
            f"{'FAILED — ' + html.escape(why) if why else 'passed'}</div>"
            for gate, why in day.gates
        )
        or "<div>no gate set (--mnops-fail-under, --mnops-fail-on-regression)</div>"
    )
    compared = max((len(b) for b in day.trends.values()), default=0)
    history = f"<div>compared with {compared} earlier run(s) in {html.escape(day.history_dir)}</div>"
    return f"<div class='mnops-run'>{cells}</div>{score}{gates}{history}"


def _drills(day: GameDay) -> str:
    head = (
        "<tr><th>drill</th><th>verdict</th><th>MTTD</th><th>MTTR</th><th>time to abort</th><th>rollback</th>"
        "<th>budget</th><th>score</th><th>alerts seen</th><th>proof of delivery</th><th>trend (MTTD, MTTR)</th>"
        "<th>regression</th></tr>"
    )
    rows = []
    for r in day.results:
        facts = r.facts
        regression = facts.get("regression")
        cells = [
            f"<td><a href='#{anchor(r)}'>{html.escape(r.name)}</a></td>",
            f"<td class='mnops-verdict {r.verdict}'>{r.verdict}</td>",
            _seconds("mttd", r.mttd_s),
            _seconds("mttr", r.mttr_s),
            _seconds("abort", facts.get("abort_s")),
            _seconds("rollback", facts.get("rollback_s")),
            _seconds("budget", facts.get("budget_s")),
            f"<td class='num mnops-score-cell'>{r.score:.0f}</td>",
            f"<td class='mnops-alerts'>{html.escape(', '.join(facts.get('alerts', [])) or '—')}</td>",
            f"<td class='mnops-delivered'>{'<br>'.join(map(html.escape, facts.get('delivered', []))) or '—'}</td>",
            f"<td class='mnops-trend'>{sparkline(day.trends.get(r.name, []), r)}</td>",
            (
                f"<td class='mnops-regression-cell'><span class='mnops-regression'>REGRESSION</span> "
                f"{html.escape(regression)}</td>"
                if regression
                else "<td class='mnops-regression-cell'>—</td>"
            ),
        ]
        rows.append(f"<tr class='mnops-drill-row' data-drill='{html.escape(r.name)}'>{''.join(cells)}</tr>")
    return f"<table class='mnops-drills'>{head}{''.join(rows)}</table>"


def validation_table(validation: Sequence[tuple[str, str, str, str]]) -> str:
    by_category: dict[tuple[str, str], list[str]] = {}
    for _, category, reads, outcome in validation:
        by_category.setdefault((category, reads), []).append(outcome)
    rows = "".join(
        f"<tr data-category='{c}'><td>{c}</td><td>{reads}</td>"
        + "".join(
            f"<td class='num {o if outcomes.count(o) and o != 'passed' else ''}'>{outcomes.count(o)}</td>"
            for o in ("passed", "failed", "skipped")
        )
        + "</tr>"
        for (c, reads), outcomes in sorted(by_category.items())
    )
    return (
        "<table class='mnops-validation'><tr><th>category</th><th>reads</th><th>passed</th><th>failed</th>"
        f"<th>skipped</th></tr>{rows}</table>"
    )


def _card(r: DrillResult) -> str:
    svg = r.facts.get("figure_svg")
    query = r.facts.get("plot_query")
    if svg:
        caption = f"Query: <code>{html.escape(query)}</code>" if query else "No query plotted."
        body = f"<figure class='mnops-timeline'>{svg}<figcaption>{caption}</figcaption></figure>"
    else:
        body = "<p>No timeline: the drill recorded no phase (it failed or was skipped before injecting).</p>"
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in r.facts.get("problems", []))
    regression = r.facts.get("regression")
    return (
        f"<div class='mnops-card' id='{anchor(r)}'><h4>{html.escape(r.name)} — "
        f"<span class='{r.verdict}'>{r.verdict}</span> · test <code>{html.escape(r.nodeid)}</code></h4>"
        + (f"<p><span class='mnops-regression'>REGRESSION</span> {html.escape(regression)}</p>" if regression else "")
        + (f"<ul class='mnops-problems'>{problems}</ul>" if problems else "")
        + body
        + "</div>"
    )


def sparkline(history: list[Baseline], current: DrillResult, width: int = 96, height: int = 24) -> str:
    """MTTD and MTTR over the earlier runs and this one, as a tiny inline SVG with the values in its title."""
    series = {
        "MTTD": ([b.mttd_s for b in history] + [current.mttd_s], "#b45309"),
        "MTTR": ([b.mttr_s for b in history] + [current.mttr_s], "#15803d"),
    }
    values = [v for points, _ in series.values() for v in points if v is not None]
    if len(history) == 0 or not values:
        return "first run" if not history else "—"
    top = max(values) or 1.0
    step = width / max(1, len(history))
    lines, words = [], []
    for name, (points, colour) in series.items():
        xy = [(i * step, height - 2 - (v / top) * (height - 4)) for i, v in enumerate(points) if v is not None]
        if xy:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            lines.append(f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='1.5'/>")
            x, y = xy[-1]
            lines.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2' fill='{colour}'/>")
        words.append(f"{name}: " + ", ".join("-" if v is None else f"{v:.1f}s" for v in points))
    title = html.escape(f"last {len(history) + 1} runs, oldest first. " + "; ".join(words))
    earlier = [v for v in series["MTTR"][0][:-1] if v is not None]
    now = current.mttr_s
    summary = f"MTTR median {statistics.median(earlier):.1f} s → {now:.1f} s" if earlier and now is not None else ""
    return (
        f"<svg class='mnops-sparkline' width='{width + 4}' height='{height}' viewBox='-2 0 {width + 4} {height}'>"
        f"<title>{title}</title>{''.join(lines)}</svg><div class='mnops-trend-words'>{summary}</div>"
    )


def _seconds(kind: str, value: float | None) -> str:
    return f"<td class='num mnops-{kind}'>{'—' if value is None else f'{value:.1f} s'}</td>"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
