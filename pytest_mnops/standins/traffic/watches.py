"""How the traffic stand-in keeps its World current: a list, then a watch from the list's resourceVersion, per
resource (pods, the app profiles' traffic ConfigMaps, Chaos Mesh faults, Secrets), relisting after an error."""

from __future__ import annotations

import threading
from typing import Any

from pytest_mnops.errors import ClusterError
from pytest_mnops.k8s import Kube, resources
from pytest_mnops.k8s.resources import Resource
from pytest_mnops.names import TRAFFIC_LABEL
from pytest_mnops.standins.traffic.world import World


class Watches:
    """One daemon thread per resource the World follows, until ``stop`` is set."""

    def __init__(self, kube: Kube, world: World, stop: threading.Event) -> None:
        self.kube, self.world, self._stop = kube, world, stop

    def start(self) -> None:
        watches = [
            (resources.POD, self.world.set_pod, None),
            (resources.CONFIG_MAP, self.world.set_traffic, TRAFFIC_LABEL),
            (resources.NETWORK_CHAOS, lambda o, d: self.world.set_chaos("NetworkChaos", o, d), None),
            (resources.STRESS_CHAOS, lambda o, d: self.world.set_chaos("StressChaos", o, d), None),
            (resources.SECRET, self.world.set_secret, None),
        ]
        for resource, handler, selector in watches:
            threading.Thread(target=self._watch, args=(resource, handler, selector), daemon=True).start()

    def _watch(self, resource: Resource, on_event: Any, label_selector: str | None = None) -> None:
        while not self._stop.is_set():
            try:
                items, rv = self.kube.list(resource, label_selector=label_selector)
                seen = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items}
                for obj in items:
                    on_event(obj, False)
                self.drop_missing(resource, seen)
                for kind, obj in self.kube.watch(
                    resource, resource_version=rv, label_selector=label_selector, timeout_s=300
                ):
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        on_event(obj, kind == "DELETED")
                    if self._stop.is_set():
                        return
            except (ClusterError, OSError, ValueError):
                self._stop.wait(0.5)

    def drop_missing(self, resource: Resource, seen: set[tuple[str, str]]) -> None:
        """After a relist, forget objects deleted while no watch was open."""
        with self.world.lock:
            if resource is resources.SECRET:
                for key in [k for k in self.world.secrets if k not in seen]:
                    del self.world.secrets[key]
            elif resource is resources.POD:
                for key in [k for k in self.world.pods if k not in seen]:
                    self.world.removed.append(self.world.pods.pop(key))
            else:
                for chaos_key in [k for k in self.world.chaos if k[0] == resource.kind and k[1:] not in seen]:
                    del self.world.chaos[chaos_key]
