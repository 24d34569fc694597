"""`mnops sandbox ...` subcommands."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from pytest_mnops.sandbox import binaries
from pytest_mnops.sandbox.cluster import Sandbox
from pytest_mnops.sandbox.layout import DEFAULT_PORT_BASE
from pytest_mnops.sandbox.settings import SandboxSettings, default_state_dir


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _settings(args: argparse.Namespace) -> SandboxSettings:
    """Saved settings of this state dir, with whatever the command line sets explicitly on top."""
    state_dir = Path(args.state_dir)
    settings = SandboxSettings.load(state_dir) or SandboxSettings(state_dir=str(state_dir))
    for name in ("port_base", "nodes", "app_replicas"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(settings, name, value)
    return settings


def _up(args: argparse.Namespace) -> int:
    Sandbox(_settings(args), _progress).up()
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        print(f"no sandbox in {args.state_dir}: nothing to stop")
        return 0
    stopped = Sandbox(settings, _progress).down(keep=args.keep)
    print(
        f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}"
        + ("" if args.keep else f"; removed {args.state_dir}")
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        print(f"no sandbox in {args.state_dir}. Start one with `mnops sandbox up`.")
        return 1
    rows = Sandbox(settings, _progress).status()
    for name, state, detail in rows:
        print(f"{name:<24} {state:<12} {detail}")
    return 0 if all(state == "ready" for _, state, _ in rows) else 1


def _env(args: argparse.Namespace) -> int:
    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        print(f"no sandbox in {args.state_dir}. Start one with `mnops sandbox up`.", file=sys.stderr)
        return 1
    for key, value in settings.env().items():
        print(f"export {key}={shlex.quote(value)}")
    print(binaries.path_export(binaries.client_tool_dirs()))
    return 0


def _build(args: argparse.Namespace) -> int:
    paths = binaries.ensure_all(_progress)
    for name, path in sorted(paths.items()):
        print(f"{name:<26} {path}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sandbox = subparsers.add_parser("sandbox", help="a local Kubernetes + Argo Rollouts + Prometheus sandbox")
    sandbox.add_argument(
        "--state-dir",
        default=str(default_state_dir()),
        help="where logs, certificates and data live (default: %(default)s, or $MNOPS_SANDBOX_DIR)",
    )
    verbs = sandbox.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="build what is missing, start everything, return when all is ready")
    up.add_argument("--port-base", type=int, default=None, help=f"first of 17 loopback ports ({DEFAULT_PORT_BASE})")
    up.add_argument("--nodes", type=int, default=None, help="KWOK nodes (default 3)")
    up.add_argument("--app-replicas", type=int, default=None, help="replicas of the reference app (default 10)")
    up.set_defaults(func=_up)
    down = verbs.add_parser("down", help="stop every process the sandbox started and remove its state")
    down.add_argument("--keep", action="store_true", help="keep the state directory (logs, data)")
    down.set_defaults(func=_down)
    verbs.add_parser("status", help="each component's state; a dead one's log tail").set_defaults(func=_status)
    verbs.add_parser(
        "env", help="shell exports: KUBECONFIG, the service URLs, kubectl and the Argo Rollouts plugin on PATH"
    ).set_defaults(func=_env)
    verbs.add_parser(
        "build", help="find or build every binary, kubectl and its Argo Rollouts plugin too (cached, never in the repo)"
    ).set_defaults(func=_build)
