"""The GitHub stand-in itself: its repositories, faults and request log, its lifecycle, and test inspection.

Each request is answered in order: a queued fault, else authentication and the route (under the lock), then
the request log and the rate-limit headers.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

from pytest_mnops.errors import ConfigError
from pytest_mnops.names import SANDBOX_GITHUB_REPO as DEFAULT_REPO
from pytest_mnops.names import SANDBOX_GITHUB_TOKEN as DEFAULT_TOKEN
from pytest_mnops.standins.github.api import (
    DOCS_URL,
    RATE_LIMIT,
    HttpError,
    Reply,
    authenticate,
    fault_reply,
    rate_headers,
    route,
)
from pytest_mnops.standins.github.faults import Faults
from pytest_mnops.standins.github.handler import Handler
from pytest_mnops.standins.github.state import DEFAULT_ENVIRONMENTS, Repo, Scope, Secret, new_repo, now


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
        self._repos: dict[str, Repo] = {}
        ids = itertools.count(700_000_001)
        env_names = list(environments)
        for full_name in repos:
            if full_name.count("/") != 1:
                raise ConfigError(
                    f"GitHub stand-in: repository {full_name!r} is not 'owner/name'. Fix: pass owner/name."
                )
            self._repos[full_name.casefold()] = new_repo(full_name, env_names, ids)
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
        server = ThreadingHTTPServer((self.host, self.port), Handler)
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
        ts = (updated_at or now()).astimezone(UTC).replace(microsecond=0)
        with self._lock:
            self._scope(repo, environment).secrets[name.upper()] = Secret(ts, ts, value)

    def _scope(self, repo: str, environment: str | None) -> Scope:
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
    def serve(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes, base: str) -> Reply:
        fault = self.faults.take(method)
        if fault is not None:
            reply = fault_reply(fault)
        else:
            try:
                authenticate(headers.get("Authorization"), self._token)
                with self._lock:
                    reply = route(self._repos, method, path, query, body, base)
            except HttpError as exc:
                reply = Reply(
                    exc.status, {"message": exc.message, "documentation_url": DOCS_URL, "status": str(exc.status)}
                )
        with self._lock:
            self._calls += 1
            self._log.append((method, path, reply.status))
            if fault is None or fault.reset_in_s is None:
                reply.headers.update(rate_headers(RATE_LIMIT - self._calls % RATE_LIMIT))
        return reply
