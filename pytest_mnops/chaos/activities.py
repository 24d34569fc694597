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
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from pytest_mnops.errors import ClusterError, ConfigError, WaitTimeout
from pytest_mnops.k8s import Kube, pod_ready, resources
from pytest_mnops.names import ROLLOUT_HASH_LABEL, SANDBOX_GITHUB_TOKEN, SNAPSHOT_DIR, github_token
from pytest_mnops.observability.alerts import Alerts, Delivery, notifies
from pytest_mnops.observability.prometheus import Prometheus
from pytest_mnops.placeholders import fill
from pytest_mnops.profile import AppProfile, ExpectedAlert, no_data, version_patch
from pytest_mnops.rollouts import Rollout, read_status

Configuration = dict[str, Any]
MIN_WAIT_S = 30.0
# The label every synthetic alert carries: the user's Alertmanager routes it away from real on-call.
DRILL_LABEL = "mnops_drill"
# The Rollout controller writes its status milliseconds after the ReplicaSet's, or not at all when a kill healed
# before it looked. How long a loaded machine may take to write it, before the status of before the kill stands.
ROLLOUT_CATCH_UP_S = 5.0


def _kube(configuration: Configuration) -> Kube:
    return Kube(kubeconfig=configuration.get("kubeconfig"), context=configuration.get("context"))


def _rollout(configuration: Configuration) -> Rollout:
    return Rollout(_kube(configuration), namespace=configuration["namespace"], name=configuration["app"])


def _profile(configuration: Configuration) -> AppProfile:
    if "profile" not in configuration:
        raise ConfigError("this activity needs the app profile in its configuration (`profile`): run it via the drill")
    return AppProfile.from_wire(configuration["profile"])


def _needed(configuration: Configuration, key: str, option: str) -> str:
    """A target setting an activity cannot do without: never a fallback address."""
    if not configuration.get(key):
        raise ConfigError(f"this drill needs {key.replace('_', ' ')}. Fix: pass {option}, or run with --mnops-sandbox.")
    return str(configuration[key])


def _prometheus(configuration: Configuration) -> Prometheus:
    return Prometheus(_needed(configuration, "prometheus_url", "--mnops-prometheus-url"))


def _alerts(configuration: Configuration) -> Alerts:
    return Alerts(
        _prometheus(configuration),
        alertmanager_url=configuration.get("alertmanager_url"),
        receivers_url=configuration.get("receivers_url"),
    )


def _handoff(configuration: Configuration) -> dict[str, Any]:
    """What this run's activities pass on to later ones (the runner shares one mapping per run)."""
    return configuration.setdefault("handoff", {})


def budget(configuration: Configuration, production_s: float, floor_s: float = MIN_WAIT_S) -> float:
    """A wait given in production seconds, as the target runs it (never below a floor for scheduling)."""
    return max(floor_s, float(production_s) * float(configuration.get("time_scale", 1.0)))


def _run_started(configuration: Configuration) -> float:
    """Notifications older than this run are not evidence for it."""
    return float(configuration.get("run_started", 0.0))


def _selector(configuration: Configuration) -> str:
    """The app's pods: the selector the run was given (from the app profile: the Rollout's own spec.selector)."""
    return configuration.get("selector") or _profile(configuration).label_selector


# -- steady-state probes ---------------------------------------------------------------------------------


def rollout_healthy(configuration: Configuration) -> bool:
    """The Rollout is Healthy (trusted status) and its stable ReplicaSet is the current one."""
    status = _rollout(configuration).status()
    return status.trusted and status.phase == "Healthy" and status.stable_is_current and not status.aborted


def slo_met(key: str, configuration: Configuration) -> bool:
    """The app's SLO ``key`` (profile ``slo.<key>``: success_rate, error_rate, p95_latency_s) holds.

    No data is never a pass: the probe fails naming the query and the profile key.
    """
    check = _profile(configuration).slo(key, "this steady-state probe")
    value = _prometheus(configuration).value(check.query)
    if value is None:
        raise ClusterError(no_data(check))
    return check.met(value)


def query_below(query: str, limit: float, configuration: Configuration) -> bool:
    """A PromQL expression (``$namespace``, ``$container`` filled) is at most ``limit``; no data fails."""
    profile = _profile(configuration)
    expr = fill(query, {"namespace": profile.namespace, "container": profile.container})
    value = _prometheus(configuration).value(expr)
    if value is None:
        raise ClusterError(f"no data for {expr} (scenario query): nothing to judge the steady state by")
    return value <= float(limit)


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
    rollout.wait_settled(timeout_s=timeout_s)
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


def record_delivery_baseline(configuration: Configuration) -> dict[str, Any]:
    """Alertmanager's notification counters before the fault: the drill's window starts here."""
    alerts = _alerts(configuration)
    if alerts.proof == "alertmanager":
        _needed(configuration, "alertmanager_url", "--mnops-alertmanager-url")
        _handoff(configuration)["notifications_baseline"] = alerts.notification_counts()
    return {"proof": alerts.proof}


def _expected(key: str, configuration: Configuration) -> ExpectedAlert:
    return _profile(configuration).alert(key, f"the drill's `{key}` alert")


def wait_for_alert(
    alert: str, configuration: Configuration, state: str = "firing", within_s: float = 600
) -> dict[str, Any]:
    """The profile's alert ``alert`` (``alerts.<alert>``) reaches ``state``; firing also proves its delivery.

    ``resolved`` counts only after this run saw it firing: an alert that never fired is not "resolved".
    """
    expected, alerts, seen = _expected(alert, configuration), _alerts(configuration), _handoff(configuration)
    if state == "resolved" and alert not in seen.setdefault("fired", set()):
        raise ClusterError(f"alert {expected.name} was never seen firing in this run, so its resolution proves nothing")
    alerts.wait_for(expected.name, state, within=budget(configuration, within_s), labels=expected.labels)
    key = "recovered_at" if state == "resolved" else "detected_at"
    result: dict[str, Any] = {"alert": expected.name, "state": state, key: time.time()}
    if state == "firing":
        seen.setdefault("fired", set()).add(alert)
        if expected.receiver:
            delivery = _prove(expected, configuration, within_s)
            result.update(receiver=delivery.receiver, proof=delivery.proof, delivery=delivery.detail)
    return result


def _prove(expected: ExpectedAlert, configuration: Configuration, within_s: float, status: str = "firing") -> Delivery:
    assert expected.receiver is not None
    return _alerts(configuration).prove_delivered(
        expected.name,
        expected.labels,
        expected.receiver,
        within=budget(configuration, within_s),
        since=_run_started(configuration),
        baseline=_handoff(configuration).get("notifications_baseline"),
        status=status,
    )


def synthetic_alerts_active(configuration: Configuration) -> int:
    """Synthetic alerts about this namespace that Alertmanager still holds: an interrupted monitoring-alerts
    run's, until its rollback (or `mnops recover`) ends them. Real alerts are not this drill's to judge: its
    evidence is matched to its own run, and whether anything fires at rest is a validation check."""
    namespace = configuration["namespace"]
    if not configuration.get("alertmanager_url"):
        return 0  # the drill fails at setup naming --mnops-alertmanager-url; nothing of it can be held
    held = _alerts(configuration).active(f'{DRILL_LABEL}=~".+"')
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
        hashes = {p["metadata"].get("labels", {}).get(ROLLOUT_HASH_LABEL) for p in ready}
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


def deploy_version(version: str, configuration: Configuration) -> dict[str, Any]:
    """Start a canary of the profile's ``version`` (``faulty_version`` or ``rollout_version``).

    Without a ``rollout_version`` the new version is the current one with a new pod-template annotation: a
    harmless change that works on any app.
    """
    profile = _profile(configuration)
    spec = profile.need(version, "this drill") if version == "faulty_version" else profile.get(version) or {}
    rollout = _rollout(configuration)
    body = version_patch(
        rollout.get()["spec"]["template"],
        spec,
        container=profile.container,
        run_id=configuration["run_id"],
        sandbox=bool(configuration.get("sandbox")),
    )
    rollout.kube.patch(resources.ROLLOUT, rollout.name, body, namespace=rollout.namespace)
    image = next(c["image"] for c in body["spec"]["template"]["spec"]["containers"] if c["name"] == profile.container)
    return {"version": version, "image": image}


def restore_stable_version(configuration: Configuration) -> dict[str, Any]:
    """Revert a bad rollout: put the stable ReplicaSet's template back and clear the abort flag."""
    rollout = _rollout(configuration)
    status = rollout.status()
    if not status.stable_is_current:
        stable = next(
            (
                rs
                for rs in rollout.replica_sets()
                if rs["metadata"].get("labels", {}).get(ROLLOUT_HASH_LABEL) == status.stable_hash
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


def _synthetic_rules(configuration: Configuration) -> tuple[list[dict[str, Any]], str]:
    """The rules of the profile's ``rule_files`` with the profile's ``synthetic_alerts.severity``."""
    from pytest_mnops.observability.rules import alert_rules

    profile = _profile(configuration)
    files = profile.need("rule_files", "monitoring-alerts")
    severity = str(profile.get("synthetic_alerts.severity") or "critical")
    found = [rule for file in files for rule in alert_rules(file=Path(file))]
    rules = [r for r in found if (r.get("labels") or {}).get("severity") == severity]
    if not rules:
        raise ConfigError(
            f"the profile's rule_files ({', '.join(files)}) hold no alert rule with severity={severity}: "
            "monitoring-alerts would prove nothing. Fix: set `synthetic_alerts.severity` or `rule_files`."
        )
    return rules, severity


def check_synthetic_route(configuration: Configuration) -> dict[str, Any]:
    """Outside the sandbox, synthetic alerts are posted only if Alertmanager routes the drill label (so they
    never page real on-call by accident), or the user opted in with --mnops-allow-synthetic-alerts."""
    from pytest_mnops.observability.alerts import routes_label

    if configuration.get("sandbox") or configuration.get("allow_synthetic_alerts"):
        return {"routed": None, "posting": True}
    _needed(configuration, "alertmanager_url", "--mnops-alertmanager-url")
    route = _alerts(configuration).config().get("route") or {}
    if not routes_label(route, DRILL_LABEL):
        raise ConfigError(
            f"refusing to post synthetic alerts: Alertmanager at {configuration['alertmanager_url']} has no route "
            f"matching the label {DRILL_LABEL}, so they would page whoever its routes page. Nothing was posted. "
            f'Fix: add the route `matchers: [{DRILL_LABEL}=~".+"]` to a receiver that pages no one (see '
            "docs/drilling-your-own-app.md#the-alertmanager-route), or pass --mnops-allow-synthetic-alerts."
        )
    return {"routed": True, "posting": True}


def post_synthetic_alerts(configuration: Configuration) -> dict[str, Any]:
    """Fire, straight into Alertmanager, one synthetic copy of every rule of the profile's severity.

    Every copy carries ``mnops_drill=<run id>``: the user's route for that label keeps it from paging.
    """
    check_synthetic_route(configuration)
    rules, _ = _synthetic_rules(configuration)
    alerts = _alerts(configuration)
    if alerts.proof == "alertmanager":
        _handoff(configuration)["notifications_baseline"] = alerts.notification_counts()
    names = []
    for rule in rules:
        alerts.post(
            {
                **rule["labels"],
                "alertname": rule["alert"],
                "namespace": configuration["namespace"],
                DRILL_LABEL: configuration["run_id"],
            },
            rule.get("annotations", {}),
        )
        names.append(rule["alert"])
    return {"alerts": names, "count": len(names), "proof": alerts.proof}


def wait_all_delivered(configuration: Configuration, status: str = "firing", within_s: float = 600) -> dict[str, Any]:
    """Every synthetic alert of this run reached every receiver of ``synthetic_alerts.receivers`` with ``status``."""
    profile = _profile(configuration)
    receivers = [str(r) for r in profile.need("synthetic_alerts.receivers", "monitoring-alerts")]
    rules, severity = _synthetic_rules(configuration)
    names = sorted(r["alert"] for r in rules)
    alerts, run_id, handoff = _alerts(configuration), configuration["run_id"], _handoff(configuration)
    if status == "resolved" and not handoff.get("synthetic_delivered"):
        raise ClusterError("the synthetic alerts were never seen delivered firing, so their resolution proves nothing")
    deadline = time.monotonic() + budget(configuration, within_s)
    if alerts.proof == "receiver":
        for receiver in receivers:
            missing = set(names)
            while missing and time.monotonic() < deadline:
                # A real alert of the same name shares the notification group: only this run's count.
                ours = {DRILL_LABEL: run_id}
                for item in alerts.received(receiver):
                    missing -= {n for n in missing if notifies(item["payload"], n, status, profile.namespace, ours)}
                time.sleep(0.25)
            if missing:
                raise ClusterError(
                    f"{status} notifications for {', '.join(sorted(missing))} did not reach receiver {receiver!r}. "
                    f"Fix: check Alertmanager's routes for severity={severity} and {DRILL_LABEL}."
                )
    else:
        _wait_sent_by_alertmanager(alerts, names, receivers, status, run_id, handoff, deadline)
    handoff["synthetic_delivered"] = True
    key = "recovered_at" if status == "resolved" else "detected_at"
    return {"delivered": names, "receivers": receivers, "status": status, "proof": alerts.proof, key: time.time()}


def _wait_sent_by_alertmanager(
    alerts: Alerts,
    names: list[str],
    receivers: list[str],
    status: str,
    run_id: str,
    handoff: dict[str, Any],
    deadline: float,
) -> None:
    """Alertmanager routed each synthetic alert to every receiver (firing) or holds none of them any more
    (resolved), and each receiver's integrations sent one notification per alert since the last stage."""
    from pytest_mnops.observability.alerts import receiver_integrations, sent_since

    config = alerts.config()
    integrations = {r: receiver_integrations(config, r) for r in receivers}
    before = handoff["notifications_baseline"]
    problem = ""
    while time.monotonic() < deadline:
        held = [a for a in alerts.active(f'{DRILL_LABEL}="{run_id}"') if a["labels"]["alertname"] in names]
        counts = alerts.notification_counts()
        problem = ""
        if status == "firing":
            for receiver in receivers:
                unrouted = sorted(
                    {a["labels"]["alertname"] for a in held}
                    - {a["labels"]["alertname"] for a in held if receiver in {r["name"] for r in a["receivers"]}}
                )
                if len({a["labels"]["alertname"] for a in held}) < len(names):
                    problem = f"only {len(held)} of {len(names)} synthetic alerts reached Alertmanager"
                elif unrouted:
                    problem = (
                        f"{', '.join(unrouted)} reached Alertmanager but not receiver {receiver!r}. Fix: add a route "
                        f"to {receiver!r} for them in Alertmanager's configuration"
                    )
        elif held:
            problem = f"Alertmanager still holds {len(held)} synthetic alerts as active"
        for receiver, kinds in integrations.items():
            short = {i: n for i in kinds if (n := sent_since(before, counts, i)) < len(names)}
            if not problem and short:
                problem = (
                    f"receiver {receiver!r} sent fewer than {len(names)} {status} notifications "
                    f"({', '.join(f'{i} +{n:g}' for i, n in short.items())} without failures)"
                )
        if not problem:
            handoff["notifications_baseline"] = counts  # the next stage (resolved) counts from here
            return
        time.sleep(0.25)
    raise ClusterError(f"synthetic alerts not delivered ({status}): {problem}.")


def silence_and_check(alertname: str, configuration: Configuration, hold_s: float = 60) -> dict[str, Any]:
    """A silenced alert, fired again, must not be delivered while the silence holds."""
    alerts = _alerts(configuration)
    receivers = [str(r) for r in _profile(configuration).need("synthetic_alerts.receivers", "monitoring-alerts")]
    labels = {
        "alertname": alertname,
        "namespace": configuration["namespace"],
        "severity": "critical",
        DRILL_LABEL: configuration["run_id"],
        "mnops_check": "silence",
    }
    silence = alerts.silence(labels, duration_s=600, comment="pytest-mnops monitoring-alerts drill")
    try:
        alerts.post(labels, {"summary": "silenced synthetic alert"})
        # Longer than Alertmanager's group_wait + group_interval: an unsilenced alert would have arrived.
        time.sleep(budget(configuration, hold_s, floor_s=5))
        if alerts.proof == "receiver":
            leaked = [
                i
                for r in receivers
                for i in alerts.received(r)
                if "silence" in str(i["payload"]) and configuration["run_id"] in str(i["payload"])
            ]
        else:
            held = alerts.holding(alertname, {DRILL_LABEL: configuration["run_id"], "mnops_check": "silence"})
            leaked = [a for a in held if silence not in (a.get("status") or {}).get("silencedBy", [])]
            if not held:
                raise ClusterError(f"the silenced {alertname} never reached Alertmanager: the check proves nothing")
        if leaked:
            how = "delivered" if alerts.proof == "receiver" else "not silenced by Alertmanager"
            raise AssertionError(f"silence {silence} did not suppress {alertname}: {len(leaked)} {how}")
    finally:
        alerts.expire_silence(silence)
    return {"silenced": alertname, "suppressed": True, "proof": alerts.proof}


def resolve_synthetic_alerts(configuration: Configuration) -> int:
    """End every synthetic alert this drill posted (endsAt now): Alertmanager then resolves them."""
    if not configuration.get("alertmanager_url"):
        return 0  # nothing can have been posted
    alerts = _alerts(configuration)
    count = 0
    for alert in alerts.active(f'{DRILL_LABEL}="{configuration["run_id"]}"'):
        alerts.post(alert["labels"], alert.get("annotations", {}), ends_in_s=0)
        count += 1
    return count


def _github_token(configuration: Configuration) -> str | None:
    return github_token() or (SANDBOX_GITHUB_TOKEN if configuration.get("sandbox") else None)


def rotate_app_secret(configuration: Configuration) -> dict[str, Any]:
    """Rotate the profile's credential in GitHub (PyGithub), sync it to its Kubernetes Secret, restart consumers.

    ``secret.github.name``/``environment`` name the GitHub Actions secret, ``secret.kubernetes.name``/``key``
    the Secret the app reads; the repository is --mnops-github-repo (no fallback).
    """
    from pytest_mnops.secrets.rotation import SecretRotator, SecretValue, sync_to_kubernetes

    profile = _profile(configuration)
    secret_name = str(profile.need("secret.kubernetes.name", "secret-rotation"))
    key = str(profile.need("secret.kubernetes.key", "secret-rotation"))
    github_secret = str(profile.need("secret.github.name", "secret-rotation"))
    environment = profile.get("secret.github.environment")
    kube, namespace = _kube(configuration), configuration["namespace"]
    current = kube.find(resources.SECRET, secret_name, namespace=namespace)
    encoded = ((current or {}).get("data") or {}).get(key)
    previous = SecretValue(base64.b64decode(encoded).decode()) if encoded else None
    with SecretRotator(
        repo=_needed(configuration, "github_repo", "--mnops-github-repo"),
        environment=environment,
        token=_github_token(configuration),
        base_url=configuration["github_url"],
        audit_log=Path(configuration.get("audit_log", ".mnops/secrets-audit.jsonl")),
    ) as rotator:
        result = rotator.rotate(github_secret)
    assert result.value is not None
    sync_to_kubernetes(kube, namespace=namespace, secret_name=secret_name, key=key, value=result.value)
    # The values go to the verification probe through the run's handoff, never through outputs or logs.
    _handoff(configuration).update(old=previous, new=result.value)
    _rollout(configuration).restart()
    return {"secret": f"{namespace}/{secret_name}", "github_secret": github_secret, "attempts": result.attempts}


def _never_issued() -> Any:
    from pytest_mnops.secrets.rotation import SecretValue

    return SecretValue(secrets.token_urlsafe(32))


def _consumer_answers(
    consumer: dict[str, Any], value: Any, configuration: Configuration, samples: int
) -> set[int] | set[str]:
    """What the app's consumers answer to ``value``: HTTP codes, or ``accepted``/``rejected`` from a command."""
    if consumer.get("command"):
        env = {**os.environ, "MNOPS_SECRET_VALUE": value.reveal()}
        runs = [subprocess.run(consumer["command"], env=env, capture_output=True, timeout=60) for _ in range(samples)]
        return {"accepted" if run.returncode == 0 else "rejected" for run in runs}
    http = consumer["http"]
    url = _needed(configuration, "app_url", "--mnops-app-url") + str(http.get("path", "/"))
    header = str(http.get("header", "Authorization"))
    headers = {header: str(http.get("value", "{value}")).replace("{value}", value.reveal())}
    return {requests.get(url, headers=headers, timeout=10).status_code for _ in range(samples)}


def verify_rotated_credentials(
    configuration: Configuration, requests_per_check: int = 20, timeout_s: float = 600
) -> dict[str, Any]:
    """Consumers use the new credential and reject the old one (profile ``secret.consumer``), every sample."""
    held = _handoff(configuration)
    if "new" not in held:
        raise ClusterError("no rotated credential was handed over; did the rotate-app-secret action run?")
    consumer = _profile(configuration).need("secret.consumer", "secret-rotation's consumer check")
    accept: set[int] | set[str]
    reject: set[int] | set[str]
    if "command" in consumer:
        accept, reject = {"accepted"}, {"rejected"}
    else:
        http = consumer.get("http") or {}
        accept = {int(c) for c in http.get("accept") or [200]}
        reject = {int(c) for c in http.get("reject") or [401, 403]}
    # Every consumer restarted and available, not just a Healthy status: sampled requests could miss a pod
    # not yet replaced, and the steady state after the method would catch the last one still starting.
    _rollout(configuration).wait_settled(timeout_s=budget(configuration, timeout_s))
    new = _consumer_answers(consumer, held["new"], configuration, requests_per_check)
    if not new <= accept:
        raise AssertionError(f"the new credential was not accepted by every consumer (answers: {sorted(new)})")
    # A fresh namespace had no credential before the rotation: then a value never issued must be rejected,
    # else "old rejected" would be assumed for an app that accepts anything.
    old_value = held["old"] if held.get("old") is not None else _never_issued()
    old = _consumer_answers(consumer, old_value, configuration, requests_per_check)
    if not old <= reject:
        raise AssertionError(f"the old credential is still accepted (answers: {sorted(old)})")
    return {"new_accepted": True, "old_rejected": True, "recovered_at": time.time()}


def _notifier(configuration: Configuration) -> Any:
    from pytest_mnops.notify import Notifier

    return Notifier.for_run(
        sandbox=bool(configuration.get("sandbox")),
        sandbox_dir=configuration.get("sandbox_dir", ""),
        receivers_url=configuration.get("receivers_url"),
    )


def emergency_rollback(reason: str, configuration: Configuration) -> dict[str, Any]:
    """The operator's move, through the same helper `mnops rollback` uses (snapshot, abort, undo, verify)."""
    from pytest_mnops.rollback import RollbackHelper

    notifier = _notifier(configuration)
    if not notifier.channels():
        raise ConfigError(
            "emergency-rollback proves the rollback notification, but no channel is configured. Fix: set "
            "MNOPS_SLACK_WEBHOOK_URL and/or MNOPS_SMTP_HOST + MNOPS_NOTIFY_EMAIL_TO (docs/runbooks.md)."
        )
    helper = RollbackHelper(
        _kube(configuration),
        namespace=configuration["namespace"],
        name=configuration["app"],
        prometheus=_prometheus(configuration),
        snapshot_dir=Path(SNAPSHOT_DIR),
        notifier=notifier,
        slos=_profile(configuration).slos(),
    )
    result = helper.rollback(reason)
    if not result.verified:
        raise ClusterError(f"rollback of {configuration['app']} did not verify: {result}")
    sent = [{"channel": n.channel, "ok": n.ok, "detail": n.detail} for n in result.notifications]
    _handoff(configuration)["rollback_notifications"] = sent
    return {"duration_s": result.duration_s, "notified": [n["channel"] for n in sent if n["ok"]]}


def rollback_notified(configuration: Configuration, within_s: float = 300) -> dict[str, Any]:
    """Every channel got the rollback notification: read back from the receivers when there are some
    (proof=receiver; in training mode the trainee's `mnops rollback` sent it), else each channel's own
    acknowledgement of the drill's rollback (Slack's 2xx, the SMTP relay's acceptance: proof=notifier)."""
    sent = _handoff(configuration).get("rollback_notifications")
    failed = [f"{n['channel']} ({n['detail']})" for n in sent or [] if not n["ok"]]
    if failed:
        raise ClusterError(f"the rollback notification was not accepted by: {', '.join(failed)}")
    alerts, app = _alerts(configuration), f"{configuration['namespace']}/{configuration['app']}"
    if alerts.proof == "alertmanager":
        if sent is None:
            raise ClusterError("no rollback notification was sent by the drill, and no receiver can be read back")
        return {"channels": [n["channel"] for n in sent], "proof": "notifier"}
    channels = [n["channel"] for n in sent] if sent is not None else _notifier(configuration).channel_names()
    started = _run_started(configuration)
    deadline = time.monotonic() + budget(configuration, within_s)
    missing = set(channels)
    while missing and time.monotonic() < deadline:
        for channel in sorted(missing):
            if any(i["received_at"] >= started and app in str(i["payload"]) for i in alerts.received(channel)):
                missing.discard(channel)
        time.sleep(0.25)
    if missing:
        raise ClusterError(
            f"no notification mentioning {app!r} reached receiver(s) {', '.join(sorted(missing))} within "
            f"{budget(configuration, within_s):.0f}s. Fix: check the notifier's webhook/SMTP settings."
        )
    return {"channels": channels, "proof": "receiver"}
