"""The ``drill`` and ``validation`` markers: registered, validated at collection, selectable."""

from __future__ import annotations

import pytest

from pytest_mnops.drills import CATEGORIES, DRILLS

SUITE = """
import pytest

@pytest.mark.drill("pod-failure", budget_s=300)
def test_pod_failure():
    pass

@pytest.mark.drill("pod-failure", human_step=True)
@pytest.mark.parametrize("replicas", [1, 3])
def test_pod_failure_replicas(replicas):
    pass

@pytest.mark.drill("high-latency")
def test_high_latency():
    pass

@pytest.mark.validation("monitoring", reads="repo")
def test_rules_are_valid():
    pass

@pytest.mark.validation("rollouts")
def test_rollout_healthy():
    pass

def test_plain():
    pass

@pytest.mark.drill("canary-failure")
class TestCanary:
    def test_aborts(self):
        pass
"""


def _literal(text: str) -> str:
    return text.replace("[", "[[]")


def test_markers_are_registered(mnops_pytester: pytest.Pytester) -> None:
    result = mnops_pytester.runpytest("--markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.drill(name, *, budget_s=None, human_step=False, heals_itself=False, stop_when=()): a chaos "
            "drill; name is any slug (lowercase letters, digits, dashes), e.g. one of the built-in "
            + ", ".join(DRILLS)
            + "*stop_when lists PromQL stop conditions of this drill",
            "@pytest.mark.validation(category, *, reads='cluster'): a validation check; category is one of "
            + ", ".join(CATEGORIES)
            + "*",
        ]
    )


def test_strict_markers_accepts_both(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_suite=SUITE)
    result = mnops_pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=8)


def test_an_unregistered_marker_still_fails_under_strict_markers(mnops_pytester: pytest.Pytester) -> None:
    """Sanity check of the inner ini: the run really is strict."""
    mnops_pytester.makepyfile("import pytest\n@pytest.mark.drils('pod-failure')\ndef test_a():\n    pass\n")
    result = mnops_pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'drils' not found in `markers` configuration option*"])


def test_a_drill_name_that_is_no_slug_is_a_usage_error_with_the_fix(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_bad="import pytest\n@pytest.mark.drill('Checkout Kill')\ndef test_a():\n    pass\n")
    result = mnops_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid pytest-mnops markers:",
            "  test_bad.py::test_a: @pytest.mark.drill('Checkout Kill'): drill name 'Checkout Kill' is not a slug. "
            "Fix: use lowercase letters, digits and single dashes, e.g. 'checkout-pod-kill'",
        ]
    )


OWN_DRILLS = """
import pytest

@pytest.mark.drill("checkout-pod-kill", budget_s=120)
def test_checkout():
    pass

@pytest.mark.drill("pod-failure")
def test_builtin():
    pass
"""


def test_any_slug_names_a_drill_selectable_scored_and_in_junit(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_own=OWN_DRILLS)
    result = mnops_pytester.runpytest("--drill", "checkout-pod-kill", "--junitxml=junit.xml", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_checkout PASSED*", "checkout-pod-kill *", "resilience score: * over 1 drills"])
    assert '<property name="drill" value="checkout-pod-kill" />' in (mnops_pytester.path / "junit.xml").read_text()


@pytest.mark.parametrize(
    ("marker", "problem"),
    [
        ("drill('pod-failure', budget=3)", "*unexpected keyword argument 'budget'"),
        ("drill('pod-failure', budget_s=0)", "budget_s must be positive, got 0"),
        ("drill()", "*missing 1 required positional argument: 'name'"),
        ("drill('pod-failure', 300)", "*takes 1 positional argument but 2 were given"),
        ("validation('bogus')", "unknown validation category 'bogus'; valid categories: " + ", ".join(CATEGORIES)),
        ("validation('monitoring', reads='internet')", "reads must be 'cluster' or 'repo', got 'internet'"),
    ],
)
def test_bad_marker_arguments_name_the_test(mnops_pytester: pytest.Pytester, marker: str, problem: str) -> None:
    mnops_pytester.makepyfile(
        test_bad=f"""
        import pytest

        class TestGroup:
            @pytest.mark.{marker}
            def test_it(self):
                pass
    """
    )
    result = mnops_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = f"  test_bad.py::TestGroup::test_it: @pytest.mark.{marker}: {problem}"
    result.stderr.fnmatch_lines([_literal(expected)])


def test_every_bad_marker_is_reported_at_once(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.drill("no pe")
        def test_a():
            pass

        @pytest.mark.validation("bogus")
        def test_b():
            pass

        @pytest.mark.drill("pod-failure")
        def test_fine():
            pass
    """
    )
    result = mnops_pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*test_bad.py::test_a: *drill name 'no pe' is not a slug*",
            "*test_bad.py::test_b: *unknown validation category 'bogus'*",
        ]
    )
    assert "test_fine" not in result.stderr.str()


def test_bad_marker_fails_collect_only_too(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_bad="import pytest\n@pytest.mark.drill('NOPE')\ndef test_a():\n    pass\n")
    result = mnops_pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_drill_option_selects_only_that_drill(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_suite=SUITE)
    result = mnops_pytester.runpytest("--drill", "pod-failure", "-v")
    result.assert_outcomes(passed=3, deselected=5)
    result.stdout.fnmatch_lines(["*collected 8 items / 5 deselected / 3 selected*"])
    result.stdout.fnmatch_lines(
        [
            "*test_pod_failure PASSED*",
            _literal("*test_pod_failure_replicas[1] PASSED*"),
            _literal("*test_pod_failure_replicas[3] PASSED*"),
        ]
    )
    assert "test_high_latency" not in result.stdout.str()


def test_drill_option_is_repeatable_and_sees_class_markers(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_suite=SUITE)
    result = mnops_pytester.runpytest("--drill", "high-latency", "--drill", "canary-failure", "-v")
    result.assert_outcomes(passed=2, deselected=6)
    result.stdout.fnmatch_lines(["*test_high_latency PASSED*", "*TestCanary::test_aborts PASSED*"])


def test_drill_option_with_a_drill_nobody_marked_lists_the_collected_ones(mnops_pytester: pytest.Pytester) -> None:
    """A typo must not pass as a run that proved nothing."""
    mnops_pytester.makepyfile(test_suite=SUITE)
    result = mnops_pytester.runpytest("--drill", "pod-failure", "--drill", "secret-rotation")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --drill secret-rotation: no collected test has @pytest.mark.drill('secret-rotation'); drills "
            "collected: canary-failure, high-latency, pod-failure. Fix: correct the name or the test paths."
        ]
    )


def test_a_drill_option_that_is_no_slug_is_a_usage_error(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_suite=SUITE)
    result = mnops_pytester.runpytest("--drill", "Pod Failure")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --drill Pod Failure: drill name 'Pod Failure' is not a slug*"])


@pytest.mark.parametrize(
    ("expression", "passed", "deselected"),
    [("drill", 5, 3), ("validation", 2, 6), ("not drill and not validation", 1, 7), ("drill or validation", 7, 1)],
)
def test_marker_expressions_select(
    mnops_pytester: pytest.Pytester, expression: str, passed: int, deselected: int
) -> None:
    mnops_pytester.makepyfile(test_suite=SUITE)
    result = mnops_pytester.runpytest("-m", expression)
    result.assert_outcomes(passed=passed, deselected=deselected)


def test_drill_option_and_marker_expression_combine(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_suite=SUITE)
    result = mnops_pytester.runpytest("-m", "drill", "--drill", "pod-failure")
    result.assert_outcomes(passed=3, deselected=5)


def test_validation_results_get_junit_properties(mnops_pytester: pytest.Pytester) -> None:
    mnops_pytester.makepyfile(test_suite=SUITE)
    result = mnops_pytester.runpytest("-m", "validation", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, deselected=6)
    xml = (mnops_pytester.path / "junit.xml").read_text()
    for category, reads in (("monitoring", "repo"), ("rollouts", "cluster")):
        assert (
            f'<property name="validation_category" value="{category}" /><property name="reads" value="{reads}" />'
        ) in xml
