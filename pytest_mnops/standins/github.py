"""A stand-in for the GitHub REST API's Actions-secrets endpoints, on loopback (named a stand-in in docs).

It speaks the contract PyGithub 2.x uses for repository and environment secrets, and holds a real Curve25519
key pair per repository and per environment: every PUT is opened with the private key, so a round trip
proves the client sealed the value for the right key. Plaintexts stay in memory, are only handed out by
``decrypted()`` (test inspection), and never reach a log, a response or the request log.

In-process: ``with GitHubStandIn(token=...) as gh: Github(base_url=gh.url, ...)``. As a sandbox process:
``python -m pytest_mnops.standins.github --state-dir DIR`` serves on ``settings.ports.github``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from pytest_mnops.errors import ConfigError
from pytest_mnops.names import SANDBOX_GITHUB_REPO as DEFAULT_REPO
from pytest_mnops.names import SANDBOX_GITHUB_TOKEN as DEFAULT_TOKEN
from pytest_mnops.sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

TOKEN_ENV = "MNOPS_GITHUB_TOKEN"
# Not a secret: it only opens the loopback stand-in, and the sandbox docs print it.
DEFAULT_ENVIRONMENTS = ("staging", "production")
DOCS_URL = "https://docs.github.com/rest"
RATE_LIMIT = 5000
# GitHub's rules: letters, digits and underscores, not starting with a digit or the reserved GITHUB_ prefix.
SECRET_NAME = re.compile(r"(?!github_)[a-z_][a-z0-9_]*", re.IGNORECASE)
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


def _now() -> datetime:
    # GitHub's timestamps have whole-second resolution; so do ours, or clients would be tested on a finer
    # contract than GitHub serves.
    return datetime.now(UTC).replace(microsecond=0)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- state ----------------------------------------------------------------------------------------------


@dataclass
class _Secret:
    created_at: datetime
    updated_at: datetime
    plaintext: str = field(repr=False)


@dataclass
class _Scope:
    """A repository's Actions secrets or one environment's secrets: its own key pair and its own names."""

    private_key: PrivateKey = field(repr=False)
    secrets: dict[str, _Secret] = field(default_factory=dict)

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self.private_key.public_key)).decode()

    @property
    def key_id(self) -> str:
        # GitHub's key ids are opaque digit strings; derive one from the key so it changes with it.
        digest = hashlib.sha256(bytes(self.private_key.public_key)).digest()
        return str(int.from_bytes(digest[:8], "big"))


@dataclass
class _Repo:
    id: int
    full_name: str
    created_at: datetime
    actions: _Scope
    environments: dict[str, _Scope]  # keyed by casefolded name, as GitHub matches environments
    environment_names: dict[str, str]  # casefolded -> name as created
    environment_ids: dict[str, int]


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


# -- faults -----------------------------------------------------------------------------------------------


@dataclass
class _Fault:
    remaining: int
    status: int
    method: str | None
    reset_in_s: float | None  # set for rate limiting


class Faults:
    """Failures the stand-in serves before answering normally, consumed in the order they were queued.

    ``method`` limits a fault to one HTTP verb (e.g. only the PUT), so a test can fail the write while the
    reads around it still work.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Fault] = []

    def fail_next(self, n: int = 1, *, status: int = 502, method: str | None = None) -> None:
        """Answer the next ``n`` (matching) requests with ``status`` and GitHub's error JSON."""
        if not 400 <= status <= 599:
            raise ConfigError(f"stand-in fault status {status} is not an HTTP error. Fix: pass 400..599 (e.g. 502).")
        self._push(_Fault(_positive(n), status, _verb(method), None))

    def rate_limit_next(self, n: int = 1, *, reset_in_s: float = 1.0, method: str | None = None) -> None:
        """Answer the next ``n`` (matching) requests with GitHub's primary rate-limit 403."""
        if reset_in_s < 0:
            raise ConfigError(f"stand-in rate limit reset_in_s={reset_in_s} is negative. Fix: pass seconds >= 0.")
        self._push(_Fault(_positive(n), 403, _verb(method), reset_in_s))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def apply(self, spec: dict[str, Any]) -> None:
        """The ``POST /_standin/faults`` form: ``{"fail_next": n, "status": 502, "method": "PUT"}``,
        ``{"rate_limit_next": n, "reset_in_s": 1}`` or ``{"clear": true}``."""
        method = spec.get("method")
        if spec.get("clear"):
            self.clear()
        elif "fail_next" in spec:
            self.fail_next(int(spec["fail_next"]), status=int(spec.get("status", 502)), method=method)
        elif "rate_limit_next" in spec:
            self.rate_limit_next(
                int(spec["rate_limit_next"]), reset_in_s=float(spec.get("reset_in_s", 1.0)), method=method
            )
        else:
            raise ConfigError(
                f"stand-in faults body {sorted(spec)} names no fault. "
                'Fix: send {"fail_next": N, "status": 502}, {"rate_limit_next": N, "reset_in_s": 1} '
                'or {"clear": true}.'
            )

    def _push(self, fault: _Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def _take(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._queue:
                if fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._queue.remove(fault)
                    return fault
        return None


def _positive(n: int) -> int:
    if n < 1:
        raise ConfigError(f"stand-in fault count {n} must be at least 1. Fix: pass n >= 1.")
    return n


def _verb(method: str | None) -> str | None:
    return method.upper() if method else None


# -- the server -------------------------------------------------------------------------------------------


class GitHubStandIn:
    """GitHub's Actions-secrets REST API on loopback, for the repositories and environments given."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str = DEFAULT_TOKEN,
        repos: Iterable[str] = (DEFAULT_REPO,),
        environments: Iterable[str] = DEFAULT_ENVIRONMENTS,
    ) -> None:
        if not token:
            raise ConfigError("GitHub stand-in: empty token. Fix: pass token=... or set MNOPS_GITHUB_TOKEN.")
        self.host, self.port, self._token = host, port, token
        self.faults = Faults()
        self._lock = threading.Lock()
        self._log: list[tuple[str, str, int]] = []
        self._calls = 0
        self._repos: dict[str, _Repo] = {}
        ids = itertools.count(700_000_001)
        env_names = list(environments)
        for full_name in repos:
            if full_name.count("/") != 1:
                raise ConfigError(
                    f"GitHub stand-in: repository {full_name!r} is not 'owner/name'. Fix: pass owner/name."
                )
            self._repos[full_name.casefold()] = _Repo(
                id=next(ids),
                full_name=full_name,
                created_at=_now(),
                actions=_Scope(PrivateKey.generate()),
                environments={e.casefold(): _Scope(PrivateKey.generate()) for e in env_names},
                environment_names={e.casefold(): e for e in env_names},
                environment_ids={e.casefold(): next(ids) for e in env_names},
            )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"GitHubStandIn(url={self.url if self._server else None!r}, repos={sorted(self._repos)})"

    # -- lifecycle --
    @property
    def url(self) -> str:
        if self._server is None:
            raise ConfigError("GitHub stand-in is not started, so it has no URL. Fix: call start() first.")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> GitHubStandIn:
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.standin = self  # type: ignore[attr-defined]  # the handler's way back to the state
        self._server = server
        # A short poll interval keeps stop() (and so every test's teardown) near-instant.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="github-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> GitHubStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test inspection and seeding --
    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every API request served, in order; no bodies, no query strings."""
        with self._lock:
            return list(self._log)

    def decrypted(self, repo: str, name: str, environment: str | None = None) -> str | None:
        """The plaintext the stand-in opened for secret ``name``, or None when it does not exist."""
        with self._lock:
            secret = self._scope(repo, environment).secrets.get(name.upper())
            return secret.plaintext if secret else None

    def seed_secret(
        self, repo: str, name: str, value: str, *, environment: str | None = None, updated_at: datetime | None = None
    ) -> None:
        """Store a secret as if it had been written at ``updated_at`` (default now), e.g. an overdue one."""
        ts = (updated_at or _now()).astimezone(UTC).replace(microsecond=0)
        with self._lock:
            self._scope(repo, environment).secrets[name.upper()] = _Secret(ts, ts, value)

    def _scope(self, repo: str, environment: str | None) -> _Scope:
        known = self._repos.get(repo.casefold())
        if known is None:
            raise ConfigError(f"GitHub stand-in has no repository {repo!r}; it serves {sorted(self._repos)}.")
        if environment is None:
            return known.actions
        scope = known.environments.get(environment.casefold())
        if scope is None:
            raise ConfigError(
                f"GitHub stand-in repository {repo!r} has no environment {environment!r}; "
                f"it has {sorted(known.environment_names.values())}."
            )
        return scope

    # -- request handling (called from the handler threads) --
    def _serve(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes, base: str
    ) -> _Reply:
        fault = self.faults._take(method)
        if fault is not None:
            reply = self._fault_reply(fault)
        else:
            try:
                self._authenticate(headers.get("Authorization"))
                with self._lock:
                    reply = self._route(method, path, query, body, base)
            except _HttpError as exc:
                reply = _Reply(
                    exc.status, {"message": exc.message, "documentation_url": DOCS_URL, "status": str(exc.status)}
                )
        with self._lock:
            self._calls += 1
            self._log.append((method, path, reply.status))
            if fault is None or fault.reset_in_s is None:
                reply.headers.update(_rate_headers(RATE_LIMIT - self._calls % RATE_LIMIT))
        return reply

    def _fault_reply(self, fault: _Fault) -> _Reply:
        if fault.reset_in_s is None:
            message = "Server Error" if fault.status >= 500 else "Injected fault"
            return _Reply(
                fault.status, {"message": message, "documentation_url": DOCS_URL, "status": str(fault.status)}
            )
        headers = _rate_headers(0, reset_in_s=fault.reset_in_s)
        headers["Retry-After"] = str(math.ceil(fault.reset_in_s))
        return _Reply(
            403,
            {
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": f"{DOCS_URL}/overview/rate-limits-for-the-rest-api",
                "status": "403",
            },
            headers,
        )

    def _authenticate(self, header: str | None) -> None:
        if not header:
            raise _HttpError(401, "Requires authentication")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or credential.strip() != self._token:
            raise _HttpError(401, "Bad credentials")

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes, base: str) -> _Reply:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) < 3 or parts[0] != "repos":
            raise _HttpError(404, "Not Found")
        repo = self._repos.get(f"{parts[1]}/{parts[2]}".casefold())
        if repo is None:
            raise _HttpError(404, "Not Found")
        rest = parts[3:]
        if not rest and method == "GET":
            return _Reply(200, _repo_json(repo, base))
        if rest[:1] == ["environments"] and len(rest) >= 2:
            key = rest[1].casefold()
            if key not in repo.environments:
                raise _HttpError(404, "Not Found")
            if len(rest) == 2 and method == "GET":
                return _Reply(200, _environment_json(repo, key, base))
            scope, rest = repo.environments[key], rest[2:]
        elif rest[:1] == ["actions"]:
            scope, rest = repo.actions, rest[1:]
        else:
            raise _HttpError(404, "Not Found")
        if rest[:1] != ["secrets"] or len(rest) > 2:
            raise _HttpError(404, "Not Found")
        if len(rest) == 1 and method == "GET":
            return _list_secrets(scope, query, f"{base}{path}")
        if rest[1:] == ["public-key"] and method == "GET":
            return _Reply(200, {"key_id": scope.key_id, "key": scope.public_key})
        if len(rest) == 2:
            name = rest[1]
            if method == "GET":
                return _Reply(200, _secret_json(name.upper(), _existing(scope, name)))
            if method == "PUT":
                return _put_secret(scope, name, body)
            if method == "DELETE":
                _existing(scope, name)
                del scope.secrets[name.upper()]
                return _Reply(204)
        raise _HttpError(404, "Not Found")


def _existing(scope: _Scope, name: str) -> _Secret:
    secret = scope.secrets.get(name.upper())  # GitHub stores secret names upper-cased
    if secret is None:
        raise _HttpError(404, "Not Found")
    return secret


def _put_secret(scope: _Scope, name: str, body: bytes) -> _Reply:
    if not SECRET_NAME.fullmatch(name):
        raise _HttpError(
            422,
            "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) "
            "or underscores (_), must not start with a number or the GITHUB_ prefix.",
        )
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        raise _HttpError(400, "Problems parsing JSON") from None
    if not isinstance(payload, dict) or not payload.get("encrypted_value") or not payload.get("key_id"):
        raise _HttpError(422, "Invalid request. encrypted_value and key_id are required.")
    if str(payload["key_id"]) != scope.key_id:
        raise _HttpError(422, "Bad request: key_id does not match this scope's current public key.")
    try:
        sealed = base64.b64decode(payload["encrypted_value"], validate=True)
        value = SealedBox(scope.private_key).decrypt(sealed).decode()
    except (CryptoError, ValueError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise _HttpError(422, "Bad request: encrypted_value is not a sealed box for this key.") from None
    now = _now()
    existing = scope.secrets.get(name.upper())
    if existing is None:
        scope.secrets[name.upper()] = _Secret(now, now, value)
        return _Reply(201, {})
    existing.updated_at, existing.plaintext = now, value
    return _Reply(204)


def _list_secrets(scope: _Scope, query: dict[str, list[str]], url: str) -> _Reply:
    try:
        per_page = min(int(query.get("per_page", [DEFAULT_PER_PAGE])[0]), MAX_PER_PAGE)
        page = int(query.get("page", ["1"])[0])
    except ValueError:
        raise _HttpError(422, "per_page and page must be integers.") from None
    if per_page < 1 or page < 1:
        raise _HttpError(422, "per_page and page must be at least 1.")
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
    return _Reply(200, body, headers)


def _secret_json(name: str, secret: _Secret) -> dict[str, str]:
    return {"name": name, "created_at": _iso(secret.created_at), "updated_at": _iso(secret.updated_at)}


def _repo_json(repo: _Repo, base: str) -> dict[str, Any]:
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


def _environment_json(repo: _Repo, key: str, base: str) -> dict[str, Any]:
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


def _rate_headers(remaining: int, *, reset_in_s: float = 3600.0) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Used": str(RATE_LIMIT - remaining),
        "X-RateLimit-Resource": "core",
        "X-RateLimit-Reset": str(math.ceil(time.time() + reset_in_s)),
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "GitHubStandIn/1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        standin: GitHubStandIn = self.server.standin  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path == "/healthz" and method == "GET":
            self._send(_Reply(200, {"status": "ok"}))
        elif url.path == "/_standin/faults" and method == "POST":
            self._send(self._set_faults(standin, body))
        else:
            # URLs in answers point back where the client connected; PyGithub follows them for later calls.
            host = self.headers.get("Host")
            base = f"http://{host}" if host else standin.url
            self._send(standin._serve(method, url.path, parse_qs(url.query), self.headers, body, base))

    @staticmethod
    def _set_faults(standin: GitHubStandIn, body: bytes) -> _Reply:
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ConfigError("stand-in faults body is not a JSON object. Fix: send a JSON object.")
            standin.faults.apply(spec)
        except (ValueError, ConfigError) as exc:
            return _Reply(400, {"message": str(exc)})
        return _Reply(204)

    def _send(self, reply: _Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries method, path and status only: never a body, so never a secret value.
        log.info("%s - %s", self.address_string(), format % args)


# -- sandbox process ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_mnops.standins.github",
        description="Serve the GitHub secrets API stand-in for the sandbox.",
    )
    parser.add_argument("--state-dir", type=Path, required=True, help="the sandbox state directory")
    args = parser.parse_args(argv)
    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        print(
            f"github stand-in: no sandbox settings in {args.state_dir}/sandbox.json. "
            "Fix: start it through `mnops sandbox up`, or pass the right --state-dir.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    standin = GitHubStandIn(port=settings.ports.github, token=os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN)
    try:
        standin.start()
    except OSError as exc:
        print(
            f"github stand-in: cannot listen on {standin.host}:{standin.port}: {exc}. "
            "Fix: stop what holds the port, or choose another sandbox port base.",
            file=sys.stderr,
        )
        return 1
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    log.info("GitHub stand-in serving %s for %s", standin.url, DEFAULT_REPO)
    stopped.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
