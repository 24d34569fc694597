"""`mnops recover`: revert every fault the ledger still holds (after a SIGKILL, a crash, a lost runner)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_mnops.names import LEDGER_FILE


def _recover(args: argparse.Namespace) -> int:
    from pytest_mnops.chaos.engine import revert
    from pytest_mnops.guards.ledger import Ledger

    ledger = Ledger(Path(args.ledger))
    pending = ledger.pending()
    if not pending:
        print(f"ledger {args.ledger}: no fault left to revert")
        return 0
    for entry in pending:
        print(f"{'would revert' if args.dry_run else 'reverting'}: {entry.describe()}")
    if args.dry_run:
        return 0
    failed = 0
    for entry, error in ledger.recover(revert, how="mnops recover"):
        if error:
            failed += 1
            print(
                f"FAILED {entry.scenario} ({entry.id[:8]}): {error}. It stays in the ledger; fix the cause "
                "and run `mnops recover` again."
            )
        else:
            print(f"reverted {entry.scenario} ({entry.id[:8]})")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    recover = subparsers.add_parser("recover", help="revert every fault still recorded in the fault ledger")
    recover.add_argument("--ledger", default=LEDGER_FILE, help="ledger file (default: %(default)s)")
    recover.add_argument("--dry-run", action="store_true", help="list what would be reverted; change nothing")
    recover.set_defaults(func=_recover)
