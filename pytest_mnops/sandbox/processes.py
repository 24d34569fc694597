"""Start and stop the sandbox's processes by pid, never by name.

Each started process is recorded (pid, its kernel start time, argv, log) in ``processes.json`` before
anything waits on it, so ``mnops sandbox down`` can always find what ``up`` started, even after the starter
was killed. A pid is only signalled while its start time is still the recorded one, so a recycled pid is
never hit (the start time, unlike the command line, is already final between fork and exec).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_mnops.errors import SandboxError

STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    start_time: int
    argv: list[str]
    log: str

    def alive(self) -> bool:
        stat = _stat(self.pid)
        # A zombie is dead for our purposes; its parent just has not reaped it yet.
        return stat is not None and stat[0] != "Z" and stat[1] == self.start_time

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "".join(Path(self.log).read_text(errors="replace").splitlines(keepends=True)[-lines:])
        except OSError:
            return "(no log)"


class Supervisor:
    """The set of processes one sandbox started, persisted in a JSON file."""

    def __init__(self, registry: Path) -> None:
        self.registry = registry

    def load(self) -> dict[str, Started]:
        if not self.registry.is_file():
            return {}
        raw = json.loads(self.registry.read_text())
        return {name: Started(**entry) for name, entry in raw.items()}

    def _save(self, started: dict[str, Started]) -> None:
        tmp = self.registry.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: asdict(s) for n, s in started.items()}, indent=2))
        tmp.replace(self.registry)

    def start(self, name: str, argv: list[str], log: Path, *, env: dict[str, str] | None = None) -> Started:
        current = self.load()
        if name in current and current[name].alive():
            return current[name]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out, open(os.devnull, "rb") as null:
            out.write(f"\n--- mnops: starting {name}: {' '.join(argv)}\n".encode())
            out.flush()
            # posix_spawn rather than Popen: the process outlives this one (it is stopped by pid from the
            # registry), so no Popen object should pretend to own it. setsid keeps Ctrl-C in a terminal away.
            try:
                pid = os.posix_spawn(
                    argv[0],
                    argv,
                    dict(os.environ if env is None else env),
                    setsid=True,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, null.fileno(), 0),
                        (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                        (os.POSIX_SPAWN_DUP2, out.fileno(), 2),
                    ],
                )
            except OSError as exc:
                raise SandboxError(f"sandbox component {name!r}: cannot execute {argv[0]}: {exc}") from exc
        stat = _stat(pid)
        started = Started(name=name, pid=pid, start_time=stat[1] if stat else -1, argv=argv, log=str(log))
        current[name] = started
        self._save(current)
        return started

    def stop(self, name: str) -> bool:
        """Stop one recorded process (SIGTERM, then SIGKILL after a grace period); True if it was running."""
        current = self.load()
        entry = current.pop(name, None)
        if entry is None:
            return False
        was_alive = entry.alive()
        if was_alive:
            _terminate(entry)
        self._save(current)
        return was_alive

    def stop_all(self) -> list[str]:
        """Stop in reverse start order, so clients go before the servers they talk to."""
        stopped = []
        for name in reversed(list(self.load())):
            if self.stop(name):
                stopped.append(name)
        return stopped


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a live pid, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[19])


def _terminate(entry: Started) -> None:
    try:
        os.kill(entry.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        if not entry.alive():
            _reap(entry.pid)
            return
        time.sleep(0.05)
    try:
        os.kill(entry.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(entry.pid)


def _reap(pid: int) -> None:
    """Collect our own child so it does not linger as a zombie; another process's child is not ours."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
