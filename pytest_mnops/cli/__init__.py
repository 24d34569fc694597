"""The `mnops` console script: sandbox, drills' helpers (rollback, secrets), recovery."""

from __future__ import annotations

import argparse
import sys

from pytest_mnops.errors import MnopsError


def parser() -> argparse.ArgumentParser:
    # One module per command; each imports what its verbs need when they run, so `mnops --help` stays light.
    from pytest_mnops.cli import assets, monitoring, recover, report, rollback, sandbox, secrets, training

    root = argparse.ArgumentParser(prog="mnops", description="pytest-mnops: chaos drills for Argo Rollouts")
    commands = root.add_subparsers(dest="command", required=True)
    for command in (sandbox, secrets, recover, rollback, monitoring, assets, training, report):
        command.register(commands)
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
