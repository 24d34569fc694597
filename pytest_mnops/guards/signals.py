"""SIGTERM behaves like Ctrl-C during a run, so every revert path (chaoslib rollbacks, the ledger) runs; SIGUSR1
(or the stop file) is the manual stop of guards/stop.py. No SDK is imported here: the plugin installs these at
configure time."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | None
MANUAL_SIGNAL = signal.SIGUSR1  # chaostoolkit's own "stop now, keep the rollbacks" signal


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


@dataclass
class ManualStop:
    """The session's emergency stop: a file any process (every pytest-xdist worker) sees, or SIGUSR1."""

    path: Path
    signalled_at: float | None = None
    _previous: Any = field(default=None, repr=False)

    def pulled(self) -> str | None:
        if self.signalled_at is not None:
            return f"manual stop: {MANUAL_SIGNAL.name} received"
        if self.path.exists():
            return f"manual stop: {self.path} exists (remove it to run drills again)"
        return None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signalled_at = time.time()

    def install(self) -> None:
        """Catch SIGUSR1 for the session (its default action would kill pytest mid-fault)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(MANUAL_SIGNAL, self._on_signal)

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(MANUAL_SIGNAL, self._previous)
