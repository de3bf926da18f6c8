"""Thin scikit-learn estimators over the ridge solvers."""

from __future__ import annotations


import numpy as np
import torch
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .._docs import fill_doc
from .._backend import to_numpy
from ._cv import check_cv
from ._solvers import _check_alphas, solve_ridge_cv

__all__ = ["RidgeCV"]

#: np.logspace(-2, 6, 20) as a tuple (an array default would break scikit-learn's repr and clone)
DEFAULT_ALPHAS = tuple(np.logspace(-2, 6, 20).tolist())


class _EncodingBase(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """predict / score shared by the encoding estimators."""

    def _validate_fit(self, X, Y):
        self._torch_in_ = isinstance(X, torch.Tensor)
        if self._torch_in_:
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {tuple(X.shape)}.")
            self.n_features_in_ = X.shape[1]
            return X, Y
        X, Y = validate_data(self, X, Y, multi_output=True, y_numeric=True, dtype=[np.float64, np.float32])
        return X, Y

    def _validate_predict(self, X):
        check_is_fitted(self, "coef_")
        if isinstance(X, torch.Tensor):
            if X.ndim != 2 or X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has shape {tuple(X.shape)}; this model was fitted with {self.n_features_in_} features.")
            return X
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def predict(self, X):
        """Predicted responses, array of shape (n_samples, n_targets) (or (n_samples,) for 1-D y)."""
        X = self._validate_predict(X)
        coef, intercept = self.coef_, self.intercept_
        if isinstance(X, torch.Tensor):
            W = torch.as_tensor(np.atleast_2d(to_numpy(coef)), device=X.device, dtype=X.dtype)
            b = torch.as_tensor(np.atleast_1d(to_numpy(intercept)), device=X.device, dtype=X.dtype)
            out = X @ W.T + b
            return out[:, 0] if np.ndim(coef) == 1 else out
        out = X @ np.atleast_2d(coef).T.astype(X.dtype, copy=False) + np.atleast_1d(intercept).astype(X.dtype, copy=False)
        return out[:, 0] if np.ndim(coef) == 1 else out

    def score(self, X, y, sample_weight=None):
        """Mean over targets of the Pearson r between predictions and ``y``.

        Note: this differs from scikit-learn's regressors, whose ``score`` is R²; use
        :func:`brainalign.stats.r2_score` for per-target R².
        """
        from ..stats import pearson_r

        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by brainalign's encoding scores.")
        return float(np.mean(pearson_r(to_numpy(y), to_numpy(self.predict(X)))))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _store(self, coef, intercept, squeeze):
        if not self._torch_in_:
            coef, intercept = to_numpy(coef), to_numpy(intercept)
        if squeeze:
            coef, intercept = coef[0], intercept[0]
        self.coef_ = coef
        self.intercept_ = intercept


@fill_doc
class RidgeCV(_EncodingBase):
    """Ridge regression with the regularization chosen by cross-validation, per target.

    One eigendecomposition per fold gives every alpha for every target (see
    :func:`brainalign.encoding.solve_ridge_cv`); targets are processed in chunks sized from the
    free memory of the device; float32 by default with float64 decompositions.

    Parameters
    ----------
    alphas : array of shape (n_alphas,)
        Candidate regularization strengths (strictly positive); default ``np.logspace(-2, 6, 20)``.
    cv : int, "run", splitter or iterable of (train, test)
        Inner folds. With ``groups`` in :meth:`fit`, whole groups (runs) are left out.
    alpha_per_target : bool
        One alpha per target (True) or the best alpha on average over targets.
    fit_intercept : bool
    scoring : {"r2", "pearson_r"}
        Held-out score used to choose the alphas (``cv_scores_``).
    solver : {"auto", "primal", "dual"}
    device : "auto", str or torch.device
    dtype : None, "float32" or "float64"
    n_targets_batch : "auto" or int
    %(verbose)s

    Attributes
    ----------
    coef_ : array of shape (n_targets, n_features)
    intercept_ : array of shape (n_targets,)
    best_alphas_ : array of shape (n_targets,)
    cv_scores_ : array of shape (n_alphas, n_targets)
        Validation score of every alpha, averaged over folds.

    Notes
    -----
    :meth:`score` returns the mean Pearson r over targets, not R² as scikit-learn's
    regressors do.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5)); Y = X @ rng.standard_normal((5, 4))
    >>> model = RidgeCV(alphas=[0.1, 1.0, 10.0], verbose=False).fit(X, Y)
    >>> model.coef_.shape, model.best_alphas_.shape
    ((4, 5), (4,))
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, *, cv=5, alpha_per_target=True, fit_intercept=True,
                 scoring="r2", solver="auto", device="auto", dtype=None, n_targets_batch="auto", verbose=False):
        self.alphas = alphas
        self.cv = cv
        self.alpha_per_target = alpha_per_target
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.solver = solver
        self.device = device
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch
        self.verbose = verbose

    def fit(self, X, y, groups=None):
        """Fit on X (n_samples, n_features) and y (n_samples, n_targets); ``groups``: run labels."""
        alphas = _check_alphas(self.alphas)
        X, y = self._validate_fit(X, y)
        n = X.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"X and y have different numbers of samples: X has {n}, y has {y.shape[0]}.")
        squeeze = y.ndim == 1
        splits = check_cv(self.cv, n, None if groups is None else to_numpy(groups))
        dtype = self.dtype
        if dtype is None and not self._torch_in_ and np.asarray(X).dtype == np.float64 and n < 50:
            dtype = "float64"  # tiny problems: keep the user's precision
        out = solve_ridge_cv(X, y, alphas, splits=splits, fit_intercept=self.fit_intercept,
                             alpha_per_target=self.alpha_per_target, scoring=self.scoring, solver=self.solver,
                             device=self.device, dtype=dtype, n_targets_batch=self.n_targets_batch,
                             verbose=self.verbose)
        self._store(out.coef, out.intercept, squeeze)
        cv_scores, best = (out.cv_scores, out.best_alphas) if self._torch_in_ else (to_numpy(out.cv_scores), to_numpy(out.best_alphas))
        self.cv_scores_ = cv_scores[:, 0] if squeeze else cv_scores
        self.best_alphas_ = best[0] if squeeze else best
        self.n_batches_ = out.n_batches
        return self
