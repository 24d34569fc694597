"""`pytest -n 4`: drills run in parallel, each worker in its own namespace with its own app instance.

Isolation is proven from the API server's side: workers drill as ServiceAccounts of their own namespaces,
and the sandbox's audit log (sandbox/assets/audit-policy.yaml) records every request those identities make.
No worker may have changed, or even tried to reach, another worker's namespace.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mnops import workers
from pytest_mnops.drills import DRILLS
from pytest_mnops.errors import ClusterError
from pytest_mnops.guards.ledger import Ledger
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.k8s.rbac import DRILL_PERMISSIONS, IMPLIED, from_audit_event
from pytest_mnops.names import SANDBOX_CONTEXT
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.target import Target
from tests.integration.conftest import ROOT, drill_argv

MUTATING = {"create", "update", "patch", "delete", "deletecollection"}
BASE_NAMESPACE = "default"


def audit_events(log: Path, offset: int) -> list[dict[str, Any]]:
    """Audit events written after ``offset`` bytes by the drill identities of this module's worker namespaces
    (other modules' drill identities work on the same sandbox meanwhile)."""
    with log.open("rb") as lines:
        lines.seek(offset)
        events = [json.loads(line) for line in lines if line.strip()]
    ours = re.compile(rf"system:serviceaccount:{BASE_NAMESPACE}-gw[^:]+:{workers.IDENTITY}")
    return [e for e in events if ours.fullmatch(e["user"]["username"])]


def foreign_requests(events: list[dict[str, Any]]) -> list[str]:
    """Requests a worker identity made outside its own namespace: changes anywhere else, reads of another
    namespace, and anything the API server refused."""
    problems = []
    for e in events:
        own = e["user"]["username"].split(":")[2]
        ref, code = e.get("objectRef") or {}, e["responseStatus"].get("code")
        where = ref.get("namespace")
        what = f"{e['user']['username']} {e['verb']} {ref.get('resource')} in {where or '(cluster)'} -> {code}"
        if (where and where != own) or (where is None and e["verb"] in MUTATING) or code == 403:
            problems.append(what)
    return problems


def test_parallel_drills_stay_in_their_namespaces_and_reports_merge(
    sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    junit, summary, ledger = tmp_path / "junit.xml", tmp_path / "drills.json", tmp_path / "ledger.jsonl"
    offset = sandbox.layout.audit_log.stat().st_size
    result = subprocess.run(
        drill_argv(
            sandbox,
            ledger,
            "-n",
            "4",
            "--mnops-namespace",
            BASE_NAMESPACE,
            f"--junitxml={junit}",
            f"--html={tmp_path / 'report.html'}",
            "--self-contained-html",
            f"--mnops-report-json={summary}",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:]

    # Merged reports: every drill once, with its properties once, scored by the controller.
    root = ET.parse(junit).getroot()
    suite_properties = [(p.get("name"), p.get("value")) for p in root.findall("testsuite/properties/property")]
    assert suite_properties == [("resilience_score", "100.0")]
    cases = list(root.iter("testcase"))
    names = [[p.get("name") for p in case.iter("property")] for case in cases]
    assert all(len(n) == len(set(n)) for n in names), names
    drills = [dict((p.get("name"), p.get("value")) for p in case.iter("property"))["drill"] for case in cases]
    assert sorted(drills) == sorted(DRILLS)
    figures = json.loads(summary.read_text())
    assert sorted(d["drill"] for d in figures["drills"]) == sorted(DRILLS)
    assert figures["resilience_score"] == 100
    assert f"resilience score: 100/100 over {len(DRILLS)} drills" in result.stdout
    # Each drill ran against a worker's own instance, and the shared ledger holds no pending fault.
    namespaces = {d["target"].split(": ")[1].split("/")[0] for d in figures["drills"]}
    assert len(namespaces) > 1 and all(ns.startswith(f"{BASE_NAMESPACE}-gw") for ns in namespaces), namespaces
    assert Ledger(ledger).pending() == []
    injected = [json.loads(line) for line in ledger.read_text().splitlines() if '"injected"' in line]
    assert {e["configuration"]["namespace"] for e in injected} <= namespaces

    # The API server's view: each worker changed things, only in its own namespace.
    events = audit_events(sandbox.layout.audit_log, offset)
    changes = collections.Counter(e["objectRef"]["namespace"] for e in events if e["verb"] in MUTATING)
    assert set(changes) == namespaces, changes
    assert foreign_requests(events) == []
    # ... and what they did there is what the validation's RBAC check asks of an identity: no verb more, none less.
    used = {from_audit_event(e) for e in events if (e.get("objectRef") or {}).get("namespace") in namespaces}
    listed = {p.key for p in DRILL_PERMISSIONS}
    assert sorted(used - listed) == [], "verbs the drills use that test_rbac_allows_drill_verbs does not check"
    # A wait lists first and watches only if its condition is not met yet, so an unused `watch` is timing.
    unused = {perm for perm in listed - used - IMPLIED if perm[0] != "watch"}
    assert sorted(unused) == [], "verbs the RBAC check demands that no drill used"
    # ... and the worker namespaces are deleted (the namespace controller may still be emptying them).
    left = {n["metadata"]["name"]: n["metadata"] for n in kube.list(resources.NAMESPACE)[0]}
    assert all(left[ns].get("deletionTimestamp") for ns in namespaces if ns in left), left


def gw99(sandbox: SandboxSettings) -> Target:
    """What an xdist worker `gw99` starts from, before it has an app instance and identity of its own."""
    return Target(
        kubeconfig=str(sandbox.layout.kubeconfig),
        context=SANDBOX_CONTEXT,
        namespace=f"{BASE_NAMESPACE}-gw99-{uuid.uuid4().hex[:6]}",
        app="machine-native-ops",
        prometheus_url=sandbox.prometheus_url,
        alertmanager_url=sandbox.alertmanager_url,
        receivers_url=sandbox.receivers_url,
        app_url=None,
        github_url=sandbox.github_url,
        github_repo=None,
        time_scale=sandbox.time_scale,
        sandbox=True,
        sandbox_dir=Path(sandbox.state_dir),
        worker="gw99",
    )


def test_a_worker_identity_is_refused_outside_its_namespace_and_the_audit_shows_it(
    sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    """The negative control of the isolation test: a cross-namespace fault is refused, and flagged. At the end
    the worker's namespace, with its identity, is being deleted."""
    with workers.isolated_instance(gw99(sandbox), tmp_path / "worker", print) as instance:
        kubeconfig = Path(instance.kubeconfig or "")
        assert kubeconfig.stat().st_mode & 0o077 == 0, "the worker kubeconfig holds a token: owner-only"
        token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
        offset = sandbox.layout.audit_log.stat().st_size
        drill = Kube(kubeconfig=str(kubeconfig), context=SANDBOX_CONTEXT)
        own_pods, _ = drill.list(resources.POD, namespace=instance.namespace)
        victim = kube.list(resources.POD, namespace=BASE_NAMESPACE)[0][0]["metadata"]["name"]
        with pytest.raises(ClusterError, match="403") as refused:
            drill.delete(resources.POD, victim, namespace=BASE_NAMESPACE)
        assert token not in str(refused.value)
        assert kube.find(resources.POD, victim, namespace=BASE_NAMESPACE) is not None
        assert own_pods, "the worker's own app instance has pods"
        problems = foreign_requests(audit_events(sandbox.layout.audit_log, offset))
        assert problems == [
            f"{workers.username(instance.namespace)} delete pods in {BASE_NAMESPACE} -> 403",
        ]

    assert not kubeconfig.exists()
    namespace = kube.find(resources.NAMESPACE, instance.namespace)
    assert namespace is None or namespace["metadata"].get("deletionTimestamp"), namespace
