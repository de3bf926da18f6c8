"""Banded ridge: one regularization per named feature space (band), chosen per target."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from .._backend import as_tensor, to_numpy
from .._docs import fill_doc
from .._utils import check_random_state, progress_bar
from ._params import CV_CONSTRAINT, DEFAULT_ALPHAS, RANDOM_STATE_CONSTRAINT, RIDGE_CONSTRAINTS, SOLVER_CONSTRAINT
from ._sklearn_api import _EncodingBase
from ._solvers import _check_alphas, _resolve_device, _solve, _solve_cv, working_dtype

__all__ = ["BandedRidgeCV"]

#: Dirichlet concentrations of the random search, used in turn: 0.1 favours weights near
#: the simplex's corners (one band dominates), 1 draws uniformly on the simplex
_CONCENTRATIONS = (0.1, 1.0)


def band_weight_candidates(n_bands: int, n_iter, random_state=None) -> np.ndarray:
    """Candidate band weights on the simplex, array of shape (n_candidates, n_bands).

    One band: ``[[1]]``. Two bands: ``n_iter`` evenly spaced weights from ``(0, 1)`` to
    ``(1, 0)``. Three or more: equal weights, then each band alone (when ``n_iter > n_bands``),
    then Dirichlet draws with concentration 0.1 and 1 in turn. An array of shape
    ``(n_candidates, n_bands)`` is used as given (each row scaled to sum to 1).
    """
    if not isinstance(n_iter, (Integral, np.integer)):
        w = np.asarray(n_iter, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != n_bands or w.shape[0] == 0:
            raise ValueError(f"n_iter as an array must have shape (n_candidates, n_bands={n_bands}); got {w.shape}.")
        sums = w.sum(1)
        if not np.isfinite(w).all() or (w < 0).any() or (sums <= 0).any():
            raise ValueError("n_iter as an array holds band weights: finite, non-negative, and every row with a "
                             f"positive sum; got rows {w[(w < 0).any(1) | ~(sums > 0)][:3].tolist()}.")
        return w / sums[:, None]
    n_iter = int(n_iter)
    if n_bands == 1:
        return np.ones((1, 1))
    if n_bands == 2:
        if n_iter == 1:
            return np.full((1, 2), 0.5)
        w = np.linspace(0.0, 1.0, n_iter)
        return np.stack([w, 1 - w], 1)
    rows = [np.full(n_bands, 1.0 / n_bands)]
    if n_iter > n_bands:
        rows.extend(np.eye(n_bands))
    rng = check_random_state(random_state)
    k = 0
    while len(rows) < n_iter:
        rows.append(rng.dirichlet(np.full(n_bands, _CONCENTRATIONS[k % len(_CONCENTRATIONS)])))
        k += 1
    return np.asarray(rows[:n_iter])


@fill_doc
class BandedRidgeCV(_EncodingBase):
    """Ridge with one regularization per named feature space (band), selected per target.

    The penalty is ``sum_b alpha_b ||w_b||²``. It is searched as band weights ``omega`` on
    the simplex times an overall alpha from ``alphas``: ``alpha_b = alpha / omega_b``. Each
    candidate ``omega`` is one cross-validated ridge (:func:`solve_ridge_cv`, every alpha at
    once) on ``X`` with band ``b`` scaled by ``sqrt(omega_b)`` (the kernel-weight trick of
    himalaya's multiple-kernel ridge); per target, the best (``omega``, alpha) is kept and
    refitted on all samples. A weight of 0 drops the band (its alpha is infinite).

    Parameters
    ----------
    bands : dict of {name: slice or array of int}, or None
        Columns of X that form each band, e.g. ``{"audio": slice(0, 768),
        "gpt2_l6": slice(768, 1536)}``; disjoint and covering every column. None: one band
        ``"all"`` (then the model equals :class:`RidgeCV`).
    %(alphas)s
    n_iter : int or array of shape (n_candidates, n_bands)
        Band-weight candidates (each one full cross-validated solve). One band: 1. Two
        bands: ``n_iter`` evenly spaced weights (``n_iter=5``: 0, 0.25, ... 1). Three or
        more: equal weights, each band alone (when ``n_iter > n_bands``), then Dirichlet
        draws (concentration 0.1 and 1 in turn) up to ``n_iter``; a grid would need
        C(steps + B - 1, B - 1) solves. An array gives the candidates explicitly.
    %(random_state)s
        Used for the Dirichlet draws (three bands or more).
    %(cv)s
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
    bands_ : dict of {name: array of int}
        The columns of every band, in the order of the band axes below.
    best_weights_ : array or tensor of shape (n_targets, n_bands)
        Selected band weights (summing to 1).
    best_alphas_ : array or tensor of shape (n_targets, n_bands)
        Per-band regularization ``alpha / omega_b`` (inf for a dropped band).
    cv_scores_ : array or tensor of shape (n_alphas, n_targets)
        As :class:`RidgeCV`'s: validation score of every alpha, averaged over folds, at the
        selected band weights.
    best_score_ : array or tensor of shape (n_targets,)
        Validation score of the selected (weights, alpha).
    candidate_weights_ : array of shape (n_candidates, n_bands)
        The band weights tried.
    candidate_scores_ : array or tensor of shape (n_candidates, n_targets)
        Best validation score (over alphas) of every candidate.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 6)); Y = X[:, :3] @ rng.standard_normal((3, 2))
    >>> m = BandedRidgeCV(bands={"a": slice(0, 3), "b": slice(3, 6)}, alphas=[0.1, 10.0]).fit(X, Y)
    >>> m.best_alphas_.shape, sorted(m.score_split(X, Y))
    ((2, 2), ['a', 'b'])
    """

    _parameter_constraints: dict = {
        **RIDGE_CONSTRAINTS,
        "bands": [dict, None],
        "n_iter": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "random_state": RANDOM_STATE_CONSTRAINT,
        "cv": CV_CONSTRAINT,
        "solver": SOLVER_CONSTRAINT,
    }

    def __init__(self, *, bands=None, alphas=DEFAULT_ALPHAS, n_iter=20, random_state=None, cv=5,
                 fit_intercept=True, scoring="r2", solver="auto", device="auto", dtype=None,
                 n_targets_batch="auto", verbose=False):
        self.bands = bands
        self.alphas = alphas
        self.n_iter = n_iter
        self.random_state = random_state
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.solver = solver
        self.device = device
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch
        self.verbose = verbose

    def _check_bands(self, n_features: int) -> dict:
        bands = {"all": slice(0, n_features)} if self.bands is None else self.bands
        if not bands:
            raise ValueError("bands is empty; give at least one {name: columns} entry, or None for a single band.")
        out = {}
        for name, cols in bands.items():
            if not isinstance(name, str):
                raise ValueError(f"Band names must be strings; got {name!r} ({type(name).__name__}).")
            if isinstance(cols, slice):
                idx = np.arange(n_features)[cols]
            else:
                idx = np.asarray(to_numpy(cols))
                if idx.dtype == bool or not np.issubdtype(idx.dtype, np.integer) or idx.ndim != 1:
                    raise ValueError(f"Band {name!r} must be a slice or a 1-D array of integer column indices; got "
                                     f"{type(cols).__name__} of dtype {idx.dtype}.")
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n_features:
                raise ValueError(f"Band {name!r} is empty or has columns outside 0..{n_features - 1} "
                                 f"(X has {n_features} features): {cols!r}.")
            out[name] = idx.astype(np.int64)
        counts = np.bincount(np.concatenate(list(out.values())), minlength=n_features)
        if (counts != 1).any():
            missing, shared = np.flatnonzero(counts == 0), np.flatnonzero(counts > 1)
            raise ValueError(
                f"bands must split the {n_features} columns of X into disjoint bands covering all of them; "
                f"{missing.size} columns are in no band (first: {missing[:5].tolist()}) and {shared.size} in "
                f"several (first: {shared[:5].tolist()})."
            )
        return out

    def fit(self, X, y, groups=None):
        """Fit the model: search band weights and alphas by cross-validation, then refit.

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
        bands = self._check_bands(X.shape[1])
        folds = self._splits(X, groups)
        weights = band_weight_candidates(len(bands), self.n_iter, self.random_state)
        squeeze = y.ndim == 1
        dev, dt = _resolve_device(X, self.device), working_dtype(X, self.dtype)
        Xt = as_tensor(X, device=dev, dtype=dt)
        Yt = as_tensor(y, device=dev, dtype=dt)
        Yt = Yt[:, None] if squeeze else Yt
        n_targets = Yt.shape[1]
        col_band = torch.empty(Xt.shape[1], dtype=torch.long, device=dev)
        for b, idx in enumerate(bands.values()):
            col_band[torch.as_tensor(idx, device=dev)] = b
        opts = dict(fit_intercept=self.fit_intercept, solver=self.solver, device=dev, dtype=dt,
                    n_targets_batch=self.n_targets_batch)
        cand_scores = torch.empty((len(weights), n_targets), dtype=dt, device=dev)
        cv_scores = torch.zeros((len(alphas), n_targets), dtype=dt, device=dev)
        best_alpha = torch.zeros(n_targets, dtype=torch.float64, device=dev)
        best_cand = torch.zeros(n_targets, dtype=torch.long, device=dev)
        scales = [torch.as_tensor(np.sqrt(w), dtype=dt, device=dev)[col_band] for w in weights]
        for c in progress_bar(range(len(weights)), verbose=self.verbose, desc="band weights"):
            out = _solve_cv(Xt * scales[c], Yt, alphas, folds, scoring=self.scoring, return_weights=False,
                            warn_stacklevel=4 if c == 0 else 0, **opts)
            cand_scores[c] = out.best_score
            better = out.best_score > cand_scores[best_cand, torch.arange(n_targets, device=dev)] if c else \
                torch.ones(n_targets, dtype=torch.bool, device=dev)
            best_cand[better] = c
            best_alpha[better] = out.best_alphas[better]
            cv_scores[:, better] = out.cv_scores[:, better]
        coef = torch.zeros((n_targets, Xt.shape[1]), dtype=dt, device=dev)
        intercept = torch.zeros(n_targets, dtype=dt, device=dev)
        for c in torch.unique(best_cand).tolist():  # one refit per winning candidate
            tgt = best_cand == c
            fit = _solve(Xt * scales[c], Yt[:, tgt], to_numpy(best_alpha[tgt]), warn_stacklevel=0, **opts)
            coef[tgt] = fit.coef * scales[c]
            intercept[tgt] = fit.intercept
        w_best = torch.as_tensor(weights, dtype=torch.float64, device=dev)[best_cand]
        band_alphas = torch.where(w_best > 0, best_alpha[:, None] / w_best.clamp_min(1e-300),
                                  torch.full_like(w_best, float("inf")))
        self.bands_ = bands
        self.candidate_weights_ = weights
        self.candidate_scores_ = self._out(cand_scores[:, 0] if squeeze else cand_scores)
        self.coef_ = self._out(coef, squeeze)
        self.intercept_ = self._out(intercept, squeeze)
        self.best_weights_ = self._out(w_best, squeeze)
        self.best_alphas_ = self._out(band_alphas, squeeze)
        self.cv_scores_ = self._out(cv_scores[:, 0] if squeeze else cv_scores)
        self.best_score_ = self._out(cand_scores[best_cand, torch.arange(n_targets, device=dev)], squeeze)
        return self

    def predict_split(self, X):
        """Every band's share of the prediction (without the intercept).

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)

        Returns
        -------
        dict of {band name: array or tensor of shape (n_samples, n_targets)}
            (n_samples,) each for a model fitted on a 1-D y; they sum to
            ``predict(X) - intercept_``.
        """
        X = self._validate_predict(X)
        coef = self.coef_
        if isinstance(X, torch.Tensor):
            coef = torch.as_tensor(coef).to(device=X.device)
            dt = torch.promote_types(X.dtype, coef.dtype) if X.is_floating_point() else coef.dtype
            X, coef = X.to(dt), coef.to(dt)
        else:
            coef = to_numpy(coef)
        if coef.ndim == 1:
            return {name: X[:, idx] @ coef[idx] for name, idx in self.bands_.items()}
        return {name: X[:, idx] @ coef[:, idx].T for name, idx in self.bands_.items()}

    def score_split(self, X, y):
        """R² of every band, labelled by band; the bands sum to the R² of the whole model.

        The product-measure split of :func:`brainalign.stats.r2_score_split` (as himalaya's
        ``r2_score_split``), on centred predictions. Use held-out data.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        y : array or tensor of shape (n_samples, n_targets) or (n_samples,)

        Returns
        -------
        dict of {band name: array of shape (n_targets,)}
            A float per band for a 1-D y.
        """
        from ..stats import r2_score_split

        parts = self.predict_split(X)
        Y = to_numpy(y)
        stacked = np.stack([to_numpy(p) for p in parts.values()])
        if Y.ndim == 1:
            split = r2_score_split(Y[:, None], stacked[:, :, None])[:, 0]
            return {name: float(v) for name, v in zip(parts, split)}
        split = r2_score_split(Y, stacked)
        return dict(zip(parts, split))
