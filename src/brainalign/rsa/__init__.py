"""Representational similarity analysis: fast RDMs, comparisons, noise ceilings, inference,
time-resolved and searchlight RSA. RDMs are ``rsatoolbox.rdm.RDMs`` objects throughout."""

from ._compare import COMPARE_METHODS, compare
from ._noise import noise_precision
from ._rdm import RDM_METHODS, calc_rdm

__all__ = ["calc_rdm", "compare", "noise_precision", "RDM_METHODS", "COMPARE_METHODS"]
