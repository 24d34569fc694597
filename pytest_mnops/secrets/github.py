"""The only module that imports PyGithub: one repository's, or one environment's, Actions secrets.

A ``SecretsApi`` is bound to its scope when built, so no call on it can reach another environment. Every
call returns the HTTP status GitHub answered (for the audit log) and every failure becomes a
``GitHubCallFailed`` saying whether a retry can help and how long GitHub asked to wait. Retrying is the
rotator's job: PyGithub's own retry is off so that each attempt is audited.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import requests
from github import Auth, Github, GithubException, UnknownObjectException
from github.Environment import Environment
from github.Repository import Repository

from pytest_mnops.errors import ConfigError, SecretsError
from pytest_mnops.names import DEFAULT_GITHUB_URL, GITHUB_TOKEN_ENV, github_token

if TYPE_CHECKING:
    from pytest_mnops.secrets.values import SecretValue

T = TypeVar("T")
URL_ENV = "MNOPS_GITHUB_URL"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
# GitHub's rules: letters, digits and underscores, not starting with a digit or the reserved GITHUB_ prefix.
SECRET_NAME = re.compile(r"(?!github_)[a-z_][a-z0-9_]*", re.IGNORECASE)
TOKEN_FIX = (
    "a classic token with the `repo` scope, or a fine-grained token with repository permissions "
    "'Secrets: Read and write' and 'Environments: Read'"
)


def token_from_env() -> str:
    token = github_token()
    if token:
        return token
    raise ConfigError(
        f"no GitHub token: neither {' nor '.join(GITHUB_TOKEN_ENV)} is set. Fix: export GITHUB_TOKEN with "
        f"{TOKEN_FIX}; for the sandbox's GitHub stand-in use its token (docs/github-secrets-setup-guide.md)."
    )


def base_url_from_env() -> str:
    return os.environ.get(URL_ENV, "").strip() or DEFAULT_GITHUB_URL


def check_repo_name(repo: str) -> None:
    if not REPO_NAME.fullmatch(repo):
        raise ConfigError(
            f"repository {repo!r} is not 'owner/name'. Fix: pass --repo owner/name, "
            "e.g. machinenativeops/machine-native-ops."
        )


def check_secret_name(name: str) -> None:
    if not SECRET_NAME.fullmatch(name):
        raise ConfigError(
            f"secret name {name!r} is not valid on GitHub. Fix: use letters, digits and underscores only, "
            "not starting with a digit or with GITHUB_ (e.g. API_TOKEN)."
        )


@dataclass(frozen=True)
class SecretInfo:
    """What GitHub reveals about a secret: never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Reply(Generic[T]):
    status: int
    data: T


class GitHubCallFailed(SecretsError):
    """One API call failed; ``retryable`` and ``wait_s`` (GitHub's Retry-After or reset) steer the retries."""

    def __init__(self, message: str, *, status: int | None, retryable: bool, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.status, self.retryable, self.wait_s = status, retryable, wait_s


class SecretsApi:
    """Actions secrets of ``repo`` (``environment=None``) or of one of its environments, through PyGithub."""

    def __init__(self, *, repo: str, environment: str | None, token: str, base_url: str, timeout_s: int = 15) -> None:
        check_repo_name(repo)
        if not token:
            raise ConfigError(f"empty GitHub token for repository {repo}. Fix: export GITHUB_TOKEN with {TOKEN_FIX}.")
        self.repo, self.environment, self.base_url = repo, environment, base_url.rstrip("/")
        # PyGithub spaces requests (0.25 s, writes 1 s) to stay clear of github.com's secondary rate limits;
        # a loopback server (the sandbox's stand-in) has none, so tests and drills need not wait.
        pacing: dict[str, Any] = {}
        if urlsplit(self.base_url).hostname in LOOPBACK_HOSTS:
            pacing = {"seconds_between_requests": None, "seconds_between_writes": None}
        self._gh = Github(base_url=self.base_url, auth=Auth.Token(token), retry=None, timeout=timeout_s, **pacing)
        self._target: Repository | Environment | None = None

    @property
    def where(self) -> str:
        if self.environment is None:
            return f"repository {self.repo}"
        return f"environment {self.environment!r} of repository {self.repo}"

    def close(self) -> None:
        self._gh.close()

    # -- calls ------------------------------------------------------------------------------------------
    def get(self, name: str) -> Reply[SecretInfo | None]:
        target = self._scope()
        with self._translated(f"GET secret {name} in {self.where}"):
            try:
                secret = target.get_secret(name)  # not lazy: this GET happens here
            except UnknownObjectException:
                return Reply(404, None)
            # PyGithub raises for every status >= 400, and GitHub answers a found secret with 200.
            return Reply(200, SecretInfo(secret.name, secret.created_at, secret.updated_at))

    def list(self) -> Reply[list[SecretInfo]]:
        target = self._scope()
        with self._translated(f"GET secrets of {self.where}"):
            return Reply(200, [SecretInfo(s.name, s.created_at, s.updated_at) for s in target.get_secrets()])

    def public_key_id(self) -> Reply[str]:
        target = self._scope()
        with self._translated(f"GET public key of {self.where}"):
            return Reply(200, str(target.get_public_key().key_id))

    def put(self, name: str, value: SecretValue) -> Reply[None]:
        """Seal ``value`` for the scope's public key and PUT it: 201 created, 204 updated.

        Same request as PyGithub's ``create_secret``, sent through its requester so the status GitHub
        answered is kept for the audit log (``create_secret`` drops it).
        """
        target = self._scope()
        what = f"PUT secret {name} in {self.where}"
        base = f"{target.url}/actions/secrets" if isinstance(target, Repository) else f"{target.url}/secrets"
        with self._translated(what):
            key = target.get_public_key()
            status, headers, output = target.requester.requestJson(
                "PUT",
                f"{base}/{quote(name, safe='')}",
                input={"encrypted_value": key.encrypt(value.reveal()), "key_id": key.key_id},
            )
        if status >= 300:
            raise _failure(what, status, headers, _message(output))
        return Reply(status, None)

    # -- plumbing ---------------------------------------------------------------------------------------
    def _scope(self) -> Repository | Environment:
        """The repository (then environment) object; PyGithub is not lazy, so each is a GET, done once."""
        if self._target is None:
            missing = (
                f"repository {self.repo} does not exist or the token cannot see it. Fix: check --repo "
                f"(owner/name) and give the token access to it ({TOKEN_FIX})."
            )
            with self._translated(f"GET repository {self.repo}", missing=missing):
                repo = self._gh.get_repo(self.repo)
            if self.environment is None:
                self._target = repo
            else:
                missing = (
                    f"environment {self.environment!r} does not exist in repository {self.repo}. "
                    "Fix: create it under Settings > Environments, or correct --environment."
                )
                what = f"GET environment {self.environment!r} of {self.repo}"
                with self._translated(what, missing=missing):
                    self._target = repo.get_environment(self.environment)
        return self._target

    @contextmanager
    def _translated(self, what: str, *, missing: str | None = None) -> Iterator[None]:
        try:
            yield
        except GithubException as exc:
            raise _failure(what, exc.status, exc.headers or {}, _message(exc.data), missing=missing) from None
        except requests.RequestException as exc:
            raise GitHubCallFailed(
                f"{what}: no answer from {self.base_url} ({type(exc).__name__}: {exc}). Fix: check "
                f"{URL_ENV}, the network or proxy; for the sandbox, that `mnops sandbox status` shows it up.",
                status=None,
                retryable=True,
            ) from None


def _message(data: Any) -> str:
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return data[:200]
    if isinstance(data, dict):
        return str(data.get("message", ""))
    return ""


def _failure(
    what: str, status: int, headers: dict[str, Any], message: str, *, missing: str | None = None
) -> GitHubCallFailed:
    headers = {str(k).lower(): str(v) for k, v in headers.items()}
    said = f"GitHub answered {status} {message!r}".rstrip()
    wait = _advised_wait(headers)
    rate_limited = status == 429 or (
        status == 403 and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
    )
    if rate_limited:
        text = f"{what}: rate limited ({said}). Fix: wait for the reset, or spread rotations over time."
    elif status >= 500:
        text = f"{what}: {said}, a failure on GitHub's side. Fix: retry later (https://www.githubstatus.com)."
    elif status == 401:
        text = f"{what}: {said}, the token was rejected. Fix: set GITHUB_TOKEN to a valid, unexpired token."
    elif status == 403:
        text = f"{what}: {said}, the token may not do this. Fix: use {TOKEN_FIX}, held by a repository admin."
    elif status == 404:
        text = f"{what}: {said}; " + (missing or "not found. Fix: check repository, environment and name.")
    elif status == 422:
        text = (
            f"{what}: {said}, GitHub rejected the request. Fix: check the secret name; a key_id mismatch "
            "means the public key changed mid-call, so run the rotation again."
        )
    else:
        text = f"{what}: {said}."
    return GitHubCallFailed(text, status=status, retryable=rate_limited or status >= 500, wait_s=wait)


def _advised_wait(headers: dict[str, str]) -> float | None:
    """Seconds GitHub asked us to wait: Retry-After first, then the primary rate limit's reset time."""
    retry_after = headers.get("retry-after", "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    reset = headers.get("x-ratelimit-reset", "").strip()
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(0.0, int(reset) - time.time())
    return None
