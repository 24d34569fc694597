"""secret-rotation: the profile's credential rotated in GitHub and synced to its Secret, then every consumer
accepting the new value and rejecting the old."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from pytest_mnops.chaos.activities._shared import (
    Configuration,
    _handoff,
    _kube,
    _needed,
    _profile,
    _rollout,
    budget,
)
from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import resources
from pytest_mnops.names import SANDBOX_GITHUB_TOKEN, github_token


def _github_token(configuration: Configuration) -> str | None:
    return github_token() or (SANDBOX_GITHUB_TOKEN if configuration.get("sandbox") else None)


def rotate_app_secret(configuration: Configuration) -> dict[str, Any]:
    """Rotate the profile's credential in GitHub (PyGithub), sync it to its Kubernetes Secret, restart consumers.

    ``secret.github.name``/``environment`` name the GitHub Actions secret, ``secret.kubernetes.name``/``key``
    the Secret the app reads; the repository is --mnops-github-repo (no fallback).
    """
    from pytest_mnops.secrets.rotation import SecretRotator, sync_to_kubernetes
    from pytest_mnops.secrets.values import SecretValue

    profile = _profile(configuration)
    secret_name = str(profile.need("secret.kubernetes.name", "secret-rotation"))
    key = str(profile.need("secret.kubernetes.key", "secret-rotation"))
    github_secret = str(profile.need("secret.github.name", "secret-rotation"))
    environment = profile.get("secret.github.environment")
    kube, namespace = _kube(configuration), configuration["namespace"]
    current = kube.find(resources.SECRET, secret_name, namespace=namespace)
    encoded = ((current or {}).get("data") or {}).get(key)
    previous = SecretValue(base64.b64decode(encoded).decode()) if encoded else None
    with SecretRotator(
        repo=_needed(configuration, "github_repo", "--mnops-github-repo"),
        environment=environment,
        token=_github_token(configuration),
        base_url=configuration["github_url"],
        audit_log=Path(configuration.get("audit_log", ".mnops/secrets-audit.jsonl")),
    ) as rotator:
        result = rotator.rotate(github_secret)
    assert result.value is not None
    sync_to_kubernetes(kube, namespace=namespace, secret_name=secret_name, key=key, value=result.value)
    # The values go to the verification probe through the run's handoff, never through outputs or logs.
    _handoff(configuration).update(old=previous, new=result.value)
    _rollout(configuration).restart()
    return {"secret": f"{namespace}/{secret_name}", "github_secret": github_secret, "attempts": result.attempts}


def _never_issued() -> Any:
    from pytest_mnops.secrets.values import SecretValue

    return SecretValue(secrets.token_urlsafe(32))


def _consumer_answers(
    consumer: dict[str, Any], value: Any, configuration: Configuration, samples: int
) -> set[int] | set[str]:
    """What the app's consumers answer to ``value``: HTTP codes, or ``accepted``/``rejected`` from a command."""
    if consumer.get("command"):
        env = {**os.environ, "MNOPS_SECRET_VALUE": value.reveal()}
        runs = [subprocess.run(consumer["command"], env=env, capture_output=True, timeout=60) for _ in range(samples)]
        return {"accepted" if run.returncode == 0 else "rejected" for run in runs}
    http = consumer["http"]
    url = _needed(configuration, "app_url", "--mnops-app-url") + str(http.get("path", "/"))
    header = str(http.get("header", "Authorization"))
    headers = {header: str(http.get("value", "{value}")).replace("{value}", value.reveal())}
    return {requests.get(url, headers=headers, timeout=10).status_code for _ in range(samples)}


def verify_rotated_credentials(
    configuration: Configuration, requests_per_check: int = 20, timeout_s: float = 600
) -> dict[str, Any]:
    """Consumers use the new credential and reject the old one (profile ``secret.consumer``), every sample."""
    held = _handoff(configuration)
    if "new" not in held:
        raise ClusterError("no rotated credential was handed over; did the rotate-app-secret action run?")
    consumer = _profile(configuration).need("secret.consumer", "secret-rotation's consumer check")
    accept: set[int] | set[str]
    reject: set[int] | set[str]
    if "command" in consumer:
        accept, reject = {"accepted"}, {"rejected"}
    else:
        http = consumer.get("http") or {}
        accept = {int(c) for c in http.get("accept") or [200]}
        reject = {int(c) for c in http.get("reject") or [401, 403]}
    # Every consumer restarted and available, not just a Healthy status: sampled requests could miss a pod
    # not yet replaced, and the steady state after the method would catch the last one still starting.
    _rollout(configuration).wait_settled(timeout_s=budget(configuration, timeout_s))
    new = _consumer_answers(consumer, held["new"], configuration, requests_per_check)
    if not new <= accept:
        raise AssertionError(f"the new credential was not accepted by every consumer (answers: {sorted(new)})")
    # A fresh namespace had no credential before the rotation: then a value never issued must be rejected,
    # else "old rejected" would be assumed for an app that accepts anything.
    old_value = held["old"] if held.get("old") is not None else _never_issued()
    old = _consumer_answers(consumer, old_value, configuration, requests_per_check)
    if not old <= reject:
        raise AssertionError(f"the old credential is still accepted (answers: {sorted(old)})")
    return {"new_accepted": True, "old_rejected": True, "recovered_at": time.time()}
