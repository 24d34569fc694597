"""pytest-mnops: chaos and drill testing for Kubernetes canary deployments.

The public API: what drill suites, tests and users import, from here rather than from the modules behind it.
Each name loads its module on first use (PEP 562), so importing the plugin, or any one module, stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_mnops.names import VERSION as __version__

# name -> (module, attribute there)
_API = {
    # running drills
    "ChaosRunner": ("pytest_mnops.chaos.runner", "ChaosRunner"),
    "DrillTest": ("pytest_mnops.chaos.runner", "DrillTest"),
    "DrillJournal": ("pytest_mnops.chaos.journal", "DrillJournal"),
    "DrillSpec": ("pytest_mnops.drills", "DrillSpec"),
    "DRILLS": ("pytest_mnops.drills", "DRILLS"),
    "CATEGORIES": ("pytest_mnops.drills", "CATEGORIES"),
    "Ledger": ("pytest_mnops.guards.ledger", "Ledger"),
    "drill_facts": ("pytest_mnops.stash", "drill_facts"),
    "option": ("pytest_mnops.options", "resolve"),
    # the target and its clients
    "Target": ("pytest_mnops.target", "Target"),
    "resolve_target": ("pytest_mnops.target", "resolve_target"),
    "Kube": ("pytest_mnops.k8s", "Kube"),
    "Resource": ("pytest_mnops.k8s", "Resource"),
    "resources": ("pytest_mnops.k8s", "resources"),
    "pod_ready": ("pytest_mnops.k8s", "pod_ready"),
    "condition_true": ("pytest_mnops.k8s", "condition_true"),
    "Prometheus": ("pytest_mnops.observability.prometheus", "Prometheus"),
    "Alerts": ("pytest_mnops.observability.alerts", "Alerts"),
    # Argo Rollouts helpers
    "Rollout": ("pytest_mnops.rollouts", "Rollout"),
    "RolloutStatus": ("pytest_mnops.rollouts", "RolloutStatus"),
    "read_status": ("pytest_mnops.rollouts", "read_status"),
    "REVISION_ANNOTATION": ("pytest_mnops.rollouts", "REVISION_ANNOTATION"),
    "ROLLOUT_HASH_LABEL": ("pytest_mnops.names", "ROLLOUT_HASH_LABEL"),
    "RollbackHelper": ("pytest_mnops.rollback.helper", "RollbackHelper"),
    # errors
    "MnopsError": ("pytest_mnops.errors", "MnopsError"),
    "ConfigError": ("pytest_mnops.errors", "ConfigError"),
    "ScenarioError": ("pytest_mnops.errors", "ScenarioError"),
    "GuardViolation": ("pytest_mnops.errors", "GuardViolation"),
    "ClusterError": ("pytest_mnops.errors", "ClusterError"),
    "NotFound": ("pytest_mnops.errors", "NotFound"),
    "WaitTimeout": ("pytest_mnops.errors", "WaitTimeout"),
    "MonitoringUnreachable": ("pytest_mnops.errors", "MonitoringUnreachable"),
    "ControllerDown": ("pytest_mnops.errors", "ControllerDown"),
    "SandboxError": ("pytest_mnops.errors", "SandboxError"),
    "SecretsError": ("pytest_mnops.errors", "SecretsError"),
    "RollbackError": ("pytest_mnops.errors", "RollbackError"),
    "DryRunPlanned": ("pytest_mnops.errors", "DryRunPlanned"),
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'pytest_mnops' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


if TYPE_CHECKING:  # the same names, for type checkers and editors
    from pytest_mnops.chaos.journal import DrillJournal as DrillJournal
    from pytest_mnops.chaos.runner import ChaosRunner as ChaosRunner
    from pytest_mnops.chaos.runner import DrillTest as DrillTest
    from pytest_mnops.drills import CATEGORIES as CATEGORIES
    from pytest_mnops.drills import DRILLS as DRILLS
    from pytest_mnops.drills import DrillSpec as DrillSpec
    from pytest_mnops.errors import ClusterError as ClusterError
    from pytest_mnops.errors import ConfigError as ConfigError
    from pytest_mnops.errors import ControllerDown as ControllerDown
    from pytest_mnops.errors import DryRunPlanned as DryRunPlanned
    from pytest_mnops.errors import GuardViolation as GuardViolation
    from pytest_mnops.errors import MnopsError as MnopsError
    from pytest_mnops.errors import MonitoringUnreachable as MonitoringUnreachable
    from pytest_mnops.errors import NotFound as NotFound
    from pytest_mnops.errors import RollbackError as RollbackError
    from pytest_mnops.errors import SandboxError as SandboxError
    from pytest_mnops.errors import ScenarioError as ScenarioError
    from pytest_mnops.errors import SecretsError as SecretsError
    from pytest_mnops.errors import WaitTimeout as WaitTimeout
    from pytest_mnops.guards.ledger import Ledger as Ledger
    from pytest_mnops.k8s import Kube as Kube
    from pytest_mnops.k8s import Resource as Resource
    from pytest_mnops.k8s import condition_true as condition_true
    from pytest_mnops.k8s import pod_ready as pod_ready
    from pytest_mnops.k8s import resources as resources
    from pytest_mnops.names import ROLLOUT_HASH_LABEL as ROLLOUT_HASH_LABEL
    from pytest_mnops.observability.alerts import Alerts as Alerts
    from pytest_mnops.observability.prometheus import Prometheus as Prometheus
    from pytest_mnops.options import resolve as option  # noqa: F401 - re-exported under its public name
    from pytest_mnops.rollback.helper import RollbackHelper as RollbackHelper
    from pytest_mnops.rollouts import REVISION_ANNOTATION as REVISION_ANNOTATION
    from pytest_mnops.rollouts import Rollout as Rollout
    from pytest_mnops.rollouts import RolloutStatus as RolloutStatus
    from pytest_mnops.rollouts import read_status as read_status
    from pytest_mnops.target import Target as Target
    from pytest_mnops.target import resolve_target as resolve_target
