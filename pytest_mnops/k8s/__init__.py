"""The only package that imports the official ``kubernetes`` client.

Everything above it speaks plain dicts (the objects as the API serves them), so core, apps and custom
resources look alike, and waits are watches that resume from the list's resourceVersion instead of
sleep-and-poll loops.
"""

from pytest_mnops.k8s.client import Kube, default_kubeconfig
from pytest_mnops.k8s.conditions import condition_true, pod_ready
from pytest_mnops.k8s.incluster import InCluster
from pytest_mnops.k8s.resources import Resource, resources

__all__ = ["InCluster", "Kube", "Resource", "condition_true", "default_kubeconfig", "pod_ready", "resources"]
