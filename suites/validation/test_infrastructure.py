"""Infrastructure: the API server answers a supported version, nodes are Ready, the namespaces and CRDs the
drills need exist, and the identity running the suite may do everything the drills do."""

from __future__ import annotations

import re

import pytest

from pytest_mnops import Kube, Resource, Target, condition_true, resources
from pytest_mnops.k8s.rbac import DRILL_PERMISSIONS, role_rules

MIN_VERSION = (1, 24)
ARGO_ROLLOUTS_CRDS = ("rollouts.argoproj.io", "analysistemplates.argoproj.io", "analysisruns.argoproj.io")
CHAOS_MESH_CRDS = ("networkchaos.chaos-mesh.org", "stresschaos.chaos-mesh.org")
SELF_SUBJECT_REVIEW = Resource(
    "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False
)


def _version(info: dict[str, str]) -> tuple[int, int]:
    major = int(re.match(r"\d+", info.get("major", "")).group())  # type: ignore[union-attr]
    minor = int(re.match(r"\d+", info.get("minor", "")).group())  # type: ignore[union-attr]
    return major, minor


@pytest.mark.validation("infrastructure", reads="cluster")
def test_api_server_reachable_and_supported(k8s: Kube) -> None:
    info = k8s.server_version()  # an API server that does not answer raises ClusterError: a failure
    try:
        version = _version(info)
    except (AttributeError, ValueError):
        pytest.fail(
            f"kube-apiserver {k8s.host}: /version answered {info!r}, which names no major/minor "
            "version. Fix: check the server really is a Kubernetes API server."
        )
    assert version >= MIN_VERSION, (
        f"kube-apiserver {k8s.host} runs Kubernetes {info.get('gitVersion', '.'.join(map(str, version)))}, "
        f"older than the {'.'.join(map(str, MIN_VERSION))} the drills and Argo Rollouts v1.9 need. "
        "Fix: upgrade the cluster's control plane."
    )


@pytest.mark.validation("infrastructure", reads="cluster")
def test_nodes_ready(k8s: Kube) -> None:
    nodes, _ = k8s.list(resources.NODE)
    assert nodes, (
        f"cluster {k8s.host} has no Node objects, so no pod can run. "
        "Fix: join worker nodes (the sandbox creates KWOK nodes: `mnops sandbox up`)."
    )
    not_ready = []
    for node in nodes:
        if condition_true(node, "Ready"):
            continue
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), {})
        detail = f"{ready.get('status', 'no Ready condition')} {ready.get('reason', '')}".strip()
        not_ready.append(f"Node {node['metadata']['name']} ({detail}: {ready.get('message', '')})")
    assert not not_ready, (
        f"{len(not_ready)} of {len(nodes)} nodes are not Ready: {'; '.join(not_ready)}. "
        "Fix: `kubectl describe node NAME` and repair its kubelet (or cordon and remove the node)."
    )


@pytest.mark.validation("infrastructure", reads="cluster")
def test_required_namespaces_active(k8s: Kube, mnops_target: Target) -> None:
    required = dict.fromkeys((mnops_target.namespace, *mnops_target.allowed_namespaces))
    problems = []
    for name in required:
        namespace = k8s.find(resources.NAMESPACE, name)
        if namespace is None:
            problems.append(
                f"Namespace {name} does not exist (fix: `kubectl create namespace {name}` and "
                "deploy charts/ into it, or pass --mnops-namespace)"
            )
        elif (namespace.get("status") or {}).get("phase") != "Active":
            problems.append(
                f"Namespace {name} is {namespace['status'].get('phase')} (fix: wait for its "
                "deletion to finish and recreate it, or remove the finalizer that blocks it)"
            )
    assert not problems, "; ".join(problems)


def _crd_problems(k8s: Kube, names: tuple[str, ...]) -> list[str]:
    problems = []
    for name in names:
        crd = k8s.find(resources.CRD, name)
        if crd is None:
            problems.append(f"CustomResourceDefinition {name} is not installed")
        elif not condition_true(crd, "Established"):
            problems.append(f"CustomResourceDefinition {name} is not Established")
    return problems


@pytest.mark.validation("infrastructure", reads="cluster")
def test_argo_rollouts_crds_established(k8s: Kube) -> None:
    problems = _crd_problems(k8s, ARGO_ROLLOUTS_CRDS)
    assert not problems, (
        f"{'; '.join(problems)} on {k8s.host}: Argo Rollouts is missing, so the Rollout, its analyses and "
        "every canary drill cannot work. Fix: `kubectl create namespace argo-rollouts && kubectl apply -n "
        "argo-rollouts -f https://github.com/argoproj/argo-rollouts/releases/download/v1.10.2/install.yaml` "
        "(the sandbox installs them in `mnops sandbox up`)."
    )


@pytest.mark.validation("infrastructure", reads="cluster")
def test_chaos_mesh_crds_established(k8s: Kube) -> None:
    problems = _crd_problems(k8s, CHAOS_MESH_CRDS)
    assert not problems, (
        f"{'; '.join(problems)} on {k8s.host}: drills high-latency and resource-exhaustion inject their "
        "faults as Chaos Mesh NetworkChaos/StressChaos objects. Fix: install Chaos Mesh (`helm install "
        "chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh --create-namespace`), or deselect those drills."
    )


def _identity(k8s: Kube) -> str:
    try:
        review = k8s.create(
            SELF_SUBJECT_REVIEW, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        return review["status"]["userInfo"]["username"]
    except Exception:  # the name only decorates the message; servers before 1.28 lack the API
        return "the identity in your kubeconfig"


@pytest.mark.validation("infrastructure", reads="cluster")
def test_rbac_allows_drill_verbs(k8s: Kube, mnops_target: Target) -> None:
    namespace = mnops_target.namespace
    missing = [
        perm
        for perm in DRILL_PERMISSIONS
        if not k8s.can_i(perm.verb, perm.plural, group=perm.group, namespace=namespace, subresource=perm.subresource)
    ]
    if missing:
        who = _identity(k8s)
        listing = "; ".join(f"{p.describe()} (needed by {p.needed_by})" for p in missing)
        pytest.fail(
            f"{who} may not, in namespace {namespace}: {listing}. Fix: add these rules to a Role in "
            f"namespace {namespace} bound to {who} (RoleBinding), then run the suite again:\n"
            f"{role_rules(missing)}",
            pytrace=False,
        )
