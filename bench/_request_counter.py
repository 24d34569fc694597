"""A pytest plugin for bench/scale.py: counts the API requests this pytest process makes, by client and verb.

Both pytest-mnops' Kube and chaostoolkit-kubernetes speak through the official client's one transport method,
``RESTClientObject.request``; wrapping it counts every request the process sends, and the User-Agent tells
the two apart. Loaded with ``-p _request_counter`` (``bench/`` on ``PYTHONPATH``); the counts are written as
JSON to ``$MNOPS_BENCH_REQUESTS`` when pytest ends, with the client names, so the bench need not import this
module (and the official client with it).
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes.client import rest

from pytest_mnops.k8s.client import USER_AGENT

OURS, THEIRS = "pytest-mnops", "chaostoolkit-kubernetes"
_counts: Counter[tuple[str, str, str]] = Counter()
_lock = threading.Lock()  # the drill's background probe sends from its own thread
_original = rest.RESTClientObject.request


def verb_and_resource(method: str, url: str, query: list[tuple[str, Any]] | None, content_type: str) -> tuple[str, str]:
    """The request as kube-apiserver's ``apiserver_request_total`` labels it: (verb, resource[/subresource])."""
    parts = urlsplit(url).path.strip("/").split("/")
    if parts[0] == "api":
        rest_of = parts[2:]
    elif parts[0] == "apis":
        rest_of = parts[3:]
    else:
        return method, ""  # /version, /healthz: no resource
    if not rest_of:
        return method, "(discovery)"
    if len(rest_of) >= 3 and rest_of[0] == "namespaces":
        rest_of = rest_of[2:]  # /namespaces/<ns>/<resource>...; /namespaces/<name> itself is the namespace
    resource = "/".join(rest_of[:1] + rest_of[2:3])
    named = len(rest_of) > 1
    if method == "GET":
        params = {k: str(v) for k, v in query or []}
        if params.get("watch", "").lower() == "true":
            return "WATCH", resource
        # The API server counts a list narrowed to one name (fieldSelector=metadata.name=X) as a GET.
        one = params.get("fieldSelector", "").startswith("metadata.name=") and "," not in params["fieldSelector"]
        return ("GET" if named or one else "LIST"), resource
    if method == "PATCH" and content_type.startswith("application/apply-patch"):
        return "APPLY", resource
    if method == "DELETE" and not named:
        return "DELETECOLLECTION", resource
    return method, resource


def _counting(self: Any, method: str, url: str, query_params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
    headers = headers or {}
    client = OURS if headers.get("User-Agent") == USER_AGENT else THEIRS
    verb, resource = verb_and_resource(method, url, query_params, headers.get("Content-Type", ""))
    with _lock:
        _counts[(client, verb, resource)] += 1
    return _original(self, method, url, query_params=query_params, headers=headers, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    rest.RESTClientObject.request = _counting


def pytest_unconfigure(config: pytest.Config) -> None:
    rest.RESTClientObject.request = _original
    rows = [{"client": c, "verb": v, "resource": r, "count": n} for (c, v, r), n in sorted(_counts.items())]
    Path(os.environ["MNOPS_BENCH_REQUESTS"]).write_text(json.dumps({"clients": [OURS, THEIRS], "rows": rows}))
