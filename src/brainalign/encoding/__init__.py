"""Voxelwise encoding models: fast ridge with per-target alphas, banded ridge, TRFs, CV.

Public names: the solvers :func:`solve_ridge_cv` and :func:`solve_ridge`, the estimators
:class:`RidgeCV`, :class:`BandedRidgeCV` and :class:`TRF`, and the run-aware
:func:`cross_validate_encoding`.
"""

from ._banded import BandedRidgeCV, simplex_grid
from ._cv import check_cv, cross_validate_encoding
from ._sklearn_api import DEFAULT_ALPHAS, RidgeCV
from ._solvers import solve_ridge, solve_ridge_cv
from ._trf import TRF

__all__ = [
    "BandedRidgeCV", "DEFAULT_ALPHAS", "RidgeCV", "TRF", "check_cv", "cross_validate_encoding",
    "simplex_grid", "solve_ridge", "solve_ridge_cv",
]
