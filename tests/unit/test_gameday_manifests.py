"""charts/gameday: its RBAC is the rule table of pytest_mnops/k8s/rbac.py, its two workloads one pod template.

The integration test (tests/integration/test_gameday.py) applies these manifests to the sandbox and replays
their pods; here, what must hold without a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_mnops.k8s.rbac import DRILL_PERMISSIONS, cluster_read_rules, rules

ROOT = Path(__file__).resolve().parents[2]
GAMEDAY = ROOT / "charts" / "gameday"
IDENTITY = "mnops-drill"


def documents(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all((GAMEDAY / name).read_text()) if d}


def test_the_roles_are_the_rule_table() -> None:
    rbac = documents("rbac.yaml")
    # Pasteable when the table changes: yaml.safe_dump(rules(DRILL_PERMISSIONS)) / cluster_read_rules().
    assert rbac[("ClusterRole", "mnops-gameday-drill")]["rules"] == rules(DRILL_PERMISSIONS)
    assert rbac[("ClusterRole", "mnops-gameday-read")]["rules"] == cluster_read_rules()
    assert all("secrets" not in r["resources"] for r in cluster_read_rules()), "reads never cover Secrets"
    bindings = {key: doc for key, doc in rbac.items() if key[0].endswith("Binding")}
    assert {(kind, doc["roleRef"]["name"]) for (kind, _), doc in bindings.items()} == {
        ("RoleBinding", "mnops-gameday-drill"),  # drill verbs only where bound: the Job's own namespace
        ("ClusterRoleBinding", "mnops-gameday-read"),
    }
    assert all(doc["subjects"] == [{"kind": "ServiceAccount", "name": IDENTITY}] for doc in bindings.values())
    assert ("ServiceAccount", IDENTITY) in rbac


def test_the_nightly_cronjob_and_the_indexed_job_run_one_pod_template() -> None:
    cron = documents("cronjob.yaml")[("CronJob", "mnops-gameday-nightly")]["spec"]
    job = documents("job.yaml")[("Job", "mnops-gameday")]["spec"]
    assert job.pop("suspend") is True, "applying the manifests must not start a game day"
    assert job == cron["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed" and job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == IDENTITY and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "pytest-mnops", "the name an overlay's kustomize `images:` override replaces"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {env["MNOPS_APPS_DIR"], env["MNOPS_RESULTS_DIR"], env["HOME"]} <= mounts


def test_the_kustomization_lists_every_manifest_and_app() -> None:
    kustomization = yaml.safe_load((GAMEDAY / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in GAMEDAY.glob("*.yaml") if p.stem != "kustomization"
    )
    (apps,) = kustomization["configMapGenerator"]
    assert sorted(apps["files"]) == sorted(f"apps/{p.name}" for p in (GAMEDAY / "apps").iterdir())
    assert "images" not in kustomization, "the image is the overlay's override (docs/scheduled-game-days.md)"


def test_the_docs_say_why_each_verb_is_there() -> None:
    text = (ROOT / "docs" / "scheduled-game-days.md").read_text()
    missing = [p.describe() for p in DRILL_PERMISSIONS if f"| `{p.describe()}` | {p.needed_by} |" not in text]
    assert missing == [], "docs/scheduled-game-days.md#the-rbac-and-why-each-verb-is-there lacks these rows"
