"""Banded ridge: one regularization per feature space, chosen per target."""

from __future__ import annotations

import itertools

import numpy as np

from .._backend import to_numpy
from .._utils import progress_bar
from ._cv import check_cv
from ._sklearn_api import DEFAULT_ALPHAS, _EncodingBase
from ._solvers import _check_alphas, solve_ridge_cv

__all__ = ["BandedRidgeCV", "simplex_grid"]


def simplex_grid(n_bands: int, steps: int) -> np.ndarray:
    """All band weights ``w`` with ``w_b = k_b / steps`` and ``sum(w) = 1``.

    Returns
    -------
    weights : array of shape (n_candidates, n_bands)

    Examples
    --------
    >>> simplex_grid(2, 2)
    array([[0. , 1. ],
           [0.5, 0.5],
           [1. , 0. ]])
    """
    if n_bands < 1 or steps < 1:
        raise ValueError(f"simplex_grid needs n_bands >= 1 and steps >= 1; got {n_bands} and {steps}.")
    rows = [c for c in itertools.product(range(steps + 1), repeat=n_bands) if sum(c) == steps]
    return np.asarray(rows, dtype=np.float64) / steps


class BandedRidgeCV(_EncodingBase):
    """Ridge with one regularization per feature space (band), selected per target.

    The penalty is ``sum_b alpha_b ||w_b||²``. It is searched as band weights ``omega`` on the
    simplex (a grid, :func:`simplex_grid`) times an overall alpha from ``alphas``:
    ``alpha_b = alpha / omega_b``. Each candidate ``omega`` is one :func:`solve_ridge_cv` call on
    ``X`` with band ``b`` scaled by ``sqrt(omega_b)`` (the kernel-weight trick of himalaya's
    multiple-kernel ridge, with a grid instead of a random search). A weight of 0 drops the
    band (its alpha is infinite).

    Parameters
    ----------
    groups_of_features : sequence of slices or index arrays
        Columns of X that form each band (e.g. ``[slice(0, 768), slice(768, 1536)]``).
    alphas : array of shape (n_alphas,)
    grid_steps : int
        Resolution of the simplex grid of band weights.
    cv, fit_intercept, scoring, device, dtype, n_targets_batch, verbose
        As in :class:`RidgeCV`.

    Attributes
    ----------
    coef_ : array of shape (n_targets, n_features)
    intercept_ : array of shape (n_targets,)
    best_alphas_ : array of shape (n_targets, n_bands)
    best_weights_ : array of shape (n_targets, n_bands)
    cv_scores_ : array of shape (n_targets,)
        Best validation score per target.
    split_r2_ : array of shape (n_bands, n_targets)
        R² on the training data split between bands (:func:`brainalign.stats.r2_score_split`);
        use :meth:`score_split` on held-out data for the out-of-sample partition.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 6)); Y = X[:, :3] @ rng.standard_normal((3, 2))
    >>> m = BandedRidgeCV([slice(0, 3), slice(3, 6)], alphas=[0.1, 10.0], verbose=False).fit(X, Y)
    >>> m.best_alphas_.shape
    (2, 2)
    """

    def __init__(self, groups_of_features=None, *, alphas=DEFAULT_ALPHAS, grid_steps=4, cv=5, fit_intercept=True,
                 scoring="r2", device="auto", dtype=None, n_targets_batch="auto", verbose=False):
        self.groups_of_features = groups_of_features
        self.alphas = alphas
        self.grid_steps = grid_steps
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.device = device
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch
        self.verbose = verbose

    def _bands(self, n_features):
        groups = self.groups_of_features
        if groups is None:
            groups = [slice(0, n_features)]
        bands = []
        for g in groups:
            idx = np.arange(n_features)[g] if isinstance(g, slice) else np.asarray(g, dtype=np.int64)
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n_features:
                raise ValueError(f"A band has column indices outside 0..{n_features - 1} or is empty: {g!r}.")
            bands.append(idx)
        cover = np.concatenate(bands)
        if len(np.unique(cover)) != len(cover) or len(cover) != n_features:
            raise ValueError(f"groups_of_features must split the {n_features} columns of X into disjoint bands "
                             f"covering all of them; they cover {len(np.unique(cover))} columns ({len(cover)} with repeats).")
        return bands

    def fit(self, X, y, groups=None):
        """Fit on X (n_samples, n_features) and y (n_samples, n_targets); ``groups``: run labels."""
        alphas = _check_alphas(self.alphas)
        X, y = self._validate_fit(X, y)
        Xn, Yn = to_numpy(X), to_numpy(y)
        squeeze = Yn.ndim == 1
        Y2 = Yn[:, None] if squeeze else Yn
        n, p = Xn.shape
        bands = self._bands(p)
        n_bands = len(bands)
        splits = check_cv(self.cv, n, None if groups is None else to_numpy(groups))
        weights = simplex_grid(n_bands, int(self.grid_steps)) if n_bands > 1 else np.ones((1, 1))
        n_targets = Y2.shape[1]
        best_score = np.full(n_targets, -np.inf)
        best_w = np.zeros((n_targets, n_bands))
        best_alpha = np.zeros(n_targets)
        coef = np.zeros((n_targets, p))
        intercept = np.zeros(n_targets)
        col_band = np.empty(p, dtype=np.int64)
        for b, idx in enumerate(bands):
            col_band[idx] = b
        for w in progress_bar(weights, verbose=self.verbose, desc="band weights"):
            scale = np.sqrt(w)[col_band]
            out = solve_ridge_cv(Xn * scale, Y2, alphas, splits=splits, fit_intercept=self.fit_intercept,
                                 scoring=self.scoring, device=self.device, dtype=self.dtype,
                                 n_targets_batch=self.n_targets_batch)
            scores = to_numpy(out.cv_scores).max(0)
            better = scores > best_score
            if better.any():
                best_score[better] = scores[better]
                best_w[better] = w
                best_alpha[better] = to_numpy(out.best_alphas)[better]
                coef[better] = to_numpy(out.coef)[better] * scale
                intercept[better] = to_numpy(out.intercept)[better]
        with np.errstate(divide="ignore"):
            band_alphas = np.where(best_w > 0, best_alpha[:, None] / np.where(best_w > 0, best_w, 1), np.inf)
        self.bands_ = bands
        self.best_weights_ = best_w
        self.best_alphas_ = band_alphas
        self.cv_scores_ = best_score
        self._torch_in_ = False
        self._store(coef.astype(Xn.dtype), intercept.astype(Xn.dtype), squeeze)
        self.split_r2_ = self.score_split(Xn, Yn)
        if squeeze:
            self.best_alphas_, self.best_weights_ = band_alphas[0], best_w[0]
            self.cv_scores_ = best_score[0]
        return self

    def predict_split(self, X):
        """Per-band predictions, array of shape (n_bands, n_samples, n_targets) (no intercept)."""
        X = to_numpy(self._validate_predict(X))
        coef = np.atleast_2d(self.coef_)
        return np.stack([X[:, idx] @ coef[:, idx].T for idx in self.bands_])

    def score_split(self, X, y):
        """R² of every band, array of shape (n_bands, n_targets); the bands sum to the joint R²."""
        from ..stats import r2_score_split

        Y = to_numpy(y)
        return r2_score_split(Y[:, None] if Y.ndim == 1 else Y, self.predict_split(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = False
        return tags


