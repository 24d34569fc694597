"""The project's assets (charts/, monitoring/, scenarios/, suites/): from ``$MNOPS_ASSETS_DIR``, the checkout this
package runs from, or the copy an installed wheel carries (pytest_mnops/_assets, see setup.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pytest_mnops.errors import ConfigError

ASSET_DIRS = ("charts", "monitoring", "scenarios")
NAMES = (*ASSET_DIRS, "suites")
PACKAGED = Path(__file__).resolve().parent / "_assets"


def root() -> Path:
    """``$MNOPS_ASSETS_DIR`` (a modified copy of the assets, e.g. your own charts/), else the checkout this package
    runs from, else the assets the installed wheel carries."""
    override = os.environ.get("MNOPS_ASSETS_DIR")
    candidates = [Path(override)] if override else [Path(__file__).resolve().parents[1], PACKAGED]
    for candidate in candidates:
        if all((candidate / d).is_dir() for d in ASSET_DIRS):
            return candidate
    raise ConfigError(
        f"pytest-mnops assets ({', '.join(ASSET_DIRS)}) not found in {', '.join(map(str, candidates))}. "
        + (
            "Fix: point MNOPS_ASSETS_DIR at a directory holding them, or unset it."
            if override
            else "Fix: reinstall pytest-mnops (its wheel carries them), or set MNOPS_ASSETS_DIR to a copy."
        )
    )


def path(*parts: str) -> Path:
    return root().joinpath(*parts)


def shown(file: Path) -> str:
    """A file as messages name it: the reference app's relative to the assets (monitoring/...), yours as given."""
    base = root()
    return str(file.relative_to(base)) if file.is_relative_to(base) else str(file)


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
