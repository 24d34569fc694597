"""What a drill run leaves for the reports: the outputs worth showing, the plotted series, deliveries in words."""

from __future__ import annotations

import time
from typing import Any

from pytest_mnops.chaos.journal import DrillJournal
from pytest_mnops.chaos.scenarios import Scenario
from pytest_mnops.errors import ClusterError
from pytest_mnops.placeholders import fill
from pytest_mnops.timeline import INJECT, Timeline


def record_facts(
    facts: dict[str, Any],
    scenario: Scenario,
    config: dict[str, Any],
    journal: DrillJournal,
    timeline: Timeline,
    *,
    plot: bool,
) -> None:
    """Into ``facts``: the outputs worth showing, the plotted series (when ``plot``: the target has Prometheus),
    the journal summary."""
    outputs = {a.name: a.output for a in journal.activities if isinstance(a.output, dict)}
    facts.update(scenario=scenario.name, journal=journal.summary(), problems=journal.problems())
    facts["alerts"] = sorted({o["alert"] for o in outputs.values() if o.get("state") == "firing" and "alert" in o})
    inject = timeline.first(INJECT)
    aborted = [o["aborted_at"] for o in outputs.values() if "aborted_at" in o]
    if inject and aborted:
        facts["abort_s"] = round(aborted[0] - inject.at, 2)
    rollback = [o["duration_s"] for o in outputs.values() if "duration_s" in o]
    facts["rollback_s"] = (
        round(rollback[0], 2) if rollback else round(sum((r.end or 0) - (r.start or 0) for r in journal.rollbacks), 2)
    )
    # Training mode: each human step's score (training/steps.py), and the first response time.
    steps = [o for o in outputs.values() if "verdict" in o]
    if steps:
        facts["human_steps"] = steps
    responses = [o["response_s"] for o in steps if o.get("response_s") is not None]
    if responses:
        facts["human_response_s"] = responses[0]
    facts["delivered"] = deliveries(outputs, inject.at if inject else None)
    # A drill may plot its app's own SLO query (from its app profile), with its own words, instead.
    query, words = (config["plot"], config.get("plot_words", {})) if config.get("plot") else (scenario.plot, {})
    if query and plot:
        facts["plot"] = {**series(query, config, timeline), **(words or scenario.plot_words)}


def series(query: str, config: dict[str, Any], timeline: Timeline) -> dict[str, Any]:
    """The plotted series and the alert states (Prometheus' ``ALERTS``) of the namespace over the drill."""
    from pytest_mnops.observability.prometheus import Prometheus  # prometheus-api-client: only when plotting
    from pytest_mnops.timescale import scale_promql

    expr = scale_promql(
        fill(query, {"namespace": config["namespace"], "app": config["app"]}),
        float(config.get("time_scale", 1.0)),
    )
    start, end = timeline.started - 5, time.time() + 1
    prometheus = Prometheus(config["prometheus_url"])
    try:
        result = prometheus.range(expr, start, end, step_s=1)
        alerts = prometheus.range(f'ALERTS{{namespace="{config["namespace"]}"}}', start, end, step_s=1)
    except ClusterError as exc:
        return {"query": expr, "error": str(exc), "series": [], "alerts": []}
    plotted = [{"labels": r["metric"], "points": [(float(t), float(v)) for t, v in r["values"]]} for r in result]
    states = [
        {"alert": a["metric"]["alertname"], "state": a["metric"]["alertstate"], "points": a["values"]} for a in alerts
    ]
    return {"query": expr, "series": plotted, "alerts": states}


def deliveries(outputs: dict[str, dict[str, Any]], inject_at: float | None) -> list[str]:
    """Proof of delivery in words: which notification reached which receiver, and when after the injection."""
    proofs = []
    for output in outputs.values():
        if output.get("channel") and "received_at" in output:
            after = f" at +{output['received_at'] - inject_at:.1f}s" if inject_at else ""
            proofs.append(f"{output.get('alert', 'notification')} → {output['channel']}{after}")
        elif output.get("channel") and output.get("delivered"):
            proofs.append(f"{len(output['delivered'])} {output.get('status', '')} alerts → {output['channel']}")
        elif output.get("receiver") and output.get("proof"):  # an expected alert, proven delivered
            proofs.append(f"{output.get('alert')} → {output['receiver']} (proof={output['proof']})")
        elif output.get("receivers") and output.get("delivered"):  # monitoring-alerts' synthetic alerts
            to, count = ", ".join(output["receivers"]), len(output["delivered"])
            proofs.append(f"{count} {output.get('status', '')} alerts → {to} (proof={output['proof']})")
        proofs += [f"rollback notice → {channel}" for channel in output.get("notified") or []]
    return proofs
