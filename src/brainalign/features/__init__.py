"""Layerwise features from PyTorch / Hugging Face models, their on-disk store, time alignment.

``FeatureExtractor(model, layers=..., pooling=...).extract(stimuli)`` returns
:class:`~brainalign.Features` (layer -> array (n_items, n_features)); with a ``cache_dir``
(or ``$BRAINALIGN_CACHE``) they are written to a :class:`FeatureStore` batch by batch and
memory-mapped back. :mod:`brainalign.features.timing` puts them on a recording's time grid (``align_to``,
delays, the HRF) and :class:`Delayer` delays them inside a scikit-learn pipeline.
"""

from ._extract import FeatureExtractor, extract_features
from ._store import FeatureStore
from .timing import align_to, convolve_hrf, hrf, hrf_response, lanczos_resample, make_delays

__all__ = [
    "FeatureExtractor",
    "extract_features",
    "FeatureStore",
    "Delayer",
    "align_to",
    "convolve_hrf",
    "hrf",
    "hrf_response",
    "lanczos_resample",
    "make_delays",
]


def __getattr__(name: str):
    if name == "Delayer":  # scikit-learn is imported on first use, not by `import brainalign.features`
        from ._delayer import Delayer

        return Delayer
    raise AttributeError(f"module 'brainalign.features' has no attribute {name!r}")
