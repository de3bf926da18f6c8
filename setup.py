"""Build hook: ship the top-level ``datasets/`` and ``encoding/`` folders inside the package.

They stay the source of truth in the repository; a wheel carries copies under
``brainalign/_data/datasets`` (the bundled data, found by ``brainalign.datasets.dataset_path``)
and ``brainalign/_data/encoding`` (the recipes, found by ``brainalign demo``). Editable
installs read them in place. Everything else is configured in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("datasets", "encoding")  # repository folder -> brainalign/_data/<folder>


class BuildPyWithData(build_py):
    """``build_py`` that also copies the shipped folders into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the folders of the checkout
        for folder in SHIPPED:
            source = ROOT / folder
            if not source.is_dir():
                raise FileNotFoundError(f"{source} is missing: the wheel must ship it (see MANIFEST.in).")
            target = Path(self.build_lib) / "brainalign" / "_data" / folder
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildPyWithData})
