"""Monitoring: Prometheus scrapes every target and runs every rule of your rule files (--mnops-rule-files, default
the reference app's), every alert expression evaluates, every severity the rules use reaches a receiver that
notifies, promtool passes, nothing fires at rest; a dashboard's queries return data (--mnops-dashboard)."""

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

from pytest_mnops import Alerts, ClusterError, MonitoringUnreachable, Prometheus, Target, option
from pytest_mnops.assets import shown
from pytest_mnops.observability import reach
from pytest_mnops.observability.routing import integrations, receivers_for
from pytest_mnops.observability.rules import rule_groups
from pytest_mnops.sandbox import binaries

DASHBOARD = "monitoring/grafana-dashboard.json"
# The reference app's rule file as the opt-in expectation set counts it.
REFERENCE_RULES, REFERENCE_GROUPS = 15, 5
REFERENCE_RECEIVERS = ("pager", "slack", "email")
REQUIRED_VARIABLES = ("datasource", "namespace", "app")
# Grafana's built-in interval variables, as a dashboard viewing the last hours would resolve them.
BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
PROMTOOL_TIMEOUT_S = 120


def _get(service: str, base: str, path: str) -> requests.Response:
    """One GET, failing fast with the server named when it cannot be reached."""
    return reach.call(service, base, lambda: requests.get(f"{base}{path}", timeout=reach.TIMEOUT))


@pytest.mark.validation("monitoring", reads="cluster")
def test_prometheus_ready_and_targets_up(prometheus: Prometheus) -> None:
    ready = _get("Prometheus", prometheus.url, "/-/ready")
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


def _rules(files: list[Path], time_scale: float = 1.0) -> list[tuple[Path, str, dict[str, Any]]]:
    """(file, group, rule) for every alerting and recording rule of the files."""
    return [(f, g["name"], r) for f in files for g in rule_groups(time_scale, f) for r in g["rules"]]


def _rule_name(rule: dict[str, Any]) -> str:
    return rule.get("alert") or rule.get("record") or "?"


@pytest.mark.validation("monitoring", reads="cluster")
def test_alert_rules_loaded_and_healthy(prometheus: Prometheus, rule_files: list[Path], expect_reference: bool) -> None:
    loaded = _loaded_rules(prometheus)
    problems = []
    for file in rule_files:
        rules = [(g, r) for f, g, r in _rules([file]) if f == file]
        where = shown(file)
        missing = [_rule_name(r) for _, r in rules if _rule_name(r) not in loaded]
        unhealthy = [
            f"{name} (group {loaded[name][0]}): health {loaded[name][1].get('health')}, "
            f"{loaded[name][1].get('lastError') or 'no error text'}"
            for name in (_rule_name(r) for _, r in rules)
            if name in loaded and loaded[name][1].get("health") != "ok"
        ]
        if missing:
            problems.append(
                f"{len(missing)} alert rule(s) of {where} are not loaded: {', '.join(missing)} (fix: "
                f"add the file to Prometheus' rule_files and reload: `curl -X POST {prometheus.url}/-/reload`, "
                f"or on the sandbox `mnops monitoring load {where}`)"
            )
        if unhealthy:
            problems.append(
                f"rules of {where} failing to evaluate: {'; '.join(unhealthy)} (fix: the named rule's "
                f"expression; check it with `promtool check rules {where}`)"
            )
        if expect_reference and (len(rules), len({g for g, _ in rules})) != (REFERENCE_RULES, REFERENCE_GROUPS):
            problems.append(
                f"{where} holds {len(rules)} rules in {len({g for g, _ in rules})} groups, the reference app "
                f"{REFERENCE_RULES} in {REFERENCE_GROUPS} (--mnops-expect=reference)"
            )
    assert not problems, f"Prometheus {prometheus.url}: " + "; ".join(problems)


def _loaded_rules(prometheus: Prometheus) -> dict[str, tuple[str, dict[str, Any]]]:
    """Loaded rules by name, once each has been evaluated: a rule Prometheus has only just (re)loaded reports
    health "unknown" until its group's next evaluation, which is no verdict either way."""
    deadline = None
    while True:
        groups = prometheus.rule_groups()
        loaded = {rule["name"]: (group["name"], rule) for group in groups for rule in group["rules"]}
        if all(rule.get("health") != "unknown" for _, rule in loaded.values()):
            return loaded
        if deadline is None:
            deadline = time.monotonic() + 2 * max(float(g.get("interval") or 1) for g in groups) + 1
        elif time.monotonic() > deadline:
            return loaded  # never evaluated in two intervals: reported as unhealthy
        time.sleep(0.25)


@pytest.mark.validation("monitoring", reads="cluster")
def test_alert_expressions_evaluate(prometheus: Prometheus, mnops_target: Target, rule_files: list[Path]) -> None:
    errors = []
    for file, _, rule in _rules(rule_files, mnops_target.time_scale):
        try:
            prometheus.query(rule["expr"])
        except MonitoringUnreachable:
            raise  # every other query would wait for the same server: one named failure says it
        except ClusterError as exc:
            errors.append(f"{shown(file)}: rule {_rule_name(rule)}: {exc}")
    assert not errors, f"{'; '.join(errors)}. Fix: correct the named rule's expr."


def _dashboard(file: Path) -> dict[str, Any]:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        pytest.fail(f"{file}: cannot be read as JSON: {exc}. Fix: re-export it from Grafana.", pytrace=False)


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    panels = []
    for panel in dashboard.get("panels") or []:
        panels.append(panel)
        panels.extend(panel.get("panels") or [])
    return [p for p in panels if p.get("type") != "row"]


@pytest.mark.validation("monitoring", reads="repo")
def test_dashboard_json_valid(repo_root: Path) -> None:
    dashboard = _dashboard(repo_root / DASHBOARD)
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
def test_dashboard_queries_return_data(
    request: pytest.FixtureRequest,
    prometheus: Prometheus,
    mnops_target: Target,
    repo_root: Path,
    expect_reference: bool,
    not_applicable: Any,
) -> None:
    given = option(request.config, "dashboard")
    if not given and not expect_reference:
        not_applicable(
            "no dashboard to check: pass yours with --mnops-dashboard=FILE (the reference app's "
            f"{DASHBOARD} is checked with --mnops-expect=reference)"
        )
    file = request.config.invocation_params.dir / given if given else repo_root / DASHBOARD
    values = {"namespace": mnops_target.namespace, "app": mnops_target.app, "datasource": "prometheus", **BUILTINS}
    errors, empty = [], []
    # The game-day panels read what pytest-mnops pushes after a drill run of this app: before the first one
    # they are empty (another app's game days do not fill them).
    game_days = bool(
        prometheus.query(
            f'mnops_last_run_timestamp_seconds{{namespace="{mnops_target.namespace}",app="{mnops_target.app}"}}'
        )
    )
    for panel in _panels(_dashboard(file)):
        for target in panel.get("targets") or []:
            expr = substitute(target.get("expr") or "", values)
            label = f"panel {panel.get('id')} {panel.get('title')!r} query {target.get('refId')}"
            try:
                result = prometheus.query(expr)
            except MonitoringUnreachable:
                raise  # every other query would wait for the same server: one named failure says it
            except ClusterError as exc:
                errors.append(f"{label}: {exc}")
                continue
            if not result and (game_days or "mnops_" not in expr):
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
    assert not problems, f"{shown(file)} for {where}: " + "; ".join(problems)


@pytest.mark.validation("monitoring", reads="cluster")
def test_alertmanager_routes_every_severity_to_a_receiver(
    mnops_target: Target, rule_files: list[Path], expect_reference: bool
) -> None:
    """Every severity the rules use reaches a receiver that notifies someone, as the running routing tree says."""
    url = mnops_target.require("alertmanager_url", "--mnops-alertmanager-url")
    ready = _get("Alertmanager", url, "/-/ready")
    assert ready.ok, f"Alertmanager {url}/-/ready answered {ready.status_code}. Fix: read its log."
    status = _get("Alertmanager", url, "/api/v2/status")
    assert status.ok, f"Alertmanager {url}/api/v2/status answered {status.status_code}. Fix: read its log."
    running = yaml.safe_load(status.json()["config"]["original"]) or {}
    receivers = {r["name"]: r for r in running.get("receivers") or []}
    route = running.get("route") or {}
    problems, severities = [], set()
    for file, _, rule in _rules(rule_files):
        if "alert" not in rule:
            continue
        labels = {"alertname": rule["alert"], "namespace": mnops_target.namespace, **(rule.get("labels") or {})}
        severity = labels.get("severity", "(none)")
        if severity in severities or severity == "none":  # severity none marks heartbeats (Watchdog)
            continue
        severities.add(severity)
        reached = receivers_for(route, labels)
        notifying = [name for name in reached if integrations(receivers.get(name, {}))]
        if not notifying:
            problems.append(
                f"severity {severity!r} (alert {rule['alert']} of {shown(file)}) is routed to "
                f"{', '.join(repr(r) for r in reached) or 'no receiver'}, which notifies nobody"
            )
    if expect_reference:
        problems += [
            f"receiver {name!r} of the reference app is not configured (--mnops-expect=reference)"
            for name in REFERENCE_RECEIVERS
            if not integrations(receivers.get(name, {}))
        ]
    assert not problems, (
        f"Alertmanager {url}: {'; '.join(problems)}; those alerts are dropped. Fix: route each severity to a "
        "receiver with an integration (slack_configs, email_configs, pagerduty_configs, webhook_configs...) in "
        f"the running Alertmanager configuration, check it with `amtool check-config`, then `curl -X POST "
        f"{url}/-/reload`."
    )


def _promtool(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = binaries.require("promtool")  # a missing binary fails, saying how to get it
    return subprocess.run(
        [str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S, check=False
    )


@pytest.mark.validation("monitoring", reads="repo")
def test_promtool_check_rules(rule_files: list[Path], repo_root: Path) -> None:
    names = [shown(f) for f in rule_files]
    proc = _promtool(["check", "rules", *map(str, rule_files)], repo_root)
    assert proc.returncode == 0, (
        f"`promtool check rules {' '.join(names)}` failed:\n{proc.stdout}{proc.stderr}\n"
        "Fix: correct the file where promtool points."
    )


@pytest.mark.validation("monitoring", reads="repo")
def test_promtool_test_rules(rule_tests: list[Path], repo_root: Path) -> None:
    assert rule_tests, (
        "no promtool unit tests for the rules. Fix: write them (one file per rule group) and pass them with "
        "--mnops-rule-tests."
    )
    names = [shown(f) for f in rule_tests]
    # promtool resolves a test's rule_files relative to the test file itself.
    proc = _promtool(["test", "rules", *map(str, rule_tests)], repo_root)
    failed = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "FAILED" in line]
    which = f" ({', '.join(failed)})" if failed else ""
    assert proc.returncode == 0, (
        f"`promtool test rules {' '.join(names)}` failed{which}:\n"
        f"{proc.stdout}{proc.stderr}\n"
        "Fix: make the named rule (or its test) right again."
    )


@pytest.mark.validation("monitoring", reads="cluster")
def test_no_alert_firing_at_rest(alerts: Alerts, mnops_target: Target, rule_files: list[Path]) -> None:
    """Nothing about the target fires on an idle system.

    In scope: alerts labelled with the target's namespace, and cluster-wide ones (no namespace label, e.g. the
    API server's). Other namespaces belong to other teams; severity "none" marks heartbeats (Watchdog) that
    fire by design. A drill in progress makes this check fail, correctly: the system is not at rest.
    """
    namespaces = {"", mnops_target.namespace, *mnops_target.allowed_namespaces}
    firing = [a for a in alerts.firing() if a.get("namespace", "") in namespaces and a.get("severity") != "none"]
    runbooks = {
        r["alert"]: r.get("annotations", {}).get("runbook_url", "") for _, _, r in _rules(rule_files) if "alert" in r
    }
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
