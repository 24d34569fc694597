"""A training room: every trainee gets their own namespace, copy of the app and kubeconfig; a drill runs for
all of them at once, and the scoreboard compares them.

The isolation is the pytest-xdist workers' (pytest_mnops/workers.py): one ServiceAccount per namespace with
a TokenRequest token. A trainee's ServiceAccount may do everything in its own namespace and nothing outside
it, not even read, so nobody drives (or copies from) a neighbour's Rollout; the API server refuses with 403.
Each trainee's drill is its own `pytest suites/drills --mnops-training` process: the drills run side by side
exactly as a single trainee's would.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from pytest_mnops import app, assets, workers
from pytest_mnops.errors import ConfigError
from pytest_mnops.k8s import Kube
from pytest_mnops.names import SANDBOX_CONTEXT
from pytest_mnops.rollouts import Rollout
from pytest_mnops.sandbox.settings import SandboxSettings

TRAINEE_IDENTITY = "trainee"
ROOM_LABEL = "mnops.io/training-room"
ROOM_FILE = "room.json"
READY_TIMEOUT_S = 180.0
DRILL_TIMEOUT_S = 1800.0
Say = Callable[[str], None]


@dataclass(frozen=True)
class Trainee:
    name: str
    namespace: str
    kubeconfig: str
    env_file: str
    log: str
    report: str


@dataclass(frozen=True)
class Room:
    directory: str
    prefix: str
    trainees: list[Trainee]

    def save(self) -> None:
        path = Path(self.directory) / ROOM_FILE
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> Room:
        path = directory / ROOM_FILE
        if not path.is_file():
            raise ConfigError(f"no training room in {directory}. Fix: `mnops training room up --trainees N` first.")
        data = json.loads(path.read_text())
        return cls(data["directory"], data["prefix"], [Trainee(**t) for t in data["trainees"]])


def trainee_names(count: int, names: list[str]) -> list[str]:
    """``names`` if given (their count must match), else trainee-1 ... trainee-N."""
    if names and len(names) != count:
        raise ConfigError(f"--names lists {len(names)} trainees but --trainees is {count}. Fix: make them agree.")
    chosen = names or [f"trainee-{i}" for i in range(1, count + 1)]
    bad = [n for n in chosen if not n.replace("-", "").isalnum() or n != n.lower() or len(n) > 40]
    if bad or len(set(chosen)) != len(chosen):
        raise ConfigError(
            f"trainee names {', '.join(bad) or '(duplicates)'}: each must be unique, lower-case letters, digits "
            "and '-' (it becomes part of a namespace name). Fix: rename them."
        )
    return chosen


def set_up(settings: SandboxSettings, directory: Path, *, names: list[str], prefix: str, say: Say) -> Room:
    """Each trainee's namespace, app, identity and kubeconfig; returns once every app is Healthy."""
    from pytest_mnops.sandbox import binaries
    from pytest_mnops.sandbox.binaries import path_export

    admin = Kube(kubeconfig=str(settings.layout.kubeconfig), context=SANDBOX_CONTEXT)
    trainees = []
    path_line = path_export(binaries.client_tool_dirs())
    for name in names:
        home = directory / name
        namespace = f"{prefix}-{name}"
        say(f"mnops: {name}: namespace {namespace}, their own {app.APP_NAME}")
        app.deploy(
            admin,
            namespace,
            prometheus_address=settings.prometheus_url,
            time_scale=settings.time_scale,
            labels={ROOM_LABEL: prefix},
        )
        token = workers.grant(admin, namespace, identity=TRAINEE_IDENTITY, cluster_reads=False)
        kubeconfig = admin.kubeconfig_for_token(token)
        kubeconfig["contexts"][0]["context"]["namespace"] = namespace  # kubectl needs no -n
        workers.write_private(home / "kubeconfig", yaml.safe_dump(kubeconfig))
        (home / "env.sh").write_text(trainee_env(home.resolve() / "kubeconfig", namespace, settings, path_line))
        trainees.append(
            Trainee(
                name=name,
                namespace=namespace,
                kubeconfig=str((home / "kubeconfig").resolve()),
                env_file=str((home / "env.sh").resolve()),
                log=str((home / "drill.log").resolve()),
                report=str((home / "drill.json").resolve()),
            )
        )
    for trainee in trainees:
        Rollout(admin, namespace=trainee.namespace, name=app.APP_NAME).wait_for(
            phase="Healthy", timeout_s=READY_TIMEOUT_S
        )
    room = Room(str(directory.resolve()), prefix, trainees)
    room.save()
    return room


def trainee_env(kubeconfig: Path, namespace: str, settings: SandboxSettings, path_line: str) -> str:
    """What a trainee sources: kubectl, the plugin and `mnops rollback` all act as them, in their namespace."""
    exports = {
        "KUBECONFIG": kubeconfig,
        "MNOPS_KUBECONFIG": kubeconfig,
        "MNOPS_NAMESPACE": namespace,
        "MNOPS_SANDBOX": "true",
        "MNOPS_SANDBOX_DIR": Path(settings.state_dir).resolve(),
    }
    return "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in exports.items()) + path_line + "\n"


def tear_down(settings: SandboxSettings, room: Room, say: Say) -> None:
    admin = Kube(kubeconfig=str(settings.layout.kubeconfig), context=SANDBOX_CONTEXT)
    for trainee in room.trainees:
        say(f"mnops: {trainee.name}: removing namespace {trainee.namespace}")
        Path(trainee.kubeconfig).unlink(missing_ok=True)
    app.remove_namespaces(admin, [trainee.namespace for trainee in room.trainees], wait=True)
    (Path(room.directory) / ROOM_FILE).unlink(missing_ok=True)


def drill_argv(settings: SandboxSettings, trainee: Trainee, drill: str, trainee_timeout_s: int) -> list[str]:
    """The trainee's own training drill, as one person would run it, aimed at their namespace."""
    return [
        sys.executable,
        "-m",
        "pytest",
        str(assets.path("suites", "drills")),
        "-p",
        "no:cacheprovider",
        "--drill",
        drill,
        "--mnops-sandbox",
        "--mnops-sandbox-dir",
        settings.state_dir,
        "--mnops-training",
        "--mnops-trainee-timeout",
        str(trainee_timeout_s),
        "--mnops-namespace",
        trainee.namespace,
        "--mnops-allow-namespace",
        trainee.namespace,
        f"--mnops-report-json={trainee.report}",
    ]


def run(settings: SandboxSettings, room: Room, drill: str, *, trainee_timeout_s: int, say: Say) -> dict[str, int]:
    """Run ``drill`` for every trainee at once; each one's narration goes to the terminal (prefixed with
    their name) and to their own log. Returns each trainee's pytest exit code."""
    for trainee in room.trainees:
        Path(trainee.report).unlink(missing_ok=True)
    procs = {
        t.name: subprocess.Popen(
            drill_argv(settings, t, drill, trainee_timeout_s),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=assets.root(),
        )
        for t in room.trainees
    }

    def relay(trainee: Trainee, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with open(trainee.log, "w") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                say(f"[{trainee.name}] {line.rstrip()}")

    relays = [threading.Thread(target=relay, args=(t, procs[t.name]), daemon=True) for t in room.trainees]
    for thread in relays:
        thread.start()
    try:
        codes = {name: proc.wait(timeout=DRILL_TIMEOUT_S) for name, proc in procs.items()}
    finally:
        # Ctrl-C or a hung drill: each drill reverts its faults on SIGTERM (like Ctrl-C), then exits.
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=120)
    for thread in relays:
        thread.join(timeout=10)
    return codes
