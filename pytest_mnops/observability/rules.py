"""Prometheus rule files (monitoring/'s, or the user's own): read them, scale them for the sandbox, load them into
a Prometheus, or emit them as a PrometheusRule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml

from pytest_mnops import assets
from pytest_mnops.errors import ConfigError
from pytest_mnops.timescale import scale_tree

RULES_FILE = "prometheus-alerts.yaml"


def reference_rules() -> Path:
    """The reference app's rule file, monitoring/prometheus-alerts.yaml."""
    return assets.path("monitoring", RULES_FILE)


def rule_groups(time_scale: float = 1.0, file: Path | None = None) -> list[dict[str, Any]]:
    """The groups of one rule file (default: the reference app's), durations scaled by ``time_scale``."""
    file = file or reference_rules()
    docs = assets.load_yaml_documents(file)
    if len(docs) != 1 or not isinstance(docs[0].get("groups"), list):
        raise ConfigError(
            f"{file}: expected one document with a `groups:` list (a Prometheus rule file). Fix: check it with "
            f"`promtool check rules {file}`."
        )
    return scale_tree(docs[0], time_scale)["groups"]


def alert_rules(time_scale: float = 1.0, file: Path | None = None) -> list[dict[str, Any]]:
    return [rule for group in rule_groups(time_scale, file) for rule in group["rules"] if "alert" in rule]


def write_rules(directory: Path, *, time_scale: float = 1.0, files: list[Path] | None = None) -> list[Path]:
    """Each rule file (default: the reference app's), scaled, into ``directory`` under its own name."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file in files or [reference_rules()]:
        target = directory / f"{file.stem}.yaml"
        target.write_text(yaml.safe_dump({"groups": rule_groups(time_scale, file)}, sort_keys=False))
        written.append(target)
    return written


def reload_prometheus(prometheus_url: str) -> None:
    """Needs --web.enable-lifecycle, which the sandbox sets."""
    resp = requests.post(f"{prometheus_url}/-/reload", timeout=10)
    if not resp.ok:
        raise ConfigError(
            f"Prometheus at {prometheus_url} refused the rule reload ({resp.status_code}: {resp.text.strip()}). "
            "Fix: run `promtool check rules monitoring/prometheus-alerts.yaml`, or start Prometheus with "
            "--web.enable-lifecycle."
        )


def prometheus_rule(
    *, name: str = "machine-native-ops", namespace: str = "monitoring", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The same rules as a Prometheus Operator PrometheusRule object."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"release": "prometheus"}},
        "spec": {"groups": rule_groups()},
    }
