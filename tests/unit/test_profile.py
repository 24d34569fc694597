"""The app profile's pure parts: SLOs from AnalysisTemplates, versions, requirements; delivery-proof parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_mnops import app, assets, profile
from pytest_mnops.errors import ConfigError
from pytest_mnops.observability.alerts import parse_counts, receiver_integrations, routes_label, sent_since

CHECKOUT = Path(__file__).resolve().parents[2] / "examples" / "checkout"


def slos_of(docs: list[dict], namespace: str = "shop") -> dict:
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    templates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "AnalysisTemplate"}
    out: dict = {}
    for ref, args in profile.analysis_template_refs(rollout):
        out.update(profile.slos_of_template(templates[ref["templateName"]], args, namespace))
    return out


def test_reference_slos_come_from_its_analysis_templates_app_wide() -> None:
    slos = slos_of(assets.chart_documents(), "default")
    assert set(slos) == {"success_rate", "error_rate", "p95_latency_s"}
    assert slos["error_rate"]["limit"] == 0.01 and slos["error_rate"]["upper_bound"] is True
    assert slos["success_rate"]["limit"] == 0.95 and slos["success_rate"]["upper_bound"] is False
    for slo in slos.values():
        assert "rollouts_pod_template_hash" not in slo["query"] and "{{" not in slo["query"]
        assert 'namespace="default",app="machine-native-ops"' in slo["query"]


def test_checkout_slos_use_its_own_metrics_and_status_label() -> None:
    slos = slos_of(app.manifests(CHECKOUT))
    assert set(slos) == {"success_rate", "error_rate", "p95_latency_s"}
    assert 'checkout_requests_total{namespace="shop",service="checkout",status=~"5.."}' in slos["error_rate"]["query"]
    assert "checkout_request_duration_seconds_bucket" in slos["p95_latency_s"]["query"]
    assert slos["p95_latency_s"]["limit"] == 0.3
    assert slos["error_rate"]["source"] == "AnalysisTemplate checkout-errors metric errors"


def test_no_reference_metric_name_is_a_default_in_the_drill_code() -> None:
    root = Path(profile.__file__).parent.parent
    for package in (root / "profile", root / "rollback", root / "chaos" / "activities"):
        for path in sorted(package.glob("*.py")):
            text = path.read_text()
            assert "http_requests_total" not in text and "http_request_duration" not in text, path


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/o/app:1.0.0", "ghcr.io/o/app:2"),
        ("registry:5000/o/app", "registry:5000/o/app:2"),
        ("registry.example.com/shop/checkout@sha256:" + "a" * 64, "registry.example.com/shop/checkout:2"),
        ("r/app:1.0@sha256:" + "b" * 64, "r/app:2"),
    ],
)
def test_a_new_tag_replaces_tag_or_digest(image: str, expected: str) -> None:
    assert profile.image_with_tag(image, "2") == expected


def test_faulty_version_patches_the_named_container_only() -> None:
    rollout = next(d for d in app.manifests(CHECKOUT) if d["kind"] == "Rollout")
    spec = profile.load_file(CHECKOUT / "profile.yaml")["faulty_version"]
    body = profile.version_patch(rollout["spec"]["template"], spec, container="checkout", run_id="r1", sandbox=True)
    template = body["spec"]["template"]
    envoy, checkout = template["spec"]["containers"]
    assert envoy == rollout["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "CHECKOUT_FAIL_PAYMENTS", "value": "true"} in checkout["env"]
    assert template["metadata"]["annotations"] == {"traffic.mnops.dev/error-ratio": "0.4", profile.RUN_ANNOTATION: "r1"}
    real = profile.version_patch(rollout["spec"]["template"], spec, container="checkout", run_id="r1", sandbox=False)
    assert "traffic.mnops.dev/error-ratio" not in real["spec"]["template"]["metadata"]["annotations"]


def test_default_rollout_version_is_an_annotation_change() -> None:
    template = next(d for d in assets.chart_documents() if d["kind"] == "Rollout")["spec"]["template"]
    body = profile.version_patch(template, {}, container="app", run_id="r2", sandbox=False)
    assert body["spec"]["template"]["spec"]["containers"] == template["spec"]["containers"]
    assert body["spec"]["template"]["metadata"]["annotations"] == {profile.RUN_ANNOTATION: "r2"}


def test_a_missing_key_names_the_setting() -> None:
    empty = profile.AppProfile({"namespace": "shop", "app": "checkout", "slo": {}, "alerts": {}}, "p.yaml")
    with pytest.raises(ConfigError, match=r"no `alerts\.latency`.*high-latency.*--mnops-profile"):
        empty.alert("latency", "high-latency")
    with pytest.raises(ConfigError, match=r"no `slo\.error_rate`"):
        empty.slo("error_rate", "canary-failure")


def test_unknown_profile_keys_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("alert: {}\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: alert: unknown key"):
        profile.load_file(file)


def test_a_profile_names_its_validation_expectation_set(tmp_path: Path) -> None:
    """The reference app's profile asks for the reference numbers; another app's asks for nothing."""
    assert profile.expectation_set(assets.path(*profile.REFERENCE_PROFILE)) == "reference"
    assert profile.expectation_set(CHECKOUT / "profile.yaml") is None
    assert profile.expectation_set(None) is None
    file = tmp_path / "p.yaml"
    file.write_text("expect: strict\n")
    with pytest.raises(
        ConfigError, match=r"p\.yaml: expect: 'strict' is no expectation set.*use properties or reference"
    ):
        profile.expectation_set(file)


def test_notification_counts_and_receiver_integrations() -> None:
    before = parse_counts('alertmanager_notifications_total{integration="webhook"} 2\n')
    now = parse_counts(
        'alertmanager_notifications_total{integration="webhook"} 5\n'
        'alertmanager_notifications_failed_total{integration="webhook"} 1\n'
        'alertmanager_notifications_total{integration="email"} 1\n'
    )
    assert sent_since(before, now, "webhook") == 2 and sent_since(before, now, "email") == 1
    config = {
        "receivers": [{"name": "pager", "webhook_configs": [{"url": "x"}]}, {"name": "mail", "email_configs": [{}]}]
    }
    assert receiver_integrations(config, "pager") == ["webhook"]
    with pytest.raises(ConfigError, match="no receiver 'slack'"):
        receiver_integrations(config, "slack")


def test_route_for_the_drill_label() -> None:
    assert not routes_label({"receiver": "x", "routes": [{"matchers": ['severity="critical"']}]}, "mnops_drill")
    assert routes_label({"routes": [{"routes": [{"matchers": ['mnops_drill=~".+"']}]}]}, "mnops_drill")
    assert routes_label({"routes": [{"match_re": {"mnops_drill": ".+"}}]}, "mnops_drill")


def test_the_traffic_stand_in_plays_the_pods_of_any_workload_by_their_replica_set() -> None:
    from pytest_mnops.standins.traffic.model import pod_from_api

    def pod(owner: str, labels: dict[str, str]) -> dict:
        return {
            "metadata": {
                "namespace": "shop",
                "name": f"{owner}-x",
                "labels": labels,
                "ownerReferences": [{"kind": "ReplicaSet", "name": owner}],
            },
            "spec": {"containers": [{"name": "envoy"}, {"name": "checkout", "resources": {"limits": {"cpu": "2"}}}]},
            "status": {},
        }

    rollout_pod = pod_from_api(pod("checkout-7d9f", {"rollouts-pod-template-hash": "7d9f"}))
    assert rollout_pod is not None and rollout_pod.app == "checkout" and rollout_pod.template_hash == "7d9f"
    rollout_pod.app_container = "checkout"
    assert rollout_pod.cpu_limit == 2.0  # the app container's, not the sidecar listed first
    deployment_pod = pod_from_api(pod("web-api-5c6b", {"pod-template-hash": "5c6b"}))
    assert deployment_pod is not None and deployment_pod.app == "web-api"
    assert pod_from_api(pod("standalone", {})) is None


def test_a_steady_state_probe_error_is_named_in_the_problems() -> None:
    from pytest_mnops.chaos.journal import DrillJournal

    probe = {
        "activity": {"name": "error-rate-within-slo", "type": "probe"},
        "status": "failed",
        "exception": ["Traceback...", "ClusterError: no data for sum(rate(x[5s])) (profile key slo.error_rate)\n"],
    }
    raw = {"status": "failed", "steady_states": {"before": {"steady_state_met": False, "probes": [probe]}}}
    problems = DrillJournal.from_journal("canary-failure", raw, {}).problems()
    assert any("error-rate-within-slo: ClusterError: no data for sum(rate(x[5s]))" in p for p in problems), problems


def test_slo_probe_with_no_data_fails_naming_query_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_mnops.chaos.activities import steady_state
    from pytest_mnops.errors import ClusterError

    class NoData:
        def value(self, expr: str) -> None:
            return None

    monkeypatch.setattr(steady_state, "_prometheus", lambda configuration: NoData())
    wire = {
        "source": "p.yaml",
        "namespace": "shop",
        "app": "checkout",
        "slo": {"error_rate": {"query": "q_errors", "limit": 0.01, "upper_bound": True, "source": "AT x"}},
    }
    with pytest.raises(ClusterError, match=r"no data for q_errors \(profile key slo\.error_rate, from AT x\)"):
        steady_state.slo_met("error_rate", {"profile": wire})


def test_a_command_consumer_check_gets_the_value_in_its_environment_only() -> None:
    from pytest_mnops.chaos.activities.secret_rotation import _consumer_answers
    from pytest_mnops.secrets.values import SecretValue

    check = {"command": ["sh", "-c", 'test "$MNOPS_SECRET_VALUE" = s3cret']}
    assert _consumer_answers(check, SecretValue("s3cret"), {}, 2) == {"accepted"}
    assert _consumer_answers(check, SecretValue("old"), {}, 2) == {"rejected"}


def test_plots_follow_the_apps_own_slo_query() -> None:
    wire = {"namespace": "shop", "app": "checkout", "slo": {"error_rate": {"query": "q_err"}}}
    app_profile = profile.AppProfile(wire, "p.yaml")
    assert profile.plot_of("canary-failure", app_profile)["plot"] == "q_err"
    assert profile.plot_of("high-latency", app_profile) == {}  # the scenario's own plot then


def test_the_data_window_opens_at_the_first_look_and_later_drills_get_what_is_left() -> None:
    now = [100.0]
    window = profile.DataWindow(1 / 12, clock=lambda: now[0])
    assert window.budget_s == 30.0  # 120 s scaled is 10 s: the floor holds
    now[0] = 500.0
    assert window.left_s() == 30.0  # the first drill's look opens it
    now[0] = 520.0
    assert window.left_s() == 10.0
    now[0] = 900.0
    assert window.left_s() == 0.0  # one query, no wait of its own
    assert profile.DataWindow(1.0).budget_s == 120.0
