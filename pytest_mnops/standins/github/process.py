"""The GitHub stand-in as a sandbox process: settings from the state directory, the sandbox's port and token,
serving until SIGTERM or SIGINT (``python -m pytest_mnops.standins.github`` runs ``main``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from pytest_mnops.names import SANDBOX_GITHUB_REPO as DEFAULT_REPO
from pytest_mnops.names import SANDBOX_GITHUB_TOKEN as DEFAULT_TOKEN
from pytest_mnops.sandbox.settings import SandboxSettings
from pytest_mnops.standins.github.server import GitHubStandIn

log = logging.getLogger(__name__)

TOKEN_ENV = "MNOPS_GITHUB_TOKEN"  # DEFAULT_TOKEN when unset or empty
# DEFAULT_TOKEN is not a secret: it only opens the loopback stand-in, and the sandbox docs print it.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_mnops.standins.github",
        description="Serve the GitHub secrets API stand-in for the sandbox.",
    )
    parser.add_argument("--state-dir", type=Path, required=True, help="the sandbox state directory")
    args = parser.parse_args(argv)
    settings = SandboxSettings.load(args.state_dir)
    if settings is None:
        print(
            f"github stand-in: no sandbox settings in {args.state_dir}/sandbox.json. "
            "Fix: start it through `mnops sandbox up`, or pass the right --state-dir.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    standin = GitHubStandIn(port=settings.ports.github, token=os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN)
    try:
        standin.start()
    except OSError as exc:
        print(
            f"github stand-in: cannot listen on {standin.host}:{standin.port}: {exc}. "
            "Fix: stop what holds the port, or choose another sandbox port base.",
            file=sys.stderr,
        )
        return 1
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    log.info("GitHub stand-in serving %s for %s", standin.url, DEFAULT_REPO)
    stopped.wait()
    standin.stop()
    return 0
