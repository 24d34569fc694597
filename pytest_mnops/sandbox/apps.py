"""An app profile's sandbox side: its alert rules loaded into the sandbox's Prometheus, its metric names
declared to the traffic stand-in. On a real cluster the app exports its own metrics and the user loads its
rules; on the sandbox a drill run does both, so any app deployed there can be drilled as it is."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from pytest_mnops import assets
from pytest_mnops.errors import ConfigError
from pytest_mnops.k8s import Kube
from pytest_mnops.names import TRAFFIC_LABEL
from pytest_mnops.observability.rules import RULES_FILE, reload_prometheus, rule_groups
from pytest_mnops.profile.model import AppProfile
from pytest_mnops.sandbox.settings import SandboxSettings

TRAFFIC_KEYS = ("requests", "duration", "app_label", "code_label", "auth_path", "auth_header")


def traffic_config_map(profile: AppProfile) -> dict[str, object]:
    traffic = dict(profile.get("traffic") or {})
    unknown = sorted(set(traffic) - set(TRAFFIC_KEYS))
    if unknown:
        raise ConfigError(
            f"app profile {profile.source}: traffic: unknown key {', '.join(unknown)}. "
            f"Fix: use only {', '.join(TRAFFIC_KEYS)}."
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"mnops-traffic-{profile.app}",
            "namespace": profile.namespace,
            "labels": {TRAFFIC_LABEL: "true"},
        },
        "data": {"workload": profile.app, "container": profile.container, "traffic": json.dumps(traffic)},
    }


def install_profile(kube: Kube, profile: AppProfile, sandbox_dir: Path) -> None:
    """Declare the app's traffic to the stand-in and load its rule files into the sandbox's Prometheus."""
    settings = SandboxSettings.load(sandbox_dir)
    if settings is None:
        raise ConfigError(f"no sandbox settings in {sandbox_dir}. Fix: start it with `mnops sandbox up`.")
    if profile.get("traffic"):
        kube.apply(traffic_config_map(profile))
    # The sandbox loads monitoring/'s rules itself (and negative controls edit that copy): leave it alone.
    own = assets.path("monitoring", RULES_FILE).resolve()
    changed = False
    for file in (Path(f) for f in profile.get("rule_files") or []):
        if file.resolve() == own:
            continue
        target = settings.layout.config / "rules" / f"{profile.namespace}-{file.stem}.yaml"
        text = yaml.safe_dump({"groups": rule_groups(settings.time_scale, file)}, sort_keys=False)
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
            changed = True
    if changed:
        reload_prometheus(settings.prometheus_url)
