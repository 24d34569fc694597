"""Where each kind lives in the API: enough to build every URL without discovery (no client here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API: enough to build every URL without discovery."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


class resources:
    NAMESPACE = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
    NODE = Resource("", "v1", "nodes", "Node", namespaced=False)
    POD = Resource("", "v1", "pods", "Pod")
    SERVICE = Resource("", "v1", "services", "Service")
    ENDPOINTS = Resource("", "v1", "endpoints", "Endpoints")
    SERVICE_ACCOUNT = Resource("", "v1", "serviceaccounts", "ServiceAccount")
    CLUSTER_ROLE_BINDING = Resource(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
    )
    SECRET = Resource("", "v1", "secrets", "Secret")
    CONFIG_MAP = Resource("", "v1", "configmaps", "ConfigMap")
    EVENT = Resource("", "v1", "events", "Event")
    DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
    REPLICA_SET = Resource("apps", "v1", "replicasets", "ReplicaSet")
    CRD = Resource(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False
    )
    ROLLOUT = Resource("argoproj.io", "v1alpha1", "rollouts", "Rollout")
    ANALYSIS_RUN = Resource("argoproj.io", "v1alpha1", "analysisruns", "AnalysisRun")
    ANALYSIS_TEMPLATE = Resource("argoproj.io", "v1alpha1", "analysistemplates", "AnalysisTemplate")
    CLUSTER_ANALYSIS_TEMPLATE = Resource(
        "argoproj.io", "v1alpha1", "clusteranalysistemplates", "ClusterAnalysisTemplate", namespaced=False
    )
    NETWORK_CHAOS = Resource("chaos-mesh.org", "v1alpha1", "networkchaos", "NetworkChaos")
    STRESS_CHAOS = Resource("chaos-mesh.org", "v1alpha1", "stresschaos", "StressChaos")
    SELF_SUBJECT_ACCESS_REVIEW = Resource(
        "authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", namespaced=False
    )


def describe(resource: Resource, name: str | None, namespace: str | None) -> str:
    where = f" in namespace {namespace!r}" if namespace and resource.namespaced else ""
    return f"{resource.kind} {name!r}{where}" if name else f"{resource.kind} objects{where}"
