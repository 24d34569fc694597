"""`mnops secrets ...` end to end against the in-process GitHub stand-in (real PyGithub underneath)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops.cli import secrets as secrets_cli
from pytest_mnops.errors import ClusterError
from pytest_mnops.secrets import GENERATORS, short_hash
from pytest_mnops.standins.github import DEFAULT_REPO, GitHubStandIn

TOKEN = "test-token-3"
REPO = DEFAULT_REPO
LONG_AGO = datetime.now(UTC) - timedelta(days=45)


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(token=TOKEN) as server:
        monkeypatch.setenv("MNOPS_GITHUB_URL", server.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        yield server


@pytest.fixture
def audit(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnops")
    secrets_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def mnops(*argv: str | Path) -> int:
    args = _parser().parse_args([str(a) for a in argv])
    return args.func(args)


class _FakeKube:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.applied: list[tuple[str, str, bool]] = []

    def apply(self, obj: dict[str, Any], *, namespace: str | None = None, dry_run: bool = False) -> None:
        if self.fail and not dry_run:
            raise ClusterError("PATCH /api/v1/namespaces/app/secrets/api: 500 etcd unavailable")
        key = next(iter(obj["data"]))
        self.applied.append((f"{namespace}/{obj['metadata']['name']}", key, dry_run))


def test_rotate_prints_the_hash_never_the_value(
    standin: GitHubStandIn, audit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.seed_secret(REPO, "API_TOKEN", "old", environment="staging", updated_at=LONG_AGO)
    code = mnops(
        "secrets",
        "rotate",
        "--repo",
        REPO,
        "--environment",
        "staging",
        "--secret",
        "API_TOKEN",
        "--secret",
        "DB_PASSWORD",
        "--generator",
        "alnum",
        "--length",
        "40",
        "--audit-log",
        audit,
    )
    out = capsys.readouterr().out
    assert code == 0
    for name, verb in (("API_TOKEN", "rotated"), ("DB_PASSWORD", "created")):
        value = standin.decrypted(REPO, name, environment="staging")
        assert value is not None and len(value) == 40 and value.isalnum()
        assert f"{name}: {verb} in environment 'staging'" in out and short_hash(value) in out
        assert value not in out + audit.read_text()


def test_rotate_dry_run_writes_nothing(standin: GitHubStandIn, audit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    standin.seed_secret(REPO, "API_TOKEN", "old", updated_at=LONG_AGO)
    assert (
        mnops(
            "secrets",
            "rotate",
            "--repo",
            REPO,
            "--secret",
            "API_TOKEN",
            "--secret",
            "NEW_ONE",
            "--dry-run",
            "--audit-log",
            audit,
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "API_TOKEN: would update in repository" in out and "NEW_ONE: would create" in out
    assert "nothing written" in out
    assert standin.decrypted(REPO, "API_TOKEN") == "old" and standin.decrypted(REPO, "NEW_ONE") is None
    assert all(method == "GET" for method, _, _ in standin.requests)


def test_rotate_failure_exits_1_and_says_what_github_holds(
    standin: GitHubStandIn, audit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.seed_secret(REPO, "API_TOKEN", "old", updated_at=LONG_AGO)
    standin.faults.fail_next(1, status=422, method="PUT")
    assert mnops("secrets", "rotate", "--repo", REPO, "--secret", "API_TOKEN", "--audit-log", audit) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnops secrets rotate: failed: secret API_TOKEN")
    assert "previous value remains in effect" in err
    assert standin.decrypted(REPO, "API_TOKEN") == "old"


def test_rotate_syncs_kubernetes_after_a_server_dry_run(
    standin: GitHubStandIn, audit: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kube = _FakeKube()
    monkeypatch.setattr(secrets_cli, "_kube", lambda: kube)
    assert (
        mnops(
            "secrets",
            "rotate",
            "--repo",
            REPO,
            "--secret",
            "API_TOKEN",
            "--audit-log",
            audit,
            "--k8s-namespace",
            "app",
            "--k8s-secret",
            "api",
            "--k8s-key",
            "token",
        )
        == 0
    )
    assert kube.applied == [("app/api", "token", True), ("app/api", "token", False)]
    assert "applied key token of Kubernetes Secret app/api" in capsys.readouterr().out


def test_rotate_dry_run_only_dry_runs_kubernetes(
    standin: GitHubStandIn, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = _FakeKube()
    monkeypatch.setattr(secrets_cli, "_kube", lambda: kube)
    assert (
        mnops(
            "secrets",
            "rotate",
            "--repo",
            REPO,
            "--secret",
            "API_TOKEN",
            "--secret",
            "DB_PASSWORD",
            "--dry-run",
            "--audit-log",
            audit,
            "--k8s-namespace",
            "app",
            "--k8s-secret",
            "api",
        )
        == 0
    )
    assert kube.applied == [("app/api", "API_TOKEN", True), ("app/api", "DB_PASSWORD", True)]


def test_kubernetes_failure_after_github_says_so(
    standin: GitHubStandIn, audit: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(secrets_cli, "_kube", lambda: _FakeKube(fail=True))
    assert (
        mnops(
            "secrets",
            "rotate",
            "--repo",
            REPO,
            "--secret",
            "API_TOKEN",
            "--audit-log",
            audit,
            "--k8s-namespace",
            "app",
            "--k8s-secret",
            "api",
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "GitHub now holds the new value" in err and "etcd unavailable" in err and "Fix:" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--k8s-namespace", "app"], "needs both --k8s-namespace and --k8s-secret"),
        (
            ["--k8s-namespace", "app", "--k8s-secret", "api", "--k8s-key", "k", "--secret", "OTHER"],
            "--k8s-key k is ambiguous with 2 --secret options",
        ),
    ],
)
def test_kubernetes_options_are_checked_first(
    standin: GitHubStandIn, audit: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mnops("secrets", "rotate", "--repo", REPO, "--secret", "API_TOKEN", "--audit-log", audit, *extra) == 2
    assert message in capsys.readouterr().err
    assert standin.requests == []


def test_missing_token_is_a_usage_error(
    standin: GitHubStandIn, audit: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.delenv("MNOPS_GITHUB_TOKEN", raising=False)
    assert mnops("secrets", "check-age", "--repo", REPO, "--audit-log", audit) == 2
    assert "error: no GitHub token" in capsys.readouterr().err


def test_check_age_exits_1_when_overdue(
    standin: GitHubStandIn, audit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    standin.seed_secret(REPO, "OLD_TOKEN", "x", environment="production", updated_at=now - timedelta(days=40))
    standin.seed_secret(REPO, "NEW_TOKEN", "x", environment="production", updated_at=now - timedelta(days=2))
    assert mnops("secrets", "check-age", "--repo", REPO, "--environment", "production", "--audit-log", audit) == 1
    out = capsys.readouterr().out
    assert "OLD_TOKEN" in out and "OVERDUE" in out
    assert f"mnops secrets rotate --repo {REPO} --environment production --secret OLD_TOKEN" in out
    assert (
        mnops(
            "secrets",
            "check-age",
            "--repo",
            REPO,
            "--environment",
            "production",
            "--max-age-days",
            "60",
            "--audit-log",
            audit,
        )
        == 0
    )
    assert "within the 60-day policy" in capsys.readouterr().out
    assert mnops("secrets", "check-age", "--repo", REPO, "--environment", "staging", "--audit-log", audit) == 0
    assert "no secrets in environment 'staging'" in capsys.readouterr().out


def test_max_age_days_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _parser().parse_args(["secrets", "check-age", "--repo", REPO, "--max-age-days", "0"])
    assert caught.value.code == 2
    assert "--max-age-days: '0' must be more than 0 days" in capsys.readouterr().err


def test_audit_prints_a_filtered_table(standin: GitHubStandIn, audit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        mnops(
            "secrets",
            "rotate",
            "--repo",
            REPO,
            "--secret",
            "API_TOKEN",
            "--secret",
            "DB_PASSWORD",
            "--audit-log",
            audit,
        )
        == 0
    )
    capsys.readouterr()
    assert mnops("secrets", "audit", "--audit-log", audit, "--secret", "db_password") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "TIME",
        "ACTOR",
        "REPO",
        "ENVIRONMENT",
        "SECRET",
        "ACTION",
        "TRY",
        "OUTCOME",
        "HTTP",
        "SHA256",
    ]
    assert [line.split()[5:8] for line in lines[1:]] == [
        ["check", "1", "absent"],
        ["rotate", "1", "created"],
        ["verify", "1", "verified"],
    ]
    assert all("DB_PASSWORD" in line for line in lines[1:])
    assert mnops("secrets", "audit", "--audit-log", audit, "--secret", "NOPE") == 0
    assert "no records" in capsys.readouterr().out


def test_audit_of_a_missing_log_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert mnops("secrets", "audit", "--audit-log", tmp_path / "none.jsonl") == 2
    assert "none.jsonl does not exist. Fix: pass --audit-log" in capsys.readouterr().err


def test_help_names_every_generator() -> None:
    # The help text spells the names out so `mnops --help` need not import PyGithub; keep them in step.
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    secrets_parser = sub.choices["secrets"]
    commands = next(a for a in secrets_parser._actions if isinstance(a, argparse._SubParsersAction))
    text = commands.choices["rotate"].format_help()
    assert all(name in text for name in GENERATORS)
