"""A drill's version of the app (a profile's ``faulty_version``/``rollout_version``) as a Rollout patch."""

from __future__ import annotations

import copy
import re

from pytest_mnops.profile.model import Obj

# The harmless change emergency-rollback rolls out and back when the profile names no version of its own.
RUN_ANNOTATION = "mnops.dev/drill-run"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_with_tag(image: str, tag: str) -> str:
    """``repo:tag`` for a new tag, whether ``image`` was pinned by tag or by digest (``repo@sha256:...``)."""
    repo = _DIGEST.sub("", image)
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    return f"{repo}:{tag}"


def version_patch(template: Obj, spec: Obj, *, container: str, run_id: str, sandbox: bool) -> Obj:
    """The merge patch of a Rollout that rolls out ``spec`` (a profile's ``faulty_version``/``rollout_version``).

    ``image`` replaces the app container's image, ``tag`` retags it (digest-pinned images too), ``env`` sets
    variables on it, ``annotations`` (plus ``sandbox_annotations`` on the sandbox) go on the pod template. The
    run id annotation makes every drill's version a new pod template, never a return to an old ReplicaSet
    (which Argo Rollouts would treat as a rollback and skip the canary steps for).
    """
    containers = copy.deepcopy(template["spec"]["containers"])
    app = next(c for c in containers if c["name"] == container)
    if spec.get("image"):
        app["image"] = str(spec["image"])
    elif spec.get("tag"):
        app["image"] = image_with_tag(app["image"], str(spec["tag"]))
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    if env:
        kept = [e for e in app.get("env") or [] if e["name"] not in env]
        app["env"] = kept + [{"name": k, "value": v} for k, v in env.items()]
    annotations = {**(spec.get("annotations") or {}), **((spec.get("sandbox_annotations") or {}) if sandbox else {})}
    annotations = {str(k): str(v) for k, v in annotations.items()}
    # Strategic merge is not available for custom resources: a merge patch replaces the whole list.
    return {
        "spec": {
            "template": {
                "metadata": {"annotations": {**annotations, RUN_ANNOTATION: run_id}},
                "spec": {"containers": containers},
            }
        }
    }
