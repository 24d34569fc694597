"""`mnops report merge RUN...`: many runs' report JSON / JUnit as one game day (scorecard, HTML, JSON, gate).

Exit code 0 when the gates pass, 1 when one fails (each named), 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _merge(args: argparse.Namespace) -> int:
    from pytest_mnops.reporting import merge

    day = merge.load(args.runs)
    gates = day.gates(fail_under=args.fail_under, expect=args.expect)
    print(merge.render_text(day, gates))
    if args.html:
        args.html.write_text(merge.render_html(day, gates))
    if args.json:
        args.json.write_text(json.dumps(merge.to_json(day, gates), indent=2, sort_keys=True))
    return 1 if any(why for _, why in gates) else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pytest_mnops.options import BY_NAME

    report = subparsers.add_parser("report", help="work with drill reports of several runs")
    verbs = report.add_subparsers(dest="report_command", required=True)
    command = verbs.add_parser(
        "merge",
        help="merge runs' --mnops-report-json / --junitxml files into one scorecard, HTML and gate",
        description="Each file is one run (an Indexed Job's index, an app): its drills.json or its junit.xml.",
    )
    command.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="a run's report JSON or JUnit XML")
    command.add_argument("--html", type=Path, help="write the merged game day as one HTML page here")
    command.add_argument("--json", type=Path, help="write the merged report JSON here (it can be merged again)")
    command.add_argument(
        "--fail-under",
        type=BY_NAME["fail-under"].parse,
        metavar="SCORE",
        help="fail when the merged resilience score is below this",
    )
    command.add_argument(
        "--expect", type=int, metavar="N", help="fail when fewer than N runs are given (an index wrote no report)"
    )
    command.set_defaults(func=_merge)
