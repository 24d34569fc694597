"""pytest-xdist workers drill their own app instance, in their own namespace, as their own identity.

Under ``pytest -n N`` worker ``gwK`` gets a namespace ``<namespace>-gwK-<run>`` with a fresh copy of the
reference app from charts/, and drills through a ServiceAccount whose Role covers that namespace only (plus
cluster-wide reads, never of Secrets). A fault aimed at another worker's app is refused by the API server
itself, and the API server's audit log names the worker that made every change.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mnops.errors import ConfigError

if TYPE_CHECKING:
    import pytest

    from pytest_mnops.k8s import Kube
    from pytest_mnops.target import Target

IDENTITY = "mnops-drill"
WORKER_LABEL = "mnops.io/xdist-worker"
TOKEN_TTL_S = 6 * 3600  # longer than any drill run; the kubeconfig holding it is removed at the end
READY_TIMEOUT_S = 180.0


def worker_id(config: pytest.Config) -> str | None:
    """``gw0``, ``gw1``... in a pytest-xdist worker; None in the controller or a run without xdist."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput["workerid"] if workerinput else None


def worker_namespace(config: pytest.Config, namespace: str) -> str:
    """``<namespace>-<worker>-<run>``: new on every run. Argo Rollouts deletes a deleted Rollout's metrics 65 s
    later, by namespace and name; a name reused by the next run would lose that run's RolloutAborted events."""
    run = config.workerinput["testrunuid"][:6]  # type: ignore[attr-defined]
    return f"{namespace}-{worker_id(config)}-{run}"


def username(namespace: str) -> str:
    """How the API server (and its audit log) names the identity a worker drills as."""
    return f"system:serviceaccount:{namespace}:{IDENTITY}"


@contextlib.contextmanager
def isolated_instance(target: Target, state_dir: Path, say: Callable[[str], None]) -> Iterator[Target]:
    """Deploy this worker's app instance and identity; yield the target that drills it; remove both after."""
    import yaml

    from pytest_mnops import app
    from pytest_mnops.k8s import Kube, resources
    from pytest_mnops.rollouts import Rollout

    if target.app != app.APP_NAME:
        raise ConfigError(
            f"pytest-xdist: each worker drills its own copy of the reference app from charts/ "
            f"({app.APP_NAME!r}), but the target app is {target.app!r}. Fix: run without -n, or drill "
            f"{app.APP_NAME!r} (--mnops-app)."
        )
    admin = Kube(kubeconfig=target.kubeconfig, context=target.context)
    namespace = target.namespace
    kubeconfig = state_dir / f"kubeconfig-{namespace}"
    say(f"mnops: worker {target.worker} drills its own {target.app} in namespace {namespace}")
    try:
        app.deploy(
            admin,
            namespace,
            prometheus_address=target.require("prometheus_url", "--mnops-prometheus-url"),
            time_scale=target.time_scale,
            labels={WORKER_LABEL: target.worker or ""},
        )
        write_private(kubeconfig, yaml.safe_dump(admin.kubeconfig_for_token(grant(admin, namespace))))
        Rollout(admin, namespace=namespace, name=target.app).wait_for(phase="Healthy", timeout_s=READY_TIMEOUT_S)
        yield replace(target, kubeconfig=str(kubeconfig))
    finally:
        kubeconfig.unlink(missing_ok=True)
        admin.delete(resources.CLUSTER_ROLE_BINDING, binding_name(namespace))
        # Nothing after this worker needs the namespace emptied (its identity goes with it, the kubeconfig is gone).
        app.remove_namespaces(admin, [namespace], wait=False)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds a credential), without a window where others can."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def binding_name(namespace: str) -> str:
    return f"{IDENTITY}-read-{namespace}"


def grant(admin: Kube, namespace: str, *, identity: str = IDENTITY, cluster_reads: bool = True) -> str:
    """A ServiceAccount ``identity`` that may do everything in ``namespace`` (and, with ``cluster_reads``,
    read outside it, never Secrets); returns a token for it (TokenRequest, TOKEN_TTL_S)."""
    from pytest_mnops.k8s import resources
    from pytest_mnops.k8s.rbac import cluster_read_rules

    rbac = "rbac.authorization.k8s.io/v1"
    subject = [{"kind": "ServiceAccount", "name": identity, "namespace": namespace}]
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": identity, "namespace": namespace}},
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": identity, "namespace": namespace},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        },
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": identity, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": identity},
            "subjects": subject,
        },
    ]
    cluster_objects = (
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": f"{IDENTITY}-read"},
            "rules": cluster_read_rules(),
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": binding_name(namespace)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{IDENTITY}-read"},
            "subjects": subject,
        },
    )
    for obj in [*objects, *(cluster_objects if cluster_reads else ())]:
        admin.apply(obj)
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": TOKEN_TTL_S},
    }
    issued = admin.create(resources.SERVICE_ACCOUNT, request, namespace=namespace, name=identity, subresource="token")
    return issued["status"]["token"]
