"""Scheduled game days (charts/gameday): the manifests applied to the sandbox, the Indexed Job's pods replayed.

KWOK runs no containers, so each index's pod is replayed from outside: the Job's own command, env and
ConfigMaps as the API server holds them, the ServiceAccount's TokenRequest token, CA and namespace laid out as
the kubelet mounts them (under a temporary root), KUBERNETES_SERVICE_HOST/PORT, and no kubeconfig. Three
apps run side by side, one per index: the reference app (with the validation suite), examples/checkout and a
second reference instance, each in a namespace of its own on the shared sandbox. The API server's audit log
then shows that identity allowed everywhere it went, and refused (403) elsewhere; `mnops report merge` makes
one game day of the three runs and gates it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mnops import app
from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import InCluster, Kube, Resource, rbac, resources
from pytest_mnops.k8s.rbac import DRILL_PERMISSIONS
from pytest_mnops.names import SANDBOX_GITHUB_REPO, SANDBOX_GITHUB_TOKEN
from pytest_mnops.profile import resolve as resolve_profile
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.apps import traffic_config_map
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.workers import write_private
from tests.integration.conftest import REFERENCE_SECRET, ROOT

CHECKOUT = ROOT / "examples" / "checkout"
IDENTITY = "mnops-drill"
POD_SERVICEACCOUNT = Path("var/run/secrets/kubernetes.io/serviceaccount")
# One fast drill per index; index 0 also runs the validation suite (the reference app passes all of it).
POD_FAILURE_ONLY = "PYTEST_ADDOPTS='-m drill --drill pod-failure'"
VALIDATION_AND_POD_FAILURE = (
    "PYTEST_ADDOPTS='-k \"not test_charts_pass_server_side_dry_run and (not test_drills or pod_failure)\"'"
)
BIN = Path(sys.executable).parent  # python, pytest and mnops of this environment: what the image installs


@dataclass(frozen=True)
class GameDay:
    namespace: str  # the Job's (and the reference app's)
    apps: dict[int, tuple[str, str]]  # index -> (namespace, app)
    results: Path
    pod_root: Path  # what the kubelet would mount: <root>/var/run/secrets/kubernetes.io/serviceaccount
    job: dict[str, Any]
    cronjob: dict[str, Any]
    audit_offset: int
    runs: dict[int, subprocess.CompletedProcess[str]]
    seconds: float


def kubectl(sandbox: SandboxSettings, *args: str) -> str:
    argv = [str(binaries.require("kubectl")), "--kubeconfig", str(sandbox.layout.kubeconfig), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    return result.stdout


def overlay(directory: Path, sandbox: SandboxSettings, namespace: str, apps: dict[int, str]) -> Path:
    """What a team writes: charts/gameday with its namespace, image, settings and one env file per app."""
    directory.mkdir(parents=True)
    for index, env in apps.items():
        (directory / f"{index}.env").write_text(env)
    for name in ("profile.yaml", "rules.yaml"):
        (directory / f"checkout-{name}").write_text((CHECKOUT / name).read_text())
    settings = {
        "MNOPS_ALLOW_CONTEXT": InCluster.CONTEXT,
        "MNOPS_PROMETHEUS_URL": sandbox.prometheus_url,
        "MNOPS_ALERTMANAGER_URL": sandbox.alertmanager_url,
        "MNOPS_TIME_SCALE": str(sandbox.time_scale),
        "MNOPS_HISTORY_DIR": "/results/history",
        "MNOPS_GITHUB_URL": sandbox.github_url,
        "MNOPS_GITHUB_REPO": SANDBOX_GITHUB_REPO,
    }

    def counts(at: str) -> str:
        return json.dumps(
            [{"op": "replace", "path": f"{at}/{k}", "value": len(apps)} for k in ("completions", "parallelism")]
        )

    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [os.path.relpath(ROOT / "charts" / "gameday", directory)],
        "images": [{"name": "pytest-mnops", "newName": "localhost/pytest-mnops", "newTag": "replayed"}],
        "configMapGenerator": [
            {"name": "mnops-gameday", "behavior": "replace", "literals": [f"{k}={v}" for k, v in settings.items()]},
            {
                "name": "mnops-gameday-apps",
                "behavior": "replace",
                "files": [*(f"{i}.env" for i in apps), "checkout-profile.yaml", "checkout-rules.yaml"],
            },
        ],
        "patches": [
            {"target": {"kind": "Job", "name": "mnops-gameday"}, "patch": counts("/spec")},
            {"target": {"kind": "CronJob", "name": "mnops-gameday-nightly"}, "patch": counts("/spec/jobTemplate/spec")},
        ],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return directory


def replay(
    kube: Kube, sandbox: SandboxSettings, job: dict[str, Any], index: int, *, pod_root: Path, mounts: Path
) -> subprocess.Popen[str]:
    """Index ``index`` of ``job`` as its pod would run it: its command, env and volumes, the pod's environment."""
    namespace = job["metadata"]["namespace"]
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    local: dict[str, Path] = {}  # mountPath -> the directory standing in for it
    for mount in container["volumeMounts"]:
        where = local[mount["mountPath"]] = mounts / mount["name"]
        where.mkdir(parents=True, exist_ok=True)
        config_map = volumes[mount["name"]].get("configMap")
        if config_map:
            for key, value in kube.get(resources.CONFIG_MAP, config_map["name"], namespace=namespace)["data"].items():
                # The indexes share the directory: a file rewritten in place is empty for a moment, and an index
                # already sourcing it ran with no settings. Swapped in whole, as the kubelet's writer does.
                staged = where / f".{key}.new"
                staged.write_text(value)
                staged.replace(where / key)

    def on_disk(value: str) -> str:
        for path, directory in local.items():
            if value == path or value.startswith(f"{path}/"):
                return str(directory) + value[len(path) :]
        return value

    manifest: dict[str, str] = {}  # the env the manifests give, with mount paths as the replay has them
    for source in container.get("envFrom", []):
        manifest.update(kube.get(resources.CONFIG_MAP, source["configMapRef"]["name"], namespace=namespace)["data"])
    for var in container["env"]:
        if "value" in var:
            manifest[var["name"]] = var["value"]
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            found = kube.find(resources.SECRET, ref["name"], namespace=namespace)
            if found is not None:
                manifest[var["name"]] = base64.b64decode(found["data"][ref["key"]]).decode()
        else:
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
            manifest[var["name"]] = job["metadata"]["name"]
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        **{name: on_disk(value) for name, value in manifest.items()},
        # What the Job controller and the kubelet give every pod of an Indexed Job:
        "JOB_COMPLETION_INDEX": str(index),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(sandbox.ports.apiserver),
        # ... and where the ServiceAccount's files are, which in a pod is the default.
        "MNOPS_SERVICEACCOUNT_DIR": str(pod_root / POD_SERVICEACCOUNT),
    }
    return subprocess.Popen(
        [*container["command"], *container["args"]],
        env=env,
        cwd=local["/results"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(runs: dict[int, subprocess.Popen[str]]) -> dict[int, subprocess.CompletedProcess[str]]:
    done = {}
    for index, proc in runs.items():
        out, _ = proc.communicate(timeout=900)
        done[index] = subprocess.CompletedProcess(proc.args, proc.returncode, out)
    return done


def audit_events(sandbox: SandboxSettings, offset: int, username: str) -> list[dict[str, Any]]:
    with sandbox.layout.audit_log.open("rb") as lines:
        lines.seek(offset)
        events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e["user"]["username"] == username]


def decision(event: dict[str, Any]) -> str:
    return (event.get("annotations") or {}).get("authorization.k8s.io/decision", "")


def described(event: dict[str, Any]) -> str:
    ref = event.get("objectRef") or {}
    code = event["responseStatus"].get("code")
    return f"{event['verb']} {ref.get('resource')} in {ref.get('namespace') or '(cluster)'} -> {code}"


def rolebinding(namespace: str, subject_namespace: str) -> dict[str, Any]:
    """What `kubectl create rolebinding mnops-gameday-drill --clusterrole=mnops-gameday-drill
    --serviceaccount=<job namespace>:mnops-drill -n <app namespace>` creates (docs/scheduled-game-days.md)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "mnops-gameday-drill", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "mnops-gameday-drill"},
        "subjects": [{"kind": "ServiceAccount", "name": IDENTITY, "namespace": subject_namespace}],
    }


CLUSTER_ROLE = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)
ROLE_BINDING = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
CLUSTER_OBJECTS = (
    (resources.CLUSTER_ROLE_BINDING, "mnops-gameday-read"),
    (CLUSTER_ROLE, "mnops-gameday-read"),
    (CLUSTER_ROLE, "mnops-gameday-drill"),
)
JOB = Resource("batch", "v1", "jobs", "Job")
CRONJOB = Resource("batch", "v1", "cronjobs", "CronJob")


@pytest.fixture(scope="module")
def gameday(sandbox: SandboxSettings, kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GameDay]:
    tmp = tmp_path_factory.mktemp("gameday")
    home = f"mnops-gd-{uuid.uuid4().hex[:6]}"
    apps = {0: (home, app.APP_NAME), 1: (f"{home}-checkout", "checkout"), 2: (f"{home}-second", app.APP_NAME)}
    try:
        for namespace, name in apps.values():
            documents = app.manifests(CHECKOUT) if name == "checkout" else None
            app.deploy(
                kube,
                namespace,
                prometheus_address=sandbox.prometheus_url,
                time_scale=sandbox.time_scale,
                documents=documents,
            )
        for namespace, name in apps.values():
            Rollout(kube, namespace=namespace, name=name).wait_for(phase="Healthy", timeout_s=180)
        # On the sandbox the traffic stand-in plays checkout's own metrics (in production the app exports them).
        checkout = resolve_profile(
            kube, namespace=apps[1][0], app="checkout", file=CHECKOUT / "profile.yaml", time_scale=sandbox.time_scale
        )
        kube.apply(traffic_config_map(checkout))

        envs = {
            0: (ROOT / "charts" / "gameday" / "apps" / "0.env").read_text() + VALIDATION_AND_POD_FAILURE + "\n",
            1: f"MNOPS_NAMESPACE={apps[1][0]}\nMNOPS_APP=checkout\n"
            f'MNOPS_PROFILE="$MNOPS_APPS_DIR/checkout-profile.yaml"\n{POD_FAILURE_ONLY}\n',
            2: f"MNOPS_NAMESPACE={apps[2][0]}\nMNOPS_APP={app.APP_NAME}\n"
            f'MNOPS_PROFILE="$(mnops assets charts)/mnops-profile.yaml"\n{POD_FAILURE_ONLY}\n',
        }
        directory = overlay(tmp / "overlay", sandbox, home, envs)
        kubectl(sandbox, "apply", "--server-side", "--dry-run=server", "-k", str(directory))
        kubectl(sandbox, "apply", "--server-side", "-k", str(directory))
        for namespace, _ in (apps[1], apps[2]):
            kube.apply(rolebinding(namespace, home))
        github = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mnops-gameday-github", "namespace": home}}
        kube.apply({**github, "stringData": {"token": SANDBOX_GITHUB_TOKEN}})  # the GitHub stand-in's fixed token

        issued = kube.create(
            resources.SERVICE_ACCOUNT,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
            namespace=home,
            name=IDENTITY,
            subresource="token",
        )
        pod_root = tmp / "pod"
        files = pod_root / POD_SERVICEACCOUNT
        write_private(files / "token", issued["status"]["token"])
        (files / "ca.crt").write_bytes((sandbox.layout.pki / "ca.crt").read_bytes())
        (files / "namespace").write_text(home)

        job = kube.get(JOB, "mnops-gameday", namespace=home)
        offset = sandbox.layout.audit_log.stat().st_size
        started = time.monotonic()
        runs = finish({i: replay(kube, sandbox, job, i, pod_root=pod_root, mounts=tmp / "mounts") for i in apps})
        yield GameDay(
            namespace=home,
            apps=apps,
            results=tmp / "mounts" / "results" / job["metadata"]["name"],
            pod_root=pod_root,
            job=job,
            cronjob=kube.get(CRONJOB, "mnops-gameday-nightly", namespace=home),
            audit_offset=offset,
            runs=runs,
            seconds=time.monotonic() - started,
        )
    finally:
        for resource, name in CLUSTER_OBJECTS:
            kube.delete(resource, name)
        for namespace, _ in apps.values():
            kube.delete(resources.NAMESPACE, namespace)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"].get("jobTemplate", workload)["spec"]
    return spec["template"]["spec"]


def test_the_manifests_apply_and_the_cronjob_and_indexed_job_run_as_the_serviceaccount(
    gameday: GameDay, kube: Kube
) -> None:
    for workload in (gameday.job, gameday.cronjob):
        spec = workload["spec"].get("jobTemplate", workload)["spec"]
        assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 3
        assert pod_spec(workload)["serviceAccountName"] == IDENTITY
        assert pod_spec(workload)["containers"][0]["image"] == "localhost/pytest-mnops:replayed"
    assert gameday.job["spec"]["suspend"] is True, "applying the manifests drills nothing by itself"
    assert kube.find(resources.SERVICE_ACCOUNT, IDENTITY, namespace=gameday.namespace) is not None
    rules = kube.get(CLUSTER_ROLE, "mnops-gameday-drill")["rules"]
    assert [{k: r[k] for k in ("apiGroups", "resources", "verbs")} for r in rules] == rbac.rules(DRILL_PERMISSIONS)


def test_each_index_runs_as_the_serviceaccount_from_its_pod_files_and_passes(gameday: GameDay) -> None:
    print(f"three indexes side by side: {gameday.seconds:.1f} s")
    for index, run in gameday.runs.items():
        assert run.returncode == 0, f"index {index}:\n{run.stdout[-5000:]}"
        print(f"index {index}: {run.stdout.strip().splitlines()[-1]}")
    for index, (namespace, name) in gameday.apps.items():
        report = json.loads((gameday.results / str(index) / "drills.json").read_text())
        assert [(d["drill"], d["verdict"], d["target"]) for d in report["drills"]] == [
            ("pod-failure", "proved", f"{InCluster.CONTEXT}: {namespace}/{name}")
        ]
        assert (gameday.results / str(index) / "junit.xml").is_file()
        assert (gameday.results / str(index) / "report.html").is_file()
    validation = json.loads((gameday.results / "0" / "drills.json").read_text())["validation"]
    assert len(validation) > 30 and {v["outcome"] for v in validation} <= {"passed", "skipped"}


def test_the_serviceaccount_was_allowed_everywhere_it_went_and_is_refused_elsewhere(
    gameday: GameDay, sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    username = f"system:serviceaccount:{gameday.namespace}:{IDENTITY}"
    events = audit_events(sandbox, gameday.audit_offset, username)
    deleted = {e["objectRef"]["namespace"] for e in events if e["verb"] == "delete"}
    assert deleted == {namespace for namespace, _ in gameday.apps.values()}, deleted
    refused = [described(e) for e in events if decision(e) != "allow"]
    assert refused == [], refused
    print(f"{len(events)} requests by {username}, every one allowed")

    pod = InCluster.detect(
        {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(sandbox.ports.apiserver),
            "MNOPS_SERVICEACCOUNT_DIR": str(gameday.pod_root / POD_SERVICEACCOUNT),
        }
    )
    assert pod is not None and pod.namespace == gameday.namespace
    drill = Kube(kubeconfig=str(pod.write_kubeconfig(tmp_path)), context=InCluster.CONTEXT)
    offset = sandbox.layout.audit_log.stat().st_size
    victim = kube.list(resources.POD, namespace="default")[0][0]["metadata"]["name"]
    with pytest.raises(ClusterError, match="403"):
        drill.get(resources.SECRET, REFERENCE_SECRET, namespace="default")
    with pytest.raises(ClusterError, match="403"):
        drill.delete(resources.POD, victim, namespace="default")
    assert kube.find(resources.POD, victim, namespace="default") is not None
    assert [described(e) for e in audit_events(sandbox, offset, username)] == [
        "get secrets in default -> 403",
        "delete pods in default -> 403",
    ]


def merge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "mnops"), "report", "merge", *map(str, args)], capture_output=True, text=True)


def test_the_three_indexes_merge_into_one_game_day_and_its_gate(gameday: GameDay, tmp_path: Path) -> None:
    reports = [gameday.results / str(i) / "drills.json" for i in gameday.apps]
    page, merged = tmp_path / "gameday.html", tmp_path / "gameday.json"
    result = merge(*reports, "--html", page, "--json", merged, "--fail-under", "90", "--expect", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)
    assert "resilience score: 100/100 over 3 drills in 3 runs (gate: --expect 3, --fail-under 90)" in result.stdout
    labels = {f"{InCluster.CONTEXT}: {namespace}/{name}" for namespace, name in gameday.apps.values()}
    assert {d["run"] for d in json.loads(merged.read_text())["drills"]} == labels
    text = page.read_text()
    assert all(f"data-run='{label}'" in text for label in labels) and "gate --fail-under 90: passed" in text
    # The JUnit files say the same.
    junit = merge(*(gameday.results / str(i) / "junit.xml" for i in gameday.apps), "--fail-under", "90")
    assert junit.returncode == 0 and "resilience score: 100/100 over 3 drills in 3 runs" in junit.stdout, junit.stdout
    # One index missing is a failed gate, not a smaller game day.
    missing = merge(*reports[:2], "--fail-under", "90", "--expect", "3")
    assert missing.returncode == 1 and "2 run(s) merged, 3 expected" in missing.stdout, missing.stdout


def test_a_game_day_with_a_failing_index_fails_the_merged_gate(
    gameday: GameDay, sandbox: SandboxSettings, kube: Kube, tmp_path: Path
) -> None:
    """The negative control: index 2's identity loses its rights in its app's namespace; its drill fails (the
    pod deletion is refused), and the merged game day fails its gate naming that index."""
    namespace = gameday.apps[2][0]
    kube.delete(ROLE_BINDING, "mnops-gameday-drill", namespace=namespace)
    username = f"system:serviceaccount:{gameday.namespace}:{IDENTITY}"
    offset = sandbox.layout.audit_log.stat().st_size
    (run,) = finish(
        {2: replay(kube, sandbox, gameday.job, 2, pod_root=gameday.pod_root, mounts=tmp_path / "mounts")}
    ).values()
    assert run.returncode == 1, run.stdout[-4000:]
    refused = [described(e) for e in audit_events(sandbox, offset, username) if decision(e) != "allow"]
    assert refused and set(refused) == {f"delete pods in {namespace} -> 403"}, refused
    failing = tmp_path / "mounts" / "results" / gameday.job["metadata"]["name"] / "2" / "drills.json"
    reports = [gameday.results / "0" / "drills.json", gameday.results / "1" / "drills.json", failing]
    result = merge(*reports, "--fail-under", "90", "--expect", "3")
    print(result.stdout)
    assert result.returncode == 1, result.stdout
    assert (
        f"below --fail-under 90; weakest drill: pod-failure of {InCluster.CONTEXT}: {namespace}/{app.APP_NAME}"
        in result.stdout
    )
