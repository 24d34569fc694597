"""Names and defaults more than one layer shares, in one place so the plugin, every CLI command, the sandbox
and its stand-ins agree (no SDK, no pytest: anything may import it)."""

from __future__ import annotations

import os
from collections.abc import Mapping

VERSION = "0.1.0"  # pyproject.toml's [project] version; `pytest_mnops.__version__`
# The sandbox's kube context, as its kubeconfig names it and `mnops sandbox env` exports it.
SANDBOX_CONTEXT = "mnops-sandbox"
# The repository the GitHub stand-in serves, and its fixed token (a sandbox credential, not a secret).
SANDBOX_GITHUB_REPO = "machinenativeops/machine-native-ops"
SANDBOX_GITHUB_TOKEN = "mnops-sandbox-token"
DEFAULT_GITHUB_URL = "https://api.github.com"
# Where a GitHub token is read from, first set wins: the project's own name before the generic one.
GITHUB_TOKEN_ENV = ("MNOPS_GITHUB_TOKEN", "GITHUB_TOKEN")
# The fault ledger, written before every injection and replayed by `mnops recover`.
LEDGER_FILE = ".mnops/ledger.jsonl"
# While this file exists every running drill is stopped and reverted, and none starts (--mnops-stop-file).
STOP_FILE = ".mnops/STOP"
# Where rollbacks (`mnops rollback`, the emergency-rollback drill) write their snapshot first.
SNAPSHOT_DIR = ".mnops/rollback-snapshots"
ARGO_NAMESPACE = "argo-rollouts"
# The label Argo Rollouts puts on a revision's pods (and Deployments their own variant: the traffic stand-in
# reads both).
ROLLOUT_HASH_LABEL = "rollouts-pod-template-hash"
DEPLOYMENT_HASH_LABEL = "pod-template-hash"
# The ConfigMaps through which an app profile tells the traffic stand-in how its app's metrics look.
TRAFFIC_LABEL = "traffic.mnops.dev/profile"
# The validation suite's expectation sets (--mnops-expect, or an app profile's `expect`).
EXPECTATION_SETS = ("properties", "reference")
# Nodes KWOK manages carry this annotation.
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def github_token(env: Mapping[str, str] = os.environ) -> str | None:
    """The GitHub token of the environment (GITHUB_TOKEN_ENV, in order), or None."""
    return next((token for name in GITHUB_TOKEN_ENV if (token := env.get(name, "").strip())), None)
