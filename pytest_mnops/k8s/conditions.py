"""Predicates over objects as the API serves them (plain dicts)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def condition_true(obj: Obj, condition: str) -> bool:
    return any(
        c.get("type") == condition and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def pod_ready(pod: Obj) -> bool:
    return (
        not pod["metadata"].get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") == "Running"
        and condition_true(pod, "Ready")
    )
