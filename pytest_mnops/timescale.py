"""Scale the durations in manifests and rules, so production timings run in seconds on the sandbox.

The repository's assets carry production timings (1m analysis intervals, 2m alert `for:` durations). The
sandbox applies them through :func:`scale_tree` with one factor, so every drill waits the same fraction of
what it would wait in production and the assets themselves are never forked into a "fast" copy.
"""

from __future__ import annotations

import re
from typing import Any

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
# A range selector or subquery: [5m], [1h30m], [30m:1m], [30m:] (the resolution is a duration too).
_RANGE = re.compile(r"\[((?:\d+(?:ms|s|m|h|d))+)(?:(:)((?:\d+(?:ms|s|m|h|d))+)?)?\]")
# Keys whose string values are durations in Argo Rollouts, Prometheus and Alertmanager documents.
DURATION_KEYS = frozenset(
    {"interval", "initialDelay", "duration", "for", "group_wait", "group_interval", "repeat_interval"}
)
# rate() needs two samples inside its window: with a 1s scrape, windows under 4s return nothing.
MIN_RANGE_S = 4.0


def seconds(text: str) -> float:
    if not _DURATION.match(text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def format_seconds(value: float) -> str:
    if value >= 1 and abs(value - round(value)) < 1e-9:
        return f"{round(value)}s"
    return f"{round(value * 1000)}ms"


def scale(text: str, factor: float, minimum_s: float = 1.0) -> str:
    return format_seconds(max(minimum_s, seconds(text) * factor))


def scale_promql(query: str, factor: float) -> str:
    """Scale every range selector (``[5m]``) and subquery (``[30m:1m]``, range and resolution) in PromQL."""

    def scaled(match: re.Match[str]) -> str:
        window, colon, step = match.groups()
        out = "[" + scale(window, factor, MIN_RANGE_S)
        if colon:
            out += ":" + (scale(step, factor) if step else "")
        return out + "]"

    return _RANGE.sub(scaled, query)


def scale_tree(node: Any, factor: float, *, promql_keys: frozenset[str] = frozenset({"expr", "query"})) -> Any:
    """A copy of a YAML tree with duration values and PromQL range selectors scaled by ``factor``."""
    if factor == 1:
        return node
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in DURATION_KEYS and isinstance(value, str) and _DURATION.match(value):
                out[key] = scale(value, factor)
            elif key in promql_keys and isinstance(value, str):
                out[key] = scale_promql(value, factor)
            else:
                out[key] = scale_tree(value, factor, promql_keys=promql_keys)
        return out
    if isinstance(node, list):
        return [scale_tree(item, factor, promql_keys=promql_keys) for item in node]
    return node
