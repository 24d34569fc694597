"""pytest-html extras for a drill: a plot of its key series with the phases marked, a phase table, the journal."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import pytest

from pytest_mnops.reporting.results import FIGURES, DrillResult

PHASE_COLOURS = {
    "inject": "tab:red",
    "detected": "tab:orange",
    "recovered": "tab:green",
    "reverted": "tab:blue",
    "operator-prompt": "tab:pink",
    "human-step": "tab:purple",
    "steady-state": "tab:gray",
}


def add_extras(report: pytest.TestReport, result: DrillResult) -> None:
    from pytest_html import extras

    report.extras = [*getattr(report, "extras", []), extras.html(_tables(result))]
    plot = result.facts.get("plot")
    if plot and plot.get("series"):
        report.extras.append(extras.png(_plot(result, plot), name=f"{result.name} timeline"))


def _tables(result: DrillResult) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(e.phase)}</td><td>{e.at - result.started:+.2f}s</td>"
        f"<td>{html.escape(e.detail)}</td></tr>"
        for e in result.events
    )
    figures = result.as_dict()
    summary = "".join(
        f"<tr><th>{k}</th><td>{html.escape(str(figures[k]))}</td></tr>"
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
        f"<table class='mnops-figures'>{summary}</table>"
        f"{f'<ul class=mnops-problems>{problems}</ul>' if problems else ''}"
        "<h5>Phases</h5><table class='mnops-phases'><tr><th>phase</th><th>t</th><th>detail</th></tr>"
        f"{rows}</table>"
        "<h5>Journal</h5><table class='mnops-journal'><tr><th>activity</th><th>type</th><th>phase</th>"
        f"<th>status</th><th>duration</th><th>error</th></tr>{journal}</table></div>"
    )


def _plot(result: DrillResult, plot: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 3.2), dpi=100)
    try:
        for series in plot["series"]:
            points = series["points"]
            label = ",".join(f"{k}={v}" for k, v in series["labels"].items()) or "value"
            axes.plot([t - result.started for t, _ in points], [v for _, v in points], label=label[:40])
        for event in result.events:
            axes.axvline(
                event.at - result.started, color=PHASE_COLOURS.get(event.phase, "black"), linestyle="--", linewidth=1
            )
            axes.annotate(
                event.phase,
                (event.at - result.started, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                fontsize=7,
            )
        axes.set_xlabel("seconds since the drill started")
        axes.set_title(plot["query"][:90], fontsize=8)
        axes.legend(fontsize=7, loc="best")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        pyplot.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
