"""The app profile: what the drills need to know about the app under test, resolved once per run.

A profile is discovered from the cluster where it can be (the workload's own ``spec.selector``, its first
container, the SLO queries of its Prometheus AnalysisTemplates) and completed by an optional YAML file
(``--mnops-profile``) for what cannot be discovered: the alerts each drill expects, the faulty version of
canary-failure, the secret of secret-rotation. docs/drilling-your-own-app.md is the reference.

The resolved profile is plain data (:meth:`AppProfile.to_wire`): it travels in the chaostoolkit configuration
to the activities and into the fault ledger. A drill that needs a key the profile lacks fails at setup with a
:class:`ConfigError` naming the key (:meth:`AppProfile.need`).

The modules: ``model`` (``AppProfile``, its SLO checks and expected alerts), ``resolution`` (the profile file
loaded and validated, the profile resolved), ``analysis_slos`` (the SLOs of the app's own AnalysisTemplates),
``versions`` (a drill's version of the app as a Rollout patch), ``drill_needs`` (what each drill needs, checked
at setup, and the SLO its report plots). This package re-exports their public names.
"""

from __future__ import annotations

from pytest_mnops.profile.analysis_slos import analysis_template_refs, slos_of_template
from pytest_mnops.profile.drill_needs import (
    DRILL_NEEDS,
    SLO_WORDS,
    DataWindow,
    check_drill,
    matching_pods,
    no_data,
    plot_of,
    require_pods,
    wait_for_data,
)
from pytest_mnops.profile.model import DOCS, SLO_KEYS, AppProfile, ExpectedAlert, Obj, SloCheck
from pytest_mnops.profile.resolution import (
    KEYS,
    KINDS,
    REFERENCE_PROFILE,
    expectation_set,
    load_file,
    profile_file,
    prom_label,
    resolve,
)
from pytest_mnops.profile.versions import RUN_ANNOTATION, image_with_tag, version_patch

__all__ = [
    "DOCS",
    "DRILL_NEEDS",
    "KEYS",
    "KINDS",
    "REFERENCE_PROFILE",
    "RUN_ANNOTATION",
    "SLO_KEYS",
    "SLO_WORDS",
    "AppProfile",
    "DataWindow",
    "ExpectedAlert",
    "Obj",
    "SloCheck",
    "analysis_template_refs",
    "check_drill",
    "expectation_set",
    "image_with_tag",
    "load_file",
    "matching_pods",
    "no_data",
    "plot_of",
    "profile_file",
    "prom_label",
    "require_pods",
    "resolve",
    "slos_of_template",
    "version_patch",
    "wait_for_data",
]
