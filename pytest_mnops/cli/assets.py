"""`mnops assets [NAME]`: where the scenarios, suites, charts and monitoring of this installation are.

So an installed plugin's suites run as ``pytest "$(mnops assets suites)/validation"`` (or
``pytest --pyargs pytest_mnops._assets.suites.validation``) from any directory.
"""

from __future__ import annotations

import argparse


def _assets(args: argparse.Namespace) -> int:
    from pytest_mnops import assets

    print(assets.path(args.name) if args.name else assets.root())
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pytest_mnops.assets import NAMES

    command = subparsers.add_parser(
        "assets", help="print the directory of this installation's scenarios, suites, charts or monitoring"
    )
    command.add_argument("name", nargs="?", choices=NAMES, help="one of them (default: the directory holding all)")
    command.set_defaults(func=_assets)
