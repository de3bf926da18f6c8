"""brainalign: how well does layer L of model M explain brain region R?

Load recordings (fMRI, EEG, MEG) and their stimuli, extract layerwise features from any
PyTorch / Hugging Face model, and measure alignment with voxelwise encoding models, RSA and
topological RSA, with noise ceilings and statistics. :func:`run_recipe` runs a whole
analysis from a TOML recipe (``docs/recipes.md``), as the ``brainalign run`` command does.

``import brainalign`` is light: torch, transformers, mne and nilearn are imported only by the
sub-packages that need them (``brainalign.features``, ``brainalign.datasets``...), which load on
first attribute access.
"""

from __future__ import annotations

import importlib
import logging

from ._utils import Bunch
from .data import BrainData, Features, Stimuli

__version__ = "0.1.0"

logging.getLogger("brainalign").addHandler(logging.NullHandler())

_SUBMODULES = (
    "alignment", "cli", "datasets", "encoding", "features", "plotting", "rsa", "similarity", "stats", "topology",
)

#: run a recipe from Python as ``brainalign run`` does (loaded on first use)
_RECIPES = {"run_recipe": "._recipe_run", "load_recipe": "._recipes", "validate_recipe": "._recipes",
            "RecipeError": "._recipes"}

__all__ = ["BrainData", "Stimuli", "Features", "Bunch", "__version__", *_RECIPES, *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _RECIPES:
        return getattr(importlib.import_module(_RECIPES[name], __name__), name)
    raise AttributeError(f"module 'brainalign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
