"""Thin scikit-learn estimators over the ridge solvers."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils import check_array, check_consistent_length
from sklearn.utils.validation import check_is_fitted, validate_data

from .._backend import to_numpy
from .._docs import fill_doc
from .._utils import check_finite
from ._cv import _check_cv_folds
from ._params import CV_CONSTRAINT, DEFAULT_ALPHAS, RIDGE_CONSTRAINTS, SOLVER_CONSTRAINT
from ._solvers import _check_alphas, _solve_cv

__all__ = ["DEFAULT_ALPHAS", "RidgeCV"]


class _EncodingBase(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Input checks, predict and score shared by the encoding estimators.

    Output policy (both estimators): numpy in, numpy out; torch in, torch out (on the device
    the solver ran on). The dtype of the fitted arrays is the working dtype of the solvers
    (:func:`brainalign.encoding.solve_ridge_cv`: X's float precision unless ``dtype=``).
    """

    def _validate_fit(self, X, Y):
        """Checked X (n_samples, n_features) and Y; a NaN/inf raises naming the array, the
        count and the first index (for tensors, the solvers do it on the device)."""
        if Y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        self._torch_in_ = isinstance(X, torch.Tensor)
        if self._torch_in_:
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {tuple(X.shape)}.")
            self.n_features_in_ = X.shape[1]
            Y = Y if isinstance(Y, torch.Tensor) else torch.as_tensor(np.asarray(Y), device=X.device)
        else:
            X = validate_data(self, X, dtype="numeric", ensure_all_finite=False, ensure_min_samples=1)
            Y = check_array(Y, ensure_2d=False, dtype="numeric", ensure_all_finite=False, input_name="y")
            hint = "Remove or impute them before fitting (e.g. drop channels with NaN)."
            check_finite(X, "X", hint=hint)
            check_finite(Y, "y", hint=hint)
        if Y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D (n_samples, n_targets); got shape {tuple(Y.shape)}.")
        check_consistent_length(X, Y)
        return X, Y

    def _validate_predict(self, X):
        check_is_fitted(self, "coef_")
        if isinstance(X, torch.Tensor):
            if X.ndim != 2 or X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has shape {tuple(X.shape)}; this model was fitted with {self.n_features_in_} features.")
            return X
        return validate_data(self, X, reset=False, dtype="numeric")

    def predict(self, X):
        """Predicted responses.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)

        Returns
        -------
        y_pred : array or tensor of shape (n_samples, n_targets), or (n_samples,) for a 1-D y
        """
        X = self._validate_predict(X)
        coef, intercept = self.coef_, self.intercept_
        if isinstance(X, torch.Tensor):
            W = torch.as_tensor(coef).to(device=X.device)
            b = torch.as_tensor(intercept).to(device=X.device)
            dt = torch.promote_types(X.dtype, W.dtype) if X.is_floating_point() else W.dtype
            return X.to(dt) @ W.to(dt).T + b.to(dt)
        return X @ to_numpy(coef).T + to_numpy(intercept)

    def score(self, X, y, sample_weight=None):
        """R² of the predictions, averaged over targets (scikit-learn's regressor contract).

        For the correlation, or one score per target, use :func:`brainalign.stats.pearson_r`
        / :func:`brainalign.stats.r2_score` on :meth:`predict`, or
        :func:`brainalign.encoding.cross_validate_encoding` (held-out ``r`` and ``r2``).

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        y : array or tensor of shape (n_samples, n_targets) or (n_samples,)
        sample_weight : array of shape (n_samples,), optional

        Returns
        -------
        score : float
        """
        from sklearn.metrics import r2_score

        pred = to_numpy(self.predict(X))
        weight = None if sample_weight is None else to_numpy(sample_weight)
        return float(r2_score(to_numpy(y), pred, sample_weight=weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _out(self, t, squeeze=False):
        """A solver tensor as a fitted attribute: torch in -> tensor, numpy in -> array."""
        t = t if self._torch_in_ else to_numpy(t)
        return t[0] if squeeze else t

    def _splits(self, X, groups):
        n = X.shape[0]
        if groups is not None:
            groups = to_numpy(groups)
        return _check_cv_folds(self.cv, n, groups)


@fill_doc
class RidgeCV(_EncodingBase):
    """Ridge regression with the regularization chosen by cross-validation, per target.

    One eigendecomposition per fold gives every alpha for every target (see
    :func:`brainalign.encoding.solve_ridge_cv`); targets are processed in chunks sized from the
    free memory of the device; decompositions in float64.

    Parameters
    ----------
    %(alphas)s
    %(cv)s
    alpha_per_target : bool
        One alpha per target (True) or the best alpha on average over targets.
    %(fit_intercept)s
    %(scoring)s
    %(solver)s
    %(device)s
    %(dtype)s
    %(n_targets_batch)s
    %(verbose)s

    Attributes
    ----------
    coef_ : array or tensor of shape (n_targets, n_features)
        (n_features,) when fitted on a 1-D y, as every per-target attribute below.
    intercept_ : array or tensor of shape (n_targets,)
    best_alphas_ : array or tensor of shape (n_targets,)
        The selected alphas (float64, values of ``alphas``).
    cv_scores_ : array or tensor of shape (n_alphas, n_targets)
        Validation score (``scoring``) of every alpha, averaged over folds.
    best_score_ : array or tensor of shape (n_targets,)
        The validation score of the selected alpha.
    n_features_in_ : int
    n_batches_ : int
        Number of target chunks the solver used.

    Notes
    -----
    Numpy in, numpy out; torch in, torch out. Fitted arrays have the working dtype of the
    solver (X's float precision unless ``dtype=`` is given). :meth:`score` is R² (the
    mean over targets), as for every scikit-learn regressor.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5)); Y = X @ rng.standard_normal((5, 4))
    >>> model = RidgeCV(alphas=[0.1, 1.0, 10.0]).fit(X, Y)
    >>> model.coef_.shape, model.best_alphas_.shape, model.coef_.dtype
    ((4, 5), (4,), dtype('float64'))
    >>> round(model.score(X, Y), 3)
    1.0
    """

    _parameter_constraints: dict = {
        **RIDGE_CONSTRAINTS,
        "cv": CV_CONSTRAINT,
        "alpha_per_target": ["boolean"],
        "solver": SOLVER_CONSTRAINT,
    }

    def __init__(self, *, alphas=DEFAULT_ALPHAS, cv=5, alpha_per_target=True, fit_intercept=True,
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
        """Fit the model, choosing alphas by cross-validation.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        y : array or tensor of shape (n_samples, n_targets) or (n_samples,)
        groups : array of shape (n_samples,), optional
            Run (or session) label of every sample: an int ``cv`` then leaves whole runs out.

        Returns
        -------
        self
        """
        self._validate_params()
        alphas = _check_alphas(self.alphas)
        X, y = self._validate_fit(X, y)
        squeeze = y.ndim == 1
        out = _solve_cv(X, y, alphas, self._splits(X, groups), fit_intercept=self.fit_intercept,
                        alpha_per_target=self.alpha_per_target, scoring=self.scoring, solver=self.solver,
                        device=self.device, dtype=self.dtype, n_targets_batch=self.n_targets_batch,
                        verbose=self.verbose)
        self.coef_ = self._out(out.coef, squeeze)
        self.intercept_ = self._out(out.intercept, squeeze)
        self.best_alphas_ = self._out(out.best_alphas, squeeze)
        self.cv_scores_ = self._out(out.cv_scores[:, 0] if squeeze else out.cv_scores)
        self.best_score_ = self._out(out.best_score, squeeze)
        self.n_batches_ = out.n_batches
        return self
