"""The traffic stand-in as a sandbox process: settings from the state directory, the API server's kubeconfig,
the sandbox's port (``python -m pytest_mnops.standins.traffic`` runs ``main``)."""

from __future__ import annotations

import argparse
import threading

from pytest_mnops.k8s import Kube
from pytest_mnops.sandbox.layout import HOST
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.standins.traffic.server import DEFAULT_RPS, TrafficStandIn


def main(argv: list[str] | None = None) -> None:
    from pytest_mnops.standins import traffic  # imported here, once complete: its docstring is the help text

    parser = argparse.ArgumentParser(prog="python -m pytest_mnops.standins.traffic", description=traffic.__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--rps", type=float, default=DEFAULT_RPS, help="requests per second per app")
    args = parser.parse_args(argv)
    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        raise SystemExit(f"no sandbox settings in {args.state_dir}")
    standin = TrafficStandIn(
        Kube(kubeconfig=str(settings.layout.kubeconfig)), port=settings.ports.traffic, rps=args.rps
    ).start()
    print(f"traffic stand-in: {args.rps} req/s per app, metrics on http://{HOST}:{standin.port}/metrics", flush=True)
    threading.Event().wait()
