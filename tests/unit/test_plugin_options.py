"""``--mnops-*`` options through a real pytest run: CLI > env > ini > default; clear errors on bad values."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pytest_mnops.options import OPTIONS

# The inner test prints the resolved target (through the fixture) and a few raw resolve() values.
SHOW = """
import dataclasses, json
from pytest_mnops.options import resolve

NAMES = ["namespace", "app", "prometheus-url", "max-pods", "max-percent", "allow-context", "allow-namespace",
         "dry-run", "training", "time-scale", "ledger", "fail-under"]

def test_show(mnops_target, pytestconfig):
    print("MNOPS-TARGET " + json.dumps(dataclasses.asdict(mnops_target), default=str))
    print("MNOPS-RESOLVED " + json.dumps({name: resolve(pytestconfig, name) for name in NAMES}))
"""


def _add_ini(pytester: pytest.Pytester, lines: str) -> None:
    ini = pytester.path / "pytest.ini"
    ini.write_text(ini.read_text().rstrip("\n") + "\n" + lines)


def _literal(text: str) -> str:
    """``text`` as an fnmatch pattern matching itself (brackets are character classes there)."""
    return text.replace("[", "[[]")


NO_CLUSTER = ("--mnops-kubeconfig", "/nonexistent", "--mnops-prometheus-url", "http://127.0.0.1:1")


def _show(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pytester.makepyfile(test_show=SHOW)
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=1)
    found = (re.search(r"(MNOPS-TARGET|MNOPS-RESOLVED) (\{.*\})$", line) for line in result.outlines)
    lines = {match[1]: json.loads(match[2]) for match in found if match}
    return lines["MNOPS-TARGET"], lines["MNOPS-RESOLVED"]


INI = """
mnops_namespace = ini-ns
mnops_app = ini-app
mnops_prometheus_url = http://ini-prometheus:9090/
mnops_max_pods = 7
mnops_max_percent = 25
mnops_allow_context = ctx-a, ctx-b,
mnops_dry_run = true
mnops_time_scale = 0.5
mnops_ledger = ini-ledger.jsonl
"""


def test_defaults_without_a_cluster(mnops_pytester: pytest.Pytester) -> None:
    target, values = _show(mnops_pytester, *NO_CLUSTER)
    assert target["kubeconfig"] == "/nonexistent"
    assert target["prometheus_url"] == "http://127.0.0.1:1"
    assert target["context"] is None
    assert target["namespace"] == "default" and target["app"] == "machine-native-ops"
    assert target["allowed_namespaces"] == ["default"] and target["allowed_contexts"] == []
    assert target["github_url"] == "https://api.github.com"
    assert target["time_scale"] == 1.0 and target["sandbox"] is False
    assert values == {
        "namespace": "default",
        "app": "machine-native-ops",
        "prometheus-url": "http://127.0.0.1:1",
        "max-pods": 50,
        "max-percent": 50.0,
        "allow-context": [],
        "allow-namespace": [],
        "dry-run": False,
        "training": False,
        "time-scale": None,
        "ledger": ".mnops/ledger.jsonl",
        "fail-under": None,
    }


def test_ini_over_default(mnops_pytester: pytest.Pytester) -> None:
    _add_ini(mnops_pytester, INI)
    target, values = _show(mnops_pytester)
    assert target["namespace"] == "ini-ns" and target["app"] == "ini-app"
    assert target["prometheus_url"] == "http://ini-prometheus:9090"  # parsed: trailing slash dropped
    assert target["allowed_namespaces"] == ["ini-ns"]
    assert target["allowed_contexts"] == ["ctx-a", "ctx-b"]
    assert target["time_scale"] == 0.5
    assert values["max-pods"] == 7 and values["max-percent"] == 25.0  # typed, not strings
    assert values["dry-run"] is True
    assert values["ledger"] == "ini-ledger.jsonl"


def test_env_over_ini(mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_ini(mnops_pytester, INI)
    monkeypatch.setenv("MNOPS_NAMESPACE", "env-ns")
    monkeypatch.setenv("MNOPS_PROMETHEUS_URL", "https://env-prometheus")
    monkeypatch.setenv("MNOPS_MAX_PODS", "8")
    monkeypatch.setenv("MNOPS_DRY_RUN", "false")  # an explicit false in the env beats the ini's true
    monkeypatch.setenv("MNOPS_ALLOW_NAMESPACE", "env-ns,shared")
    monkeypatch.setenv("MNOPS_APP", "")  # empty counts as unset: the ini value stays
    target, values = _show(mnops_pytester)
    assert target["namespace"] == "env-ns" and target["app"] == "ini-app"
    assert target["prometheus_url"] == "https://env-prometheus"
    assert target["allowed_namespaces"] == ["env-ns", "shared"]
    assert values["max-pods"] == 8 and values["max-percent"] == 25.0
    assert values["dry-run"] is False


def test_cli_over_env(mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_ini(mnops_pytester, INI)
    monkeypatch.setenv("MNOPS_NAMESPACE", "env-ns")
    monkeypatch.setenv("MNOPS_PROMETHEUS_URL", "not-a-url")  # never parsed: the CLI value wins first
    monkeypatch.setenv("MNOPS_MAX_PODS", "8")
    monkeypatch.setenv("MNOPS_TRAINING", "false")
    target, values = _show(
        mnops_pytester,
        "--mnops-namespace=cli-ns",
        "--mnops-prometheus-url",
        "http://cli-prometheus:9090",
        "--mnops-max-pods=9",
        "--mnops-training",
        "--mnops-context",
        "kind-chaos",
        "--mnops-fail-under=75",
    )
    assert target["namespace"] == "cli-ns"
    assert target["prometheus_url"] == "http://cli-prometheus:9090"
    assert target["context"] == "kind-chaos"
    assert values["max-pods"] == 9 and values["training"] is True and values["fail-under"] == 75.0
    assert values["app"] == "ini-app" and values["max-percent"] == 25.0  # untouched ones fall through


def test_pyproject_ini_options(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.path.joinpath("pytest.ini").unlink()
    mnops_pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        addopts = "--strict-markers --strict-config -p no:cacheprovider"
        filterwarnings = ["error"]
        mnops_namespace = "toml-ns"
        mnops_max_pods = "3"
        mnops_allow_context = "prod-eu"
    """)
    target, values = _show(mnops_pytester)
    assert target["namespace"] == "toml-ns" and target["allowed_contexts"] == ["prod-eu"]
    assert values["max-pods"] == 3


def test_every_option_has_cli_env_and_ini_names() -> None:
    for option in OPTIONS:
        suffix = option.name.replace("-", "_")
        assert (option.cli, option.env, option.dest) == (
            f"--mnops-{option.name}",
            f"MNOPS_{suffix.upper()}",
            f"mnops_{suffix}",
        )
    assert len({o.name for o in OPTIONS}) == len(OPTIONS)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MNOPS_PROMETHEUS_URL", "prometheus:9090", "'prometheus:9090' is not an http(s) URL"),
        ("MNOPS_TIME_SCALE", "12", "'12' must be in (0, 1]"),
        ("MNOPS_SANDBOX", "maybe", "'maybe' is not a boolean (use true/false)"),
        ("MNOPS_FAIL_UNDER", "abc", "'abc' is not a number"),
    ],
)
def test_bad_env_value_stops_the_run_before_any_test_naming_the_variable(
    mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """Exit code 4 at configure time, as a bad command-line value: no test runs, nothing is written."""
    monkeypatch.setenv(variable, value)
    mnops_pytester.makepyfile(test_show=SHOW)
    result = mnops_pytester.runpytest("--junitxml=junit.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    option = next(o for o in OPTIONS if o.env == variable)
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid pytest-mnops settings:",
            f"  environment variable {variable}: {message}*. Fix: correct it, or override with {option.cli}.",
        ]
    )
    assert "test_show" not in result.stdout.str()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "mnops_max_pods = lots",
            "ini key mnops_max_pods: 'lots' is not a whole number. Fix: correct it, or override with --mnops-max-pods.",
        ),
        (
            "mnops_alertmanager_url = alertmanager.local",
            "ini key mnops_alertmanager_url: 'alertmanager.local' is "
            "not an http(s) URL*Fix: correct it, or override with --mnops-alertmanager-url.",
        ),
    ],
)
def test_bad_ini_value_stops_the_run_naming_the_key(mnops_pytester: pytest.Pytester, line: str, message: str) -> None:
    _add_ini(mnops_pytester, line + "\n")
    mnops_pytester.makepyfile(test_show=SHOW)
    result = mnops_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"  {message}"])


def test_help_works_whatever_the_environment_holds(
    mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNOPS_FAIL_UNDER", "abc")
    assert mnops_pytester.runpytest("--help").ret == pytest.ExitCode.OK


def test_a_good_cli_value_overrides_a_bad_env_value(
    mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MNOPS_MAX_PODS", "-3")
    _, values = _show(mnops_pytester, "--mnops-max-pods", "4")
    assert values["max-pods"] == 4


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("--mnops-max-pods=0", "argument --mnops-max-pods: '0' must be at least 1"),
        ("--mnops-max-pods=two", "argument --mnops-max-pods: 'two' is not a whole number"),
        ("--mnops-max-percent=150", "argument --mnops-max-percent: '150' must be in (0, 100]"),
        (
            "--mnops-prometheus-url=prometheus:9090",
            "argument --mnops-prometheus-url: 'prometheus:9090' is not an http(s) URL (e.g. http://127.0.0.1:9090)",
        ),
        ("--mnops-time-scale=fast", "argument --mnops-time-scale: 'fast' is not a number"),
        ("--mnops-fail-under=101", "argument --mnops-fail-under: '101' must be in [0, 100]"),
    ],
)
def test_bad_cli_value_is_a_usage_error(mnops_pytester: pytest.Pytester, argument: str, message: str) -> None:
    mnops_pytester.makepyfile(test_show=SHOW)
    result = mnops_pytester.runpytest(argument)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([_literal(f"*error: {message}")])
    assert "MNOPS-TARGET" not in result.stdout.str()


def test_flags_take_no_value(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_show=SHOW)
    result = mnops_pytester.runpytest("--mnops-dry-run=yes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --mnops-dry-run: ignored explicit argument 'yes'*"])
