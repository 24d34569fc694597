"""pytest-html extras for a drill's own row: its figures, phases and journal, linking to its game-day card."""

from __future__ import annotations

import html

import pytest

from pytest_mnops.reporting.results import FIGURES, DrillResult


def anchor(result: DrillResult) -> str:
    """The id of the drill's card in the game-day summary."""
    return f"mnops-drill-{result.name}"


def add_extras(report: pytest.TestReport, result: DrillResult) -> None:
    from pytest_html import extras

    # pytest-html reads its extras from this attribute of the report.
    vars(report)["extras"] = [*getattr(report, "extras", []), extras.html(tables(result))]


def tables(result: DrillResult) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(e.phase)}</td><td>{e.at - result.started:+.2f}s</td>"
        f"<td>{html.escape(e.detail)}</td></tr>"
        for e in result.events
    )
    figures = result.as_dict()
    summary = "".join(
        f"<tr><th>{k}</th><td>{html.escape(_text(figures[k]))}</td></tr>"
        for k in FIGURES
        if figures.get(k) not in (None, [])
    )
    journal = "".join(
        f"<tr><td>{html.escape(r['name'])}</td><td>{r['type']}</td><td>{r['phase']}</td><td>{r['status']}</td>"
        f"<td>{r['duration_s']}s</td><td>{html.escape(r['error'])}</td></tr>"
        for r in result.facts.get("journal", [])
    )
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in result.facts.get("problems", []))
    return (
        f"<div class='mnops-drill'><h4>Drill {html.escape(result.name)} on {html.escape(result.target)}</h4>"
        f"<p><a href='#{anchor(result)}'>Timeline figure in the game-day summary</a></p>"
        f"<table class='mnops-figures'>{summary}</table>"
        f"{f'<ul class=mnops-problems>{problems}</ul>' if problems else ''}"
        "<h5>Phases</h5><table class='mnops-phases'><tr><th>phase</th><th>t</th><th>detail</th></tr>"
        f"{rows}</table>"
        "<h5>Journal</h5><table class='mnops-journal'><tr><th>activity</th><th>type</th><th>phase</th>"
        f"<th>status</th><th>duration</th><th>error</th></tr>{journal}</table></div>"
    )


def _text(value: object) -> str:
    return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
