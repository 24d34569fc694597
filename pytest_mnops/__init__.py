"""pytest-mnops: chaos and drill testing for Kubernetes canary deployments."""

__version__ = "0.1.0"
