"""The guards' exact wording and arithmetic at the edges the drills rely on (see test_plugin_guards.py for the
rest): a refused context says the whole fix, a count of pods wins over the percent, the percent is of all pods."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_mnops.errors import GuardViolation
from tests.unit.test_plugin_guards import TARGET, FakeKube, _guards, _pods


def test_a_refused_context_says_the_whole_fix() -> None:
    target = dataclasses.replace(TARGET, context="production")
    with pytest.raises(GuardViolation) as refused:
        _guards(target).check_target(namespace="drills", what="scenario pod-failure")
    assert str(refused.value) == (
        "scenario pod-failure: kube context 'production' is not allowed for destructive drills; nothing was "
        "changed. Fix: add it with --mnops-allow-context=production (and pass --mnops-context) if you really mean "
        "to break this cluster, or use --mnops-sandbox."
    )


def test_a_count_of_pods_wins_over_the_default_percent() -> None:
    plan = _guards().declared(FakeKube(_pods(4)), {"selector": "app=demo", "pods": 1}, namespace="drills")  # type: ignore[arg-type]
    assert plan is not None and (plan.touched, plan.percent) == (1, 25.0)


def test_the_default_percent_is_every_pod_even_at_scale() -> None:
    plan = _guards().declared(FakeKube(_pods(200)), {"selector": "app=demo"}, namespace="drills")  # type: ignore[arg-type]
    assert plan is not None and plan.touched == 200
