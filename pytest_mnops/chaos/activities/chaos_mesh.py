"""high-latency and resource-exhaustion: the Chaos Mesh faults' idempotent revert (chaosk8s injects them)."""

from __future__ import annotations

from pytest_mnops.chaos.activities._shared import Configuration, _kube
from pytest_mnops.k8s import resources


def delete_chaos(kind: str, name: str, configuration: Configuration) -> bool:
    """Remove a Chaos Mesh object if it is still there (the idempotent twin of chaosk8s' delete actions)."""
    resource = {"NetworkChaos": resources.NETWORK_CHAOS, "StressChaos": resources.STRESS_CHAOS}[kind]
    return _kube(configuration).delete(resource, name, namespace=configuration["namespace"])
