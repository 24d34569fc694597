"""In a pod, with no kubeconfig: the target is the pod's ServiceAccount (its mounted files), its namespace the pod's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import config as k8s_config

from pytest_mnops.errors import ConfigError
from pytest_mnops.k8s import InCluster
from tests.unit.test_plugin_options import _show

TOKEN = "eyJ-a-projected-token"


def pod_files(root: Path, *, namespace: str = "shop", skip: str = "") -> Path:
    directory = root / "var/run/secrets/kubernetes.io/serviceaccount"
    directory.mkdir(parents=True)
    for name, text in (("token", TOKEN), ("ca.crt", "-----BEGIN CERTIFICATE-----\n"), ("namespace", namespace)):
        if name != skip:
            (directory / name).write_text(text)
    return directory


def pod_env(directory: Path, host: str = "10.96.0.1") -> dict[str, str]:
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": "443",
        "MNOPS_SERVICEACCOUNT_DIR": str(directory),
    }


def test_outside_a_pod_there_is_no_in_cluster_config(tmp_path: Path) -> None:
    directory = pod_files(tmp_path)
    assert InCluster.detect({}) is None
    assert InCluster.detect({**pod_env(directory), "KUBERNETES_SERVICE_HOST": ""}) is None
    assert InCluster.detect(pod_env(tmp_path / "elsewhere")) is None, "no token mounted: not a pod's environment"


def test_the_pod_config_names_its_files_and_holds_no_token(tmp_path: Path) -> None:
    pod = InCluster.detect(pod_env(pod_files(tmp_path)))
    assert pod is not None and pod.server == "https://10.96.0.1:443" and pod.namespace == "shop"
    path = pod.write_kubeconfig(tmp_path / "state")
    assert TOKEN not in path.read_text()
    user = json.loads(path.read_text())["users"][0]["user"]
    assert user == {"tokenFile": str(pod.directory / "token")}
    # The official client reads the token from the file, as chaostoolkit-kubernetes' client does.
    api = k8s_config.new_client_from_config(config_file=str(path), context=InCluster.CONTEXT)
    assert api.configuration.api_key["authorization"] == f"Bearer {TOKEN}"
    assert api.configuration.host == "https://10.96.0.1:443"
    assert pod.write_kubeconfig(tmp_path / "state") == path, "one file per pod environment, rewritten in place"


def test_an_ipv6_service_host_is_bracketed(tmp_path: Path) -> None:
    pod = InCluster.detect(pod_env(pod_files(tmp_path), host="fd00::1"))
    assert pod is not None and pod.server == "https://[fd00::1]:443"


@pytest.mark.parametrize("missing", ["ca.crt", "namespace"])
def test_a_half_mounted_serviceaccount_names_what_is_missing(tmp_path: Path, missing: str) -> None:
    directory = pod_files(tmp_path, skip=missing)
    with pytest.raises(ConfigError, match=f"{missing} is missing.*automountServiceAccountToken"):
        InCluster.detect(pod_env(directory))
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_PORT is unset"):
        InCluster.detect({**pod_env(directory), "KUBERNETES_SERVICE_PORT": ""})


def test_the_plugin_targets_the_pod_when_no_kubeconfig_is_given(
    mnops_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for name, value in pod_env(pod_files(mnops_pytester.path / "pod")).items():
        monkeypatch.setenv(name, value)
    target, _ = _show(mnops_pytester, "--mnops-prometheus-url", "http://127.0.0.1:1")
    assert (target["context"], target["namespace"], target["allowed_namespaces"]) == ("in-cluster", "shop", ["shop"])
    assert Path(target["kubeconfig"]).parent == mnops_pytester.path / ".mnops", "next to the ledger"
    # A namespace given explicitly wins over the pod's; a kubeconfig given means no in-cluster config at all.
    target, _ = _show(mnops_pytester, "--mnops-prometheus-url", "http://127.0.0.1:1", "--mnops-namespace", "other")
    assert (target["context"], target["namespace"]) == ("in-cluster", "other")
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    target, _ = _show(mnops_pytester, "--mnops-prometheus-url", "http://127.0.0.1:1")
    assert (target["kubeconfig"], target["context"], target["namespace"]) == (None, None, "default")
