"""Which Alertmanager receiver an alert reaches: its routing tree walked as Alertmanager 0.25 walks it.

Pure: reads the running configuration (``GET /api/v2/status`` -> ``config.original``), posts nothing.
"""

from __future__ import annotations

import re
from typing import Any

Obj = dict[str, Any]
MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*$')


def _matcher(text: str) -> tuple[str, str, str]:
    match = MATCHER.match(text)
    if match is None:
        raise ValueError(f"unparsable matcher {text!r}")
    name, op, quoted, bare = match.groups()
    return name, op, quoted if quoted is not None else (bare or "")


def _matches(route: Obj, labels: dict[str, str]) -> bool:
    checks = [(k, "=", v) for k, v in (route.get("match") or {}).items()]
    checks += [(k, "=~", v) for k, v in (route.get("match_re") or {}).items()]
    checks += [_matcher(m) for m in route.get("matchers") or []]
    for name, op, value in checks:
        actual = labels.get(name, "")
        if op in ("=~", "!~"):
            found = re.fullmatch(value, actual) is not None
            if found != (op == "=~"):
                return False
        elif (actual == value) != (op == "="):
            return False
    return True


def receivers_for(route: Obj, labels: dict[str, str], inherited: str | None = None) -> list[str]:
    """The receivers a route tree sends an alert with ``labels`` to (several where routes ``continue``)."""
    receiver = route.get("receiver") or inherited
    found: list[str] = []
    for child in route.get("routes") or []:
        if _matches(child, labels):
            found += receivers_for(child, labels, receiver)
            if not child.get("continue"):
                break
    return found or ([receiver] if receiver else [])


def integrations(receiver: Obj) -> list[str]:
    """The integrations (webhook, slack, email, pagerduty...) a receiver notifies through."""
    return [key.removesuffix("_configs") for key, value in receiver.items() if key.endswith("_configs") and value]
