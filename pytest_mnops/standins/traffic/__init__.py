"""Traffic stand-in: real HTTP requests spread over an app's Ready pods, with each pod's fault profile.

KWOK pods run no containers, so this process plays the app's data plane:

* it watches the API for the pods of every Rollout and Deployment (a ReplicaSet's pods), their optional
  ``traffic.mnops.dev/*`` annotations (a version's error ratio and latency), the ConfigMaps in which an app
  profile declares its metric names and labels (pytest_mnops.sandbox.apps writes them), and Chaos Mesh
  ``NetworkChaos``/``StressChaos`` objects, which it honours in place of the Chaos Mesh daemon;
* a built-in load generator sends real HTTP requests to its own loopback server, which picks a Ready pod as
  kube-proxy would (uniformly at random), applies that pod's error ratio and latency, and answers;
* ``/metrics`` exports what an instrumented app, cAdvisor and kube-state-metrics would export for those pods,
  under the same names and labels, so analyses, alerts and dashboards work unchanged on a real cluster.
"""

from pytest_mnops.standins.traffic.process import main
from pytest_mnops.standins.traffic.server import TrafficStandIn

__all__ = ["TrafficStandIn", "main"]
