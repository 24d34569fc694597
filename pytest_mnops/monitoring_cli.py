"""`mnops monitoring load|prometheusrule`: put monitoring/'s alert rules where Prometheus reads them."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from pytest_mnops.sandbox.cluster import SandboxSettings, default_state_dir


def _load(args: argparse.Namespace) -> int:
    from pytest_mnops.observability.rules import alert_rules, reload_prometheus, write_rules

    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        print(
            f"no sandbox in {args.state_dir}. Start one with `mnops sandbox up`, or use "
            "`mnops monitoring prometheusrule` for a cluster running the Prometheus Operator."
        )
        return 1
    target = write_rules(settings.layout.config / "rules", time_scale=settings.time_scale)
    reload_prometheus(settings.prometheus_url)
    print(
        f"loaded {len(alert_rules())} alert rules into {target} (time scale {settings.time_scale:.3f}) "
        f"and reloaded {settings.prometheus_url}"
    )
    return 0


def _prometheus_rule(args: argparse.Namespace) -> int:
    from pytest_mnops.observability.rules import prometheus_rule

    labels = dict(item.split("=", 1) for item in args.label) or None
    print(
        yaml.safe_dump(prometheus_rule(name=args.name, namespace=args.namespace, labels=labels), sort_keys=False),
        end="",
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    monitoring = subparsers.add_parser("monitoring", help="load the alert rules, or emit them as a PrometheusRule")
    verbs = monitoring.add_subparsers(dest="verb", required=True)
    load = verbs.add_parser("load", help="write monitoring/prometheus-alerts.yaml (scaled) into the sandbox, reload")
    load.add_argument("--state-dir", type=Path, default=default_state_dir())
    load.set_defaults(func=_load)
    rule = verbs.add_parser(
        "prometheusrule", help="print a monitoring.coreos.com/v1 PrometheusRule (kubectl apply -f -)"
    )
    rule.add_argument("--name", default="machine-native-ops")
    rule.add_argument("--namespace", default="monitoring")
    rule.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label the Prometheus Operator selects rules by (default release=prometheus)",
    )
    rule.set_defaults(func=_prometheus_rule)
