"""The project's deployable assets (charts/, monitoring/, scenarios/), found from a checkout or a configured dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pytest_mnops.errors import ConfigError

ASSET_DIRS = ("charts", "monitoring", "scenarios")


def root() -> Path:
    """``$MNOPS_ASSETS_DIR``, else the checkout this package runs from, else the working directory."""
    candidates = [Path(os.environ["MNOPS_ASSETS_DIR"])] if os.environ.get("MNOPS_ASSETS_DIR") else []
    candidates += [Path(__file__).resolve().parents[1], Path.cwd()]
    for candidate in candidates:
        if all((candidate / d).is_dir() for d in ASSET_DIRS):
            return candidate
    raise ConfigError(
        f"pytest-mnops assets ({', '.join(ASSET_DIRS)}) not found in {', '.join(map(str, candidates))}. "
        "Fix: run from a pytest-mnops checkout or set MNOPS_ASSETS_DIR to one."
    )


def path(*parts: str) -> Path:
    return root().joinpath(*parts)


def load_yaml_documents(file: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot be read as YAML: {exc}. Fix: correct the file.") from exc
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ConfigError(f"{file}: document {index + 1} is not a mapping. Fix: correct the file.")
    return docs


def chart_documents() -> list[dict[str, Any]]:
    """Every manifest in charts/, in the order kustomization.yaml lists them."""
    charts = path("charts")
    kustomization = yaml.safe_load((charts / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load_yaml_documents(charts / name)]
