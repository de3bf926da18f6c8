"""Voxelwise encoding models: fast ridge with per-target alphas, banded ridge, TRFs, CV.

Public names: the solvers :func:`solve_ridge_cv` and :func:`solve_ridge`, the estimators
:class:`RidgeCV`, :class:`BandedRidgeCV` and :class:`TRF` (scikit-learn estimators whose
``score`` is R²), the fold check :func:`check_cv` and the run-aware
:func:`cross_validate_encoding` with the stimulus-held-out folds of :func:`stimulus_splits`.
"""

from ._banded import BandedRidgeCV
from ._cv import check_cv, cross_validate_encoding
from ._params import DEFAULT_ALPHAS
from ._sklearn_api import RidgeCV
from ._stimulus_cv import check_shared_stimuli, stimulus_splits
from ._solvers import solve_ridge, solve_ridge_cv
from ._trf import TRF

__all__ = [
    "BandedRidgeCV", "DEFAULT_ALPHAS", "RidgeCV", "TRF", "check_cv", "cross_validate_encoding",
    "solve_ridge", "solve_ridge_cv", "stimulus_splits", "check_shared_stimuli",
]
