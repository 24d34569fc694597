"""A restart replaces every pod that exists when it is asked for, even one created earlier in the same second:
Argo Rollouts replaces only pods created before ``restartAt``, which has one-second resolution."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pytest_mnops.k8s import Resource, resources
from pytest_mnops.rollouts import Rollout


class RecordingKube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch(self, resource: Resource, name: str, body: Any, **kwargs: Any) -> dict[str, Any]:
        assert (resource, name) == (resources.ROLLOUT, "demo")
        self.patches.append(body)
        return {}


def test_restart_at_is_after_every_pod_created_so_far() -> None:
    kube = RecordingKube()
    # A pod created now gets this creationTimestamp: the current second, truncated.
    pod_created = dt.datetime.fromtimestamp(int(time.time()), dt.UTC)
    Rollout(kube, namespace="drills", name="demo").restart()  # type: ignore[arg-type]
    restart_at = dt.datetime.strptime(kube.patches[0]["spec"]["restartAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert restart_at > pod_created, "Argo Rollouts would pass over a pod created in the same second"
    assert restart_at - pod_created <= dt.timedelta(seconds=2), "the restart must not wait"
