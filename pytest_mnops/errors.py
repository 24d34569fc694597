"""One exception tree: every message names the object or file, what is wrong, and the fix."""

from __future__ import annotations


class MnopsError(Exception):
    """Root of every error pytest-mnops raises on purpose."""


class ConfigError(MnopsError):
    """An option, ini key, marker or file is wrong; the message says which and how to fix it."""


class ScenarioError(ConfigError):
    """A chaostoolkit scenario file is malformed."""


class GuardViolation(MnopsError):
    """A safety guard refused a change before anything was touched."""


class ClusterError(MnopsError):
    """The target cluster did not answer or did not reach the expected state."""


class NotFound(ClusterError):
    """The API answered 404 for the named object."""


class WaitTimeout(ClusterError):
    """A watch-based wait ran out of time; the message says what was awaited and what was last seen."""


class MonitoringUnreachable(ClusterError):
    """Prometheus, Alertmanager or the receivers did not answer (after one bounded retry): fail closed."""


class ControllerDown(ClusterError):
    """A controller the drill relies on (Argo Rollouts) does not reconcile: the verdict names it, not detection."""


class SandboxError(MnopsError):
    """A sandbox component could not be built, started or stopped."""


class SecretsError(MnopsError):
    """A secret rotation step failed; the previous value is kept."""


class RollbackError(MnopsError):
    """A rollback step failed after its retries."""


class DryRunPlanned(MnopsError):
    """A dry run (``--mnops-dry-run``) printed its plan and changed nothing: the pytest layer reports a skip."""
