"""A thin, dict-speaking layer over the official client: CRUD, server-side apply, paginated lists, watches."""

from __future__ import annotations

import base64
import builtins
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException
from kubernetes.config import kube_config

from pytest_mnops.errors import ClusterError, NotFound, WaitTimeout
from pytest_mnops.k8s.resources import Resource, describe, resources
from pytest_mnops.names import VERSION

Obj = dict[str, Any]
T = TypeVar("T")
PAGE_SIZE = 500
FIELD_MANAGER = "mnops"
# Tells this plugin's requests from chaostoolkit-kubernetes' (the same official client) wherever they are seen.
USER_AGENT = f"pytest-mnops/{VERSION}"
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


class Kube:
    """One cluster, addressed through a kubeconfig and context (``None`` means the current one)."""

    def __init__(self, *, kubeconfig: str | None = None, context: str | None = None) -> None:
        try:
            self.api = k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
        except (k8s_config.ConfigException, OSError) as exc:
            where = kubeconfig or "$KUBECONFIG / ~/.kube/config"
            raise ClusterError(
                f"kubeconfig {where} (context {context or 'current'}) cannot be loaded: {exc}. "
                "Fix: pass --mnops-kubeconfig/--mnops-context, or start the sandbox with --mnops-sandbox."
            ) from exc
        self.api.user_agent = USER_AGENT
        self.kubeconfig, self.context = kubeconfig, context
        self.requests = 0
        self._kinds: dict[str, dict[str, Resource]] = {}

    @property
    def host(self) -> str:
        return self.api.configuration.host

    # -- raw requests -------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = 30,  # (connect, read), as urllib3 takes it
        stream: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        self.requests += 1
        try:
            resp = self.api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
                _return_http_data_only=True,
            )
        except ApiException as exc:
            raise _api_error(method, path, exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(
                f"{method} {self.host}{path}: the API server did not answer ({exc}). "
                "Fix: check the cluster is up (`mnops sandbox status`) and the kubeconfig points at it."
            ) from None
        if stream:
            return resp
        data = resp.data
        return json.loads(data) if data else None

    # -- CRUD -----------------------------------------------------------------------------------------
    def get(
        self, resource: Resource, name: str, *, namespace: str | None = None, subresource: str | None = None
    ) -> Obj:
        return self._call("GET", resource.path(namespace, name, subresource))

    def find(self, resource: Resource, name: str, *, namespace: str | None = None) -> Obj | None:
        try:
            return self.get(resource, name, namespace=namespace)
        except NotFound:
            return None

    def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        """All matching objects (paginated) and the list's resourceVersion to watch from."""
        items: list[Obj] = []
        query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        cont = None
        while True:
            page = self._call("GET", resource.path(namespace), query=query + ([("continue", cont)] if cont else []))
            items.extend(_compact(o) for o in page.get("items") or [])
            cont = page["metadata"].get("continue")
            if not cont:
                return items, page["metadata"]["resourceVersion"]

    def create(
        self,
        resource: Resource,
        body: Obj,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        name: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """POST a new object, or to a subresource of ``name`` (a ServiceAccount's ``token``)."""
        query = [("dryRun", "All")] if dry_run else []
        return self._call("POST", resource.path(namespace, name, subresource), body=body, query=query)

    def patch(
        self,
        resource: Resource,
        name: str,
        body: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER)]
        if dry_run:
            query.append(("dryRun", "All"))
        return self._call(
            "PATCH",
            resource.path(namespace, name, subresource),
            body=body,
            query=query,
            content_type=PATCH_TYPES[patch_type],
        )

    def replace(self, resource: Resource, body: Obj, *, namespace: str | None = None) -> Obj:
        return self._call("PUT", resource.path(namespace, body["metadata"]["name"]), body=body)

    def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_s: int | None = None,
        missing_ok: bool = True,
    ) -> bool:
        query = [("gracePeriodSeconds", grace_period_s)] if grace_period_s is not None else []
        try:
            self._call("DELETE", resource.path(namespace, name), query=query)
        except NotFound:
            if not missing_ok:
                raise
            return False
        return True

    def apply(self, obj: Obj, *, namespace: str | None = None, dry_run: bool = False, force: bool = True) -> Obj:
        """Server-side apply: no last-applied annotation, so CRDs of any size fit."""
        resource = self.resource_for(obj["apiVersion"], obj["kind"])
        ns = obj["metadata"].get("namespace") or namespace
        query: list[tuple[str, Any]] = [("fieldManager", FIELD_MANAGER), ("force", str(force).lower())]
        if dry_run:
            query.append(("dryRun", "All"))
        return self._call(
            "PATCH",
            resource.path(ns if resource.namespaced else None, obj["metadata"]["name"]),
            body=obj,
            query=query,
            content_type=PATCH_TYPES["apply"],
        )

    # -- discovery ----------------------------------------------------------------------------------
    def resource_for(self, api_version: str, kind: str) -> Resource:
        if api_version not in self._kinds:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            try:
                listing = self._call("GET", path)
            except NotFound:
                raise ClusterError(
                    f"apiVersion {api_version!r} is not served by {self.host}. "
                    "Fix: install the CRDs that define it (for Argo Rollouts: `mnops sandbox up` does)."
                ) from None
            group, _, version = api_version.rpartition("/")
            self._kinds[api_version] = {
                r["kind"]: Resource(group, version, r["name"], r["kind"], r["namespaced"])
                for r in listing["resources"]
                if "/" not in r["name"]
            }
        try:
            return self._kinds[api_version][kind]
        except KeyError:
            raise ClusterError(f"kind {kind!r} is not served under {api_version!r} by {self.host}.") from None

    def kubeconfig_for_token(self, token: str) -> Obj:
        """A kubeconfig for this cluster and context name that authenticates with ``token`` instead."""
        conf = self.api.configuration
        cluster: Obj = {"server": conf.host}
        if conf.ssl_ca_cert:
            cluster["certificate-authority-data"] = base64.b64encode(Path(conf.ssl_ca_cert).read_bytes()).decode()
        if not conf.verify_ssl:
            cluster["insecure-skip-tls-verify"] = True
        _, current = k8s_config.list_kube_config_contexts(config_file=self.kubeconfig)
        name = self.context or current["name"]
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        }

    def server_version(self) -> Obj:
        return self._call("GET", "/version")

    def can_i(
        self, verb: str, resource: str, *, group: str = "", namespace: str | None = None, subresource: str = ""
    ) -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "resource": resource,
                    "group": group,
                    "namespace": namespace or "",
                    "subresource": subresource,
                }
            },
        }
        return bool(self.create(resources.SELF_SUBJECT_ACCESS_REVIEW, review)["status"].get("allowed"))

    # -- watches ------------------------------------------------------------------------------------
    def watch(
        self,
        resource: Resource,
        *,
        resource_version: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_s: float = 60,
    ) -> Iterator[tuple[str, Obj]]:
        """Events after ``resource_version``; ends when the server closes the watch or ``timeout_s`` passes."""
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", max(1, int(timeout_s))),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        resp = self._call("GET", resource.path(namespace), query=query, stream=True, timeout=(10, timeout_s + 5))
        try:
            buffer = b""
            for chunk in resp.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = json.loads(line)
                        yield event["type"], _compact(event["object"])
        except urllib3.exceptions.HTTPError as exc:
            # A restarted or overloaded API server drops the stream; waits relist and carry on.
            raise ClusterError(f"watch of {describe(resource, None, namespace)} was cut: {exc}") from None
        finally:
            resp.release_conn()

    def wait(
        self,
        resource: Resource,
        predicate: Callable[[builtins.list[Obj]], T | None],  # builtins: Kube.list shadows list here
        *,
        timeout_s: float,
        what: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        name: str | None = None,
    ) -> T:
        """Return ``predicate(objects)`` as soon as it is truthy, re-evaluated on every watch event.

        The predicate sees the current set of matching objects (one object when ``name`` is given), so a
        wait can be about a whole set ("5 pods Ready") as easily as about one object's phase. Long because
        list, watch from its resourceVersion, apply each event and relist on a cut stream are one loop.
        """
        if name:
            field_selector = f"metadata.name={name}"
        deadline = time.monotonic() + timeout_s
        last: list[Obj] = []
        while True:
            items, rv = self.list(
                resource, namespace=namespace, label_selector=label_selector, field_selector=field_selector
            )
            objects = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in items}
            last = list(objects.values())
            result = predicate(last)
            if result:
                return result
            try:
                while (remaining := deadline - time.monotonic()) > 0:
                    for kind, obj in self.watch(
                        resource,
                        resource_version=rv,
                        namespace=namespace,
                        label_selector=label_selector,
                        field_selector=field_selector,
                        timeout_s=remaining,
                    ):
                        if kind == "ERROR":
                            raise _Expired
                        rv = obj["metadata"]["resourceVersion"]
                        if kind == "BOOKMARK":
                            continue
                        key = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
                        if kind == "DELETED":
                            objects.pop(key, None)
                        else:
                            objects[key] = obj
                        last = list(objects.values())
                        result = predicate(last)
                        if result:
                            return result
                        if time.monotonic() >= deadline:
                            break
            except _Expired:
                continue  # 410 Gone: relist and watch again from the fresh resourceVersion
            except ClusterError:
                if time.monotonic() >= deadline:
                    raise
                continue
            raise WaitTimeout(
                f"timed out after {timeout_s:.0f}s waiting for {what} "
                f"({describe(resource, name, namespace)}); last seen: {_summary(last)}"
            )


def _compact(obj: Obj) -> Obj:
    """Drop ``managedFields``: server-side apply's bookkeeping, nearly half of a pod's JSON, read by nothing here.

    Lists and waits over a 1000-pod app hold every pod at once; this halves what they keep.
    """
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


class _Expired(Exception):
    """The watch's resourceVersion is too old; the wait relists."""


def _summary(objects: list[Obj]) -> str:
    if not objects:
        return "no matching objects"
    parts = []
    for obj in objects[:5]:
        status = obj.get("status") or {}
        phase = status.get("phase") or ""
        parts.append(f"{obj['metadata']['name']}{'=' + phase if phase else ''}")
    more = f" (+{len(objects) - 5} more)" if len(objects) > 5 else ""
    return ", ".join(parts) + more


def _api_error(method: str, path: str, exc: ApiException) -> ClusterError:
    try:
        body = json.loads(exc.body)
    except (TypeError, ValueError):
        body = None
    # A Status object names the problem; a proxy in front of the API server may answer anything else.
    message = body.get("message", exc.reason) if isinstance(body, dict) else exc.reason
    text = f"{method} {path}: {exc.status} {message}"
    if exc.status == 404:
        return NotFound(text)
    if exc.status == 403:
        return ClusterError(f"{text}. Fix: grant this verb to the identity in your kubeconfig (RBAC).")
    return ClusterError(text)


@contextlib.contextmanager
def default_kubeconfig(path: str | None) -> Iterator[None]:
    """Make ``path`` the official client's default kubeconfig for code that loads it implicitly.

    The client reads $KUBECONFIG once, at import; chaostoolkit-kubernetes then loads that default. Setting
    the environment variable later is not enough, so the default itself is pointed at the target.
    """
    if not path:
        yield
        return
    saved = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path
    try:
        yield
    finally:
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved
