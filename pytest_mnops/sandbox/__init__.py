"""`mnops sandbox`: a real Kubernetes control plane, Argo Rollouts, Prometheus and Alertmanager on 127.0.0.1."""
