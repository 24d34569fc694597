"""monitoring/ as shipped: rules pass promtool (also scaled for the sandbox), Alertmanager config and dashboard."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from pytest_mnops import assets, cli
from pytest_mnops.observability.rules import RULES_FILE, alert_rules, prometheus_rule, rule_groups, write_rules
from pytest_mnops.sandbox import binaries

MONITORING = assets.path("monitoring")
GROUPS = {"deployment-health", "application-health", "canary-analysis", "resource-usage", "security"}


def run(tool: str, *args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binaries.require(tool)), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_fifteen_rules_in_five_groups_each_fully_annotated() -> None:
    assert {g["name"] for g in rule_groups()} == GROUPS
    rules = alert_rules()
    assert len(rules) >= 15
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        assert rule["annotations"]["runbook_url"] == f"docs/runbooks.md#{rule['alert'].lower()}"


def test_promtool_checks_the_rules_and_runs_every_unit_test() -> None:
    checked = run("promtool", "check", "rules", RULES_FILE)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(str(p.relative_to(MONITORING)) for p in (MONITORING / "tests").glob("*.yaml"))
    tested = run("promtool", "test", "rules", *tests)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(tests)


def test_every_alert_has_a_firing_and_a_quiet_unit_test_case() -> None:
    """Per alert: a rule tested only firing could fire always; one tested only quiet could never fire."""
    fired, quiet = set(), set()
    for file in (MONITORING / "tests").glob("*.yaml"):
        for case in yaml.safe_load(file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {r["alert"] for r in alert_rules()}
    assert sorted(alerts - fired) == [], "alerts without a promtool case that expects them firing"
    assert sorted(alerts - quiet) == [], "alerts without a promtool case that expects them quiet"


def test_rules_scaled_for_the_sandbox_still_pass_promtool(tmp_path: Path) -> None:
    [target] = write_rules(tmp_path, time_scale=1 / 12)
    checked = run("promtool", "check", "rules", str(target))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "[5m]" not in target.read_text()


def test_alertmanager_config_is_valid_and_routes_by_severity() -> None:
    checked = run("amtool", "check-config", "alertmanager.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    receivers = {r["name"] for r in yaml.safe_load((MONITORING / "alertmanager.yml").read_text())["receivers"]}
    assert {"pager", "slack", "email"} <= receivers


def test_dashboard_is_importable_with_fourteen_queried_panels() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    panels = dashboard["panels"]
    assert len(panels) == 14
    game_day = " ".join(t["expr"] for p in panels if p["title"].startswith("Game day") for t in p["targets"])
    for metric in (
        "mnops_resilience_score",
        "mnops_drill_regression",
        "mnops_drill_mttd_seconds",
        "mnops_drill_mttr_seconds",
    ):
        assert metric in game_day
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in panels)
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"namespace", "app"}


def test_prometheus_rule_object_for_the_operator(capsys: pytest.CaptureFixture[str]) -> None:
    rule = prometheus_rule(namespace="obs")
    assert rule["kind"] == "PrometheusRule" and rule["metadata"]["namespace"] == "obs"
    assert rule["spec"]["groups"] == rule_groups()
    assert cli.main(["monitoring", "prometheusrule", "--namespace", "obs", "--label", "team=sre"]) == 0
    emitted = yaml.safe_load(capsys.readouterr().out)
    assert emitted["metadata"]["labels"] == {"team": "sre"} and emitted["spec"]["groups"] == rule_groups()
