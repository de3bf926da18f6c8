"""Layerwise features from PyTorch / Hugging Face models, their on-disk store, time alignment.

``FeatureExtractor(model, layers=..., pooling=...).extract(stimuli)`` returns
:class:`~brainalign.Features` (layer -> array (n_items, n_features)); with a ``cache_dir``
(or ``$BRAINALIGN_CACHE``) they are written to a :class:`FeatureStore` batch by batch and
memory-mapped back. :mod:`brainalign.features.timing` puts them on a recording's time grid.
"""

from ._extract import FeatureExtractor, extract_features
from ._store import FeatureStore
from .timing import align_to, lanczos_resample, make_delays

__all__ = [
    "FeatureExtractor",
    "extract_features",
    "FeatureStore",
    "align_to",
    "lanczos_resample",
    "make_delays",
]
