"""`mnops monitoring load [FILE...]|prometheusrule`: put alert rules (monitoring/'s, or your own rule files) where
Prometheus reads them."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from pytest_mnops.sandbox.settings import SandboxSettings, default_state_dir


def _load(args: argparse.Namespace) -> int:
    from pytest_mnops.observability.rules import alert_rules, reload_prometheus, write_rules

    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        print(
            f"no sandbox in {args.state_dir}. Start one with `mnops sandbox up`, or use "
            "`mnops monitoring prometheusrule` for a cluster running the Prometheus Operator."
        )
        return 1
    files = [file.resolve() for file in args.files] or None
    missing = [str(file) for file in files or [] if not file.is_file()]
    if missing:
        print(f"no such rule file: {', '.join(missing)}")
        return 1
    written = write_rules(settings.layout.config / "rules", time_scale=settings.time_scale, files=files)
    reload_prometheus(settings.prometheus_url)
    count = sum(len(alert_rules(file=file)) for file in written)
    print(
        f"loaded {count} alert rules into {', '.join(map(str, written))} (time scale {settings.time_scale:.3f}) "
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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitoring = subparsers.add_parser("monitoring", help="load the alert rules, or emit them as a PrometheusRule")
    verbs = monitoring.add_subparsers(dest="verb", required=True)
    load = verbs.add_parser(
        "load", help="write rule files (default monitoring/prometheus-alerts.yaml), scaled, into the sandbox; reload"
    )
    load.add_argument("files", nargs="*", type=Path, metavar="FILE", help="Prometheus rule files (your own)")
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
