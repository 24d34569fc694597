"""Automation: the `mnops` commands exist, a rollback and a secret rotation can be rehearsed (dry run) without
changing anything, and no injected fault is waiting in the ledger to be reverted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_mnops import Kube, Rollout, Target, option, resources

Obj = dict[str, Any]
COMMANDS = ("", "sandbox", "rollback", "secrets", "recover")
CLI_TIMEOUT_S = 60
# What the secret-rotation drill rotates (scenarios/secret-rotation.yaml).
DRILL_SECRET = {
    "github_secret": "API_TOKEN",
    "environment": "staging",
    "k8s_secret": "machine-native-ops-credentials",
    "k8s_key": "api-token",
}
DEFAULT_REPO = "machinenativeops/machine-native-ops"
# A Rollout's fields a rollback writes: the spec (undo, pause) and the status verbs (abort, promote).
WRITABLE_STATUS = ("abort", "pauseConditions", "promoteFull")


@pytest.fixture(scope="session")
def cli_help() -> dict[str, subprocess.CompletedProcess[str]]:
    """`mnops [COMMAND] --help` for every command, run concurrently (each is a fresh interpreter)."""
    procs = {
        command: subprocess.Popen(
            [sys.executable, "-m", "pytest_mnops.cli", *command.split(), "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in COMMANDS
    }
    results = {}
    for command, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\n(killed after {CLI_TIMEOUT_S}s)"
        results[command] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


@pytest.mark.validation("automation", reads="repo")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"mnops {c}".strip())
def test_cli_command_exists(cli_help: dict[str, subprocess.CompletedProcess[str]], command: str) -> None:
    proc = cli_help[command]
    shown = f"mnops {command} --help".replace("  ", " ")
    assert proc.returncode == 0 and "usage:" in proc.stdout, (
        f"`{shown}` (python -m pytest_mnops.cli) exited {proc.returncode}: "
        f"{(proc.stderr or proc.stdout).strip()[-600:]}. The runbooks and docs tell operators to use it. "
        "Fix: install a pytest-mnops that provides the command (`pip install -U pytest-mnops`), or register "
        "the subcommand in pytest_mnops/cli/ (one module per command)."
    )
    if not command:
        missing = [c for c in COMMANDS if c and c not in proc.stdout]
        assert not missing, (
            f"`mnops --help` does not list the subcommand(s) {', '.join(missing)}. "
            "Fix: register them in pytest_mnops/cli/__init__.py."
        )


def _rollout_state(rollout: Rollout) -> tuple[str, Obj]:
    obj = rollout.get()
    status = obj.get("status") or {}
    return obj["metadata"]["resourceVersion"], {
        "generation": obj["metadata"].get("generation"),
        "spec": obj["spec"],
        **{key: status.get(key) for key in WRITABLE_STATUS},
    }


@pytest.mark.validation("automation", reads="cluster")
def test_rollback_dry_run_changes_nothing(
    request: pytest.FixtureRequest, rollout: Rollout, argo_rollouts: None, not_applicable: Any
) -> None:
    try:
        helper = request.getfixturevalue("rollback")
    except ImportError as exc:
        pytest.fail(
            f"the rollback mechanism is not available in this installation ({exc}). Fix: install a "
            "pytest-mnops with pytest_mnops.rollback (`pip install -U pytest-mnops`).",
            pytrace=False,
        )
    version_before, before = _rollout_state(rollout)
    revisions = rollout.revisions()
    status = rollout.status()
    if len(revisions) < 2 and status.stable_is_current:
        not_applicable(
            f"Rollout {rollout.namespace}/{rollout.name} has only revision "
            f"{', '.join(map(str, revisions)) or 'none'}, so a rollback has nothing to go back to "
            "until a second revision is deployed"
        )
    revisions_before = {rev: rs["metadata"]["resourceVersion"] for rev, rs in revisions.items()}
    helper.rollback("validation suite: rehearsal, nothing may change", dry_run=True)
    version_after, after = _rollout_state(rollout)
    revisions_after = {rev: rs["metadata"]["resourceVersion"] for rev, rs in rollout.revisions().items()}
    where = f"Rollout {rollout.namespace}/{rollout.name}"
    if version_after != version_before:
        # The controller may have written status meanwhile; what a rollback would write must be untouched.
        changed = [key for key in before if before[key] != after[key]]
        assert not changed, (
            f"a dry-run rollback changed {where}: {', '.join(changed)} (resourceVersion {version_before} "
            f"-> {version_after}). Fix: RollbackHelper.rollback(dry_run=True) must only read (dryRun=All on "
            f"every write). Check the Rollout now: `kubectl argo rollouts get rollout {rollout.name} -n "
            f"{rollout.namespace}` (a drill running meanwhile also changes it: then run again when idle)."
        )
    assert revisions_after == revisions_before, (
        f"a dry-run rollback changed the ReplicaSets of {where} (revision: resourceVersion) "
        f"{revisions_before} -> {revisions_after}. Fix: RollbackHelper.rollback(dry_run=True) must only "
        "read."
    )


def _github_token(target: Target) -> str | None:
    token = os.environ.get("MNOPS_GITHUB_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if token:
        return token
    if target.sandbox or target.github_url.startswith(("http://127.0.0.1", "http://localhost")):
        from pytest_mnops.standins.github import DEFAULT_TOKEN

        return DEFAULT_TOKEN  # the loopback stand-in's documented token, not a secret
    return None


@pytest.mark.validation("automation", reads="cluster")
def test_secret_rotation_dry_run_changes_nothing(k8s: Kube, mnops_target: Target, tmp_path: Path) -> None:
    from pytest_mnops.secrets.rotation import SecretRotator, sync_to_kubernetes
    from pytest_mnops.secrets.values import GENERATORS

    repo = mnops_target.github_repo or DEFAULT_REPO
    token = _github_token(mnops_target)
    if token is None:
        pytest.fail(
            f"no GitHub token to rehearse the rotation on {repo} at {mnops_target.github_url}. "
            "Fix: export GITHUB_TOKEN (see docs/github-secrets-setup-guide.md).",
            pytrace=False,
        )
    namespace, name = mnops_target.namespace, DRILL_SECRET["k8s_secret"]
    k8s_before = k8s.find(resources.SECRET, name, namespace=namespace)
    with SecretRotator(
        repo=repo,
        environment=DRILL_SECRET["environment"],
        token=token,
        dry_run=True,
        base_url=mnops_target.github_url,
        audit_log=tmp_path / "audit.jsonl",
    ) as rotator:
        before = {(s.name, s.updated_at) for s in rotator.check_age(max_age_days=36500)}
        result = rotator.rotate(DRILL_SECRET["github_secret"])
        # The Kubernetes half of the drill, rehearsed the same way: admitted by the API server, not stored.
        sync_to_kubernetes(
            k8s,
            namespace=namespace,
            secret_name=name,
            key=DRILL_SECRET["k8s_key"],
            value=GENERATORS["token_urlsafe"](32),
            dry_run=True,
        )
        after = {(s.name, s.updated_at) for s in rotator.check_age(max_age_days=36500)}
        where = rotator.where
    k8s_after = k8s.find(resources.SECRET, name, namespace=namespace)
    assert result.dry_run and result.value is None and result.attempts == 0, (
        f"SecretRotator(dry_run=True).rotate({DRILL_SECRET['github_secret']}) on {where} reported a write "
        f"({result.attempts} PUT attempts). Fix: the dry run must stop before generating and writing a "
        "value."
    )
    assert after == before, (
        f"a dry-run rotation changed the secrets of {where}: {sorted(before)} -> "
        f"{sorted(after)}. Fix: the dry run must not PUT; rotate the changed secret."
    )
    version_before, version_after = (s and s["metadata"]["resourceVersion"] for s in (k8s_before, k8s_after))
    assert version_after == version_before, (
        f"a dry-run sync changed Secret {namespace}/{name} (resourceVersion {version_before} -> "
        f"{version_after}). Fix: sync_to_kubernetes(dry_run=True) must pass dryRun=All."
    )


def _same_cluster(configuration: dict[str, Any], target: Target) -> bool:
    """Whether a ledger entry's fault is in the target's cluster; entries that do not say are counted in."""
    recorded = configuration.get("kubeconfig")
    if recorded and target.kubeconfig and Path(recorded).resolve() != Path(target.kubeconfig).resolve():
        return False
    context = configuration.get("context")
    return not (context and target.context and context != target.context)


@pytest.mark.validation("automation", reads="cluster")
def test_fault_ledger_empty(request: pytest.FixtureRequest, mnops_target: Target) -> None:
    """No fault injected into the target is still waiting to be reverted (faults of other clusters that
    share the ledger file are theirs to recover)."""
    from pytest_mnops import Ledger

    path = Path(option(request.config, "ledger"))
    pending = [e for e in Ledger(path).pending() if _same_cluster(e.configuration, mnops_target)]
    described = [
        entry.describe()
        + (" - its process is still running: a drill in progress" if Path(f"/proc/{entry.pid}").exists() else "")
        for entry in pending
    ]
    assert not pending, (
        f"fault ledger {path}: {len(pending)} injected fault(s) were never reverted: {'; '.join(described)}. "
        f"Fix: once no drill runs, `mnops recover` (ledger {path}: --mnops-ledger / MNOPS_LEDGER) replays "
        "their rollbacks."
    )
