"""Prometheus and Alertmanager configuration for the sandbox: every target on 127.0.0.1, timings scaled."""

from __future__ import annotations

from typing import Any

import yaml

from pytest_mnops import assets
from pytest_mnops.observability.rules import write_rules
from pytest_mnops.sandbox.layout import DEFAULT_PORT_BASE, HOST, Ports
from pytest_mnops.sandbox.pki import Pki
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.timescale import scale_tree

SCRAPE_INTERVAL = "1s"
# The apiserver exposes thousands of series; scraping it every second would cost more than it tells.
APISERVER_SCRAPE_INTERVAL = "5s"


def prometheus_config(settings: SandboxSettings) -> dict[str, Any]:
    p = settings.ports
    pki = Pki(settings.layout.pki)

    def static(job: str, port: int, **extra: Any) -> dict[str, Any]:
        return {"job_name": job, "static_configs": [{"targets": [f"{HOST}:{port}"]}], **extra}

    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
            "external_labels": {"cluster": "mnops-sandbox"},
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{HOST}:{p.alertmanager}"]}]}]},
        "rule_files": [str((settings.layout.config / "rules" / "*.yaml").resolve())],
        "scrape_configs": [
            static("prometheus", p.prometheus),
            static("alertmanager", p.alertmanager),
            static("argo-rollouts", p.rollouts_metrics),
            # The traffic stand-in labels its series with namespace/pod itself, as relabelling would.
            static("app", p.traffic, honor_labels=True),
            # Pushed drill results keep their own job and target labels (mnops, context/namespace/app).
            static("pushgateway", p.pushgateway, honor_labels=True),
            static(
                "kube-apiserver",
                p.apiserver,
                scheme="https",
                scrape_interval=APISERVER_SCRAPE_INTERVAL,
                # The global timeout is the 1 s interval: on a loaded machine its big /metrics takes longer.
                scrape_timeout=APISERVER_SCRAPE_INTERVAL,
                tls_config={
                    "ca_file": str(pki.ca_cert.resolve()),
                    "cert_file": str(pki.admin_cert.resolve()),
                    "key_file": str(pki.admin_key.resolve()),
                },
            ),
        ],
    }


def alertmanager_config(settings: SandboxSettings) -> dict[str, Any]:
    """monitoring/alertmanager.yml with its receiver addresses moved to this sandbox's ports."""
    text = assets.path("monitoring", "alertmanager.yml").read_text()
    default, actual = Ports(DEFAULT_PORT_BASE), settings.ports
    for old, new in ((default.receivers, actual.receivers), (default.smtp, actual.smtp)):
        text = text.replace(f"{HOST}:{old}", f"{HOST}:{new}")
    return scale_tree(yaml.safe_load(text), settings.time_scale)


def write(settings: SandboxSettings) -> None:
    config = settings.layout.config
    config.mkdir(parents=True, exist_ok=True)
    (config / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(settings), sort_keys=False))
    (config / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(settings), sort_keys=False))
    write_rules(config / "rules", time_scale=settings.time_scale)
