"""The encoding room's shared parameters: declared constraints and one description each.

The constraints use scikit-learn's declarative validation (``_parameter_constraints`` in the
estimators, :func:`sklearn.utils._param_validation.validate_params` on the solver functions),
so a parameter is checked by one rule with one message everywhere. The descriptions are
registered in :data:`brainalign._docs.docdict` and pasted by :func:`brainalign._docs.fill_doc`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._docs import docdict

#: np.logspace(-2, 6, 20) as a tuple (an array default would break scikit-learn's repr and clone)
DEFAULT_ALPHAS = tuple(np.logspace(-2, 6, 20).tolist())

SCORINGS = ("r2", "pearson_r")

RIDGE_CONSTRAINTS: dict = {
    "alphas": ["array-like", Interval(Real, 0, None, closed="neither")],
    "fit_intercept": ["boolean"],
    "scoring": [StrOptions(set(SCORINGS))],
    "device": [str, torch.device, None],
    "dtype": [None, StrOptions({"float32", "float64"}), type, np.dtype, torch.dtype],
    "n_targets_batch": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "verbose": ["verbose"],
}
SOLVER_CONSTRAINT = [StrOptions({"auto", "primal", "dual"})]
CV_CONSTRAINT = ["cv_object", StrOptions({"run", "loro"})]
RANDOM_STATE_CONSTRAINT = [None, Interval(Integral, 0, None, closed="left"), np.random.Generator,
                           np.random.RandomState]

docdict.update({
    "alphas": """alphas : float or array of shape (n_alphas,)
    Candidate regularization strengths, strictly positive; default ``np.logspace(-2, 6, 20)``.
    They act on the scale of ``XᵀX`` (sum over samples of squared features): standardized
    features with n samples have eigenvalues around n. A warning says when every alpha is
    negligible (or overwhelming) on the scale of X.""",
    "cv": """cv : int, "run", scikit-learn splitter or iterable of (train, validation) pairs
    Inner folds for the alpha search. An int gives ``KFold(cv)`` (contiguous blocks, no
    shuffling) or, with ``groups`` at fit, ``GroupKFold(cv)`` (whole runs left out); "run"
    leaves one run out at a time. Folds need not be complements (TimeSeriesSplit, hand-made
    lists); a sample in both sets of a fold, or an index outside the data, raises.""",
    "fit_intercept": """fit_intercept : bool
    Centre X and y on the training samples of every fold (and on all samples for the
    refit), as scikit-learn's ``Ridge``.""",
    "scoring": """scoring : {"r2", "pearson_r"}
    Held-out score that selects the alphas (averaged over folds). :meth:`score` is always R²
    (scikit-learn's contract); "pearson_r" selects by correlation instead.""",
    "solver": """solver : {"auto", "primal", "dual"}
    "auto" uses the kernel (dual) form when n_features exceeds the training samples of a fold.""",
    "dtype": """dtype : None, "float32" or "float64"
    Working and output precision. None keeps X's: float32 stays float32, float64 stays
    float64, float16/bfloat16 are computed in float32 and other types in float64.
    Decompositions are always done in float64. On a GPU, float32 is much faster.""",
    "n_targets_batch": """n_targets_batch : "auto" or int
    Targets per chunk; "auto" sizes chunks from the device's free memory
    (``BRAINALIGN_MEMORY_LIMIT`` caps it).""",
})
