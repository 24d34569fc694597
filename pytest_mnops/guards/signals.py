"""SIGTERM behaves like Ctrl-C during a run, so every revert path (chaoslib rollbacks, the ledger) runs."""

from __future__ import annotations

import signal
from types import FrameType


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received signal {signal.Signals(signum).name}")


def install_sigterm_as_interrupt() -> signal.Handlers | None:
    """Install the handler; returns the previous one, to restore at the end of the session."""
    return signal.signal(signal.SIGTERM, _terminate)


def restore(previous: signal.Handlers | None) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
