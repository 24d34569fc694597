"""Trainees use the real kubectl and `kubectl argo rollouts` from `mnops sandbox env`'s PATH, each in their own
namespace of a training room; the drills judge what they did by its effect and score it on one board.

The terminals are real: each trainee types into a tmux session (Debian's tmux, installed by scripts/setup.sh).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_mnops import app
from pytest_mnops.sandbox.binaries import ROLLOUTS_VERSION
from pytest_mnops.sandbox.settings import SandboxSettings
from tests.integration.conftest import ROOT

APP = app.APP_NAME
PROMPT = "operator step: someone has to act now ({step})"
PROMPT_TIMEOUT_S = 300.0


def mnops(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_mnops.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def shell(script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_sandbox_env_puts_kubectl_and_the_rollouts_plugin_on_path(sandbox: SandboxSettings) -> None:
    env = f'eval "$({sys.executable} -m pytest_mnops.cli sandbox --state-dir {sandbox.state_dir} env)"'
    found = shell(
        f"{env} && command -v kubectl kubectl-argo-rollouts && kubectl version && kubectl argo rollouts version"
    )
    assert found.returncode == 0, found.stderr
    kubectl, plugin = found.stdout.splitlines()[:2]
    assert "/mnops/bin/" in kubectl or "MNOPS_SANDBOX_BIN" in kubectl, kubectl  # ours, not Debian's 1.20
    assert "Client Version: v1.34.1" in found.stdout and "Server Version: v1.34.1" in found.stdout
    assert f"kubectl-argo-rollouts: v{ROLLOUTS_VERSION}" in found.stdout, found.stdout
    assert Path(plugin).name == "kubectl-argo-rollouts"


class Terminal:
    """A trainee's terminal: a tmux session with their room environment sourced."""

    def __init__(self, name: str, env_file: str) -> None:
        self.session = f"mnops-{name}-{uuid.uuid4().hex[:4]}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.session, "-x", "220", "-y", "60", "bash", "--norc", "--noprofile"],
            check=True,
        )
        self.type(f"source {shlex.quote(env_file)}")

    def type(self, line: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, line, "Enter"], check=True)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", self.session],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def wait_for(self, text: str, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} did not appear in {self.session}:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], check=False)


def wait_for_prompt(log: Path, step: str, timeout_s: float = PROMPT_TIMEOUT_S) -> None:
    """The trainee reads their narration (the room writes it to their own log) until the step's prompt."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.is_file() and PROMPT.format(step=step) in log.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"no prompt for {step!r} in {log} within {timeout_s:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def room_dir(tmp_path: Path) -> Path:
    return tmp_path / "room"


@pytest.fixture
def open_room(sandbox: SandboxSettings, room_dir: Path) -> Iterator[Callable[[list[str]], dict[str, Any]]]:
    """`mnops training room up` with the given trainees; `down` afterwards, whatever happened."""
    made: list[bool] = []

    def up(names: list[str]) -> dict[str, Any]:
        prefix = f"room{uuid.uuid4().hex[:4]}"
        result = mnops(
            "training", "room", "up", "--trainees", str(len(names)), "--names", ",".join(names),
            "--prefix", prefix, "--room-dir", str(room_dir), "--sandbox-dir", sandbox.state_dir,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        made.append(True)
        return {t["name"]: t for t in json.loads((room_dir / "room.json").read_text())["trainees"]}

    yield up
    if made:
        down = mnops("training", "room", "down", "--room-dir", str(room_dir), "--sandbox-dir", sandbox.state_dir)
        assert down.returncode == 0, down.stdout + down.stderr


def run_room(sandbox: SandboxSettings, room_dir: Path, drill: str, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "pytest_mnops.cli", "training", "room", "run", "--drill", drill,
            "--room-dir", str(room_dir), "--sandbox-dir", sandbox.state_dir, "--trainee-timeout", "90",
            "--json", str(tmp_path / "scoreboard.json"), "--html", str(tmp_path / "scoreboard.html"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def steps_of(board: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {t["trainee"]: {s["step"]: s for s in t["steps"]} for t in board["trainees"]}


def test_trainees_typing_abort_and_promote_in_real_terminals_are_scored_right_and_wrong(
    sandbox: SandboxSettings, room_dir: Path, open_room: Callable[[list[str]], dict[str, Any]], tmp_path: Path
) -> None:
    trainees = open_room(["ada", "bob"])
    terminals = {name: Terminal(name, t["env_file"]) for name, t in trainees.items()}
    seen: dict[str, str] = {}
    try:
        drill = run_room(sandbox, room_dir, "canary-failure", tmp_path)

        def ada() -> None:  # stops the failing canary, then brings the Rollout back
            wait_for_prompt(Path(trainees["ada"]["log"]), "rollout-aborted")
            terminals["ada"].type(f"kubectl argo rollouts abort {APP}")
            terminals["ada"].wait_for(f"rollout '{APP}' aborted")
            wait_for_prompt(Path(trainees["ada"]["log"]), "operator-restores-stable")
            terminals["ada"].type(f"kubectl argo rollouts undo {APP}")

        def bob() -> None:  # looks at the canary, then promotes it: the wrong move
            wait_for_prompt(Path(trainees["bob"]["log"]), "rollout-aborted")
            terminals["bob"].type(f"kubectl argo rollouts get rollout {APP}")
            seen["get"] = terminals["bob"].wait_for("Images:")  # the plugin's own view, mid-canary
            terminals["bob"].type(f"kubectl argo rollouts promote {APP}")
            terminals["bob"].wait_for(f"rollout '{APP}' promoted")
            wait_for_prompt(Path(trainees["bob"]["log"]), "operator-restores-stable")
            terminals["bob"].type(f"kubectl argo rollouts undo {APP}")

        players = [threading.Thread(target=play, daemon=True) for play in (ada, bob)]
        for player in players:
            player.start()
        out, _ = drill.communicate(timeout=900)
        for player in players:
            player.join(timeout=30)
    finally:
        for terminal in terminals.values():
            terminal.close()
    # The plugin showed the canary's real state: the faulty version's canary, mid-steps.
    assert "1.1.0-faulty (canary)" in seen["get"] and "Step:          1/9" in seen["get"], seen["get"]
    board = json.loads((tmp_path / "scoreboard.json").read_text())
    steps = steps_of(board)
    stop_ada, stop_bob = steps["ada"]["rollout-aborted"], steps["bob"]["rollout-aborted"]
    assert (stop_ada["action"], stop_ada["verdict"]) == ("abort", "right"), stop_ada
    assert stop_ada["tool"] == "kubectl argo rollouts" and stop_ada["by"].endswith(":trainee"), stop_ada
    assert 0 < stop_ada["response_s"] < 60 and stop_ada["stable_restored_s"] is not None, stop_ada
    assert stop_bob["action"].startswith("promote") and stop_bob["verdict"] == "wrong", stop_bob
    assert "failing canary" in stop_bob["why"] and stop_bob["response_s"] > 0, stop_bob
    for name in ("ada", "bob"):
        restore = steps[name]["operator-restores-stable"]
        assert restore["action"].startswith("undo") and restore["verdict"] == "right", restore
    assert drill.returncode == 0, out[-5000:]
    assert "ada" in out and "kubectl argo rollouts abort machine-native-ops" in out  # the narration's commands


def test_a_room_of_three_runs_emergency_rollback_at_once_each_confined_to_its_namespace(
    sandbox: SandboxSettings, room_dir: Path, open_room: Callable[[list[str]], dict[str, Any]], tmp_path: Path
) -> None:
    trainees = open_room(["trainee-1", "trainee-2", "trainee-3"])
    # Each kubeconfig acts in its own namespace only: refused (403) in default and in a neighbour's namespace.
    namespaces = [t["namespace"] for t in trainees.values()]
    for index, trainee in enumerate(trainees.values()):
        env = f"source {shlex.quote(trainee['env_file'])}"
        own = shell(f"{env} && kubectl argo rollouts get rollout {APP}")
        assert own.returncode == 0 and "Healthy" in own.stdout, own.stderr
        neighbour = namespaces[(index + 1) % len(namespaces)]
        for where in ("default", neighbour):
            refused = shell(f"{env} && kubectl get rollout {APP} -n {where} -v=6")
            assert refused.returncode != 0 and "403 Forbidden" in refused.stderr, refused.stderr[-2000:]
        patch = shell(f"{env} && kubectl argo rollouts abort {APP} -n {neighbour}")
        assert patch.returncode != 0 and "forbidden" in patch.stderr.lower(), patch.stderr

    moves = {
        "trainee-1": "mnops rollback --reason 'room drill: canary must go'",
        "trainee-2": f"kubectl argo rollouts abort {APP}",
        "trainee-3": f"kubectl argo rollouts undo {APP}",
    }
    done: dict[str, subprocess.CompletedProcess[str]] = {}

    def act(name: str) -> None:
        wait_for_prompt(Path(trainees[name]["log"]), "operator-rollback")
        bin_dir = Path(sys.executable).parent
        # `mnops rollback` verifies before it returns: on a loaded machine that takes minutes, not seconds.
        done[name] = shell(
            f"export PATH={bin_dir}:$PATH && source {trainees[name]['env_file']} && {moves[name]}", timeout=300
        )

    drill = run_room(sandbox, room_dir, "emergency-rollback", tmp_path)
    players = [threading.Thread(target=act, args=(name,), daemon=True) for name in trainees]
    for player in players:
        player.start()
    out, _ = drill.communicate(timeout=900)
    for player in players:
        player.join(timeout=30)
    assert set(done) == set(trainees), f"not every trainee got to act: {sorted(done)}"
    assert all(done[n].returncode == 0 for n in trainees), {n: done[n].stderr for n in done}

    board = json.loads((tmp_path / "scoreboard.json").read_text())
    assert [t["trainee"] for t in board["trainees"]] == list(trainees)
    steps = steps_of(board)
    expected_tools = {"trainee-1": "mnops", "trainee-2": "kubectl argo rollouts", "trainee-3": "kubectl argo rollouts"}
    for name, tool in expected_tools.items():
        step = steps[name]["operator-rollback"]
        assert step["verdict"] == "right" and step["tool"] == tool, step
        assert step["response_s"] > 0 and step["stable_restored_s"] is not None, step
    assert steps["trainee-2"]["operator-rollback"]["action"] == "abort"
    assert steps["trainee-3"]["operator-rollback"]["action"].startswith("undo")
    # Only `mnops rollback` tells people: its Slack notice names trainee-1's namespace; the bare plugin commands
    # send none, and those drills fail their rollback-notified check. (Whether trainee-1's notice came within the
    # drill's 30 s window depends on how fast they were: what reached the receiver is asserted instead.)
    slack = requests.get(f"{sandbox.receivers_url}/received", params={"channel": "slack"}, timeout=10).json()
    told = {name for name, t in trainees.items() if any(f"{t['namespace']}/{APP}" in str(m) for m in slack)}
    assert told == {"trainee-1"}, told
    problems = {t["trainee"]: " ".join(t["problems"]) for t in board["trainees"]}
    for name in ("trainee-2", "trainee-3"):
        assert "FAILED: rollback-notified" in problems[name], problems
        assert next(t for t in board["trainees"] if t["trainee"] == name)["drill_verdict"] == "failed"
    text = out[out.index("mnops training scoreboard") :]
    assert all(name in text for name in trainees) and "right" in text, text
    html = (tmp_path / "scoreboard.html").read_text()
    assert all(name in html for name in trainees) and "operator-rollback" in html
