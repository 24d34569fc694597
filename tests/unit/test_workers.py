"""pytest-xdist workers: own namespace, own identity, and alert matching that keeps parallel drills apart."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import yaml

from pytest_mnops import workers
from pytest_mnops.k8s import Kube
from pytest_mnops.observability.alerts import notifies
from pytest_mnops.reporting.results import DrillResult
from pytest_mnops.timeline import Event

TARGET_PROBE = """
import json
import re
from pytest_mnops.stash import SESSION_KEY

def test_target(request, worker_id):
    target = request.config.stash[SESSION_KEY].target
    with open(f"target-{worker_id}.json", "w") as out:
        json.dump({"namespace": target.namespace, "allowed": target.allowed_namespaces, "worker": target.worker,
                   "app_url": target.app_url}, out)
"""


def test_each_worker_targets_its_own_namespace_which_the_guards_allow(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_probe=TARGET_PROBE)
    result = mnops_pytester.runpytest("-n", "1", "--mnops-namespace=drills", "--mnops-app-url=http://app")
    result.assert_outcomes(passed=1)
    seen = json.loads((mnops_pytester.path / "target-gw0.json").read_text())
    namespace = seen["namespace"]
    assert re.fullmatch(r"drills-gw0-[0-9a-f]{6}", namespace), namespace  # new on every run (see workers.py)
    assert seen == {"namespace": namespace, "allowed": ["drills", namespace], "worker": "gw0", "app_url": "http://app"}


def test_without_xdist_the_target_is_the_configured_namespace(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_probe=TARGET_PROBE)
    mnops_pytester.runpytest("--mnops-namespace=drills").assert_outcomes(passed=1)
    seen = json.loads((mnops_pytester.path / "target-master.json").read_text())
    assert (seen["namespace"], seen["worker"]) == ("drills", None)


def test_a_worker_namespace_outside_the_allowlist_stays_refused(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_probe=TARGET_PROBE)
    result = mnops_pytester.runpytest("-n", "1", "--mnops-namespace=drills", "--mnops-allow-namespace=staging")
    result.assert_outcomes(passed=1)
    assert json.loads((mnops_pytester.path / "target-gw0.json").read_text())["allowed"] == ["staging"]


def test_the_kubeconfig_for_a_token_keeps_cluster_and_context(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    source = tmp_path / "kubeconfig"
    source.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "lab",
                "clusters": [
                    {"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority": str(ca)}}
                ],
                "users": [{"name": "u", "user": {"token": "admin-token"}}],
                "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    config = Kube(kubeconfig=str(source)).kubeconfig_for_token("worker-token")
    assert config["current-context"] == "lab"  # the guards' context allowlist sees the same name
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.read_bytes()
    assert config["users"][0]["user"] == {"token": "worker-token"}


def test_the_worker_kubeconfig_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "kubeconfig-drills-gw0"
    workers.write_private(path, "token: x\n")
    assert path.read_text() == "token: x\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_audit_username_of_a_worker() -> None:
    assert workers.username("drills-gw3") == "system:serviceaccount:drills-gw3:mnops-drill"


WEBHOOK = {
    "alerts": [
        {"status": "firing", "labels": {"alertname": "HighLatencyP95", "namespace": "drills-gw1"}},
    ]
}


def test_a_webhook_notification_counts_only_for_its_namespace() -> None:
    assert notifies(WEBHOOK, "HighLatencyP95", "firing", "drills-gw1")
    assert not notifies(WEBHOOK, "HighLatencyP95", "firing", "drills-gw0")
    assert notifies(WEBHOOK, "HighLatencyP95", "firing")  # no namespace asked: any


def test_a_text_notification_matches_the_whole_namespace_name() -> None:
    text = {"text": "*High p95 latency for machine-native-ops in drills-gw10*"}
    assert notifies(text, "HighLatencyP95", "firing", "drills-gw10") is False  # alert name missing from text
    slack = {"title": "[FIRING] HighLatencyP95 (warning)", **text}
    assert notifies(slack, "HighLatencyP95", "firing", "drills-gw10")
    assert not notifies(slack, "HighLatencyP95", "firing", "drills-gw1")
    assert not notifies(slack, "HighLatencyP95", "firing", "drills")


def test_a_notification_counts_only_for_the_alert_carrying_the_labels() -> None:
    """Alertmanager groups a drill's synthetic alert with a real one of the same name and namespace."""
    grouped = {
        "alerts": [
            {"status": "resolved", "labels": {"alertname": "RolloutAborted", "namespace": "default"}},
            {"status": "firing", "labels": {"alertname": "RolloutAborted", "namespace": "default", "drill_run": "r1"}},
        ]
    }
    ours = {"drill_run": "r1"}
    assert notifies(grouped, "RolloutAborted", "firing", "default", ours)
    assert not notifies(grouped, "RolloutAborted", "resolved", "default", ours)
    assert notifies(grouped, "RolloutAborted", "resolved", "default")  # without labels: any alert of the group
    email = {"subject": "[FIRING] RolloutAborted (default)", "body": "drill_run = r1"}
    assert notifies(email, "RolloutAborted", "firing", "default", ours)
    assert not notifies(email, "RolloutAborted", "firing", "default", {"drill_run": "r2"})


def test_a_drill_result_survives_the_trip_from_worker_to_controller_without_its_plot() -> None:
    result = DrillResult(
        name="pod-failure",
        nodeid="suites/drills/test_drills.py::test_pod_failure",
        outcome="passed",
        target="sandbox: drills-gw0/demo",
        mttd_s=0.5,
        mttr_s=3.0,
        events=[Event("inject", 10.0, "terminate"), Event("recovered", 13.0)],
        facts={"alerts": ["PodNotReady"], "plot": {"series": [{"points": [(1.0, 2.0)]}]}, "budget_s": 30},
        started=9.0,
    )
    wire = result.to_wire()
    assert json.loads(json.dumps(wire)) == wire  # plain data: execnet can send it
    back = DrillResult.from_wire(wire)
    assert back.events == result.events and back.score == result.score == 100
    assert "plot" not in back.facts and back.as_dict() == result.as_dict()
