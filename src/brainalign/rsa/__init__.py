"""Representational similarity analysis: fast RDMs, comparisons, the RDM noise ceiling,
inference (bootstrap, permutations), time-resolved and searchlight RSA. RDMs are
``rsatoolbox.rdm.RDMs`` objects throughout."""

from ._ceiling import RDMCeiling, pool_rdms, rdm_ceiling
from ._common import make_rdms, rank_transform, rdm_vectors
from ._compare import COMPARE_METHODS, compare
from ._inference import bootstrap, bootstrap_pairs, take_pairs
from ._noise import noise_precision
from ._permutation import permutation_test
from ._rdm import RDM_METHODS, calc_rdm
from ._searchlight import searchlight
from ._temporal import time_resolved


__all__ = [
    "calc_rdm", "compare", "rdm_ceiling", "RDMCeiling", "pool_rdms", "bootstrap", "bootstrap_pairs",
    "take_pairs", "permutation_test", "noise_precision", "time_resolved", "searchlight", "rdm_vectors",
    "make_rdms", "rank_transform", "RDM_METHODS", "COMPARE_METHODS",
]
