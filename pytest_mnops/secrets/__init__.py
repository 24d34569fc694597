"""GitHub Actions secret rotation (PyGithub + PyNaCl) with an audit log that never holds a value.

``secrets.github`` is the only module importing PyGithub. The names below load on first use (PEP 562), so
importing ``pytest_mnops.cli.secrets`` for ``mnops --help`` does not pay for PyGithub.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AuditLog": "audit",
    "AuditRecord": "audit",
    "short_hash": "audit",
    "GENERATORS": "values",
    "RetryPolicy": "rotation",
    "RotationFailed": "rotation",
    "RotationResult": "rotation",
    "SecretAge": "rotation",
    "SecretRotator": "rotation",
    "SecretValue": "values",
    "sync_to_kubernetes": "rotation",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
