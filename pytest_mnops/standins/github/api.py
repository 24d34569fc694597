"""The GitHub stand-in's REST contract: each route's answer, GitHub's errors, pagination and rate-limit headers.

Requests are routed to the model (pytest_mnops.standins.github.state) under the stand-in's lock; what a route
answers is a ``Reply`` the HTTP handler sends as JSON.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from pytest_mnops.standins.github.faults import Fault
from pytest_mnops.standins.github.state import Repo, Scope, Secret, now

DOCS_URL = "https://docs.github.com/rest"
RATE_LIMIT = 5000
# GitHub's rules: letters, digits and underscores, not starting with a digit or the reserved GITHUB_ prefix.
SECRET_NAME = re.compile(r"(?!github_)[a-z_][a-z0-9_]*", re.IGNORECASE)
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def fault_reply(fault: Fault) -> Reply:
    if fault.reset_in_s is None:
        message = "Server Error" if fault.status >= 500 else "Injected fault"
        return Reply(fault.status, {"message": message, "documentation_url": DOCS_URL, "status": str(fault.status)})
    headers = rate_headers(0, reset_in_s=fault.reset_in_s)
    headers["Retry-After"] = str(math.ceil(fault.reset_in_s))
    return Reply(
        403,
        {
            "message": "API rate limit exceeded for user ID 1.",
            "documentation_url": f"{DOCS_URL}/overview/rate-limits-for-the-rest-api",
            "status": "403",
        },
        headers,
    )


def authenticate(header: str | None, token: str) -> None:
    if not header:
        raise HttpError(401, "Requires authentication")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() not in ("token", "bearer") or credential.strip() != token:
        raise HttpError(401, "Bad credentials")


def route(repos: dict[str, Repo], method: str, path: str, query: dict[str, list[str]], body: bytes, base: str) -> Reply:
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if len(parts) < 3 or parts[0] != "repos":
        raise HttpError(404, "Not Found")
    repo = repos.get(f"{parts[1]}/{parts[2]}".casefold())
    if repo is None:
        raise HttpError(404, "Not Found")
    rest = parts[3:]
    if not rest and method == "GET":
        return Reply(200, _repo_json(repo, base))
    if rest[:1] == ["environments"] and len(rest) >= 2:
        key = rest[1].casefold()
        if key not in repo.environments:
            raise HttpError(404, "Not Found")
        if len(rest) == 2 and method == "GET":
            return Reply(200, _environment_json(repo, key, base))
        scope, rest = repo.environments[key], rest[2:]
    elif rest[:1] == ["actions"]:
        scope, rest = repo.actions, rest[1:]
    else:
        raise HttpError(404, "Not Found")
    if rest[:1] != ["secrets"] or len(rest) > 2:
        raise HttpError(404, "Not Found")
    if len(rest) == 1 and method == "GET":
        return _list_secrets(scope, query, f"{base}{path}")
    if rest[1:] == ["public-key"] and method == "GET":
        return Reply(200, {"key_id": scope.key_id, "key": scope.public_key})
    if len(rest) == 2:
        name = rest[1]
        if method == "GET":
            return Reply(200, _secret_json(name.upper(), _existing(scope, name)))
        if method == "PUT":
            return _put_secret(scope, name, body)
        if method == "DELETE":
            _existing(scope, name)
            del scope.secrets[name.upper()]
            return Reply(204)
    raise HttpError(404, "Not Found")


def _existing(scope: Scope, name: str) -> Secret:
    secret = scope.secrets.get(name.upper())  # GitHub stores secret names upper-cased
    if secret is None:
        raise HttpError(404, "Not Found")
    return secret


def _put_secret(scope: Scope, name: str, body: bytes) -> Reply:
    if not SECRET_NAME.fullmatch(name):
        raise HttpError(
            422,
            "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) "
            "or underscores (_), must not start with a number or the GITHUB_ prefix.",
        )
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        raise HttpError(400, "Problems parsing JSON") from None
    if not isinstance(payload, dict) or not payload.get("encrypted_value") or not payload.get("key_id"):
        raise HttpError(422, "Invalid request. encrypted_value and key_id are required.")
    if str(payload["key_id"]) != scope.key_id:
        raise HttpError(422, "Bad request: key_id does not match this scope's current public key.")
    try:
        value = scope.open(payload["encrypted_value"])
    except ValueError:
        raise HttpError(422, "Bad request: encrypted_value is not a sealed box for this key.") from None
    ts = now()
    existing = scope.secrets.get(name.upper())
    if existing is None:
        scope.secrets[name.upper()] = Secret(ts, ts, value)
        return Reply(201, {})
    existing.updated_at, existing.plaintext = ts, value
    return Reply(204)


def _list_secrets(scope: Scope, query: dict[str, list[str]], url: str) -> Reply:
    try:
        per_page = min(int(query.get("per_page", [DEFAULT_PER_PAGE])[0]), MAX_PER_PAGE)
        page = int(query.get("page", ["1"])[0])
    except ValueError:
        raise HttpError(422, "per_page and page must be integers.") from None
    if per_page < 1 or page < 1:
        raise HttpError(422, "per_page and page must be at least 1.")
    names = sorted(scope.secrets)
    chunk = names[(page - 1) * per_page : page * per_page]
    last = max(1, math.ceil(len(names) / per_page))
    headers = {}
    if page < last:  # PyGithub's PaginatedList follows the Link header, as it does on github.com
        headers["Link"] = (
            f'<{url}?per_page={per_page}&page={page + 1}>; rel="next", '
            f'<{url}?per_page={per_page}&page={last}>; rel="last"'
        )
    body = {"total_count": len(names), "secrets": [_secret_json(n, scope.secrets[n]) for n in chunk]}
    return Reply(200, body, headers)


def _secret_json(name: str, secret: Secret) -> dict[str, str]:
    return {"name": name, "created_at": _iso(secret.created_at), "updated_at": _iso(secret.updated_at)}


def _repo_json(repo: Repo, base: str) -> dict[str, Any]:
    owner, name = repo.full_name.split("/")
    ts = _iso(repo.created_at)
    return {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": name,
        "full_name": repo.full_name,
        "private": True,
        "visibility": "private",
        "fork": False,
        "archived": False,
        "disabled": False,
        "owner": {
            "login": owner,
            "id": repo.id - 1,
            "type": "Organization",
            "url": f"{base}/users/{owner}",
            "html_url": f"https://github.com/{owner}",
        },
        "html_url": f"https://github.com/{repo.full_name}",
        "url": f"{base}/repos/{repo.full_name}",
        "description": "GitHub stand-in repository (pytest-mnops sandbox)",
        "default_branch": "main",
        "created_at": ts,
        "updated_at": ts,
        "pushed_at": ts,
        "permissions": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    }


def _environment_json(repo: Repo, key: str, base: str) -> dict[str, Any]:
    name = repo.environment_names[key]
    ts = _iso(repo.created_at)
    return {
        "id": repo.environment_ids[key],
        "node_id": f"EN_{repo.environment_ids[key]}",
        "name": name,
        "url": f"{base}/repos/{repo.full_name}/environments/{quote(name, safe='')}",
        "html_url": f"https://github.com/{repo.full_name}/deployments/activity_log?environments_filter={name}",
        "created_at": ts,
        "updated_at": ts,
        "protection_rules": [],
        "deployment_branch_policy": None,
    }


def rate_headers(remaining: int, *, reset_in_s: float = 3600.0) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Used": str(RATE_LIMIT - remaining),
        "X-RateLimit-Resource": "core",
        "X-RateLimit-Reset": str(math.ceil(time.time() + reset_in_s)),
    }
