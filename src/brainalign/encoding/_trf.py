"""Temporal response functions: ridge on a time-lagged design, lags in seconds, per-channel alphas."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._backend import resolve_device, to_numpy
from .._docs import fill_doc
from .._utils import check_option, logger, progress_bar
from ._cv import check_cv
from ._params import DEFAULT_ALPHAS
from ._solvers import _check_alphas, solve_ridge, solve_ridge_cv
from ._trf_gram import LaggedSeries, combine

__all__ = ["TRF"]

_SCORINGS = ("r2", "pearson_r")


def _delays(tmin: float, tmax: float, sfreq: float) -> np.ndarray:
    if not (np.isfinite(sfreq) and sfreq > 0):
        raise ValueError(f"sfreq must be a positive number of Hz, got {sfreq!r}.")
    if not (np.isfinite(tmin) and np.isfinite(tmax)):
        raise ValueError(f"tmin and tmax must be finite seconds; got {tmin!r} and {tmax!r}.")
    if tmin > tmax:
        raise ValueError(f"tmin ({tmin} s) must not be after tmax ({tmax} s).")
    return np.arange(int(np.round(tmin * sfreq)), int(np.round(tmax * sfreq)) + 1)


def _eigh(G: np.ndarray):
    lam, V = np.linalg.eigh((G + G.T) / 2)
    return np.clip(lam, 0, None), V


@fill_doc
class TRF(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Temporal response function (time-lagged ridge) for continuous or epoched M/EEG.

    The design has one column per (lag, feature), lags from ``tmin`` to ``tmax`` seconds at
    ``sfreq``, zero-padded at the edges of every run or epoch (lags never cross them): the
    design of :func:`brainalign.features.timing.make_delays` with ``delays = delays_``
    (delay-major columns). X and y are centred on their means *before* lagging, as in MNE.
    With a single alpha this is the same ridge as ``mne.decoding.ReceptiveField(tmin, tmax,
    sfreq, estimator=alpha)`` (whose default ``edge_correction=True`` gives the same
    zero-padded design). An array of ``alphas`` selects one alpha per output channel by
    cross-validation.

    The lagged design is never built whole: its Gram matrix follows from its first block row
    and the edges of each run or fold (it is block Toeplitz), the cross-products with y are
    computed chunk by chunk, and one eigendecomposition per fold scores every alpha for every
    channel in the small ``(n_features * n_delays)`` space. When ``n_features * n_delays``
    exceeds the training samples of a fold, or ``device`` names a GPU, the lagged design is
    built and :func:`solve_ridge_cv` solves it (kernel form, on that device).

    Parameters
    ----------
    tmin, tmax : float
        First and last lag in seconds (positive: the response follows the feature).
    sfreq : float
        Sampling frequency in Hz.
    alphas : float or array of shape (n_alphas,)
        A float fits that alpha; an array selects one per output channel by cross-validation.
    cv : int, "run", splitter or iterable of (train, validation)
        Folds for the alpha search: contiguous blocks of time by default, whole runs with
        ``groups`` (see :func:`check_cv`), whole epochs for 3-D input. Training and validation
        samples must not overlap.
    fit_intercept : bool
        Centre X and y on their means before lagging and fit an intercept.
    scoring : {"r2", "pearson_r"}
        Validation score used to choose the alphas (``cv_scores_``).
    patterns : bool
        Also compute ``patterns_``, the weights turned into activation patterns
        (Haufe et al., 2014): ``cov(design) @ W @ pinv(cov(y))``, with ``cov(design) = Dᵀ D / (n - 1)``
        for the design ``D`` of the centred features (as MNE).
    %(device)s
        For the TRF, "auto" means the CPU, where the lag-structured solver runs; a GPU device
        builds the lagged design and solves it there with :func:`solve_ridge_cv`.
    dtype : None, "float32" or "float64"
        Precision of the products with y (the small Gram algebra is always float64); None:
        float64 when X and y are float64, else float32.
    n_targets_batch : "auto" or int
        Targets per chunk when the lagged design is built (GPU or kernel form).
    %(verbose)s

    Attributes
    ----------
    coef_ : array of shape (n_outputs, n_features, n_delays)
        As MNE's ``ReceptiveField.coef_`` ((n_features, n_delays) for 1-D y). The weights of
        the design columns of :func:`make_delays` are
        ``coef_.transpose(0, 2, 1).reshape(n_outputs, -1)``.
    intercept_ : array of shape (n_outputs,)
    delays_ : array of shape (n_delays,)
        Lags in samples; ``times_`` the same in seconds.
    best_alphas_ : array of shape (n_outputs,)
    cv_scores_ : array of shape (n_alphas, n_outputs)
        Validation score of every alpha, averaged over folds (only when ``alphas`` is an array).
    patterns_ : array like ``coef_``
        Only with ``patterns=True``. MNE 1.x computes its ``patterns_`` with ``1 / (n - 1)``
        in place of ``pinv(cov(y))`` for one output and mixes outputs through a reshape for
        several; brainalign follows the formula above.
    solver_ : {"lagged-gram", "design"}
        Whether the lag structure was used or the design was built.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((500, 1)); y = np.roll(x, 2, axis=0)
    >>> trf = TRF(tmin=0.0, tmax=0.05, sfreq=100.0, alphas=1.0).fit(x, y)
    >>> int(np.argmax(trf.coef_[0, 0]))
    2
    """

    def __init__(self, *, tmin=0.0, tmax=0.5, sfreq=100.0, alphas=DEFAULT_ALPHAS, cv=5, fit_intercept=True,
                 scoring="r2", patterns=False, device="auto", dtype=None, n_targets_batch="auto", verbose=False):
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.patterns = patterns
        self.device = device
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch
        self.verbose = verbose

    # ------------------------------------------------------------------ data layout
    def _layout(self, X, y=None, groups=None, *, reset):
        """(X2 (n, p), Y2 (n, c) or None, segment order, bounds, cv groups, shape info)."""
        squeeze = False
        if shape_is_epochs(X):
            X = check_array(to_numpy(X), allow_nd=True, dtype=[np.float64, np.float32])
            n_ep, p, n_t = X.shape
            if reset:
                self.n_features_in_ = p
            elif p != self.n_features_in_:
                raise ValueError(f"X has {p} features (axis 1 of the epochs); this TRF was fitted with "
                                 f"{self.n_features_in_}.")
            if n_t < 1 or n_ep < 1:
                raise ValueError(f"X has shape {X.shape}: give at least one epoch and one time point.")
            X2 = X.transpose(0, 2, 1).reshape(n_ep * n_t, p)
            Y2 = None
            if y is not None:
                y = check_array(to_numpy(y), allow_nd=True, ensure_2d=False, dtype=[np.float64, np.float32])
                squeeze = y.ndim == 2
                if y.ndim == 2:
                    y = y[:, None, :]
                if y.ndim != 3 or y.shape[0] != n_ep or y.shape[2] != n_t:
                    raise ValueError(f"With epochs X of shape {X.shape} (n_epochs, n_features, n_times), y must be "
                                     f"(n_epochs, n_outputs, n_times) or (n_epochs, n_times); got {y.shape}.")
                Y2 = y.transpose(0, 2, 1).reshape(n_ep * n_t, -1)
            bounds = np.arange(n_ep + 1) * n_t
            if groups is not None:
                g = np.asarray(groups)
                if g.shape != (n_ep,):
                    raise ValueError(f"With epochs, groups labels every epoch: {n_ep} labels expected, got {g.shape}.")
                cv_groups = np.repeat(g, n_t)
            else:
                cv_groups = np.repeat(np.arange(n_ep), n_t)
            return X2, Y2, None, bounds, cv_groups, ("epochs", n_ep, n_t, squeeze)
        if reset:
            X2, Y2 = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=[np.float64, np.float32])
        else:
            X2, Y2 = validate_data(self, X, reset=False, dtype=[np.float64, np.float32]), None
        n = X2.shape[0]
        if Y2 is not None and Y2.ndim == 1:
            squeeze, Y2 = True, Y2[:, None]
        shape = ("series", n, None, squeeze)
        if groups is None:
            return X2, Y2, None, np.array([0, n]), None, shape
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups has shape {g.shape} but X has {n} samples; give one run label per sample.")
        codes = pd.factorize(g)[0]
        if (codes < 0).any():
            raise ValueError(f"groups has {int((codes < 0).sum())} missing run labels (NaN/None).")
        order = np.argsort(codes, kind="stable")  # runs made contiguous, time order kept within each
        counts = np.bincount(codes)
        bounds = np.r_[0, np.cumsum(counts)]
        identity = np.array_equal(order, np.arange(n))
        return (X2 if identity else X2[order], None if Y2 is None else (Y2 if identity else Y2[order]),
                None if identity else order, bounds, g, shape)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, groups=None):
        """Fit the TRF.

        Parameters
        ----------
        X : array of shape (n_times, n_features) or (n_epochs, n_features, n_times)
            Continuous features, or epochs (the layout of :class:`~brainalign.BrainData`; MNE's
            ``ReceptiveField`` takes ``(n_times, n_epochs, n_features)``).
        y : array of shape (n_times, n_outputs), (n_times,), (n_epochs, n_outputs, n_times) or (n_epochs, n_times)
        groups : array, optional
            Run of every sample ((n_times,); lags never cross runs, folds leave whole runs out)
            or, for epochs, a label per epoch ((n_epochs,)) for the folds.
        """
        check_option("scoring", self.scoring, _SCORINGS)
        steps = _delays(float(self.tmin), float(self.tmax), float(self.sfreq))
        fixed = isinstance(self.alphas, numbers.Real)
        alphas = _check_alphas(self.alphas)
        X2, Y2, order, bounds, cv_groups, shape = self._layout(X, y, groups, reset=True)
        n, p = X2.shape
        if n < 2:
            raise ValueError(f"A TRF needs at least 2 samples; got {n} sample.")
        if Y2.shape[0] != n:
            raise ValueError(f"X and y have different numbers of samples: X has {n}, y has {Y2.shape[0]}.")
        squeeze = shape[3]
        lengths = np.diff(bounds)
        what = "epoch" if shape[0] == "epochs" else "run"
        longest = int(lengths.max())
        too_long = [int(d) for d in steps if abs(d) >= longest]
        if too_long:
            raise ValueError(
                f"The lags tmin={self.tmin} .. tmax={self.tmax} s at sfreq={self.sfreq} Hz reach {too_long[:6]} "
                f"samples, at least as long as every {what} (lengths {lengths[:10].tolist()}): their columns would "
                f"be all zeros. Use lags shorter than {longest / float(self.sfreq):g} s, or longer {what}s."
            )
        if (lengths <= np.abs(steps).max()).any():
            warnings.warn(f"{int((lengths <= np.abs(steps).max()).sum())} {what}s are not longer than the longest "
                          "lag: they hold zeros in the columns of the lags they cannot hold.", stacklevel=2)
        self.delays_ = steps
        self.times_ = steps / float(self.sfreq)
        x_mean = X2.mean(0) if self.fit_intercept else np.zeros(p)
        y_mean = Y2.mean(0) if self.fit_intercept else np.zeros(Y2.shape[1])
        splits = None if fixed else self._splits(n, cv_groups, order)
        if self.dtype is None:
            dtype = "float64" if X2.dtype == np.float64 and Y2.dtype == np.float64 else "float32"
        else:
            dtype = check_option("dtype", str(np.dtype(self.dtype)) if not isinstance(self.dtype, str) else self.dtype,
                                 ["float32", "float64"])
        lagged = LaggedSeries(X2 - x_mean, bounds, steps)
        width = p * len(steps)
        n_train = n if fixed else min(len(tr) for tr, _ in splits)
        device = resolve_device("cpu" if self.device in (None, "auto") else self.device)
        if device.type == "cpu" and width <= n_train:
            self.solver_ = "lagged-gram"
            W, best, cv_scores, G_all = self._fit_lagged(lagged, Y2, y_mean, alphas, fixed, splits, dtype)
        else:
            self.solver_ = "design"
            W, best, cv_scores, G_all = self._fit_design(lagged, Y2, y_mean, alphas, fixed, splits, dtype, device)
        logger.info("TRF: %d samples, %d features x %d lags, %d outputs, solver %s", n, p, len(steps),
                    Y2.shape[1], self.solver_)
        K = len(steps)
        coef = W.reshape(K, p, -1).transpose(2, 1, 0)  # (n_outputs, n_features, n_delays)
        intercept = y_mean - x_mean @ coef.sum(-1).T
        self.coef_ = coef[0] if squeeze else coef
        self.intercept_ = intercept[0] if squeeze else intercept
        self.best_alphas_ = best[0] if squeeze else best
        if cv_scores is not None:
            self.cv_scores_ = cv_scores[:, 0] if squeeze else cv_scores
        if self.patterns:
            Yc = Y2 - y_mean
            cov_y = np.atleast_2d(np.cov(Yc.T.astype(np.float64)))
            P = (G_all / (n - 1)) @ W @ np.linalg.pinv(cov_y)
            pat = P.reshape(K, p, -1).transpose(2, 1, 0)
            self.patterns_ = pat[0] if squeeze else pat
        return self

    def _splits(self, n, cv_groups, order):
        out = []  # check_cv refuses out-of-range indices and samples in both sets of a fold
        for k, (tr, va) in enumerate(check_cv(self.cv, n, cv_groups)):
            masks = []
            for name, idx in (("training", tr), ("validation", va)):
                counts = np.bincount(idx, minlength=n)
                if counts.max() > 1:  # the lagged Gram matrix counts each sample once
                    raise ValueError(f"Fold {k} repeats {int((counts > 1).sum())} {name} samples; give each "
                                     "sample once per fold.")
                masks.append(counts > 0)
            if order is not None:
                masks = [m[order] for m in masks]  # canonical position j holds original sample order[j]
            out.append((np.flatnonzero(masks[0]), np.flatnonzero(masks[1])))
        return out

    def _fit_lagged(self, lagged, Y, y_mean, alphas, fixed, splits, dtype):
        gemm = np.float64 if dtype == "float64" else np.float32
        n = lagged.n
        if fixed:
            total = lagged.stats(np.arange(n), Y, y_mean, gemm_dtype=gemm)
            lam, V = _eigh(total.G)
            W = V @ ((V.T @ total.Z) / (lam[:, None] + alphas[0]))
            return W, np.full(Y.shape[1], alphas[0]), None, total.G
        vals = [lagged.stats(va, Y, y_mean, gemm_dtype=gemm) for _, va in splits]
        covered = np.sort(np.concatenate([va for _, va in splits]))
        if np.array_equal(covered, np.arange(n)):  # validation sets partition the samples
            total = vals[0]
            for v in vals[1:]:
                total = combine(total, v)
        else:
            total = lagged.stats(np.arange(n), Y, y_mean, gemm_dtype=gemm)
        scores = np.zeros((len(alphas), Y.shape[1]))
        for (tr, va), val in progress_bar(list(zip(splits, vals)), verbose=self.verbose, desc="TRF folds"):
            train = combine(total, val, -1.0) if len(tr) + len(va) == n else lagged.stats(tr, Y, y_mean, gemm_dtype=gemm)
            scores += _fold_scores(train, val, alphas, self.scoring)
        scores /= len(splits)
        best = alphas[np.argmax(scores, axis=0)]
        lam, V = _eigh(total.G)
        W = V @ ((V.T @ total.Z) / (lam[:, None] + best[None, :]))
        return W, best, scores, total.G

    def _fit_design(self, lagged, Y, y_mean, alphas, fixed, splits, dtype, device):
        n = lagged.n
        D = lagged.rows(np.arange(n))
        Yc = Y - y_mean
        kw = dict(fit_intercept=False, device=device, dtype=dtype, n_targets_batch=self.n_targets_batch)
        if fixed:
            out = solve_ridge(D, Yc, alphas[0], **kw)
            best, scores = np.full(Y.shape[1], alphas[0]), None
        else:
            out = solve_ridge_cv(D, Yc, alphas, splits=splits, scoring=self.scoring, verbose=self.verbose, **kw)
            best, scores = to_numpy(out.best_alphas).astype(np.float64), to_numpy(out.cv_scores).astype(np.float64)
        G = D.T @ D if self.patterns else None
        return to_numpy(out.coef).astype(np.float64).T, best, scores, G

    # ------------------------------------------------------------------ prediction
    def predict(self, X, groups=None):
        """Predicted responses.

        Parameters
        ----------
        X : array of shape (n_times, n_features) or (n_epochs, n_features, n_times)
        groups : array of shape (n_times,), optional
            Run of every sample (lags do not cross runs).

        Returns
        -------
        array of shape (n_times, n_outputs) ((n_times,) for a 1-D y), or (n_epochs, n_outputs, n_times)
        """
        check_is_fitted(self, "coef_")
        X2, _, order, bounds, _, shape = self._layout(X, None, None if shape_is_epochs(X) else groups, reset=False)
        if X2.shape[0] == 0:
            raise ValueError("X has no samples to predict.")
        coef = self.coef_ if self.coef_.ndim == 3 else self.coef_[None]
        W = coef.transpose(2, 1, 0).reshape(-1, coef.shape[0])  # delay-major rows
        lagged = LaggedSeries(X2, bounds, self.delays_)
        n = X2.shape[0]
        out = np.empty((n, W.shape[1]))
        step = max(256, 2**21 // max(1, W.shape[0]))
        for a in range(0, n, step):
            idx = np.arange(a, min(n, a + step))
            out[idx] = lagged.rows(idx) @ W
        out += np.atleast_1d(self.intercept_)
        if order is not None:
            back = np.empty_like(out)
            back[order] = out
            out = back
        if shape[0] == "epochs":
            out = out.reshape(shape[1], shape[2], -1).transpose(0, 2, 1)
            return out[:, 0] if self.coef_.ndim == 2 else out
        return out[:, 0] if self.coef_.ndim == 2 else out

    def score(self, X, y, groups=None, sample_weight=None):
        """R² of the predictions, averaged over outputs (scikit-learn's contract).

        Samples of all epochs / runs are pooled; use ``scoring=`` for the alpha selection by
        correlation, or :func:`brainalign.stats.pearson_r` on :meth:`predict`.
        """
        from sklearn.metrics import r2_score

        pred = self.predict(X, groups=groups)
        y = np.asarray(to_numpy(y))
        if pred.ndim == 3:  # epochs: pool epochs and times
            pred = pred.transpose(0, 2, 1).reshape(-1, pred.shape[1])
            y = y.transpose(0, 2, 1).reshape(-1, pred.shape[1])
        elif shape_is_epochs(X):  # epochs, one output
            pred, y = pred.reshape(-1), y.reshape(-1)
        return float(r2_score(y, pred, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def shape_is_epochs(X) -> bool:
    ndim = getattr(X, "ndim", None)
    return (np.asarray(X).ndim if ndim is None else ndim) == 3


def _fold_scores(train, val, alphas: np.ndarray, scoring: str) -> np.ndarray:
    """Validation scores (n_alphas, n_outputs) of every alpha, from the fold's statistics alone."""
    lam, V = _eigh(train.G)
    B = V.T @ train.Z  # rotated cross-products of the training rows
    M = V.T @ val.G @ V
    Zr = V.T @ val.Z
    sr = V.T @ val.colsum
    n_v = val.n
    ss_tot = val.yy - val.ysum**2 / n_v
    c = B.shape[1]
    out = np.zeros((len(alphas), c))
    step = max(1, 2**22 // max(1, len(alphas) * B.shape[0]))
    tiny = np.finfo(np.float64).tiny
    for j in range(0, c, step):
        cols = slice(j, j + step)
        F = B[None, :, cols] / (lam[None, :, None] + alphas[:, None, None])  # (n_alphas, width, batch)
        cross = np.einsum("ic,aic->ac", Zr[:, cols], F)
        sq = np.einsum("aic,aic->ac", F, np.matmul(M, F))
        if scoring == "r2":
            ss_res = val.yy[cols] - 2 * cross + sq
            out[:, cols] = np.where(ss_tot[cols] > 0, 1 - ss_res / np.maximum(ss_tot[cols], tiny), 0.0)
        else:
            psum = np.einsum("i,aic->ac", sr, F)
            cov = cross - psum * val.ysum[cols] / n_v
            var_p = np.maximum(sq - psum**2 / n_v, 0.0)
            denom = np.sqrt(var_p * ss_tot[cols])
            out[:, cols] = np.where(denom > 0, cov / np.maximum(denom, tiny), 0.0)
    return out
