"""What a user sees before any cluster exists: --help, --fixtures, --collect-only, and a cheap import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from pytest_mnops import fixtures
from pytest_mnops.options import OPTIONS

HEAVY = ("kubernetes", "chaoslib", "chaosk8s", "prometheus_api_client", "matplotlib", "github", "nacl")
FIXTURES = (
    "k8s",
    "rollout",
    "prometheus",
    "alerts",
    "chaos",
    "timeline",
    "rollback",
    "secret_rotator",
    "mnops_target",
    "mnops_sandbox",
    "mnops_profile",
    "mnops_drill",
)

USES_EVERYTHING = """
import pytest

@pytest.mark.drill("pod-failure", budget_s=300)
def test_pod_failure(chaos, k8s, rollout, prometheus, alerts, timeline):
    raise AssertionError("never runs under --collect-only")

@pytest.mark.drill("emergency-rollback", human_step=True)
def test_emergency_rollback(rollback, timeline):
    raise AssertionError("never runs under --collect-only")

@pytest.mark.drill("secret-rotation")
def test_secret_rotation(secret_rotator, mnops_target):
    raise AssertionError("never runs under --collect-only")

@pytest.mark.validation("monitoring", reads="repo")
def test_rules(mnops_target):
    raise AssertionError("never runs under --collect-only")
"""


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_help_shows_the_mnops_group_with_env_and_ini_names(mnops_pytester: pytest.Pytester) -> None:
    result = mnops_pytester.runpytest("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["pytest-mnops: chaos drills and validation for Argo Rollouts:"])
    text = _flat(result.stdout.str())
    for option in OPTIONS:
        assert option.cli in text
        if not option.flag:
            assert f"[env {option.env}, ini {option.dest}]" in text, option.name
        assert f"{option.dest} (string)" in text  # the ini key, in the [pytest] ini-options section
    assert "--drill=NAME run only the named drill(s); repeatable" in text


def test_fixtures_are_listed_with_their_docstrings(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = mnops_pytester.runpytest("--fixtures")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*fixtures defined from pytest_mnops.fixtures*"])
    for name in FIXTURES:
        doc = inspect.getdoc(getattr(fixtures, name))
        assert doc, f"fixture {name} has no docstring"
        result.stdout.fnmatch_lines([f"{name}*-- *pytest_mnops/fixtures.py:*", f"    {doc.splitlines()[0]}"])


def test_collect_only_needs_no_cluster(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_drills=USES_EVERYTHING)
    result = mnops_pytester.runpytest(
        "--collect-only", "-q", "--mnops-kubeconfig", "/nonexistent", "--mnops-prometheus-url", "http://127.0.0.1:1"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "test_drills.py::test_pod_failure",
            "test_drills.py::test_emergency_rollback",
            "test_drills.py::test_secret_rotation",
            "test_drills.py::test_rules",
            "4 tests collected*",
        ]
    )


def test_collect_only_with_drill_selection(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_drills=USES_EVERYTHING)
    result = mnops_pytester.runpytest("--collect-only", "-q", "--drill", "secret-rotation")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_drills.py::test_secret_rotation", "1/4 tests collected (3 deselected)*"])


def test_plugin_import_pulls_in_no_sdk() -> None:
    code = f"import pytest_mnops.plugin, sys; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_collection_pulls_in_no_sdk(pytester: pytest.Pytester) -> None:
    """A whole ``--collect-only`` run (a fresh process: sys.modules is process-global) imports no SDK."""
    pytester.makepyfile(test_drills=USES_EVERYTHING)
    pytester.makeconftest(f"""
        import sys

        def pytest_collection_finish(session):
            print("MNOPS-HEAVY", [m for m in {HEAVY!r} if m in sys.modules])
    """)
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["MNOPS-HEAVY []", "4 tests collected*"])
