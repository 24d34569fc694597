"""Alertmanager routing as the validation suite walks it: matchers, continue, inherited receivers."""

from __future__ import annotations

import pytest
import yaml

from pytest_mnops import assets
from pytest_mnops.observability.routing import integrations, receivers_for

ROUTE = {
    "receiver": "default",
    "routes": [
        {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
        {"matchers": ["severity=~crit.*", 'team!="db"'], "receiver": "email"},
        {"match": {"severity": "warning"}, "routes": [{"match_re": {"team": "db|cache"}, "receiver": "dba"}]},
    ],
}


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "critical"}, ["pager", "email"]),  # continue: both
        ({"severity": "critical", "team": "db"}, ["pager"]),
        ({"severity": "warning", "team": "db"}, ["dba"]),
        ({"severity": "warning", "team": "web"}, ["default"]),  # a matching branch without a match inherits
        ({"severity": "info"}, ["default"]),
    ],
)
def test_an_alert_reaches_the_receivers_alertmanager_would_pick(labels: dict[str, str], receivers: list[str]) -> None:
    assert receivers_for(ROUTE, labels) == receivers


def test_the_reference_configuration_routes_critical_to_pager_and_email() -> None:
    config = yaml.safe_load(assets.path("monitoring", "alertmanager.yml").read_text())
    assert receivers_for(config["route"], {"severity": "critical"}) == ["pager", "email"]
    assert receivers_for(config["route"], {"severity": "warning"}) == ["slack"]
    by_name = {r["name"]: r for r in config["receivers"]}
    assert integrations(by_name["pager"]) == ["webhook"] and integrations({"name": "null"}) == []
