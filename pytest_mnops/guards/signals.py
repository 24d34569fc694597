"""SIGTERM behaves like Ctrl-C during a run, so every revert path (chaoslib rollbacks, the ledger) runs."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | None


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received signal {signal.Signals(signum).name}")


def install_sigterm_as_interrupt() -> Handler:
    """Install the handler; returns the previous one, to restore at the end of the session.

    Only the main thread may install handlers; elsewhere (an embedding runner) the default stays.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _terminate)


def restore(previous: Handler) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
