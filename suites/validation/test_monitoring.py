"""Monitoring: Prometheus scrapes every target and runs every rule of monitoring/, every alert expression and
dashboard query evaluates (the panels show data), Alertmanager has the receivers, promtool passes, and
nothing fires at rest."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pytest_mnops.errors import ClusterError
from pytest_mnops.observability.alerts import Alerts
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.observability.rules import RULES_FILE, alert_rules
from pytest_mnops.sandbox import binaries
from pytest_mnops.target import Target

RULES = f"monitoring/{RULES_FILE}"
DASHBOARD = "monitoring/grafana-dashboard.json"
ALERTMANAGER_CONFIG = "monitoring/alertmanager.yml"
REQUIRED_VARIABLES = ("datasource", "namespace", "app")
# Grafana's built-in interval variables, as a dashboard viewing the last hours would resolve them.
BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
PROMTOOL_TIMEOUT_S = 120


def _get(url: str) -> requests.Response:
    try:
        return requests.get(url, timeout=10)
    except requests.RequestException as exc:
        raise ClusterError(
            f"{url} did not answer: {exc}. Fix: check the server is up and the URL option "
            "(--mnops-prometheus-url / --mnops-alertmanager-url) points at it."
        ) from None


@pytest.mark.validation("monitoring", reads="cluster")
def test_prometheus_ready_and_targets_up(prometheus: Prometheus) -> None:
    ready = _get(f"{prometheus.url}/-/ready")
    assert ready.ok, (
        f"Prometheus {prometheus.url}/-/ready answered {ready.status_code}: "
        f"{ready.text.strip()}. Fix: wait for its WAL replay to finish, or read its log."
    )
    targets = prometheus.targets()
    assert targets, (
        f"Prometheus {prometheus.url} scrapes nothing. Fix: add scrape_configs for the app and Argo Rollouts."
    )
    down = [
        f"job {t['labels'].get('job')} at {t.get('scrapeUrl')}: {t['health']} ({t.get('lastError') or 'no error'})"
        for t in targets
        if t["health"] != "up"
    ]
    assert not down, (
        f"Prometheus {prometheus.url}: {len(down)} of {len(targets)} scrape targets are not "
        f"up: {'; '.join(down)}. Fix: start the exporter behind the named URL, or correct its "
        "scrape config; alerts and canary analyses are blind to a target that is down."
    )


def _alerting_rules(prometheus: Prometheus) -> dict[str, tuple[str, dict[str, Any]]]:
    """Loaded alerting rules by name, once each has been evaluated: a rule Prometheus has only just (re)loaded
    reports health "unknown" until its group's next evaluation, which is no verdict either way."""
    deadline = None
    while True:
        groups = prometheus.rule_groups()
        loaded = {
            rule["name"]: (group["name"], rule)
            for group in groups
            for rule in group["rules"]
            if rule.get("type") == "alerting"
        }
        if all(rule.get("health") != "unknown" for _, rule in loaded.values()):
            return loaded
        if deadline is None:
            deadline = time.monotonic() + 2 * max(float(g.get("interval") or 1) for g in groups) + 1
        elif time.monotonic() > deadline:
            return loaded  # never evaluated in two intervals: reported as unhealthy
        time.sleep(0.25)


@pytest.mark.validation("monitoring", reads="cluster")
def test_alert_rules_loaded_and_healthy(prometheus: Prometheus) -> None:
    loaded = _alerting_rules(prometheus)
    expected = [rule["alert"] for rule in alert_rules()]
    missing = [name for name in expected if name not in loaded]
    unhealthy = [
        f"{name} (group {loaded[name][0]}): health {loaded[name][1].get('health')}, "
        f"{loaded[name][1].get('lastError') or 'no error text'}"
        for name in expected
        if name in loaded and loaded[name][1].get("health") != "ok"
    ]
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} alert rule(s) of {RULES} are not loaded: {', '.join(missing)} (fix: "
            "add the file to Prometheus' rule_files and reload: "
            f"`curl -X POST {prometheus.url}/-/reload`)"
        )
    if unhealthy:
        problems.append(
            f"rules failing to evaluate: {'; '.join(unhealthy)} (fix: the named rule's "
            f"expression; check it with `promtool check rules {RULES}`)"
        )
    assert not problems, f"Prometheus {prometheus.url}: " + "; ".join(problems)


@pytest.mark.validation("monitoring", reads="cluster")
def test_alert_expressions_evaluate(prometheus: Prometheus, mnops_target: Target) -> None:
    errors = []
    for rule in alert_rules(mnops_target.time_scale):
        try:
            prometheus.query(rule["expr"])
        except ClusterError as exc:
            errors.append(f"alert {rule['alert']}: {exc}")
    assert not errors, f"{RULES}: {'; '.join(errors)}. Fix: correct the named alert's expr."


def _dashboard(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / DASHBOARD).read_text())
    except (OSError, ValueError) as exc:
        pytest.fail(f"{DASHBOARD}: cannot be read as JSON: {exc}. Fix: re-export it from Grafana.", pytrace=False)


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    panels = []
    for panel in dashboard.get("panels") or []:
        panels.append(panel)
        panels.extend(panel.get("panels") or [])
    return [p for p in panels if p.get("type") != "row"]


@pytest.mark.validation("monitoring", reads="repo")
def test_dashboard_json_valid(repo_root: Path) -> None:
    dashboard = _dashboard(repo_root)
    problems = []
    for key in ("uid", "title"):
        if not dashboard.get(key):
            problems.append(f"no {key}")
    variables = {v.get("name") for v in (dashboard.get("templating") or {}).get("list") or []}
    problems += [f"no template variable ${name}" for name in REQUIRED_VARIABLES if name not in variables]
    panels = _panels(dashboard)
    if not panels:
        problems.append("no panels")
    ids = [p.get("id") for p in panels]
    problems += [f"panel id {i} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1}, key=str)]
    for panel in panels:
        label = f"panel {panel.get('id')} {panel.get('title')!r}"
        if not panel.get("title") or not panel.get("gridPos"):
            problems.append(f"{label} lacks a title or gridPos")
        uid = (panel.get("datasource") or {}).get("uid")
        if uid not in ("${datasource}", "$datasource"):
            problems.append(f"{label} uses datasource {uid!r} instead of the $datasource variable")
        targets = panel.get("targets") or []
        if not targets or not all(t.get("expr") and t.get("refId") for t in targets):
            problems.append(f"{label} has a query without expr or refId")
    assert not problems, f"{DASHBOARD}: {'; '.join(problems)}. Fix: correct the JSON (or re-export it)."


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's variable syntaxes ($x, ${x}, ${x:fmt}, [[x]]); unknown names (e.g. $1) stay as they are."""

    def repl(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return values.get(name, match.group(0))

    return VARIABLE.sub(repl, expr)


@pytest.mark.validation("monitoring", reads="cluster")
def test_dashboard_queries_return_data(prometheus: Prometheus, mnops_target: Target, repo_root: Path) -> None:
    values = {"namespace": mnops_target.namespace, "app": mnops_target.app, "datasource": "prometheus", **BUILTINS}
    errors, empty = [], []
    for panel in _panels(_dashboard(repo_root)):
        for target in panel.get("targets") or []:
            expr = substitute(target.get("expr") or "", values)
            label = f"panel {panel.get('id')} {panel.get('title')!r} query {target.get('refId')}"
            try:
                result = prometheus.query(expr)
            except ClusterError as exc:
                errors.append(f"{label}: {exc}")
                continue
            if not result:
                empty.append(f"{label} `{expr}`")
    problems = []
    if errors:
        problems.append(f"queries that fail: {'; '.join(errors)} (fix: correct the panel's expr)")
    if empty:
        problems.append(
            f"queries that return no data from {prometheus.url}: {'; '.join(empty)} (fix: "
            "scrape the series they read, or correct their label filters)"
        )
    where = f"{mnops_target.namespace}/{mnops_target.app}"
    assert not problems, f"{DASHBOARD} for {where}: " + "; ".join(problems)


@pytest.mark.validation("monitoring", reads="cluster")
def test_alertmanager_ready_with_receivers(mnops_target: Target, repo_root: Path) -> None:
    url = mnops_target.require("alertmanager_url", "--mnops-alertmanager-url")
    ready = _get(f"{url}/-/ready")
    assert ready.ok, f"Alertmanager {url}/-/ready answered {ready.status_code}. Fix: read its log."
    status = _get(f"{url}/api/v2/status")
    assert status.ok, f"Alertmanager {url}/api/v2/status answered {status.status_code}. Fix: read its log."
    running = yaml.safe_load(status.json()["config"]["original"]) or {}
    configured = {r["name"]: r for r in running.get("receivers") or []}
    repo_config = yaml.safe_load((repo_root / ALERTMANAGER_CONFIG).read_text()) or {}
    wanted = [r["name"] for r in repo_config.get("receivers") or []]
    problems = [f"receiver {name!r} is not configured" for name in wanted if name not in configured]
    problems += [
        f"receiver {name!r} has no integration (no *_configs)"
        for name in wanted
        if name in configured and not any(k.endswith("_configs") and v for k, v in configured[name].items())
    ]
    for name in ("pager", "slack"):
        if name not in wanted:
            problems.append(f"{ALERTMANAGER_CONFIG} defines no {name!r} receiver")
    assert not problems, (
        f"Alertmanager {url}: {'; '.join(problems)}; alerts routed there are dropped. "
        f"Fix: load {ALERTMANAGER_CONFIG} (`amtool check-config {ALERTMANAGER_CONFIG}`, "
        f"then `curl -X POST {url}/-/reload`)."
    )


def _promtool(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = binaries.require("promtool")  # a missing binary fails, saying how to get it
    return subprocess.run(
        [str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S, check=False
    )


@pytest.mark.validation("monitoring", reads="repo")
def test_promtool_check_rules(repo_root: Path) -> None:
    proc = _promtool(["check", "rules", RULES], repo_root)
    assert proc.returncode == 0, (
        f"`promtool check rules {RULES}` failed:\n{proc.stdout}{proc.stderr}\n"
        f"Fix: correct {RULES} where promtool points."
    )


@pytest.mark.validation("monitoring", reads="repo")
def test_promtool_test_rules(repo_root: Path) -> None:
    tests = sorted(str(p.relative_to(repo_root)) for p in (repo_root / "monitoring" / "tests").glob("*.yaml"))
    assert tests, "monitoring/tests/ has no promtool unit tests. Fix: add them (one file per rule group)."
    proc = _promtool(["test", "rules", *tests], repo_root)
    failed = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "FAILED" in line]
    which = f" ({', '.join(failed)})" if failed else ""
    assert proc.returncode == 0, (
        f"`promtool test rules monitoring/tests/*.yaml` failed{which}:\n"
        f"{proc.stdout}{proc.stderr}\n"
        f"Fix: make the named rule in {RULES} (or its test) right again."
    )


@pytest.mark.validation("monitoring", reads="cluster")
def test_no_alert_firing_at_rest(alerts: Alerts, mnops_target: Target) -> None:
    """Nothing about the target fires on an idle system.

    In scope: alerts labelled with the target's namespace, and cluster-wide ones (no namespace label, e.g. the
    API server's). Other namespaces belong to other teams; severity "none" marks heartbeats (Watchdog) that
    fire by design. A drill in progress makes this check fail, correctly: the system is not at rest.
    """
    namespaces = {"", mnops_target.namespace, *mnops_target.allowed_namespaces}
    firing = [a for a in alerts.firing() if a.get("namespace", "") in namespaces and a.get("severity") != "none"]
    runbooks = {r["alert"]: r.get("annotations", {}).get("runbook_url", "") for r in alert_rules()}
    described = []
    for alert in sorted(firing, key=lambda a: a["alertname"]):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.items()) if k not in ("__name__", "alertstate"))
        runbook = runbooks.get(alert["alertname"])
        described.append(f"{alert['alertname']} {{{labels}}}" + (f" (runbook {runbook})" if runbook else ""))
    assert not described, (
        f"alerts firing at rest on {mnops_target.describe()}: {'; '.join(described)}. Fix: follow each "
        "alert's runbook; if a drill is running against this target, run the validation again once it has "
        "finished."
    )
