"""The `mnops` console script: sandbox, drills' helpers (rollback, secrets), recovery."""

from __future__ import annotations

import argparse
import sys

from pytest_mnops.errors import MnopsError


def parser() -> argparse.ArgumentParser:
    from pytest_mnops import assets_cli, monitoring_cli, recover_cli, report_cli, rollback_cli
    from pytest_mnops.sandbox import cli as sandbox_cli
    from pytest_mnops.secrets import cli as secrets_cli
    from pytest_mnops.training import cli as training_cli

    root = argparse.ArgumentParser(prog="mnops", description="pytest-mnops: chaos drills for Argo Rollouts")
    commands = root.add_subparsers(dest="command", required=True)
    sandbox_cli.register(commands)
    secrets_cli.register(commands)
    recover_cli.register(commands)
    rollback_cli.register(commands)
    monitoring_cli.register(commands)
    assets_cli.register(commands)
    training_cli.register(commands)
    report_cli.register(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MnopsError as exc:
        print(f"mnops: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
