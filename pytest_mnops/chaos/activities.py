"""chaostoolkit activities (probes and actions) the drill scenarios call where chaostoolkit-kubernetes has none.

chaoslib passes ``configuration`` (the target, filled by the runner) and ``secrets`` to any function that
declares them. Probes that measure a moment return ``{"detected_at": ts}`` / ``{"recovered_at": ts}`` so the
timeline records when the system noticed or healed, not when a probe happened to return. Every revert
action is idempotent: a second run (from `mnops recover`) is harmless.
"""

from __future__ import annotations

import base64
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any

import requests

from pytest_mnops.errors import ClusterError, WaitTimeout
from pytest_mnops.k8s import Kube, pod_ready, resources
from pytest_mnops.observability.alerts import Alerts, notifies
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.rollouts import HASH_LABEL, Rollout, read_status
from pytest_mnops.timescale import scale_promql

Configuration = dict[str, Any]
MIN_WAIT_S = 30.0
ERROR_RATIO = "traffic.mnops.dev/error-ratio"
LATENCY_MS = "traffic.mnops.dev/latency-ms"
RUN_ANNOTATION = "mnops.dev/drill-run"
# Every alert a drill posts to Alertmanager itself carries a `synthetic` label of this form.
SYNTHETIC_MATCHER = 'synthetic=~"mnops-.*"'
# The Rollout controller writes its status milliseconds after the ReplicaSet's, or not at all when a kill healed
# before it looked. How long a loaded machine may take to write it, before the status of before the kill stands.
ROLLOUT_CATCH_UP_S = 5.0


def _kube(configuration: Configuration) -> Kube:
    return Kube(kubeconfig=configuration.get("kubeconfig"), context=configuration.get("context"))


def _rollout(configuration: Configuration) -> Rollout:
    return Rollout(_kube(configuration), namespace=configuration["namespace"], name=configuration["app"])


def _alerts(configuration: Configuration) -> Alerts:
    return Alerts(
        Prometheus(configuration["prometheus_url"]),
        alertmanager_url=configuration.get("alertmanager_url"),
        receivers_url=configuration.get("receivers_url"),
    )


def budget(configuration: Configuration, production_s: float, floor_s: float = MIN_WAIT_S) -> float:
    """A wait given in production seconds, as the target runs it (never below a floor for scheduling)."""
    return max(floor_s, float(production_s) * float(configuration.get("time_scale", 1.0)))


def _run_started(configuration: Configuration) -> float:
    """Notifications older than this run are not evidence for it."""
    return float(configuration.get("run_started", 0.0))


def _selector(configuration: Configuration) -> str:
    return f"app={configuration['app']}"


# -- steady-state probes ---------------------------------------------------------------------------------


def rollout_healthy(configuration: Configuration) -> bool:
    """The Rollout is Healthy (trusted status) and its stable ReplicaSet is the current one."""
    status = _rollout(configuration).status()
    return status.trusted and status.phase == "Healthy" and status.stable_is_current and not status.aborted


def slo(query: str, configuration: Configuration) -> float:
    """A PromQL expression with ``$namespace``/``$app`` substituted and its range selectors scaled to the
    target's time scale; no data counts as 0, which fails any sensible tolerance range."""
    expr = query.replace("$namespace", configuration["namespace"]).replace("$app", configuration["app"])
    expr = scale_promql(expr, float(configuration.get("time_scale", 1.0)))
    value = Prometheus(configuration["prometheus_url"]).value(expr)
    return 0.0 if value is None else round(value, 4)


# -- detection and recovery probes ----------------------------------------------------------------------


def _wait_rollout_settled(configuration: Configuration, timeout_s: float, before: str) -> bool:
    """The Rollout itself reports Healthy with every replica available (its status lags the pods).

    A Healthy status of before the kill (resourceVersion ``before``) is not the answer while the controller may
    still write one: a one-pod kill heals in 0.1 s, before the controller turns Progressing. True when the
    controller wrote after the kill; False when it wrote nothing within ROLLOUT_CATCH_UP_S.
    """
    rollout = _rollout(configuration)

    def rewritten(objs: list[dict[str, Any]]) -> bool:
        return bool(objs) and objs[0]["metadata"]["resourceVersion"] != before

    try:
        rollout.kube.wait(
            resources.ROLLOUT,
            rewritten,
            name=rollout.name,
            namespace=rollout.namespace,
            timeout_s=ROLLOUT_CATCH_UP_S,
            what=f"Rollout {rollout.name!r} status written after the kill",
        )
        wrote = True
    except WaitTimeout:
        wrote = False
    rollout.wait_for(settled=True, timeout_s=timeout_s)
    return wrote


def replacements_expected(replicas: int, kill_percent: float) -> int:
    """Pods a kill of ``kill_percent`` terminates, rounded up as chaostoolkit-kubernetes and the blast guard do."""
    return math.ceil(replicas * float(kill_percent) / 100)


def watch_pod_replacements(kill_percent: float, timeout_s: float, configuration: Configuration) -> dict[str, Any]:
    """Run in the background across the injection: first replacement pod created, then all replicas Ready and
    the Rollout Healthy again.

    The replacements expected follow from the Rollout's replicas and the scenario's ``kill_percent``.
    """
    kube = _kube(configuration)
    namespace, selector = configuration["namespace"], _selector(configuration)
    app = Rollout(kube, namespace=namespace, name=configuration["app"]).get()
    desired = int(app["spec"].get("replicas", 1))
    expected = replacements_expected(desired, kill_percent)
    if expected < 1:
        raise ClusterError(f"kill_percent {kill_percent} of {desired} replicas terminates no pod: nothing to watch")
    known: set[str] | None = None
    marks: dict[str, float] = {}

    def healed(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
        nonlocal known
        # The wait's first list is the app before the kill (this probe starts first): its pods are the ones
        # to be replaced. Not a list of its own: at 1000 pods, each costs two requests and tens of MB.
        if known is None:
            known = {p["metadata"]["uid"] for p in pods}
            return None
        new = [p for p in pods if p["metadata"]["uid"] not in known]
        if new and "detected_at" not in marks:
            marks["detected_at"] = time.time()
        ready = [p for p in pods if pod_ready(p)]
        if len(new) >= expected and len(ready) >= desired:
            return {
                "detected_at": marks["detected_at"],
                "recovered_at": time.time(),
                "expected": expected,
                "replaced": len(new),
                "ready": len(ready),
            }
        return None

    result = kube.wait(
        resources.POD,
        healed,
        namespace=namespace,
        label_selector=selector,
        timeout_s=budget(configuration, timeout_s),
        what=f"{expected} replacement pods ({kill_percent}% of {desired}) and {desired} Ready replicas",
    )
    if _wait_rollout_settled(configuration, budget(configuration, timeout_s), app["metadata"]["resourceVersion"]):
        result["recovered_at"] = time.time()  # healed when the Rollout said so; else when the pods were
    return result


def wait_for_alert(
    alertname: str, configuration: Configuration, state: str = "firing", within_s: float = 600
) -> dict[str, Any]:
    alerts = _alerts(configuration)
    alerts.wait_for(
        alertname,
        state,
        within=budget(configuration, within_s),
        labels={"namespace": configuration["namespace"]},
    )
    key = "recovered_at" if state == "resolved" else "detected_at"
    return {"alert": alertname, "state": state, key: time.time()}


def wait_for_notification(
    alertname: str, channel: str, configuration: Configuration, status: str = "firing", within_s: float = 600
) -> dict[str, Any]:
    item = _alerts(configuration).wait_delivered(
        alertname,
        channel,
        within=budget(configuration, within_s),
        status=status,
        since=_run_started(configuration),
        namespace=configuration["namespace"],
    )
    return {"alert": alertname, "channel": channel, "status": status, "received_at": item["received_at"]}


def wait_for_message(
    channel: str, contains: str, configuration: Configuration, within_s: float = 300
) -> dict[str, Any]:
    """A notification mentioning ``contains`` reached ``channel`` during this run."""
    alerts, started = _alerts(configuration), _run_started(configuration)
    deadline = time.monotonic() + budget(configuration, within_s)
    while time.monotonic() < deadline:
        for item in alerts.received(channel):
            if item["received_at"] >= started and contains in str(item["payload"]):
                return {"channel": channel, "received_at": item["received_at"]}
        time.sleep(0.25)
    raise ClusterError(
        f"no notification mentioning {contains!r} reached receiver {channel!r} within "
        f"{budget(configuration, within_s):.0f}s. Fix: check the notifier's webhook/SMTP settings."
    )


def synthetic_alerts_active(configuration: Configuration) -> int:
    """Synthetic alerts about this namespace that Alertmanager still holds: an interrupted monitoring-alerts
    run's, until its rollback (or `mnops recover`) ends them. Real alerts are not this drill's to judge: its
    evidence is matched to its own run, and whether anything fires at rest is a validation check."""
    namespace = configuration["namespace"]
    held = _alerts(configuration).active(SYNTHETIC_MATCHER)
    return sum(1 for alert in held if alert["labels"].get("namespace") == namespace)


def wait_for_analysis_failed(configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    """An AnalysisRun of this Rollout, created during this run, ends Failed or Error."""
    rollout = _rollout(configuration)
    rollout.wait_observed()  # no analysis runs without the controller: say so, not "not detected"
    # creationTimestamp has one-second resolution: allow the second the run started in.
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_run_started(configuration) - 1))

    def failed(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
        for run in runs:
            owners = {o.get("name") for o in run["metadata"].get("ownerReferences") or []}
            if (
                rollout.name in owners
                and run["metadata"]["creationTimestamp"] >= since
                and (run.get("status") or {}).get("phase") in ("Failed", "Error")
            ):
                return run
        return None

    run = rollout.kube.wait(
        resources.ANALYSIS_RUN,
        failed,
        namespace=rollout.namespace,
        timeout_s=budget(configuration, timeout_s),
        what=f"an AnalysisRun of Rollout {rollout.name!r} started by this drill to fail",
    )
    failed_metrics = [
        m["name"] for m in run["status"].get("metricResults", []) if m.get("phase") in ("Failed", "Error")
    ]
    return {"analysis_run": run["metadata"]["name"], "failed_metrics": failed_metrics, "detected_at": time.time()}


def wait_for_abort(configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    _rollout(configuration).wait_observed()
    status = _rollout(configuration).wait_for(aborted=True, timeout_s=budget(configuration, timeout_s))
    return {"phase": status.phase, "message": status.message, "aborted_at": time.time()}


def wait_for_stable_serving(configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    """Every Ready pod of the app runs the stable revision and the desired count is Ready: 100% on stable."""
    rollout = _rollout(configuration)
    desired = int(rollout.get()["spec"].get("replicas", 1))

    def all_stable(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
        stable = read_status(rollout.get()).stable_hash
        ready = [p for p in pods if pod_ready(p)]
        hashes = {p["metadata"].get("labels", {}).get(HASH_LABEL) for p in ready}
        if stable and hashes == {stable} and len(ready) >= desired:
            return {"stable": stable, "ready": len(ready), "recovered_at": time.time()}
        return None

    return rollout.kube.wait(
        resources.POD,
        all_stable,
        namespace=rollout.namespace,
        label_selector=_selector(configuration),
        timeout_s=budget(configuration, timeout_s),
        what="all Ready pods on the stable revision",
    )


def wait_for_canary_step(step: int, configuration: Configuration, timeout_s: float = 600) -> dict[str, Any]:
    rollout = _rollout(configuration)

    def at_step(objs: list[dict[str, Any]]) -> int | None:
        status = read_status(objs[0]) if objs else None
        if status and status.trusted and (status.step_index or 0) >= step and not status.stable_is_current:
            return status.step_index
        return None

    reached = rollout.kube.wait(
        resources.ROLLOUT,
        at_step,
        name=rollout.name,
        namespace=rollout.namespace,
        timeout_s=budget(configuration, timeout_s),
        what=f"the canary at step {step}",
    )
    return {"step": reached}


# -- actions and reverts --------------------------------------------------------------------------------


def deploy_version(
    version: str, configuration: Configuration, error_ratio: float = 0.0, latency_ms: int = 40
) -> dict[str, Any]:
    """Start a canary of a new version; the traffic stand-in reads its behaviour from the annotations."""
    rollout = _rollout(configuration)
    image = rollout.get()["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[0]
    # The run id makes every drill's version a new pod template, never a return to an old ReplicaSet
    # (which Argo Rollouts would treat as a rollback and skip the canary steps for).
    rollout.set_image(
        f"{image}:{version}",
        annotations={
            ERROR_RATIO: str(error_ratio),
            LATENCY_MS: str(latency_ms),
            RUN_ANNOTATION: configuration["run_id"],
        },
    )
    return {"image": f"{image}:{version}"}


def restore_stable_version(configuration: Configuration) -> dict[str, Any]:
    """Revert a bad rollout: put the stable ReplicaSet's template back and clear the abort flag."""
    rollout = _rollout(configuration)
    status = rollout.status()
    if not status.stable_is_current:
        stable = next(
            (
                rs
                for rs in rollout.replica_sets()
                if rs["metadata"].get("labels", {}).get(HASH_LABEL) == status.stable_hash
            ),
            None,
        )
        if stable is None:
            raise ClusterError(f"{rollout!r}: no ReplicaSet for stable hash {status.stable_hash!r} to restore")
        revision = int(stable["metadata"]["annotations"]["rollout.argoproj.io/revision"])
        rollout.undo(revision)
    if rollout.status().aborted:
        rollout.retry()
    rollout.wait_for(phase="Healthy", stable_is_current=True, timeout_s=budget(configuration, 600))
    return {"stable": rollout.status().stable_hash}


def delete_chaos(kind: str, name: str, configuration: Configuration) -> bool:
    """Remove a Chaos Mesh object if it is still there (the idempotent twin of chaosk8s' delete actions)."""
    resource = {"NetworkChaos": resources.NETWORK_CHAOS, "StressChaos": resources.STRESS_CHAOS}[kind]
    return _kube(configuration).delete(resource, name, namespace=configuration["namespace"])


def post_synthetic_alerts(severity: str, configuration: Configuration) -> dict[str, Any]:
    """Fire, straight into Alertmanager, one synthetic copy of every rule of this severity in monitoring/."""
    from pytest_mnops.observability.rules import alert_rules

    alerts = _alerts(configuration)
    names = []
    for rule in alert_rules():
        if rule.get("labels", {}).get("severity") == severity:
            alerts.post(
                {
                    **rule["labels"],
                    "alertname": rule["alert"],
                    "namespace": configuration["namespace"],
                    "synthetic": "mnops-drill",
                    "drill_run": configuration["run_id"],
                },
                rule.get("annotations", {}),
            )
            names.append(rule["alert"])
    return {"alerts": names, "count": len(names)}


def wait_all_delivered(
    channel: str,
    configuration: Configuration,
    severity: str = "critical",
    status: str = "firing",
    within_s: float = 600,
) -> dict[str, Any]:
    """Every synthetic alert of this run reached ``channel`` with ``status``."""
    from pytest_mnops.observability.rules import alert_rules

    alerts, run_id = _alerts(configuration), configuration["run_id"]
    names = [r["alert"] for r in alert_rules() if r.get("labels", {}).get("severity") == severity]
    deadline = time.monotonic() + budget(configuration, within_s)
    missing = set(names)
    ours = {"drill_run": run_id}  # a real alert of the same name shares the notification group
    while missing and time.monotonic() < deadline:
        for item in alerts.received(channel):
            missing -= {n for n in missing if notifies(item["payload"], n, status, configuration["namespace"], ours)}
        time.sleep(0.25)
    if missing:
        raise ClusterError(
            f"{status} notifications for {', '.join(sorted(missing))} did not reach receiver "
            f"{channel!r}. Fix: check the routes for severity={severity} in monitoring/alertmanager.yml."
        )
    key = "recovered_at" if status == "resolved" else "detected_at"
    return {"delivered": names, "channel": channel, "status": status, key: time.time()}


def silence_and_check(alertname: str, channel: str, configuration: Configuration, hold_s: float = 60) -> dict[str, Any]:
    """A silenced alert, fired again, must not be delivered while the silence holds."""
    alerts = _alerts(configuration)
    labels = {
        "alertname": alertname,
        "synthetic": "mnops-silence-check",
        "namespace": configuration["namespace"],
        "severity": "critical",
        "drill_run": configuration["run_id"],
    }
    silence = alerts.silence(labels, duration_s=600, comment="pytest-mnops monitoring-alerts drill")
    try:
        alerts.post(labels, {"summary": "silenced synthetic alert"})
        # Longer than Alertmanager's group_wait + group_interval: an unsilenced alert would have arrived.
        time.sleep(budget(configuration, hold_s, floor_s=5))
        leaked = [
            i
            for i in alerts.received(channel)
            if "mnops-silence-check" in str(i["payload"]) and configuration["run_id"] in str(i["payload"])
        ]
        if leaked:
            raise AssertionError(f"silence {silence} did not suppress {alertname}: {len(leaked)} delivered")
    finally:
        alerts.expire_silence(silence)
    return {"silenced": alertname, "suppressed": True}


def resolve_synthetic_alerts(configuration: Configuration) -> int:
    """End every synthetic alert this drill posted (endsAt now): Alertmanager then resolves them."""
    alerts = _alerts(configuration)
    count = 0
    for alert in alerts.active(SYNTHETIC_MATCHER):
        alerts.post(alert["labels"], alert.get("annotations", {}), ends_in_s=0)
        count += 1
    return count


def _github_token(configuration: Configuration) -> str | None:
    from pytest_mnops.sandbox.cluster import GITHUB_TOKEN

    token = os.environ.get("MNOPS_GITHUB_TOKEN") or os.environ.get("GITHUB_TOKEN")
    return token or (GITHUB_TOKEN if configuration.get("sandbox") else None)


def rotate_app_secret(
    secret_name: str, key: str, github_secret: str, configuration: Configuration, environment: str = "staging"
) -> dict[str, Any]:
    """Rotate the app's credential in GitHub (PyGithub), sync it to its Kubernetes Secret, restart consumers."""
    from pytest_mnops.secrets.rotation import SecretRotator, SecretValue, sync_to_kubernetes

    kube, namespace = _kube(configuration), configuration["namespace"]
    current = kube.find(resources.SECRET, secret_name, namespace=namespace)
    encoded = ((current or {}).get("data") or {}).get(key)
    previous = SecretValue(base64.b64decode(encoded).decode()) if encoded else None
    with SecretRotator(
        repo=configuration["github_repo"],
        environment=environment,
        token=_github_token(configuration),
        base_url=configuration["github_url"],
        audit_log=Path(configuration.get("audit_log", ".mnops/secrets-audit.jsonl")),
    ) as rotator:
        result = rotator.rotate(github_secret)
    assert result.value is not None
    sync_to_kubernetes(kube, namespace=namespace, secret_name=secret_name, key=key, value=result.value)
    # The values go to the verification probe through the run's handoff, never through outputs or logs.
    configuration["handoff"].update(old=previous, new=result.value)
    _rollout(configuration).restart()
    return {"secret": f"{namespace}/{secret_name}", "github_secret": github_secret, "attempts": result.attempts}


def _never_issued() -> Any:
    from pytest_mnops.secrets.rotation import SecretValue

    return SecretValue(secrets.token_urlsafe(32))


def verify_rotated_credentials(
    configuration: Configuration, requests_per_check: int = 20, timeout_s: float = 600
) -> dict[str, Any]:
    """Consumers use the new credential and reject the old one: every sampled request through the app."""
    held = configuration["handoff"]
    if "new" not in held:
        raise ClusterError("no rotated credential was handed over; did the rotate-app-secret action run?")
    # Every consumer restarted and available, not just a Healthy status: sampled requests could miss a pod
    # not yet replaced, and the steady state after the method would catch the last one still starting.
    _rollout(configuration).wait_for(settled=True, timeout_s=budget(configuration, timeout_s))
    url = f"{configuration['app_url']}/auth"

    def codes(value: Any) -> set[int]:
        headers = {"Authorization": f"Bearer {value.reveal()}"}
        return {requests.get(url, headers=headers, timeout=10).status_code for _ in range(requests_per_check)}

    new_codes = codes(held["new"])
    # A fresh namespace had no credential before the rotation: then a value never issued must be rejected,
    # else "old rejected" would be assumed for an app that accepts anything.
    old_codes = codes(held["old"] if held.get("old") is not None else _never_issued())
    if new_codes != {200}:
        raise AssertionError(f"the new credential was not accepted by every consumer (answers: {sorted(new_codes)})")
    if old_codes != {401}:
        raise AssertionError(f"the old credential is still accepted (answers: {sorted(old_codes)})")
    return {"new_accepted": True, "old_rejected": True, "recovered_at": time.time()}


def _notifier(configuration: Configuration) -> Any:
    from pytest_mnops.notify import Notifier
    from pytest_mnops.sandbox.cluster import SandboxSettings

    settings = SandboxSettings.load(configuration["sandbox_dir"]) if configuration.get("sandbox") else None
    if settings is None:
        return Notifier.from_env()
    return Notifier.for_sandbox(settings, receivers_url=configuration.get("receivers_url"))


def emergency_rollback(reason: str, configuration: Configuration) -> dict[str, Any]:
    """The operator's move, through the same helper `mnops rollback` uses (snapshot, abort, undo, verify)."""
    from pytest_mnops.rollback import RollbackHelper

    helper = RollbackHelper(
        _kube(configuration),
        namespace=configuration["namespace"],
        name=configuration["app"],
        prometheus=Prometheus(configuration["prometheus_url"]),
        snapshot_dir=Path(".mnops/snapshots"),
        notifier=_notifier(configuration),
        time_scale=float(configuration.get("time_scale", 1.0)),
    )
    result = helper.rollback(reason)
    if not result.verified:
        raise ClusterError(f"rollback of {configuration['app']} did not verify: {result}")
    return {"duration_s": result.duration_s, "notified": [n.channel for n in result.notifications if n.ok]}
