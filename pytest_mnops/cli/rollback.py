"""``mnops rollback [watch]``: emergency rollback of an Argo Rollout, by hand or on a health watch.

Target options default to the same MNOPS_* environment variables as the pytest options. With ``--sandbox``
(or MNOPS_SANDBOX=true, or the sandbox's kube context as `mnops sandbox env` exports it) the sandbox fills
what is not given: kubeconfig, context, Prometheus, its time scale and its notification receivers.
Exit codes: 0 rollback verified (or a dry run planned, or a watch that stayed healthy), 1 a rollback that
could not be verified, 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_mnops.errors import ConfigError
from pytest_mnops.names import SANDBOX_CONTEXT, SNAPSHOT_DIR
from pytest_mnops.options import BY_NAME

if TYPE_CHECKING:
    from pytest_mnops.rollback.health import HealthReport
    from pytest_mnops.rollback.helper import RollbackHelper
    from pytest_mnops.rollback.result import RollbackResult
    from pytest_mnops.target import Target

# The target options this command takes (the others come from their MNOPS_* variables, as for the plugin).
CLI_OPTIONS = ("namespace", "app", "profile", "kubeconfig", "context", "prometheus-url", "sandbox-dir")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rollback = subparsers.add_parser(
        "rollback",
        help="abort and undo a Rollout to its stable revision, verify, notify",
        description="Abort the update in flight and undo to the stable revision (or --to-revision), with "
        "retries; verify the stable version serves all traffic; write a snapshot first; notify "
        "Slack/e-mail (MNOPS_SLACK_WEBHOOK_URL, MNOPS_SMTP_HOST/PORT, MNOPS_NOTIFY_EMAIL_TO).",
    )
    _target_options(rollback, suppress=False)
    rollback.add_argument(
        "--reason", default="manual rollback (mnops rollback)", help="why; goes into the notification and the result"
    )
    rollback.add_argument(
        "--dry-run", action="store_true", help="print the plan and write the snapshot; change nothing"
    )
    rollback.add_argument(
        "--to-revision",
        type=int,
        metavar="N",
        help="roll back to this revision (default: the stable one, else the previous one)",
    )
    rollback.set_defaults(func=_rollback)

    verbs = rollback.add_subparsers(dest="rollback_command", metavar="COMMAND")
    watch = verbs.add_parser(
        "watch",
        help="automatic mode: watch health, roll back when it stays bad",
        description="Poll the Rollout and the app's SLOs (its app profile: the queries and limits of its "
        "AnalysisTemplates, or --profile); while a release is in flight or aborted, roll back once the "
        "Rollout is Degraded or an SLO is breached for --unhealthy-for seconds. Ends after the rollback, or after "
        "--max-duration without one.",
    )
    # SUPPRESS: options given before `watch` must not be reset by the subcommand's defaults.
    _target_options(watch, suppress=True)
    watch.add_argument("--interval", type=float, default=5.0, metavar="S", help="seconds between checks (5)")
    watch.add_argument(
        "--unhealthy-for",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds the app must stay unhealthy before rolling back (30)",
    )
    watch.add_argument(
        "--max-duration", type=float, default=600.0, metavar="S", help="stop watching after this many seconds (600)"
    )
    watch.set_defaults(func=_watch)


def _target_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    group = parser.add_argument_group("target")
    for name in CLI_OPTIONS:
        opt = BY_NAME[name]
        # argparse runs `type` over a string default too, so a bad MNOPS_* value is a usage error.
        default = argparse.SUPPRESS if suppress else (os.environ.get(opt.env) or opt.default)
        group.add_argument(
            f"--{name}", type=opt.parse, default=default, metavar="VALUE", help=f"{opt.help} [env {opt.env}]"
        )
    group.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="target the running local sandbox [env MNOPS_SANDBOX]",
    )
    group.add_argument(
        "--snapshot-dir",
        default=argparse.SUPPRESS if suppress else SNAPSHOT_DIR,
        help=f"where snapshots are written (default {SNAPSHOT_DIR})",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS if suppress else 300.0,
        metavar="S",
        help="seconds to wait for the rollback to be verified (300)",
    )


def _helper(args: argparse.Namespace) -> RollbackHelper:
    from pytest_mnops.k8s import Kube
    from pytest_mnops.notify import Notifier, redact_url
    from pytest_mnops.observability.prometheus import Prometheus
    from pytest_mnops.rollback.helper import RollbackHelper

    target = _target(args)
    notifier = Notifier.for_target(target)
    prometheus_url = target.prometheus_url
    print(
        f"rollback target: {target.context or 'current context'} {target.namespace}/{target.app}; "
        f"Prometheus: {redact_url(prometheus_url) if prometheus_url else 'none (Rollout status only)'}; "
        f"notify: {notifier!r}"
    )
    kube = Kube(kubeconfig=target.kubeconfig, context=target.context)
    slos = []
    if prometheus_url:
        from pytest_mnops import profile

        # The app's SLOs: its AnalysisTemplates' queries, or the profile's (--profile).
        app = profile.resolve(
            kube,
            namespace=target.namespace,
            app=target.app,
            file=Path(args.profile) if args.profile else None,
            time_scale=target.time_scale,
        )
        slos = app.slos()
    return RollbackHelper(
        kube,
        namespace=target.namespace,
        name=target.app,
        prometheus=Prometheus(prometheus_url) if prometheus_url else None,
        snapshot_dir=Path(args.snapshot_dir),
        notifier=notifier,
        slos=slos,
    )


def _target(args: argparse.Namespace) -> Target:
    """The target as the plugin resolves it: these options, else their MNOPS_* variables; with the sandbox
    (--sandbox, MNOPS_SANDBOX, or its kube context) its addresses fill the rest."""
    from pytest_mnops.sandbox.settings import SandboxSettings
    from pytest_mnops.target import TARGET_OPTIONS, resolve_target

    values = {name: BY_NAME[name].from_env() for name in TARGET_OPTIONS}
    values.update({name: getattr(args, name.replace("-", "_")) for name in TARGET_OPTIONS if name in CLI_OPTIONS})
    values["sandbox"] = args.sandbox or values["sandbox"] or args.context == SANDBOX_CONTEXT
    if values["sandbox"] and SandboxSettings.load(args.sandbox_dir) is None:
        raise ConfigError(
            f"no sandbox in {args.sandbox_dir}. Fix: start it with `mnops sandbox up`, or "
            "pass --sandbox-dir (env MNOPS_SANDBOX_DIR)."
        )
    # The namespace is the one shown (--namespace, MNOPS_NAMESPACE or `default`), in a pod too.
    return resolve_target(values, github_url_given=True, namespace_given=True)


def _report(result: RollbackResult) -> int:
    print("\n".join(result.summary()))
    return 0 if result.verified or result.dry_run else 1


def _rollback(args: argparse.Namespace) -> int:
    helper = _helper(args)
    return _report(
        helper.rollback(args.reason, dry_run=args.dry_run, to_revision=args.to_revision, timeout_s=args.timeout)
    )


def _watch(args: argparse.Namespace) -> int:
    helper = _helper(args)

    def show(report: HealthReport) -> None:
        state = (
            "ROLLBACK?"
            if report.rollback_warranted
            else "UNHEALTHY"
            if report.unhealthy
            else "healthy"
            if report.healthy
            else "progressing"
        )
        print(f"{dt.datetime.now():%H:%M:%S} {state:<11} {report.describe()}", flush=True)

    result = helper.watch(
        interval_s=args.interval,
        unhealthy_for_s=args.unhealthy_for,
        max_duration_s=args.max_duration,
        timeout_s=args.timeout,
        on_check=show,
    )
    if result is None:
        print(
            f"no rollback: {helper} did not need one for {args.unhealthy_for:g}s in a row within {args.max_duration:g}s"
        )
        return 0
    return _report(result)
