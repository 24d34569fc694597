"""The wheel carries the project's assets as package data (pytest_mnops/_assets/): the scenarios, the suites,
charts/ and monitoring/. They stay at the top of the checkout, where users and docs find them; the build copies
them in. Everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSETS = ("charts", "monitoring", "scenarios", "suites")
# Packages, so `pytest --pyargs pytest_mnops._assets.suites.validation` finds the installed suites.
PACKAGES = ("", "suites", "suites/drills", "suites/validation")


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        target = Path(self.build_lib) / "pytest_mnops" / "_assets"
        for name in ASSETS:
            shutil.copytree(name, target / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        for package in PACKAGES:
            (target / package / "__init__.py").touch()


setup(cmdclass={"build_py": BuildWithAssets})
