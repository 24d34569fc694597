"""Placeholders in profiles, stop conditions and plots: ``${name}`` only, as in the scenarios."""

from __future__ import annotations

import pytest

from pytest_mnops.errors import ConfigError
from pytest_mnops.placeholders import fill


def test_braced_names_are_filled_and_promql_dollars_left_alone() -> None:
    query = 'sum(x{namespace="${namespace}",pod=~"${app}-.*$"}) $1 $$ ${unknown} {{ $labels.pod }}'
    assert fill(query, {"namespace": "shop", "app": "checkout", "container": None}) == (
        'sum(x{namespace="shop",pod=~"checkout-.*$"}) $1 $ ${unknown} {{ $labels.pod }}'
    )


def test_a_bare_placeholder_is_refused_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as refused:
        fill('x{namespace="$namespace",app="$app"}', {"namespace": "shop", "app": "checkout"})
    assert str(refused.value) == (
        '\'x{namespace="$namespace",app="$app"}\': $app, $namespace without braces. '
        "Fix: write ${app}, ${namespace} (placeholders are braced, as in the scenarios)."
    )
