"""A drill's timeline as one self-contained SVG figure that reads at a glance.

From top to bottom, on one time axis (seconds since the fault was injected):
- a lane of phase labels (steady state, inject, detected, recovered, reverted...), stacked so none overprints;
- the drill's key series, titled in words with its unit on the y axis, over the shaded fault window;
- MTTD and MTTR as spans from the injection, with their values;
- one band per alert: pending, firing, and resolved after it fired (from Prometheus' ``ALERTS`` series).

matplotlib is imported here only, and this module only when an HTML report is written.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_mnops import timeline

if TYPE_CHECKING:
    from pytest_mnops.reporting.results import DrillResult

# The fault window's fill. Used nowhere else in the report: the browser test finds each figure by it.
FAULT_WINDOW_COLOUR = "#fbe3d6"
PHASE_COLOURS = {
    timeline.STEADY_STATE: "#6b7280",
    timeline.INJECT: "#c2410c",
    timeline.DETECTED: "#b45309",
    timeline.OPERATOR_PROMPT: "#be185d",
    timeline.HUMAN_STEP: "#7e22ce",
    timeline.RECOVERED: "#15803d",
    timeline.REVERTED: "#1d4ed8",
}
PHASE_WORDS = {
    timeline.STEADY_STATE: "steady state",
    timeline.INJECT: "fault injected",
    timeline.DETECTED: "detected",
    timeline.OPERATOR_PROMPT: "operator paged",
    timeline.HUMAN_STEP: "operator acted",
    timeline.RECOVERED: "recovered",
    timeline.REVERTED: "fault reverted",
}
ALERT_STATE_COLOURS = {"pending": "#f59e0b", "firing": "#dc2626", "resolved": "#86efac"}
# Series label names in words, for the legend.
LABEL_WORDS = {"rollouts_pod_template_hash": "ReplicaSet", "code": "HTTP", "le": "bucket", "pod": "pod"}

WIDTH_IN = 11.0
LEFT_IN, RIGHT_IN = 1.0, 0.35  # the left margin grows to fit the longest alert name
SERIES_H_IN = 2.6
LINE_H_IN = 0.22  # one stacked phase label
BAND_H_IN = 0.26  # one span or alert band
GAP_IN = 0.12
FONT = 9


@dataclass(frozen=True)
class Placed:
    """A phase label, placed on a level of the label lane so that it overlaps no other label."""

    x: float
    text: str
    colour: str
    level: int
    align: str


def render_svg(result: DrillResult) -> str:
    """The figure as an inline ``<svg>`` element (text stays text, so the DOM can be read).

    Long because a figure is drawn top to bottom (series, phases, alert bands, labels, legend) on one axes;
    split, each part would need the axes and the scales passed along."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    plot = result.facts.get("plot") or {}
    inject = next((e.at for e in result.events if e.phase == timeline.INJECT), result.started)
    series = [
        (_legend(s.get("labels") or {}, plot), [(t - inject, v) for t, v in s.get("points") or []])
        for s in plot.get("series") or []
    ]
    events = [(e.phase, e.at - inject) for e in result.events]
    xs = [t for _, points in series for t, _ in points] + [t for _, t in events] + [0.0]
    x_min, x_max = min(xs), max(xs)
    alerts = alert_intervals(plot.get("alerts") or [], inject, x_max)
    pad = max(1.0, 0.03 * (x_max - x_min))
    x_min, x_max = x_min - pad, x_max + pad
    left = max(LEFT_IN, 0.3 + max((text_width_in(name) for name, _ in alerts), default=0.0))
    axes_w = WIDTH_IN - left - RIGHT_IN
    placed = place_labels(events, x_min, x_max, axes_w)
    levels = 1 + max((p.level for p in placed), default=0)
    spans = [(n, v) for n, v in (("MTTD", result.mttd_s), ("MTTR", result.mttr_s)) if v is not None]
    alert_rows = max(1, len(alerts))
    lanes = [
        ("labels", levels * LINE_H_IN + 0.1),
        ("series", SERIES_H_IN),
        ("spans", max(1, len(spans)) * BAND_H_IN + 0.1),
        ("alerts", alert_rows * BAND_H_IN + 0.1),
    ]
    top_in, bottom_in = 0.75, 0.75  # title and subtitle above; x label and state legend below
    height = top_in + bottom_in + sum(h for _, h in lanes) + GAP_IN * (len(lanes) - 1)
    figure = pyplot.figure(figsize=(WIDTH_IN, height))
    try:
        axes: dict[str, Any] = {}
        y = height - top_in
        for name, lane_h in lanes:
            y -= lane_h
            rect = (left / WIDTH_IN, y / height, axes_w / WIDTH_IN, lane_h / height)
            axes[name] = figure.add_axes(rect, sharex=axes.get("series"))
            y -= GAP_IN
        for name, ax in axes.items():
            ax.set_xlim(x_min, x_max)
            if name != "alerts":
                ax.tick_params(labelbottom=False)
        _title(figure, result, plot, height, left)
        _labels_lane(axes["labels"], placed, levels)
        _series_lane(axes["series"], series, plot)
        _spans_lane(axes["spans"], spans, x_max, (x_max - x_min) / axes_w)
        _alerts_lane(axes["alerts"], alerts)
        for name in ("series", "spans", "alerts"):
            for phase, t in events:
                axes[name].axvline(t, color=PHASE_COLOURS.get(phase, "black"), linestyle="--", linewidth=0.9, zorder=1)
        fault_end = next((t for phase, t in events if phase == timeline.REVERTED), x_max)
        axes["series"].axvspan(0.0, fault_end, color=FAULT_WINDOW_COLOUR, zorder=0, linewidth=0)
        axes["alerts"].set_xlabel("seconds since the fault was injected (t = 0)", fontsize=FONT)
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"mnops-{result.name}"}):
            figure.savefig(buffer, format="svg")
    finally:
        pyplot.close(figure)
    return _inline(buffer.getvalue(), result.name)


def place_labels(events: list[tuple[str, float]], x_min: float, x_max: float, axes_w_in: float) -> list[Placed]:
    """Put each phase label on the lowest level where it overlaps no label already there.

    Widths are measured in inches with matplotlib's text metrics, converted to data units through the known
    axes width, so the placement holds in the saved figure whatever the time range.
    """
    per_inch = (x_max - x_min) / axes_w_in
    gap = 0.08 * per_inch
    levels: list[list[tuple[float, float]]] = []
    placed = []
    for phase, t in sorted(events, key=lambda e: e[1]):
        text = f"{PHASE_WORDS.get(phase, phase)} {round(t, 1) or 0.0:+.1f}s"  # never "-0.0s"
        width = (text_width_in(text, bold=True) + 0.06) * per_inch
        align = "left" if t + width <= x_max else "right"
        start, end = (t, t + width) if align == "left" else (t - width, t)
        level = next(
            (i for i, taken in enumerate(levels) if all(end + gap <= a or start >= b + gap for a, b in taken)),
            len(levels),
        )
        if level == len(levels):
            levels.append([])
        levels[level].append((start, end))
        placed.append(Placed(t, text, PHASE_COLOURS.get(phase, "black"), level, align))
    return placed


def text_width_in(text: str, *, bold: bool = False) -> float:
    """Width of ``text`` at the figure's font size, in inches (matplotlib's own text metrics)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    font = FontProperties(size=FONT, weight="bold" if bold else "normal")
    return TextToPath().get_text_width_height_descent(text, font, ismath=False)[0] / 72


def alert_intervals(
    alerts: list[dict[str, Any]], inject: float, window_end: float
) -> list[tuple[str, list[tuple[str, float, float]]]]:
    """(alert, [(state, start, end)]) from ``ALERTS`` range series, times relative to the injection.

    A state's interval is a run of samples without a gap; after the last firing interval, the alert is
    resolved until ``window_end`` (the end of the plotted window, relative too).
    """
    by_alert: dict[str, list[tuple[str, float, float]]] = {}
    for alert in alerts:
        points = sorted(t for t, _ in alert.get("points") or [])
        name, state = alert["alert"], alert["state"]
        start: float | None = None
        prev = 0.0
        for t in points:
            if start is None:
                start = prev = t
            elif t - prev > 2.5:  # a gap of more than two 1 s steps: the state ended and began again
                by_alert.setdefault(name, []).append((state, start - inject, prev + 1 - inject))
                start = t
            prev = t
        if start is not None:
            by_alert.setdefault(name, []).append((state, start - inject, prev + 1 - inject))
    for intervals in by_alert.values():
        firing_end = max((end for state, _, end in intervals if state == "firing"), default=None)
        if firing_end is not None and firing_end < window_end:
            intervals.append(("resolved", firing_end, window_end))
    return sorted(by_alert.items())


def _legend(labels: dict[str, str], plot: dict[str, Any]) -> str:
    words = [f"{LABEL_WORDS.get(k, k)} {v}" for k, v in labels.items() if k not in ("__name__", "job", "instance")]
    return ", ".join(words) or plot.get("unit") or "value"


def _title(figure: Any, result: DrillResult, plot: dict[str, Any], height: float, left: float) -> None:
    title = plot.get("title") or "key series"
    figure.text(left / WIDTH_IN, 1 - 0.3 / height, title, fontsize=13, weight="bold", va="baseline")
    figures = [f"{result.verdict}", f"score {result.score:.0f}"]
    figures += [f"{n} {v:.1f}s" for n, v in (("MTTD", result.mttd_s), ("MTTR", result.mttr_s)) if v is not None]
    figure.text(
        left / WIDTH_IN,
        1 - 0.55 / height,
        f"{result.name} drill on {result.target} · " + " · ".join(figures),
        fontsize=FONT,
        color="#374151",
        va="baseline",
    )


def _labels_lane(ax: Any, placed: list[Placed], levels: int) -> None:
    ax.set_ylim(0, levels)
    ax.axis("off")
    for label in placed:
        ax.text(
            label.x,
            label.level + 0.15,
            f" {label.text} ",
            ha=label.align,
            va="bottom",
            fontsize=FONT,
            color=label.colour,
            weight="bold",
        )


def _series_lane(ax: Any, series: list[tuple[str, list[tuple[float, float]]]], plot: dict[str, Any]) -> None:
    from matplotlib.patches import Patch

    for label, points in series:
        ax.plot([t for t, _ in points], [v for _, v in points], label=label, linewidth=1.6)
    ax.set_ylabel(plot.get("unit") or "value", fontsize=FONT)
    ax.tick_params(labelsize=FONT - 1)
    ax.grid(True, color="#e5e7eb", linewidth=0.6)
    ax.set_axisbelow(True)
    if not series:
        reason = plot.get("error") or "the query returned no samples in the drill's window"
        ax.text(0.5, 0.5, f"no data: {reason}"[:140], transform=ax.transAxes, ha="center", va="center", fontsize=FONT)
    handles = ax.get_legend_handles_labels()[0]
    handles.append(Patch(color=FAULT_WINDOW_COLOUR, label="fault window (injected → reverted)"))
    ax.legend(handles=handles, fontsize=FONT - 1, loc="best", framealpha=0.92)


def _spans_lane(ax: Any, spans: list[tuple[str, float]], x_max: float, per_inch: float) -> None:
    colours = {"MTTD": PHASE_COLOURS[timeline.DETECTED], "MTTR": PHASE_COLOURS[timeline.RECOVERED]}
    ax.set_ylim(-0.5, max(1, len(spans)) - 0.5)
    ax.invert_yaxis()
    ax.set_yticks(range(len(spans)), [n for n, _ in spans], fontsize=FONT)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    for row, (name, value) in enumerate(spans):
        ax.barh(row, max(value, 0.05), left=0.0, height=0.55, color=colours[name], alpha=0.85, zorder=2)
        label = f" {name} {value:.1f}s "
        # Beside the bar when it fits in the axes, else inside its end.
        outside = value + text_width_in(label, bold=True) * per_inch <= x_max
        ax.text(
            value,
            row,
            label,
            va="center",
            ha="left" if outside else "right",
            color="black" if outside else "white",
            fontsize=FONT,
            weight="bold",
            zorder=3,
        )
    if not spans:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no detection or recovery measured", transform=ax.transAxes, ha="center", fontsize=FONT)


def _alerts_lane(ax: Any, alerts: list[tuple[str, list[tuple[str, float, float]]]]) -> None:
    from matplotlib.patches import Patch

    ax.set_ylim(-0.5, max(1, len(alerts)) - 0.5)
    ax.invert_yaxis()
    ax.tick_params(labelsize=FONT - 1)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.set_yticks(range(len(alerts)), [name for name, _ in alerts], fontsize=FONT)
    for row, (_, intervals) in enumerate(alerts):
        for state, start, end in intervals:
            ax.barh(row, end - start, left=start, height=0.6, color=ALERT_STATE_COLOURS[state], zorder=2)
    if not alerts:
        ax.set_yticks([])
        ax.text(
            0.5,
            0.5,
            "no Prometheus alert was pending or firing for this namespace during the drill",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=FONT,
            color="#6b7280",
        )
    handles = [Patch(color=c, label=f"alert {s}") for s, c in ALERT_STATE_COLOURS.items()]
    ax.legend(handles=handles, fontsize=FONT - 1, loc="upper right", bbox_to_anchor=(1.0, -0.9), ncol=3, frameon=False)


def _inline(svg: str, name: str) -> str:
    """matplotlib's SVG document as an element for the page: no XML prolog, scaled by CSS, labelled."""
    start = svg.index("<svg")
    element = svg[start:]
    element = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", element, count=1)
    return element.replace("<svg", f'<svg class="mnops-figure-svg" role="img" aria-label="{name} drill timeline"', 1)
