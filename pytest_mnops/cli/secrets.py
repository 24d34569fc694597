"""``mnops secrets rotate | audit | check-age``: GitHub Actions secret rotation from the command line.

The token comes from the environment only (MNOPS_GITHUB_TOKEN, else GITHUB_TOKEN), never from an option, so it
stays out of shell history and process listings. Rotation and PyGithub load only when a subcommand runs.
Exit codes: 0 done, 1 a rotation/API failure or an overdue secret, 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_mnops.errors import ConfigError, GuardViolation, MnopsError
from pytest_mnops.secrets.audit import DEFAULT_AUDIT_LOG, AuditLog

if TYPE_CHECKING:
    from pytest_mnops.k8s import Kube
    from pytest_mnops.secrets.rotation import RotationResult
    from pytest_mnops.secrets.values import SecretValue

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class _K8sTarget:
    namespace: str
    secret_name: str
    key: str

    def __str__(self) -> str:
        return f"key {self.key} of Kubernetes Secret {self.namespace}/{self.secret_name}"

    def sync(self, kube: Kube, value: SecretValue, *, dry_run: bool = False) -> None:
        from pytest_mnops.secrets.rotation import sync_to_kubernetes

        sync_to_kubernetes(
            kube, namespace=self.namespace, secret_name=self.secret_name, key=self.key, value=value, dry_run=dry_run
        )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The three verbs and their options; long only because argparse declarations are one call per option."""
    parser = subparsers.add_parser(
        "secrets",
        help="rotate, age-check and audit GitHub Actions secrets",
        description="Rotate GitHub Actions secrets (repository or one environment), check them against "
        "the rotation policy, and read the audit log. Token: MNOPS_GITHUB_TOKEN, else GITHUB_TOKEN; "
        "API: MNOPS_GITHUB_URL (default https://api.github.com).",
    )
    commands = parser.add_subparsers(dest="secrets_command", metavar="COMMAND", required=True)

    rotate = commands.add_parser(
        "rotate",
        help="generate, write and verify new secret values",
        description="For each --secret: generate a new value, write it sealed to the repository's or "
        "environment's public key, and verify updated_at advanced. Values are never printed.",
    )
    _scope_options(rotate)
    rotate.add_argument(
        "--secret", dest="secrets", action="append", required=True, metavar="NAME", help="secret to rotate (repeatable)"
    )
    rotate.add_argument(
        "--generator", default="token_urlsafe", help="value generator: token_urlsafe (default), hex or alnum"
    )
    rotate.add_argument("--length", type=int, default=32, help="value length in characters (default 32)")
    rotate.add_argument(
        "--dry-run",
        action="store_true",
        help="read and report what would change; write nothing to GitHub or Kubernetes",
    )
    _audit_option(rotate)
    k8s = rotate.add_argument_group(
        "Kubernetes sync",
        "also apply each new value to a Kubernetes Secret (kubeconfig from $KUBECONFIG, current context)",
    )
    k8s.add_argument("--k8s-namespace", metavar="NS", help="namespace of the Kubernetes Secret")
    k8s.add_argument("--k8s-secret", metavar="NAME", help="name of the Kubernetes Secret")
    k8s.add_argument(
        "--k8s-key",
        metavar="KEY",
        help="data key to set (default: the GitHub secret's name; only with a single --secret)",
    )
    rotate.set_defaults(func=_rotate)

    audit = commands.add_parser(
        "audit",
        help="print the rotation audit log as a table",
        description="Print the audit log's records, oldest first.",
    )
    _audit_option(audit)
    audit.add_argument("--secret", metavar="NAME", help="only this secret's records")
    audit.set_defaults(func=_audit)

    check = commands.add_parser(
        "check-age",
        help="list secrets and flag those older than the policy (exit 1 if any)",
        description="List the secrets in scope with their age; exit 1 when any is older than --max-age-days.",
    )
    _scope_options(check)
    check.add_argument(
        "--max-age-days", type=_positive_days, default=30.0, metavar="DAYS", help="rotation policy in days (default 30)"
    )
    _audit_option(check)
    check.set_defaults(func=_check_age)


def _scope_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the GitHub repository")
    parser.add_argument(
        "--environment", metavar="ENV", help="a GitHub environment (e.g. staging); omit for repository-level secrets"
    )


def _audit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audit-log",
        type=Path,
        default=DEFAULT_AUDIT_LOG,
        metavar="PATH",
        help=f"JSONL audit log (default {DEFAULT_AUDIT_LOG})",
    )


def _positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if days <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 days")
    return days


def _exit_code(handler: Handler) -> Handler:
    """Errors become one line on stderr and an exit code, not a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ConfigError, GuardViolation) as exc:
            print(f"mnops secrets {args.secrets_command}: error: {exc}", file=sys.stderr)
            return 2
        except MnopsError as exc:
            print(f"mnops secrets {args.secrets_command}: failed: {exc}", file=sys.stderr)
            return 1

    return run


def _kube() -> Kube:
    from pytest_mnops.k8s import Kube

    return Kube()


@_exit_code
def _rotate(args: argparse.Namespace) -> int:
    from pytest_mnops.secrets.rotation import SecretRotator
    from pytest_mnops.secrets.values import SecretValue

    targets = _k8s_targets(args)
    kube = _kube() if targets else None
    with SecretRotator(
        repo=args.repo, environment=args.environment, audit_log=args.audit_log, dry_run=args.dry_run
    ) as rotator:
        for name in args.secrets:
            target = targets.get(name)
            if kube is not None and target is not None:
                # Prove the Kubernetes side will accept the value before GitHub's copy changes, so a
                # refused sync cannot leave GitHub and the cluster holding different values.
                target.sync(kube, SecretValue("mnops-dry-run-placeholder"), dry_run=True)
            result = rotator.rotate(name, generator=args.generator, length=args.length)
            print(_describe(result, rotator.where))
            if kube is None or target is None:
                continue
            if result.value is None:
                print(f"  would apply {target} (server dry-run admitted it)")
                continue
            try:
                target.sync(kube, result.value)
            except MnopsError as exc:
                raise MnopsError(
                    f"secret {name}: GitHub now holds the new value (sha256 {result.value.short_hash}) but "
                    f"applying {target} failed: {exc} Fix: correct the cause and run `mnops secrets rotate` "
                    "again; it writes a fresh value to both."
                ) from None
            print(f"  applied {target}")
    return 0


def _k8s_targets(args: argparse.Namespace) -> dict[str, _K8sTarget]:
    """GitHub secret name -> where its value goes in Kubernetes; empty when no Kubernetes option is given."""
    if not (args.k8s_namespace or args.k8s_secret or args.k8s_key):
        return {}
    if not (args.k8s_namespace and args.k8s_secret):
        raise ConfigError(
            "the Kubernetes sync needs both --k8s-namespace and --k8s-secret. "
            "Fix: pass both, or neither to rotate on GitHub only."
        )
    if args.k8s_key and len(args.secrets) > 1:
        raise ConfigError(
            f"--k8s-key {args.k8s_key} is ambiguous with {len(args.secrets)} --secret options. "
            "Fix: drop --k8s-key (each secret then goes to the key of its own name)."
        )
    return {name: _K8sTarget(args.k8s_namespace, args.k8s_secret, args.k8s_key or name) for name in args.secrets}


def _describe(result: RotationResult, where: str) -> str:
    if result.value is None:
        verb = "would create" if result.created else "would update"
        last = (
            f"last updated {result.previous_updated_at:%Y-%m-%d %H:%M:%S}Z"
            if result.previous_updated_at
            else "does not exist yet"
        )
        return f"{result.name}: {verb} in {where} ({last}); dry run, nothing written"
    verb = "created" if result.created else "rotated"
    attempts = f"{result.attempts} attempt{'s' if result.attempts > 1 else ''}"
    return (
        f"{result.name}: {verb} in {where}, verified at {result.updated_at:%Y-%m-%d %H:%M:%S}Z "
        f"(sha256 {result.value.short_hash}, {attempts})"
    )


@_exit_code
def _audit(args: argparse.Namespace) -> int:
    records = AuditLog(args.audit_log).read(secret=args.secret)
    if not records:
        print(f"no records in {args.audit_log}" + (f" for secret {args.secret}" if args.secret else ""))
        return 0
    rows = [
        (
            r.ts,
            r.actor,
            r.repo,
            r.environment or "-",
            r.secret,
            r.action,
            str(r.attempt),
            r.outcome,
            str(r.http_status or "-"),
            r.value_sha256 or "-",
        )
        for r in records
    ]
    header = ("TIME", "ACTOR", "REPO", "ENVIRONMENT", "SECRET", "ACTION", "TRY", "OUTCOME", "HTTP", "SHA256")
    _table(header, rows)
    return 0


@_exit_code
def _check_age(args: argparse.Namespace) -> int:
    from pytest_mnops.secrets.rotation import SecretRotator

    with SecretRotator(repo=args.repo, environment=args.environment, audit_log=args.audit_log) as rotator:
        ages = rotator.check_age(args.max_age_days)
        where = rotator.where
    if not ages:
        print(f"no secrets in {where}")
        return 0
    _table(
        ("SECRET", "UPDATED", "AGE (DAYS)", "STATUS"),
        [
            (a.name, f"{a.updated_at:%Y-%m-%d %H:%M:%S}Z", f"{a.age_days:.1f}", "OVERDUE" if a.due else "ok")
            for a in ages
        ],
    )
    due = [a.name for a in ages if a.due]
    if not due:
        print(f"all {len(ages)} secrets in {where} are within the {args.max_age_days:g}-day policy")
        return 0
    env = f" --environment {args.environment}" if args.environment else ""
    print(
        f"{len(due)} of {len(ages)} secrets in {where} are older than {args.max_age_days:g} days. Rotate: "
        f"mnops secrets rotate --repo {args.repo}{env} " + " ".join(f"--secret {n}" for n in due)
    )
    return 1


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
