"""Temporal response functions: ridge on a time-delayed design, lags in seconds."""

from __future__ import annotations

import numbers

import numpy as np

from .._backend import to_numpy
from ._cv import check_cv
from ._sklearn_api import DEFAULT_ALPHAS, _EncodingBase
from ._solvers import _check_alphas, solve_ridge, solve_ridge_cv

__all__ = ["TRF", "delay_matrix"]


def _delays(tmin: float, tmax: float, sfreq: float) -> np.ndarray:
    if not (np.isfinite(sfreq) and sfreq > 0):
        raise ValueError(f"sfreq must be a positive number of Hz, got {sfreq!r}.")
    if tmin > tmax:
        raise ValueError(f"tmin ({tmin} s) must not be after tmax ({tmax} s).")
    return np.arange(int(np.round(tmin * sfreq)), int(np.round(tmax * sfreq)) + 1)


def delay_matrix(X, delays) -> np.ndarray:
    """Time-delayed copies of every feature, zero-padded at the edges.

    ``out[t, f, d] = X[t - delays[d], f]`` (0 outside the recording), so a positive delay
    means the response follows the stimulus.

    Parameters
    ----------
    X : array of shape (n_times, n_features)
    delays : array of int of shape (n_delays,)
        Delays in samples.

    Returns
    -------
    array of shape (n_times, n_features, n_delays)

    Examples
    --------
    >>> delay_matrix(np.arange(1.0, 4.0)[:, None], [0, 1])[:, 0]
    array([[1., 0.],
           [2., 1.],
           [3., 2.]])
    """
    X = np.asarray(X)
    n = X.shape[0]
    out = np.zeros((n,) + X.shape[1:] + (len(delays),), dtype=X.dtype)
    for d, lag in enumerate(np.asarray(delays, dtype=int)):
        if lag >= 0:
            out[lag:, ..., d] = X[: n - lag] if lag < n else 0
        else:
            out[:lag, ..., d] = X[-lag:]
    return out


class TRF(_EncodingBase):
    """Temporal response function (time-delayed ridge) for continuous EEG/MEG.

    The design has one column per (feature, delay) with delays from ``tmin`` to ``tmax``
    seconds at ``sfreq``; X and y are centred on their means *before* delaying, as in MNE.
    With a single alpha this is the same ridge as ``mne.decoding.ReceptiveField(tmin, tmax,
    sfreq, estimator=alpha)``, which solves it with ``TimeDelayingRidge`` from the
    auto-correlations (``edge_correction=True`` makes those equal to the zero-padded design's
    ``XᵀX``); here the delayed design is built and handed to the ridge solvers, so several
    ``alphas`` give one alpha per output channel, chosen by cross-validation over contiguous
    time blocks (:class:`RidgeCV` machinery).

    Parameters
    ----------
    tmin, tmax : float
        First and last lag in seconds (positive: the response follows the feature).
    sfreq : float
        Sampling frequency in Hz.
    alphas : float or array of shape (n_alphas,)
        A float fits that alpha; an array selects one per channel by CV.
    cv : int or splitter
        Folds for the alpha search (contiguous blocks by default).
    fit_intercept : bool
    scoring, device, dtype, n_targets_batch
        As in :class:`RidgeCV`.

    Attributes
    ----------
    coef_ : array of shape (n_outputs, n_features, n_delays)
        As MNE's ``ReceptiveField.coef_``.
    intercept_ : array of shape (n_outputs,)
    delays_ : array of shape (n_delays,)
        Lags in samples; ``times_`` the same in seconds.
    best_alphas_ : array of shape (n_outputs,)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((500, 1)); y = np.roll(x, 2, axis=0)
    >>> trf = TRF(tmin=0.0, tmax=0.05, sfreq=100.0, alphas=1.0).fit(x, y)
    >>> int(np.argmax(trf.coef_[0, 0]))
    2
    """

    def __init__(self, tmin=0.0, tmax=0.5, sfreq=100.0, *, alphas=DEFAULT_ALPHAS, cv=5, fit_intercept=True,
                 scoring="r2", device="auto", dtype=None, n_targets_batch="auto"):
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.device = device
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch

    def _design(self, X):
        return delay_matrix(X, self.delays_).reshape(X.shape[0], -1)

    def fit(self, X, y):
        """Fit on X (n_times, n_features) and y (n_times, n_outputs)."""
        delays = _delays(float(self.tmin), float(self.tmax), float(self.sfreq))
        fixed = isinstance(self.alphas, numbers.Real)
        alphas = _check_alphas(self.alphas)
        X, y = self._validate_fit(X, y)
        Xn, Yn = to_numpy(X), to_numpy(y)
        squeeze = Yn.ndim == 1
        Y2 = Yn[:, None] if squeeze else Yn
        dtype = self.dtype or ("float64" if Xn.dtype == np.float64 and Y2.dtype == np.float64 else None)
        self.delays_ = delays
        self.times_ = delays / float(self.sfreq)
        x_mean = Xn.mean(0) if self.fit_intercept else np.zeros(Xn.shape[1], Xn.dtype)
        y_mean = Y2.mean(0) if self.fit_intercept else np.zeros(Y2.shape[1], Y2.dtype)
        D = self._design(Xn - x_mean)
        Yc = Y2 - y_mean
        if fixed:
            out = solve_ridge(D, Yc, alphas[0], fit_intercept=False, device=self.device, dtype=dtype)
            best = np.full(Y2.shape[1], alphas[0])
        else:
            splits = check_cv(self.cv, D.shape[0])
            out = solve_ridge_cv(D, Yc, alphas, splits=splits, fit_intercept=False, scoring=self.scoring,
                                 device=self.device, dtype=dtype, n_targets_batch=self.n_targets_batch)
            best = to_numpy(out.best_alphas)
            self.cv_scores_ = to_numpy(out.cv_scores)
        coef = to_numpy(out.coef).reshape(Y2.shape[1], Xn.shape[1], len(delays))
        intercept = y_mean - x_mean @ coef.sum(-1).T
        self.coef_ = coef[0] if squeeze else coef
        self.intercept_ = intercept[0] if squeeze else intercept
        self.best_alphas_ = best[0] if squeeze else best
        return self

    def predict(self, X):
        """Predicted responses, array of shape (n_times, n_outputs)."""
        X = to_numpy(self._validate_predict(X))
        coef = self.coef_.reshape(-1, X.shape[1] * len(self.delays_))
        out = self._design(X) @ coef.T + np.atleast_1d(self.intercept_)
        return out[:, 0] if np.ndim(self.intercept_) == 0 else out
