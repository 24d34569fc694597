"""Every ``--mnops-*`` option, its ini key and its environment variable: CLI > env > ini > default."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_mnops.errors import ConfigError
from pytest_mnops.names import DEFAULT_GITHUB_URL, EXPECTATION_SETS, LEDGER_FILE, STOP_FILE


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL (e.g. http://127.0.0.1:9090)")
    return text.rstrip("/")


def _number(
    kind: type[int] | type[float],
    low: float,
    high: float,
    *,
    low_open: bool = False,
) -> Callable[[str], Any]:
    """An argparse ``type=`` accepting ``kind`` values in [low, high] (or (low, high] with ``low_open``)."""
    interval = f"at least {low:g}" if high == float("inf") else f"in {'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole number' if kind is int else 'number'}"
            ) from None
        if not (low < value if low_open else low <= value) or value > high:
            raise argparse.ArgumentTypeError(f"{text!r} must be {interval}")
        return value

    return parse


_positive_int = _number(int, 1, float("inf"))
_percent = _number(float, 0, 100, low_open=True)
_score = _number(float, 0, 100)
_factor = _number(float, 0, 1, low_open=True)
_slowdown = _number(float, 1, 100, low_open=True)


def _csv(text: str) -> list[str]:
    """Comma- or newline-separated (an ini value may list one item a line)."""
    return [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _lines(text: str) -> list[str]:
    """One item a line (an ini value, an environment variable); a CLI option repeats instead."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (use true/false)")


@dataclass(frozen=True)
class Option:
    """One setting. ``name`` gives ``--mnops-NAME``, ini ``mnops_NAME`` and env ``MNOPS_NAME``."""

    name: str
    help: str
    parse: Callable[[str], Any] = str
    default: Any = None
    flag: bool = False
    repeat: bool = False  # the CLI option may be given several times; env and ini hold one value a line

    @property
    def cli(self) -> str:
        return f"--mnops-{self.name}"

    @property
    def dest(self) -> str:
        return "mnops_" + self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return "MNOPS_" + self.name.replace("-", "_").upper()

    def from_env(self, env: Mapping[str, str] = os.environ) -> Any:
        """The value of its environment variable, else the default (for the CLI, which has no ini file)."""
        raw = env.get(self.env, "")
        if not raw:
            return self.default
        try:
            return self.parse(raw)
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"environment variable {self.env}: {exc}. Fix: correct it or unset it.") from None


OPTIONS: tuple[Option, ...] = (
    Option("kubeconfig", "kubeconfig file of the target cluster (default: $KUBECONFIG, ~/.kube/config)"),
    Option("context", "kube context of the target cluster (default: the kubeconfig's current context)"),
    Option("namespace", "namespace of the application under test", default="default"),
    Option("app", "name of the Argo Rollout under test", default="machine-native-ops"),
    Option(
        "profile",
        "app profile (YAML) completing what drills discover about the app: alerts, faulty version, secret "
        "(docs/drilling-your-own-app.md; sandbox + reference app: charts/mnops-profile.yaml)",
    ),
    Option("container", "name of the app's container in its pods (default: the profile's, else the first)"),
    Option("prometheus-url", "Prometheus base URL", _url),
    Option("alertmanager-url", "Alertmanager base URL", _url),
    Option("receivers-url", "base URL of the notification receivers drills read back", _url),
    Option(
        "proof",
        "how drills prove an alert's delivery: receiver (read back from --mnops-receivers-url) or alertmanager "
        "(its /api/v2/alerts and notification counters); default: receiver when receivers are known",
        _choice("receiver", "alertmanager"),
    ),
    Option(
        "app-url", "base URL of the app's HTTP service, for probes that call it (sandbox: the traffic stand-in)", _url
    ),
    Option("github-url", "GitHub API base URL", _url, default=DEFAULT_GITHUB_URL),
    Option("github-repo", "owner/repo whose Actions secrets the secret-rotation drill rotates"),
    Option(
        "sandbox",
        "target the local sandbox (reuse a running one, else start it and stop it at the end)",
        _flag,
        default=False,
        flag=True,
    ),
    Option("sandbox-dir", "state directory of the sandbox", default=".mnops/sandbox"),
    Option(
        "allow-context",
        "comma-separated kube contexts destructive drills may touch (sandbox always allowed)",
        _csv,
        default=[],
    ),
    Option(
        "allow-namespace",
        "comma-separated namespaces destructive drills may touch (default: --mnops-namespace)",
        _csv,
        default=[],
    ),
    Option("max-pods", "blast-radius cap: most pods one fault may touch", _positive_int, default=50),
    Option(
        "max-percent", "blast-radius cap: most percent of the app's pods one fault may touch", _percent, default=50.0
    ),
    Option(
        "dry-run",
        "resolve selectors and print what each drill would touch; change nothing",
        _flag,
        default=False,
        flag=True,
    ),
    Option(
        "allow-synthetic-alerts",
        "let monitoring-alerts post synthetic alerts into an Alertmanager that has no route for mnops_drill",
        _flag,
        default=False,
        flag=True,
    ),
    Option("training", "narrate each phase and wait for the trainee at human steps", _flag, default=False, flag=True),
    Option("trainee-timeout", "seconds a trainee has to act at a human step", _positive_int, default=120),
    Option("time-scale", "fraction of production timings the target runs at (sandbox: its own)", _factor),
    Option("ledger", "fault ledger file (reverts are replayed from it by `mnops recover`)", default=LEDGER_FILE),
    Option(
        "scenarios",
        "directories searched for a scenario name before the built-in scenarios/ (comma-separated, relative "
        "to the rootdir)",
        _csv,
        default=[],
    ),
    Option(
        "expect",
        "validation expectation set: 'properties' (what every canary system should have) or 'reference' (also "
        "the reference app's exact numbers: 10/30/50/80/100, thresholds 0.95/0.01/0.5 s, its 15 rules, "
        "pager/slack/email); default: the app profile's `expect`, else 'properties'",
        _choice(*EXPECTATION_SETS),
        default=None,
    ),
    Option(
        "rule-files",
        "your Prometheus rule files the validation suite checks (comma-separated; default: the reference "
        "app's monitoring/prometheus-alerts.yaml); load them with `mnops monitoring load FILE...`",
        _csv,
        default=[],
    ),
    Option(
        "rule-tests",
        "your promtool unit-test files for those rules (comma-separated; default: the reference app's "
        "monitoring/tests/)",
        _csv,
        default=[],
    ),
    Option(
        "dashboard",
        "a Grafana dashboard JSON whose queries must return data (default: the reference dashboard, with "
        "--mnops-expect=reference)",
    ),
    Option(
        "stop-when",
        "stop condition: PromQL that, when it returns a series, interrupts the running drill and reverts its "
        "faults (STOPPED); repeatable, ini one a line; ${namespace} and ${app} are filled in",
        _lines,
        default=[],
        repeat=True,
    ),
    Option(
        "stop-defaults",
        "the default stop conditions (the app profile's success rate below 0.5, an unexpected critical alert "
        "firing in the namespace): auto (every target but the sandbox), on, off",
        _choice("auto", "on", "off"),
        default="auto",
    ),
    Option(
        "stop-file",
        "manual stop: while this file exists every running drill is stopped and reverted, and none starts",
        default=STOP_FILE,
    ),
    Option("report-json", "write a machine-readable drill summary to this path"),
    Option("fail-under", "fail the run when the overall resilience score is below this (0-100)", _score),
    Option(
        "history-dir",
        "directory of the run history each run appends to and is compared with (e.g. a CI cache)",
        default=".mnops/history",
    ),
    Option("history-runs", "how many earlier runs the trends and regressions look at", _positive_int, default=10),
    Option(
        "regression-factor",
        "a drill regressed when its MTTD or MTTR is above this x the median of its history",
        _slowdown,
        default=1.5,
    ),
    Option(
        "fail-on-regression",
        "fail the run when a drill regressed against the run history (naming it)",
        _flag,
        default=False,
        flag=True,
    ),
    Option(
        "pushgateway-url",
        "push the drill results as Prometheus metrics to this Pushgateway (sandbox: its own)",
        _url,
    ),
    Option("metrics-textfile", "write the drill results as Prometheus metrics to this node-exporter *.prom file"),
)
BY_NAME = {o.name: o for o in OPTIONS}


def register(parser: pytest.Parser) -> None:
    group = parser.getgroup("mnops", "pytest-mnops: chaos drills and validation for Argo Rollouts")
    for opt in OPTIONS:
        if opt.flag:
            group.addoption(opt.cli, action="store_const", const=True, dest=opt.dest, default=None, help=opt.help)
        elif opt.repeat:
            group.addoption(
                opt.cli,
                dest=opt.dest,
                action="append",
                default=None,
                metavar="VALUE",
                help=f"{opt.help} [env {opt.env}, ini {opt.dest}]",
            )
        else:
            group.addoption(
                opt.cli,
                dest=opt.dest,
                type=opt.parse,
                default=None,
                metavar="VALUE",
                help=f"{opt.help} [env {opt.env}, ini {opt.dest}]",
            )
        parser.addini(opt.dest, help=opt.help, default=None)
    group.addoption(
        "--drill", action="append", default=[], metavar="NAME", help="run only the named drill(s); repeatable"
    )


def check(config: pytest.Config) -> None:
    """Resolve every option now, so a bad env or ini value stops the run before any test (exit code 4),
    as a bad command-line value does."""
    if config.getoption("help", False):
        return  # --help must work whatever the environment holds
    problems = []
    for opt in OPTIONS:
        try:
            resolve(config, opt.name)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise pytest.UsageError("invalid pytest-mnops settings:\n  " + "\n  ".join(problems))


def is_set(config: pytest.Config, name: str) -> bool:
    """Whether the option was given at all (CLI, env or ini), rather than left at its default."""
    opt = BY_NAME[name]
    return config.getoption(opt.dest) is not None or os.environ.get(opt.env, "") != "" or bool(config.getini(opt.dest))


def resolve(config: pytest.Config, name: str) -> Any:
    """The effective value of one option, with the precedence CLI > env > ini > default."""
    opt = BY_NAME[name]
    value = config.getoption(opt.dest)
    if value is not None:
        return value
    for source, raw in (
        (f"environment variable {opt.env}", os.environ.get(opt.env)),
        (f"ini key {opt.dest}", config.getini(opt.dest)),
    ):
        if raw not in (None, ""):
            try:
                return opt.parse(raw)
            except argparse.ArgumentTypeError as exc:
                raise ConfigError(f"{source}: {exc}. Fix: correct it, or override with {opt.cli}.") from None
    return opt.default
