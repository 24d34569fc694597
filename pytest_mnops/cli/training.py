"""`mnops training room up | run | scoreboard | down`: a room of trainees on the sandbox."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pytest_mnops.drills import DRILLS
from pytest_mnops.errors import ConfigError

DEFAULT_ROOM_DIR = ".mnops/training-room"
DEFAULT_PREFIX = "room"
# Drills with a step a person performs: the others have nothing to score.
HUMAN_STEP_DRILLS = ("canary-failure", "emergency-rollback")


def _say(line: str) -> None:
    print(line, flush=True)


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pytest_mnops.sandbox.settings import SandboxSettings

    settings = SandboxSettings.load(args.sandbox_dir)
    if settings is None:
        raise ConfigError(f"no sandbox in {args.sandbox_dir}. Fix: `mnops sandbox up` (or pass --sandbox-dir).")
    return settings


def _up(args: argparse.Namespace) -> int:
    from pytest_mnops.training import room

    names = room.trainee_names(args.trainees, [n.strip() for n in args.names.split(",") if n.strip()])
    built = room.set_up(_settings(args), Path(args.room_dir), names=names, prefix=args.prefix, say=_say)
    print(f"\nTraining room {built.prefix}: {len(built.trainees)} trainees. Hand each one their kubeconfig:")
    for trainee in built.trainees:
        print(f"  {trainee.name:<16} namespace {trainee.namespace:<28} source {trainee.env_file}")
    print("A trainee's kubeconfig acts only in their own namespace. Next: `mnops training room run --drill NAME`.")
    return 0


def _run(args: argparse.Namespace) -> int:
    from pytest_mnops.training import room

    settings = _settings(args)
    directory = Path(args.room_dir)
    if args.trainees:
        names = room.trainee_names(args.trainees, [n.strip() for n in args.names.split(",") if n.strip()])
        built = room.set_up(settings, directory, names=names, prefix=args.prefix, say=_say)
    else:
        built = room.Room.load(directory)
    codes = room.run(settings, built, args.drill, trainee_timeout_s=args.trainee_timeout, say=_say)
    _write_scoreboard(built, args)
    return 0 if all(code == 0 for code in codes.values()) else 1


def _write_scoreboard(built, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    from pytest_mnops.training import scoreboard, scoreboard_html

    scores = scoreboard.collect(built, args.drill)
    print("\n" + scoreboard.render_text(args.drill, scores))
    board = Path(built.directory) / "scoreboard.json"
    board.write_text(json.dumps(scoreboard.to_json(args.drill, scores), indent=2))
    if args.json:
        Path(args.json).write_text(board.read_text())
    if args.html:
        Path(args.html).write_text(scoreboard_html.render(args.drill, scores))
    print(f"\nscoreboard: {args.json or board}" + (f", {args.html}" if args.html else ""))


def _scoreboard(args: argparse.Namespace) -> int:
    from pytest_mnops.training import room

    _write_scoreboard(room.Room.load(Path(args.room_dir)), args)
    return 0


def _down(args: argparse.Namespace) -> int:
    from pytest_mnops.training import room

    room.tear_down(_settings(args), room.Room.load(Path(args.room_dir)), _say)
    return 0


def _drill(text: str) -> str:
    if text not in DRILLS:
        raise argparse.ArgumentTypeError(f"unknown drill {text!r}; valid drills: {', '.join(DRILLS)}")
    if text not in HUMAN_STEP_DRILLS:
        raise argparse.ArgumentTypeError(
            f"drill {text!r} has no human step to score; use one of: {', '.join(HUMAN_STEP_DRILLS)}"
        )
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pytest_mnops.sandbox.settings import default_state_dir

    training = subparsers.add_parser("training", help="training sessions on the sandbox")
    verbs = training.add_subparsers(dest="training_verb", required=True)
    room_parser = verbs.add_parser("room", help="a room of trainees, each in their own namespace, on one scoreboard")
    room_verbs = room_parser.add_subparsers(dest="room_verb", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--room-dir", default=DEFAULT_ROOM_DIR, help="kubeconfigs, logs, scores (%(default)s)")
        parser.add_argument(
            "--sandbox-dir", default=str(default_state_dir()), help="the sandbox's state dir (%(default)s)"
        )

    def members(parser: argparse.ArgumentParser, *, required: bool) -> None:
        parser.add_argument("--trainees", type=int, required=required, default=None, help="how many trainees")
        parser.add_argument("--names", default="", help="comma-separated trainee names (default trainee-1..N)")
        parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="namespace prefix: <prefix>-<name>")

    def outputs(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", default=None, help="also write the scoreboard JSON here")
        parser.add_argument("--html", default=None, help="write the scoreboard as an HTML page here")

    up = room_verbs.add_parser("up", help="each trainee's namespace, app copy and kubeconfig")
    common(up)
    members(up, required=True)
    up.set_defaults(func=_up)
    run = room_verbs.add_parser("run", help="run one drill for every trainee at once, then the scoreboard")
    common(run)
    members(run, required=False)
    outputs(run)
    run.add_argument("--drill", type=_drill, required=True, help=", ".join(HUMAN_STEP_DRILLS))
    run.add_argument("--trainee-timeout", type=int, default=120, help="seconds a trainee has per step (120)")
    run.set_defaults(func=_run)
    board = room_verbs.add_parser("scoreboard", help="the last run's scoreboard again")
    common(board)
    outputs(board)
    board.add_argument("--drill", type=_drill, required=True, help="the drill whose scores to show")
    board.set_defaults(func=_scoreboard)
    down = room_verbs.add_parser("down", help="remove every trainee's namespace and kubeconfig")
    common(down)
    down.set_defaults(func=_down)
