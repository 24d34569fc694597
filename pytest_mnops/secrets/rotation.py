"""Rotate GitHub Actions secrets: generate once, write once, verify, audit each attempt, never show the value.

The order of a rotation is what keeps it safe:

1. read the secret (its ``updated_at``; GitHub never reveals values);
2. generate the new value and keep it in a ``SecretValue`` the caller receives, masked in every repr;
3. PUT it, retrying 5xx and rate limits with the *same* value, so an ambiguous failure cannot leave an
   unknown value in effect; a PUT is atomic, so on failure GitHub still holds the previous value;
4. re-read and require ``updated_at`` to have advanced.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pytest_mnops.errors import ConfigError, GuardViolation, SecretsError
from pytest_mnops.secrets.audit import DEFAULT_AUDIT_LOG, AuditLog
from pytest_mnops.secrets.github import (
    GitHubCallFailed,
    Reply,
    SecretInfo,
    SecretsApi,
    base_url_from_env,
    check_secret_name,
    token_from_env,
)
from pytest_mnops.secrets.values import SecretValue, generator_named

if TYPE_CHECKING:
    from pytest_mnops.k8s import Kube

T = TypeVar("T")
DEFAULT_MAX_AGE_DAYS = 30
K8S_KEY = re.compile(r"[-._a-zA-Z0-9]+")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: exponential backoff for 5xx and network errors; GitHub's own wait for rate limits."""

    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_wait_s: float = 60.0  # a longer rate-limit wait fails fast and says when to come back

    def wait(self, attempt: int, failure: GitHubCallFailed) -> tuple[float | None, str]:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up; and why."""
        if not failure.retryable:
            return None, "not retryable"
        if attempt >= self.attempts:
            return None, f"gave up after {attempt} attempts"
        if failure.wait_s is not None:  # retrying before GitHub's Retry-After/reset only burns attempts
            if failure.wait_s > self.max_wait_s:
                until = datetime.now(UTC) + timedelta(seconds=failure.wait_s)
                return None, (
                    f"GitHub asks to wait {failure.wait_s:.0f}s, more than the "
                    f"{self.max_wait_s:.0f}s cap; run again after {until:%H:%M:%S} UTC"
                )
            return failure.wait_s, f"retrying in {failure.wait_s:.2f}s as GitHub asked"
        delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return delay, f"retrying in {delay:.2f}s"


@dataclass(frozen=True)
class RotationResult:
    repo: str
    environment: str | None
    name: str
    created: bool  # the secret did not exist before
    dry_run: bool
    value: SecretValue | None  # the new value; None for a dry run
    previous_updated_at: datetime | None
    updated_at: datetime | None  # the verified new updated_at; None for a dry run
    attempts: int  # PUT attempts; 0 for a dry run


@dataclass(frozen=True)
class SecretAge:
    name: str
    updated_at: datetime
    age: timedelta
    due: bool

    @property
    def age_days(self) -> float:
        return self.age.total_seconds() / 86400


class RotationFailed(SecretsError):
    """The rotation did not complete. ``value`` is the generated value, ``applied`` whether GitHub holds it
    (False: the previous value is confirmed in effect; True: the new one is; None: unknown)."""

    def __init__(self, message: str, *, value: SecretValue, applied: bool | None) -> None:
        super().__init__(message)
        self.value, self.applied = value, applied


class SecretRotator:
    """Rotates secrets of one repository, or of exactly one of its environments, and of nothing else."""

    def __init__(
        self,
        *,
        repo: str,
        environment: str | None = None,
        token: str | None = None,
        base_url: str | None = None,
        audit_log: AuditLog | Path | str = DEFAULT_AUDIT_LOG,
        dry_run: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        if environment is not None and not environment.strip():
            raise ConfigError(
                f"empty environment name for repository {repo}. Fix: pass --environment NAME, "
                "or leave it out for repository-level secrets."
            )
        self._api = SecretsApi(
            repo=repo,
            environment=environment,
            token=token if token is not None else token_from_env(),
            base_url=base_url or base_url_from_env(),
        )
        self.repo, self.environment, self.dry_run = repo, environment, dry_run
        self.retry = retry or RetryPolicy()
        self.audit = audit_log if isinstance(audit_log, AuditLog) else AuditLog(audit_log)

    def __repr__(self) -> str:
        return f"SecretRotator({self.where}, dry_run={self.dry_run})"

    @property
    def where(self) -> str:
        return self._api.where

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> SecretRotator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- policy -----------------------------------------------------------------------------------------
    def check_age(self, max_age_days: float = DEFAULT_MAX_AGE_DAYS, *, now: datetime | None = None) -> list[SecretAge]:
        """Every secret in scope, with ``due`` set when its ``updated_at`` is older than ``max_age_days``."""
        if max_age_days <= 0:
            raise ConfigError(
                f"max age {max_age_days} days for {self.where} is not positive. "
                "Fix: pass --max-age-days 30 (the policy) or another positive number."
            )
        reply, attempt = self._call("check", "*", self._api.list, outcome=lambda r: f"listed {len(r.data)} secrets")
        now = now or datetime.now(UTC)
        ages = []
        for info in reply.data:
            age = now - info.updated_at
            due = age > timedelta(days=max_age_days)
            ages.append(SecretAge(info.name, info.updated_at, age, due))
            self._record(
                "check",
                info.name,
                attempt,
                "due" if due else "current",
                reply.status,
                detail=f"updated {age.days} days ago; policy {max_age_days:g} days",
            )
        return ages

    # -- rotation ---------------------------------------------------------------------------------------
    def rotate(
        self, name: str, *, generator: str = "token_urlsafe", length: int = 32, environment: str | None = None
    ) -> RotationResult:
        """Rotate ``name`` in this rotator's scope; ``environment``, when given, must be that scope.

        Long on purpose: check, generate once, write, verify, audit is one sequence whose order is the guarantee
        (a value is never generated twice nor shown), so it reads top to bottom in one place."""
        self._guard(name, environment)
        check_secret_name(name)
        make = generator_named(generator)
        make.check(length)
        before = self._call(
            "check", name, lambda: self._api.get(name), outcome=lambda r: "absent" if r.data is None else "found"
        )[0].data
        previous = before.updated_at if before else None
        if self.dry_run:
            # Reading the public key proves the token could write, without writing.
            self._call(
                "dry-run",
                name,
                self._api.public_key_id,
                outcome=lambda _: "would-create" if before is None else "would-update",
            )
            return RotationResult(
                self.repo,
                self.environment,
                name,
                created=before is None,
                dry_run=True,
                value=None,
                previous_updated_at=previous,
                updated_at=None,
                attempts=0,
            )
        value = make(length)
        _wait_for_next_second(before)
        try:
            put, attempts = self._call(
                "rotate",
                name,
                lambda: self._api.put(name, value),
                value=value,
                outcome=lambda r: "created" if r.status == 201 else "updated",
            )
        except GitHubCallFailed as exc:
            raise self._write_failed(name, value, before, exc) from None
        try:
            after = self._call(
                "verify",
                name,
                lambda: self._api.get(name),
                value=value,
                outcome=lambda r: "verified" if _advanced(before, r.data) else "not-advanced",
            )[0].data
        except GitHubCallFailed as exc:
            raise RotationFailed(
                f"secret {name} in {self.where}: GitHub accepted the new value (HTTP {put.status}), so it "
                f"is in effect, but re-reading it failed: {exc} The new value is attached to this error "
                "(.value); apply it to consumers, then check with `mnops secrets check-age`.",
                value=value,
                applied=True,
            ) from None
        if after is None or not _advanced(before, after):
            seen = after.updated_at if after else "no secret"
            raise RotationFailed(
                f"secret {name} in {self.where}: GitHub accepted the new value (HTTP {put.status}) but "
                f"updated_at did not advance ({previous} -> {seen}): another writer or a clock problem. The "
                "new value is attached to this error (.value). Fix: check who else writes the secret, then "
                "rotate again.",
                value=value,
                applied=None,
            )
        return RotationResult(
            self.repo,
            self.environment,
            name,
            created=put.status == 201,
            dry_run=False,
            value=value,
            previous_updated_at=previous,
            updated_at=after.updated_at,
            attempts=attempts,
        )

    def _guard(self, name: str, environment: str | None) -> None:
        if environment is None:
            return
        if self.environment is None or environment.casefold() != self.environment.casefold():
            raise GuardViolation(
                f"secret {name}: this rotator is bound to {self.where} and refuses to write to environment "
                f"{environment!r}. Fix: rotate {environment!r} with its own rotator "
                f"(SecretRotator(environment={environment!r}) / --environment {environment}); environments "
                "are kept apart on purpose."
            )

    def _write_failed(
        self, name: str, value: SecretValue, before: SecretInfo | None, exc: GitHubCallFailed
    ) -> RotationFailed:
        """Say what GitHub holds after a failed PUT, confirmed by one re-read where GitHub answers."""
        try:
            now = self._call(
                "verify",
                name,
                lambda: self._api.get(name),
                value=value,
                retry=RetryPolicy(attempts=1),
                outcome=lambda r: "changed" if _advanced(before, r.data) else "unchanged",
            )[0].data
        except GitHubCallFailed:
            state, applied = (
                (
                    "The previous value remains in effect unless the last attempt reached GitHub "
                    "(a re-read to confirm failed too)"
                ),
                None,
            )
        else:
            if _advanced(before, now):
                state, applied = (
                    (
                        "GitHub's updated_at moved nevertheless, so the new value may be in "
                        "effect; it is attached to this error (.value)"
                    ),
                    None,
                )
            elif before is None:
                state, applied = "The secret still does not exist on GitHub (confirmed by a re-read)", False
            else:
                state, applied = (
                    (
                        "The previous value remains in effect (confirmed: updated_at unchanged at "
                        f"{before.updated_at:%Y-%m-%dT%H:%M:%SZ})"
                    ),
                    False,
                )
        return RotationFailed(
            f"secret {name} in {self.where} was not rotated: {exc} {state}. Fix: address "
            "the cause above and run the rotation again; nothing needs undoing.",
            value=value,
            applied=applied,
        )

    # -- retries and audit -------------------------------------------------------------------------------
    def _call(
        self,
        action: str,
        secret: str,
        call: Callable[[], Reply[T]],
        *,
        outcome: Callable[[Reply[T]], str],
        value: SecretValue | None = None,
        retry: RetryPolicy | None = None,
    ) -> tuple[Reply[T], int]:
        """``call()`` with bounded retries, one audit record per attempt; returns reply and attempt count."""
        policy = retry or self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = call()
            except GitHubCallFailed as exc:
                wait, why = policy.wait(attempt, exc)
                self._record(
                    action,
                    secret,
                    attempt,
                    "failed" if wait is None else "retrying",
                    exc.status,
                    value,
                    detail=f"{exc} ({why})",
                )
                if wait is None:
                    raise GitHubCallFailed(f"{exc} ({why}).", status=exc.status, retryable=False) from None
                time.sleep(wait)
                continue
            self._record(action, secret, attempt, outcome(reply), reply.status, value)
            return reply, attempt

    def _record(
        self,
        action: str,
        secret: str,
        attempt: int,
        outcome: str,
        status: int | None,
        value: SecretValue | None = None,
        *,
        detail: str = "",
    ) -> None:
        self.audit.record(
            repo=self.repo,
            environment=self.environment,
            secret=secret,
            action=action,
            attempt=attempt,
            outcome=outcome,
            http_status=status,
            value_sha256=value.short_hash if value else None,
            detail=detail[:500],
        )


def _advanced(before: SecretInfo | None, after: SecretInfo | None) -> bool:
    if after is None:
        return False
    return before is None or after.updated_at > before.updated_at


def _wait_for_next_second(before: SecretInfo | None) -> None:
    # updated_at has whole-second resolution: a write in the same second as the previous one would look
    # like no write at all to the verification, so let that second pass first.
    if before is None:
        return
    gap = (before.updated_at + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()
    if 0 < gap <= 1:
        time.sleep(gap)


def sync_to_kubernetes(
    kube: Kube, *, namespace: str, secret_name: str, key: str, value: SecretValue, dry_run: bool = False
) -> None:
    """Server-side apply ``key`` of Secret ``namespace/secret_name``; its other keys keep their values.

    ``dry_run`` asks the API server to admit the change without storing it (RBAC, namespace, quotas), so a
    caller can prove the sync will work before rotating on GitHub. Returns nothing: the API's answer
    carries the Secret's data, which must not travel further.
    """
    if not K8S_KEY.fullmatch(key):
        raise ConfigError(
            f"Kubernetes Secret key {key!r} (Secret {namespace}/{secret_name}) is not valid. "
            "Fix: use letters, digits, '-', '_' and '.' only."
        )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": namespace},
            "data": {key: base64.b64encode(value.reveal().encode()).decode()},
        },
        namespace=namespace,
        dry_run=dry_run,
    )
