"""The room's scoreboard as one self-contained HTML page (for the debrief screen)."""

from __future__ import annotations

import html
import time

from pytest_mnops.training.scoreboard import TraineeScore

STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    ".right{background:#d4f7d4}.wrong{background:#f7d4d4}.missed{background:#f7ecd4}"
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render(drill: str, scores: list[TraineeScore]) -> str:
    rows = []
    for score in scores:
        for step in score.steps or []:
            rows.append(
                f"<tr class='{html.escape(step.verdict)}'><td>{html.escape(score.trainee)}</td>"
                f"<td>{html.escape(step.step)}</td><td>{html.escape(step.action)}</td>"
                f"<td>{html.escape(step.verdict)}</td><td>{_seconds(step.response_s)}</td>"
                f"<td>{_seconds(step.stable_restored_s)}</td><td>{html.escape(step.tool)}</td>"
                f"<td>{html.escape(step.why)}</td></tr>"
            )
        if not score.steps:
            rows.append(
                f"<tr class='missed'><td>{html.escape(score.trainee)}</td><td colspan='7'>"
                f"{html.escape('; '.join(score.problems))}</td></tr>"
            )
    totals = "".join(
        f"<tr><td>{html.escape(s.trainee)}</td><td>{html.escape(s.namespace)}</td><td>{s.right}/{len(s.steps)}</td>"
        f"<td>{html.escape(s.drill_verdict)}</td><td>{_seconds(s.mttr_s)}</td></tr>"
        for s in scores
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mnops training: {html.escape(drill)}</title>"
        f"<style>{STYLE}</style></head><body><h1>Training scoreboard: {html.escape(drill)}</h1>"
        f"<p>{time.strftime('%Y-%m-%d %H:%M:%S')}</p>"
        "<h2>Steps</h2><table><tr><th>trainee</th><th>step</th><th>action</th><th>verdict</th><th>response</th>"
        f"<th>stable restored</th><th>tool</th><th>why</th></tr>{''.join(rows)}</table>"
        "<h2>Trainees</h2><table><tr><th>trainee</th><th>namespace</th><th>right</th><th>drill</th><th>MTTR</th>"
        f"</tr>{totals}</table></body></html>"
    )
