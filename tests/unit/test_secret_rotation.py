"""Secret rotation through real PyGithub against the in-process GitHub stand-in."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.errors import ConfigError, GuardViolation, SecretsError
from pytest_mnops.secrets import (
    GENERATORS,
    AuditLog,
    RetryPolicy,
    RotationFailed,
    SecretRotator,
    SecretValue,
    short_hash,
    sync_to_kubernetes,
)
from pytest_mnops.standins.github import DEFAULT_REPO, GitHubStandIn

TOKEN = "test-token-2"
REPO = DEFAULT_REPO
OLD = "old-value-that-must-survive"
LONG_AGO = datetime.now(UTC) - timedelta(days=45)
FAST = RetryPolicy(attempts=4, backoff_s=0.01)

Rotators = Callable[..., SecretRotator]


@pytest.fixture
def standin() -> Iterator[GitHubStandIn]:
    with GitHubStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def rotator(standin: GitHubStandIn, audit_path: Path) -> Iterator[Rotators]:
    made: list[SecretRotator] = []

    def make(environment: str | None = None, **kwargs: Any) -> SecretRotator:
        kwargs.setdefault("retry", FAST)
        made.append(
            SecretRotator(
                repo=REPO, environment=environment, token=TOKEN, base_url=standin.url, audit_log=audit_path, **kwargs
            )
        )
        return made[-1]

    yield make
    for each in made:
        each.close()


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_repository_secret_round_trip(standin: GitHubStandIn, rotator: Rotators) -> None:
    result = rotator().rotate("API_TOKEN")
    assert result.created and not result.dry_run and result.attempts == 1
    assert result.value is not None
    assert standin.decrypted(REPO, "API_TOKEN") == result.value.reveal()
    assert len(result.value.reveal()) == 32
    assert standin.decrypted(REPO, "API_TOKEN", environment="staging") is None


def test_environment_secret_round_trip_updates_in_place(standin: GitHubStandIn, rotator: Rotators) -> None:
    standin.seed_secret(REPO, "API_TOKEN", OLD, environment="staging", updated_at=LONG_AGO)
    result = rotator("staging").rotate("API_TOKEN", generator="hex", length=40)
    assert result.value is not None and not result.created
    assert standin.decrypted(REPO, "API_TOKEN", environment="staging") == result.value.reveal()
    assert set(result.value.reveal()) <= set("0123456789abcdef")
    assert result.previous_updated_at is not None and result.updated_at is not None
    assert result.updated_at > result.previous_updated_at  # the verification's evidence
    assert standin.decrypted(REPO, "API_TOKEN") is None  # repository level untouched
    assert ("PUT", f"/repos/{REPO}/environments/staging/secrets/API_TOKEN", 204) in standin.requests


def test_rotating_a_just_written_secret_still_verifies(standin: GitHubStandIn, rotator: Rotators) -> None:
    rotating = rotator()
    first = rotating.rotate("API_TOKEN")
    second = rotating.rotate("API_TOKEN")  # same second as the first write: the rotator lets it pass
    assert first.updated_at is not None and second.updated_at is not None
    assert second.updated_at > first.updated_at
    assert second.value is not None and standin.decrypted(REPO, "API_TOKEN") == second.value.reveal()


def test_5xx_is_retried_with_the_same_value(standin: GitHubStandIn, rotator: Rotators, audit_path: Path) -> None:
    standin.seed_secret(REPO, "API_TOKEN", OLD, updated_at=LONG_AGO)
    standin.faults.fail_next(2, status=502, method="PUT")
    result = rotator().rotate("API_TOKEN")
    assert result.attempts == 3 and result.value is not None
    assert standin.decrypted(REPO, "API_TOKEN") == result.value.reveal()
    rotate = [
        (r["attempt"], r["outcome"], r["http_status"], r["value_sha256"])
        for r in _records(audit_path)
        if r["action"] == "rotate"
    ]
    digest = result.value.short_hash
    assert rotate == [(1, "retrying", 502, digest), (2, "retrying", 502, digest), (3, "updated", 204, digest)]


def test_rate_limit_waits_for_githubs_reset(standin: GitHubStandIn, rotator: Rotators, audit_path: Path) -> None:
    standin.seed_secret(REPO, "API_TOKEN", OLD, updated_at=LONG_AGO)
    standin.faults.rate_limit_next(1, reset_in_s=1, method="PUT")
    started = time.monotonic()
    result = rotator(retry=RetryPolicy(backoff_s=0.01)).rotate("API_TOKEN")
    assert time.monotonic() - started >= 0.9  # Retry-After: 1, not the 0.01 s backoff
    assert result.value is not None and standin.decrypted(REPO, "API_TOKEN") == result.value.reveal()
    limited = [r for r in _records(audit_path) if r["http_status"] == 403]
    assert len(limited) == 1 and limited[0]["outcome"] == "retrying"
    assert "rate limited" in limited[0]["detail"] and "as GitHub asked" in limited[0]["detail"]


def test_rate_limit_beyond_the_cap_fails_fast(standin: GitHubStandIn, rotator: Rotators) -> None:
    standin.faults.rate_limit_next(1, reset_in_s=600)
    started = time.monotonic()
    with pytest.raises(SecretsError, match=r"more than the 60s cap; run again after \d\d:\d\d:\d\d UTC"):
        rotator().rotate("API_TOKEN")
    assert time.monotonic() - started < 1


def test_persistent_5xx_keeps_the_previous_value(standin: GitHubStandIn, rotator: Rotators, audit_path: Path) -> None:
    standin.seed_secret(REPO, "API_TOKEN", OLD, environment="production", updated_at=LONG_AGO)
    standin.faults.fail_next(100, status=503, method="PUT")
    with pytest.raises(RotationFailed) as caught:
        rotator("production").rotate("API_TOKEN")
    error = caught.value
    assert standin.decrypted(REPO, "API_TOKEN", environment="production") == OLD
    assert error.applied is False and isinstance(error.value, SecretValue)
    text = str(error)
    assert "API_TOKEN" in text and "environment 'production'" in text and "gave up after 4 attempts" in text
    assert "previous value remains in effect (confirmed" in text and "Fix:" in text
    records = _records(audit_path)
    puts = [(r["attempt"], r["outcome"], r["http_status"]) for r in records if r["action"] == "rotate"]
    assert puts == [(1, "retrying", 503), (2, "retrying", 503), (3, "retrying", 503), (4, "failed", 503)]
    assert records[-1]["action"] == "verify" and records[-1]["outcome"] == "unchanged"
    assert [m for m, p, s in standin.requests if m == "PUT"] == ["PUT"] * 4


def test_client_errors_are_not_retried(standin: GitHubStandIn, rotator: Rotators, audit_path: Path) -> None:
    standin.faults.fail_next(1, status=422, method="PUT")
    with pytest.raises(RotationFailed, match=r"422.*not retryable.*still does not exist") as caught:
        rotator().rotate("API_TOKEN")
    assert caught.value.applied is False
    assert [r["outcome"] for r in _records(audit_path) if r["action"] == "rotate"] == ["failed"]


def test_unverified_write_hands_back_the_new_value(standin: GitHubStandIn, rotator: Rotators) -> None:
    # A secret stamped in the future (clock skew or another writer) cannot be seen to advance.
    standin.seed_secret(REPO, "API_TOKEN", OLD, updated_at=datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(RotationFailed, match="did not advance") as caught:
        rotator().rotate("API_TOKEN")
    assert standin.decrypted(REPO, "API_TOKEN") == caught.value.value.reveal()  # the caller still has it


def test_dry_run_writes_nothing(standin: GitHubStandIn, rotator: Rotators, audit_path: Path) -> None:
    standin.seed_secret(REPO, "API_TOKEN", OLD, environment="staging", updated_at=LONG_AGO)
    result = rotator("staging", dry_run=True).rotate("API_TOKEN")
    assert result.dry_run and result.value is None and result.attempts == 0 and not result.created
    assert standin.decrypted(REPO, "API_TOKEN", environment="staging") == OLD
    assert not [r for r in standin.requests if r[0] != "GET"]
    assert [(r["action"], r["outcome"]) for r in _records(audit_path)] == [
        ("check", "found"),
        ("dry-run", "would-update"),
    ]


def test_staging_rotator_refuses_production(standin: GitHubStandIn, rotator: Rotators) -> None:
    staging = rotator("staging")
    with pytest.raises(GuardViolation, match=r"bound to environment 'staging'.*refuses.*'production'.*Fix:"):
        staging.rotate("API_TOKEN", environment="production")
    with pytest.raises(GuardViolation):
        rotator().rotate("API_TOKEN", environment="production")  # repository level is not an environment
    assert standin.requests == []  # refused before any call
    assert staging.rotate("API_TOKEN", environment="Staging").value is not None  # GitHub ignores case


def test_check_age_flags_secrets_older_than_the_policy(
    standin: GitHubStandIn, rotator: Rotators, audit_path: Path
) -> None:
    now = datetime.now(UTC)
    standin.seed_secret(REPO, "OLD_TOKEN", OLD, environment="staging", updated_at=now - timedelta(days=31))
    standin.seed_secret(REPO, "NEW_TOKEN", OLD, environment="staging", updated_at=now - timedelta(days=29))
    standin.seed_secret(REPO, "REPO_LEVEL", OLD, updated_at=now - timedelta(days=90))
    ages = {a.name: a for a in rotator("staging").check_age()}
    assert set(ages) == {"OLD_TOKEN", "NEW_TOKEN"}
    assert ages["OLD_TOKEN"].due and not ages["NEW_TOKEN"].due
    assert 30.9 < ages["OLD_TOKEN"].age_days < 31.1
    weekly = rotator("staging").check_age(max_age_days=7)
    assert {a.name for a in weekly if a.due} == {"OLD_TOKEN", "NEW_TOKEN"}
    outcomes = {(r["secret"], r["outcome"]) for r in _records(audit_path)}
    assert {("OLD_TOKEN", "due"), ("NEW_TOKEN", "current")} <= outcomes
    with pytest.raises(ConfigError, match="not positive"):
        rotator().check_age(0)


def test_token_only_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, standin: GitHubStandIn, audit_path: Path
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("MNOPS_GITHUB_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"no GitHub token.*MNOPS_GITHUB_TOKEN nor GITHUB_TOKEN.*Fix:"):
        SecretRotator(repo=REPO, base_url=standin.url, audit_log=audit_path)
    monkeypatch.setenv("MNOPS_GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("MNOPS_GITHUB_URL", standin.url)
    with SecretRotator(repo=REPO, audit_log=audit_path) as from_env:
        assert from_env.rotate("API_TOKEN").value is not None


def test_rejected_token_is_not_retried(standin: GitHubStandIn, audit_path: Path) -> None:
    with (
        SecretRotator(repo=REPO, token="wrong", base_url=standin.url, audit_log=audit_path, retry=FAST) as rotating,
        pytest.raises(SecretsError, match=r"401 'Bad credentials', the token was rejected\. Fix:"),
    ):
        rotating.rotate("API_TOKEN")
    assert len(standin.requests) == 1


def test_missing_repository_and_environment_are_named(
    standin: GitHubStandIn, rotator: Rotators, audit_path: Path
) -> None:
    missing = "repository acme/nothing does not exist or the token cannot see it"
    with (
        SecretRotator(repo="acme/nothing", token=TOKEN, base_url=standin.url, audit_log=audit_path) as other,
        pytest.raises(SecretsError, match=missing),
    ):
        other.check_age()
    with pytest.raises(SecretsError, match=r"environment 'qa' does not exist in repository .*Settings"):
        rotator("qa").check_age()


def test_unreachable_github_is_retried_then_named(audit_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with (
        SecretRotator(repo=REPO, token=TOKEN, base_url=url, audit_log=audit_path, retry=FAST) as rotating,
        pytest.raises(SecretsError, match=rf"no answer from {url} .*MNOPS_GITHUB_URL.*gave up after 4"),
    ):
        rotating.check_age()
    assert [r["outcome"] for r in _records(audit_path)] == ["retrying"] * 3 + ["failed"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"repo": "no-slash"}, "not 'owner/name'"),
        ({"repo": REPO, "environment": " "}, "empty environment"),
    ],
)
def test_rotator_arguments_are_checked(kwargs: dict[str, str], match: str, audit_path: Path) -> None:
    with pytest.raises(ConfigError, match=match):
        SecretRotator(token=TOKEN, base_url="http://127.0.0.1:9", audit_log=audit_path, **kwargs)


@pytest.mark.parametrize(
    ("name", "generator", "length", "match"),
    [
        ("API_TOKEN", "uuid", 32, "generator 'uuid' is unknown.*token_urlsafe, hex, alnum"),
        ("API_TOKEN", "hex", 16, "length 16 is outside 32..4096.*--length 32"),
        ("GITHUB_TOKEN", "hex", 32, "not valid on GitHub"),
        ("1ST", "hex", 32, "not valid on GitHub"),
    ],
)
def test_bad_requests_fail_before_any_call(
    standin: GitHubStandIn, rotator: Rotators, name: str, generator: str, length: int, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        rotator().rotate(name, generator=generator, length=length)
    assert standin.requests == []


def test_generators_meet_128_bits() -> None:
    minimum = {g.name: g.min_length() for g in GENERATORS.values()}
    assert minimum == {"token_urlsafe": 22, "hex": 32, "alnum": 22}
    alnum = GENERATORS["alnum"](22).reveal()
    assert len(alnum) == 22 and alnum.isalnum()
    assert GENERATORS["token_urlsafe"](64).reveal() != GENERATORS["token_urlsafe"](64).reveal()


def test_secret_value_is_masked_everywhere() -> None:
    value = SecretValue("hunter2-hunter2-hunter2")
    assert "hunter2" not in f"{value} {value!r} {[value]}"
    assert value.short_hash == short_hash("hunter2-hunter2-hunter2") and len(value.short_hash) == 12


def test_no_secret_value_leaks_anywhere(
    standin: GitHubStandIn,
    rotator: Rotators,
    audit_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # includes PyGithub's request/response debug log
    standin.seed_secret(REPO, "API_TOKEN", OLD, updated_at=LONG_AGO)
    standin.seed_secret(REPO, "DB_PASSWORD", OLD + "-db", updated_at=LONG_AGO)
    rotating = rotator()
    ok = rotating.rotate("API_TOKEN")
    standin.faults.fail_next(10, status=500, method="PUT")
    with pytest.raises(RotationFailed) as caught:
        rotating.rotate("DB_PASSWORD")
    assert ok.value is not None
    values = [OLD, ok.value.reveal(), caught.value.value.reveal()]
    captured = capsys.readouterr()
    surfaces = {
        "logs": caplog.text,
        "stdout": captured.out,
        "stderr": captured.err,
        "audit": audit_path.read_text(),
        "exception": f"{caught.value} {caught.value!r}",
        "result": repr(ok),
        "requests": repr(standin.requests),
        "rotator": repr(rotating),
    }
    assert "PUT" in caplog.text  # the debug log did record the traffic
    leaks = [(where, i) for where, text in surfaces.items() for i, v in enumerate(values) if v in text]
    assert leaks == []


def test_audit_record_fields(
    standin: GitHubStandIn, rotator: Rotators, audit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    result = rotator("staging").rotate("API_TOKEN")
    assert result.value is not None
    records = AuditLog(audit_path).read(secret="api_token")
    assert [(r.action, r.outcome) for r in records] == [
        ("check", "absent"),
        ("rotate", "created"),
        ("verify", "verified"),
    ]
    put = records[1]
    assert (put.actor, put.repo, put.environment, put.http_status) == ("octocat", REPO, "staging", 201)
    assert put.value_sha256 == result.value.short_hash
    assert put.ts.endswith("Z") and datetime.fromisoformat(put.ts).tzinfo is not None
    assert AuditLog(audit_path).read(secret="OTHER") == []


def test_damaged_audit_log_names_the_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text('{"ts": "x"}\n')
    with pytest.raises(ConfigError, match="line 1 is not an audit record"):
        AuditLog(log).read()


class _FakeKube:
    def __init__(self) -> None:
        self.applied: list[tuple[dict[str, Any], str | None, bool]] = []

    def apply(self, obj: dict[str, Any], *, namespace: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        self.applied.append((obj, namespace, dry_run))
        return obj


def test_sync_to_kubernetes_applies_one_key() -> None:
    kube = _FakeKube()
    sync_to_kubernetes(
        kube,
        namespace="app",
        secret_name="api",
        key="API_TOKEN",  # type: ignore[arg-type]
        value=SecretValue("abc"),
    )
    obj, namespace, dry_run = kube.applied[0]
    assert obj == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "api", "namespace": "app"},
        "data": {"API_TOKEN": "YWJj"},
    }
    assert (namespace, dry_run) == ("app", False)
    with pytest.raises(ConfigError, match="key 'bad key'"):
        sync_to_kubernetes(
            kube,
            namespace="app",
            secret_name="api",
            key="bad key",  # type: ignore[arg-type]
            value=SecretValue("abc"),
        )
