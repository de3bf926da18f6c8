"""Representational similarity analysis: fast RDMs, comparisons, noise ceilings, inference,
time-resolved and searchlight RSA. RDMs are ``rsatoolbox.rdm.RDMs`` objects throughout."""

from ._ceiling import noise_ceiling, pool_rdms
from ._compare import COMPARE_METHODS, compare
from ._inference import bootstrap, bootstrap_pairs, take_pairs
from ._noise import noise_precision
from ._rdm import RDM_METHODS, calc_rdm
from ._searchlight import searchlight
from ._temporal import time_resolved

__all__ = [
    "calc_rdm", "compare", "noise_ceiling", "pool_rdms", "bootstrap", "bootstrap_pairs", "take_pairs",
    "noise_precision", "time_resolved", "searchlight", "RDM_METHODS", "COMPARE_METHODS",
]
