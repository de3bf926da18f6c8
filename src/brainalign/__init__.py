"""brainalign: how well does layer L of model M explain brain region R?

Load recordings (fMRI, EEG, MEG) and their stimuli, extract layerwise features from any
PyTorch / Hugging Face model, and measure alignment with voxelwise encoding models, RSA and
topological RSA, with noise ceilings and statistics.

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

__all__ = ["BrainData", "Stimuli", "Features", "Bunch", "__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'brainalign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
