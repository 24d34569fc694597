"""Kube's writes, lists, watches and waits, through the official client against a loopback fake of the API server:
the URLs, verbs, content types and query it sends, and what it makes of the answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mnops.errors import ClusterError, NotFound, WaitTimeout
from pytest_mnops.k8s import Kube, Resource, resources
from pytest_mnops.k8s.client import FIELD_MANAGER, USER_AGENT
from pytest_mnops.k8s.resources import describe
from tests.unit.conftest import FakeServer, Request


@pytest.fixture
def kube(http_server: FakeServer, tmp_path: Path) -> Kube:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": http_server.url}}],
        "users": [{"name": "fake", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    return Kube(kubeconfig=str(tmp_path / "kubeconfig"))


def _pod(name: str, version: str = "1", **status: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": "drills", "resourceVersion": version, "managedFields": [{"manager": "x"}]}
    return {"metadata": meta, "status": status}


def _lines(*events: tuple[str, dict[str, Any]]) -> list[bytes]:
    return [json.dumps({"type": kind, "object": obj}).encode() + b"\n" for kind, obj in events]


def test_paths_of_core_grouped_cluster_and_subresources() -> None:
    assert resources.POD.path("drills", "p") == "/api/v1/namespaces/drills/pods/p"
    assert resources.NODE.path("ignored", "n") == "/api/v1/nodes/n"
    assert (
        resources.ROLLOUT.path("drills", "r", "status")
        == "/apis/argoproj.io/v1alpha1/namespaces/drills/rollouts/r/status"
    )
    assert resources.ROLLOUT.path() == "/apis/argoproj.io/v1alpha1/rollouts"
    assert (resources.ROLLOUT.api_version, resources.POD.api_version) == ("argoproj.io/v1alpha1", "v1")
    assert describe(resources.POD, "p", "drills") == "Pod 'p' in namespace 'drills'"
    assert describe(resources.NODE, None, "drills") == "Node objects"


def test_create_patch_replace_and_their_query(kube: Kube, http_server: FakeServer) -> None:
    http_server.answer = lambda request: (200, {"kind": "Pod", "ok": request.method})
    assert kube.create(resources.POD, {"kind": "Pod"}, namespace="drills") == {"kind": "Pod", "ok": "POST"}
    kube.create(resources.SERVICE_ACCOUNT, {"kind": "TokenRequest"}, namespace="drills", name="sa", subresource="token")
    kube.create(resources.POD, {}, namespace="drills", dry_run=True)
    kube.patch(resources.ROLLOUT, "r", {"spec": {"paused": True}}, namespace="drills")
    kube.patch(resources.ROLLOUT, "r", [{"op": "remove"}], namespace="drills", patch_type="json", subresource="status")
    kube.patch(resources.ROLLOUT, "r", {}, namespace="drills", dry_run=True)
    kube.replace(resources.CONFIG_MAP, {"metadata": {"name": "c"}}, namespace="drills")
    seen = [(r.method, r.path, r.query, r.headers.get("content-type")) for r in http_server.requests]
    apply_type = "application/merge-patch+json"
    assert seen == [
        ("POST", "/api/v1/namespaces/drills/pods", {}, "application/json"),
        ("POST", "/api/v1/namespaces/drills/serviceaccounts/sa/token", {}, "application/json"),
        ("POST", "/api/v1/namespaces/drills/pods", {"dryRun": "All"}, "application/json"),
        (
            "PATCH",
            "/apis/argoproj.io/v1alpha1/namespaces/drills/rollouts/r",
            {"fieldManager": FIELD_MANAGER},
            apply_type,
        ),
        (
            "PATCH",
            "/apis/argoproj.io/v1alpha1/namespaces/drills/rollouts/r/status",
            {"fieldManager": FIELD_MANAGER},
            "application/json-patch+json",
        ),
        (
            "PATCH",
            "/apis/argoproj.io/v1alpha1/namespaces/drills/rollouts/r",
            {"fieldManager": FIELD_MANAGER, "dryRun": "All"},
            apply_type,
        ),
        ("PUT", "/api/v1/namespaces/drills/configmaps/c", {}, "application/json"),
    ]
    assert http_server.requests[3].body == {"spec": {"paused": True}}
    assert all(r.headers["user-agent"] == USER_AGENT for r in http_server.requests)
    assert all(r.headers["authorization"] == "Bearer t0ken" for r in http_server.requests)
    assert kube.requests == 7


def test_delete_of_a_missing_object_is_false_unless_asked_to_raise(kube: Kube, http_server: FakeServer) -> None:
    http_server.answer = lambda request: (
        (404, {"message": 'pods "p" not found'}) if "gone" in request.path else (200, {})
    )
    assert kube.delete(resources.POD, "p", namespace="drills", grace_period_s=0) is True
    assert http_server.requests[-1].query == {"gracePeriodSeconds": "0"}
    assert kube.delete(resources.POD, "gone", namespace="drills") is False
    assert http_server.requests[-1].query == {}
    with pytest.raises(NotFound, match=r'^DELETE /api/v1/namespaces/drills/pods/gone: 404 pods "p" not found$'):
        kube.delete(resources.POD, "gone", namespace="drills", missing_ok=False)
    assert kube.find(resources.POD, "gone", namespace="drills") is None


def test_api_errors_name_the_request_and_a_forbidden_one_the_fix(kube: Kube, http_server: FakeServer) -> None:
    http_server.answer = lambda request: (403, {"message": "pods is forbidden"})
    with pytest.raises(ClusterError) as refused:
        kube.get(resources.POD, "p", namespace="drills")
    assert str(refused.value) == (
        "GET /api/v1/namespaces/drills/pods/p: 403 pods is forbidden. "
        "Fix: grant this verb to the identity in your kubeconfig (RBAC)."
    )
    http_server.answer = lambda request: (500, "not json")
    with pytest.raises(ClusterError, match=r"^GET /api/v1/nodes/n: 500 Internal Server Error$"):
        kube.get(resources.NODE, "n")


def test_an_unanswering_server_says_so(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "c", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "c"}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    kube = Kube(kubeconfig=str(tmp_path / "kubeconfig"))
    kube.api.configuration.retries = 0
    with pytest.raises(ClusterError, match=r"^GET http://127.0.0.1:9/version: the API server did not answer"):
        kube.server_version()
    with pytest.raises(ClusterError, match=r"kubeconfig .*/missing \(context current\) cannot be loaded"):
        Kube(kubeconfig=str(tmp_path / "missing"))


def test_list_follows_continue_tokens_and_drops_managed_fields(kube: Kube, http_server: FakeServer) -> None:
    pages = {
        None: {"metadata": {"continue": "next", "resourceVersion": "5"}, "items": [_pod("a")]},
        "next": {"metadata": {"resourceVersion": "9"}, "items": [_pod("b")]},
    }
    http_server.answer = lambda request: (200, pages[request.query.get("continue")])
    items, version = kube.list(resources.POD, namespace="drills", label_selector="app=demo", field_selector="x=y")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"] and version == "9"
    assert all("managedFields" not in i["metadata"] for i in items)
    assert [r.query for r in http_server.requests] == [
        {"limit": "500", "labelSelector": "app=demo", "fieldSelector": "x=y"},
        {"limit": "500", "labelSelector": "app=demo", "fieldSelector": "x=y", "continue": "next"},
    ]


def test_apply_discovers_the_resource_then_applies_server_side(kube: Kube, http_server: FakeServer) -> None:
    discovery = {
        "resources": [
            {"name": "rollouts", "kind": "Rollout", "namespaced": True},
            {"name": "rollouts/status", "kind": "Rollout", "namespaced": True},
            {"name": "clusterthings", "kind": "ClusterThing", "namespaced": False},
        ]
    }

    def answer(request: Request) -> tuple[int, Any]:
        if request.path == "/apis/argoproj.io/v1alpha1":
            return 200, discovery
        if request.path == "/apis/none/v1":
            return 404, {"message": "not found"}
        return 200, {"applied": True}

    http_server.answer = answer
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"}}
    assert kube.apply(rollout, namespace="drills") == {"applied": True}
    kube.apply(
        {**rollout, "metadata": {"name": "r", "namespace": "own"}}, namespace="drills", dry_run=True, force=False
    )
    kube.apply({"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterThing", "metadata": {"name": "c"}}, namespace="x")
    applies = [r for r in http_server.requests if r.method == "PATCH"]
    assert [(r.path, r.query) for r in applies] == [
        ("/apis/argoproj.io/v1alpha1/namespaces/drills/rollouts/r", {"fieldManager": FIELD_MANAGER, "force": "true"}),
        (
            "/apis/argoproj.io/v1alpha1/namespaces/own/rollouts/r",
            {"fieldManager": FIELD_MANAGER, "force": "false", "dryRun": "All"},
        ),
        ("/apis/argoproj.io/v1alpha1/clusterthings/c", {"fieldManager": FIELD_MANAGER, "force": "true"}),
    ]
    assert {r.headers["content-type"] for r in applies} == {"application/apply-patch+yaml"}
    assert len([r for r in http_server.requests if r.method == "GET"]) == 1, "discovery is cached per apiVersion"
    assert kube.resource_for("argoproj.io/v1alpha1", "Rollout") == Resource(
        "argoproj.io", "v1alpha1", "rollouts", "Rollout"
    )
    with pytest.raises(ClusterError, match=r"^kind 'Nope' is not served under 'argoproj.io/v1alpha1' by http"):
        kube.resource_for("argoproj.io/v1alpha1", "Nope")
    with pytest.raises(ClusterError, match=r"^apiVersion 'none/v1' is not served by .*Fix: install the CRDs"):
        kube.resource_for("none/v1", "Thing")


def test_can_i_asks_a_self_subject_access_review(kube: Kube, http_server: FakeServer) -> None:
    http_server.answer = lambda request: (
        201,
        {"status": {"allowed": request.body["spec"]["resourceAttributes"]["verb"] == "get"}},
    )
    assert kube.can_i("get", "rollouts", group="argoproj.io", namespace="drills") is True
    assert kube.can_i("watch", "rollouts", group="argoproj.io", namespace="drills", subresource="status") is False
    assert http_server.requests[-1].path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    assert http_server.requests[-1].body["spec"]["resourceAttributes"] == {
        "verb": "watch",
        "resource": "rollouts",
        "group": "argoproj.io",
        "namespace": "drills",
        "subresource": "status",
    }


def test_watch_streams_events_from_the_resource_version(kube: Kube, http_server: FakeServer) -> None:
    http_server.answer = lambda request: (200, None, _lines(("ADDED", _pod("a")), ("DELETED", _pod("b"))))
    events = list(
        kube.watch(resources.POD, resource_version="7", namespace="drills", label_selector="app=x", timeout_s=0.4)
    )
    assert [(kind, obj["metadata"]["name"]) for kind, obj in events] == [("ADDED", "a"), ("DELETED", "b")]
    assert all("managedFields" not in obj["metadata"] for _, obj in events)
    assert http_server.requests[-1].query == {
        "watch": "true",
        "resourceVersion": "7",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "1",
        "labelSelector": "app=x",
    }


class _ApiScript:
    """A list, then one watch per entry of ``watches`` (after those: empty watches)."""

    def __init__(self, listed: list[list[dict[str, Any]]], watches: list[list[bytes]]) -> None:
        self.listed, self.watches = listed, watches

    def __call__(self, request: Request) -> Any:
        if request.query.get("watch"):
            return 200, None, self.watches.pop(0) if self.watches else []
        items = self.listed.pop(0) if len(self.listed) > 1 else self.listed[0]
        return 200, {"metadata": {"resourceVersion": "1"}, "items": items}


def test_wait_sees_the_current_set_and_every_event(kube: Kube, http_server: FakeServer) -> None:
    http_server.answer = _ApiScript(
        [[_pod("a", phase="Pending"), _pod("b", phase="Pending")]],
        [
            _lines(
                ("BOOKMARK", {"metadata": {"resourceVersion": "3"}}),
                ("MODIFIED", _pod("a", "4", phase="Running")),
                ("DELETED", _pod("b", "5")),
            )
        ],
    )
    seen: list[list[str]] = []

    def all_running(pods: list[dict[str, Any]]) -> list[str] | None:
        seen.append(sorted(f"{p['metadata']['name']}={p['status'].get('phase')}" for p in pods))
        return (
            [p["metadata"]["name"] for p in pods] if all(p["status"].get("phase") == "Running" for p in pods) else None
        )

    assert kube.wait(resources.POD, all_running, namespace="drills", timeout_s=5, what="pods Running") == ["a"]
    assert seen == [["a=Pending", "b=Pending"], ["a=Running", "b=Pending"], ["a=Running"]]
    watch = next(r for r in http_server.requests if r.query.get("watch"))
    assert watch.query["resourceVersion"] == "1"


def test_wait_relists_after_an_expired_watch_and_by_name_selects_the_field(kube: Kube, http_server: FakeServer) -> None:
    http_server.answer = _ApiScript(
        [[_pod("a", phase="Pending")], [_pod("a", phase="Running")]],
        [_lines(("ERROR", {"metadata": {}, "code": 410}))],
    )
    found = kube.wait(
        resources.POD,
        lambda pods: pods[0]["status"]["phase"] == "Running" and pods[0],
        name="a",
        namespace="drills",
        timeout_s=5,
        what="a Running",
    )
    assert found["metadata"]["name"] == "a"
    lists = [r for r in http_server.requests if not r.query.get("watch")]
    assert len(lists) == 2 and all(r.query["fieldSelector"] == "metadata.name=a" for r in lists)


def test_wait_timeout_names_what_where_and_the_last_state(kube: Kube, http_server: FakeServer) -> None:
    http_server.answer = _ApiScript([[_pod(f"p{i}", phase="Pending") for i in range(7)]], [])
    with pytest.raises(WaitTimeout) as timeout:
        kube.wait(resources.POD, lambda pods: None, namespace="drills", timeout_s=0.3, what="7 pods Ready")
    assert str(timeout.value) == (
        "timed out after 0s waiting for 7 pods Ready (Pod objects in namespace 'drills'); last seen: "
        "p0=Pending, p1=Pending, p2=Pending, p3=Pending, p4=Pending (+2 more)"
    )
    http_server.answer = _ApiScript([[]], [])
    with pytest.raises(WaitTimeout, match=r"\(Node 'n'\); last seen: no matching objects$"):
        kube.wait(resources.NODE, lambda nodes: None, name="n", timeout_s=0.2, what="node n")
