"""Per-target scores: Pearson r, R², the split (per-band) R², and cross-validated r per fold.

Rules for every function here (see ``_checks``): NaN or inf in an input raises a ValueError
naming the array and column; a column where the score is undefined (constant ``y_true``, or
constant ``y_pred`` for a correlation) gives NaN and one ``RuntimeWarning`` per call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import to_numpy
from .._utils import check_option
from ._checks import check_finite_columns, constant_columns, paired_arrays, safe_divide, warn_constant

__all__ = ["cross_validated_r", "pearson_r", "r2_score", "r2_score_split"]


def _pearson(yt: np.ndarray, yp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise r of two checked arrays, NaN where either column is constant; and that mask."""
    const = constant_columns(yt) | constant_columns(yp)
    yt = yt - yt.mean(0)
    yp = yp - yp.mean(0)
    num = (yt * yp).sum(0)
    den = np.sqrt((yt * yt).sum(0) * (yp * yp).sum(0))
    r = safe_divide(num, den, where=~const & (den > 0))
    return np.clip(r, -1, 1).astype(yt.dtype), const


def pearson_r(y_true: Any, y_pred: Any) -> np.ndarray:
    """Pearson correlation of every column of ``y_true`` with the same column of ``y_pred``.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets) or (n_samples,)
        Finite values (NaN or inf raise a ValueError naming the array and column).

    Returns
    -------
    r : array of shape (n_targets,)
        NaN, with a ``RuntimeWarning``, where either column is constant (as
        ``scipy.stats.pearsonr``): the correlation is undefined there.

    Examples
    --------
    >>> pearson_r([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]).round(3)
    array([0.993])
    """
    yt, yp = paired_arrays(y_true, y_pred)
    r, const = _pearson(yt, yp)
    warn_constant(const, "y_true or y_pred", "the correlation")
    return r


def _r2(yt: np.ndarray, yp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    const = constant_columns(yt)
    ss_res = ((yt - yp) ** 2).sum(0)
    ss_tot = ((yt - yt.mean(0)) ** 2).sum(0)
    return (1 - safe_divide(ss_res, ss_tot, where=~const & (ss_tot > 0))).astype(yt.dtype), const


def r2_score(y_true: Any, y_pred: Any) -> np.ndarray:
    """Coefficient of determination of every column (``sklearn.metrics.r2_score`` raw values).

    ``1 - sum((y - y_pred)²) / sum((y - mean(y))²)``; can be negative.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets) or (n_samples,)
        Finite values (NaN or inf raise a ValueError naming the array and column).

    Returns
    -------
    r2 : array of shape (n_targets,)
        NaN, with a ``RuntimeWarning``, where ``y_true`` is constant (scikit-learn returns
        1.0 or 0.0 there by default; its ``force_finite=False`` gives NaN or -inf).

    Examples
    --------
    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]).round(3)
    array([0.5])
    """
    yt, yp = paired_arrays(y_true, y_pred)
    r2, const = _r2(yt, yp)
    warn_constant(const, "y_true", "R²")
    return r2


def r2_score_split(y_true: Any, y_pred_split: Any) -> np.ndarray:
    """R² split between bands (feature spaces) by the product-measure decomposition.

    With ``y`` and each band's prediction ``ŷ_b`` centred, ``ŷ = Σ_b ŷ_b`` and
    ``R² = 1 - ||y - ŷ||² / ||y||² = Σ_b (2 <y, ŷ_b> - <ŷ_b, ŷ>) / ||y||²``, so band ``b``
    receives ``(2 <y, ŷ_b> - <ŷ_b, ŷ>) / ||y||²`` and the parts sum exactly to the R² of the
    centred joint prediction (as himalaya's ``r2_score_split``, St-Yves & Naselaris 2018,
    Dupré la Tour et al. 2022).

    Parameters
    ----------
    y_true : array of shape (n_samples, n_targets)
    y_pred_split : array of shape (n_bands, n_samples, n_targets)

    Returns
    -------
    r2_split : array of shape (n_bands, n_targets)
        NaN, with a ``RuntimeWarning``, in the columns where ``y_true`` is constant.

    Examples
    --------
    >>> y = np.array([[1.0], [2.0], [3.0], [4.0]])
    >>> parts = np.stack([0.5 * y, 0.5 * y])
    >>> r2_score_split(y, parts).sum(0).round(6)
    array([1.])
    """
    yt = to_numpy(y_true)
    ys = to_numpy(y_pred_split)
    if yt.ndim == 1:
        yt = yt[:, None]
    if ys.ndim == 2:
        ys = ys[:, :, None]
    if ys.ndim != 3 or ys.shape[1:] != yt.shape:
        raise ValueError(f"y_pred_split must have shape (n_bands, {yt.shape[0]}, {yt.shape[1]}); got {ys.shape}.")
    check_finite_columns(yt, "y_true")
    check_finite_columns(ys.reshape(-1, ys.shape[-1]), "y_pred_split")
    const = constant_columns(yt)
    yt = yt - yt.mean(0)
    ys = ys - ys.mean(1, keepdims=True)
    total = ys.sum(0)
    ss = (yt * yt).sum(0)
    parts = 2 * (ys * yt[None]).sum(1) - (ys * total[None]).sum(1)
    warn_constant(const, "y_true", "R²")
    return safe_divide(parts, ss, where=~const & (ss > 0))


def _test_sets(folds: Any, n: int) -> list[np.ndarray]:
    """Test index arrays from fold labels (n_samples,) or a list of (train, test) pairs / test arrays."""
    if isinstance(folds, np.ndarray) and folds.ndim == 1 and folds.shape == (n,) and folds.dtype != object:
        _, first = np.unique(folds, return_index=True)
        return [np.flatnonzero(folds == folds[i]) for i in np.sort(first)]
    try:
        items = list(folds)
    except TypeError:
        raise TypeError(f"folds must be fold labels (n_samples,) or a list of (train, test) index pairs; "
                        f"got {type(folds).__name__}.") from None
    if len(items) == n and all(np.ndim(f) == 0 for f in items):
        return _test_sets(np.asarray(items), n)
    tests = []
    for k, f in enumerate(items):
        te = f[1] if isinstance(f, tuple) and len(f) == 2 else f
        te = np.asarray(te)
        if te.dtype == bool:
            te = np.flatnonzero(te)
        if te.ndim != 1 or not np.issubdtype(te.dtype, np.integer):
            raise ValueError(f"fold {k}: the test set must be a 1-D array of sample indices; got {te!r:.80}.")
        if te.size and (te.min() < -n or te.max() >= n):
            raise ValueError(f"fold {k}: test indices must lie in [0, {n}); got {te.min()}..{te.max()}.")
        tests.append(te % n)
    return tests


def cross_validated_r(y_true: Any, y_pred: Any, folds: Any, *, average: str = "folds") -> np.ndarray:
    """Held-out Pearson r of out-of-fold predictions, per fold or over the concatenated folds.

    Two conventions are in use for a cross-validated correlation:

    - ``"folds"``: r in every test fold, averaged over folds (plain mean). Each fold's
      predictions come from one model, so under the null (no relation) its r is centred on 0.
    - ``"concatenated"``: the predictions of all folds stacked and correlated once with the
      data. Every fold has its own model, hence its own offset and scale, and those offsets
      anti-correlate with the held-out fold means (a fold whose data are high was trained on
      data that were low), so under the null the concatenated r is **biased negative**
      (about −0.1 with a handful of folds; −0.098 was measured on random features). Use it
      when a single prediction series is what is compared, e.g. for a plot.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets) or (n_samples,)
        Data and out-of-fold predictions (each sample predicted by the model that did not
        see it).
    folds : array of shape (n_samples,) or list
        Test-fold label of every sample, or a list of ``(train, test)`` index pairs (as a
        scikit-learn splitter yields) or of test index arrays. Samples in no test set are
        ignored; a sample in two test sets raises.
    average : {"folds", "concatenated"}

    Returns
    -------
    r : array of shape (n_targets,)
        NaN (with a warning) where a column is constant in a test fold (``"folds"``) or
        overall (``"concatenated"``).

    Examples
    --------
    >>> y = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 1.0, 2.0, 5.0])
    >>> pred = np.array([1.5, 1.5, 3.5, 3.0, 2.0, 2.0, 3.0, 4.0])
    >>> folds = np.repeat([0, 1], 4)
    >>> cross_validated_r(y, pred, folds).round(3), cross_validated_r(y, pred, folds, average="concatenated").round(3)
    (array([0.789]), array([0.774]))
    """
    check_option("average", average, ["folds", "concatenated"])
    yt, yp = paired_arrays(y_true, y_pred)
    n = yt.shape[0]
    tests = _test_sets(folds, n)
    if not tests:
        raise ValueError("folds holds no test set.")
    seen = np.zeros(n, dtype=np.int64)
    for te in tests:
        np.add.at(seen, te, 1)
    if (seen > 1).any():
        raise ValueError(f"{int((seen > 1).sum())} samples are in more than one test fold (first: sample "
                         f"{int(np.flatnonzero(seen > 1)[0])}); out-of-fold predictions need disjoint test sets.")
    if average == "concatenated":
        idx = np.flatnonzero(seen)
        if idx.size < 2:
            raise ValueError(f"The test folds hold {idx.size} sample(s); a correlation needs at least 2.")
        r, const = _pearson(yt[idx], yp[idx])
        warn_constant(const, "y_true or y_pred", "the correlation")
        return r
    small = [k for k, te in enumerate(tests) if len(te) < 2]
    if small:
        raise ValueError(f"Test fold(s) {small} hold fewer than 2 samples, where r is undefined; use "
                         "average='concatenated' or larger folds.")
    per_fold, const = [], np.zeros(yt.shape[1], dtype=bool)
    for te in tests:
        r, c = _pearson(yt[te], yp[te])
        per_fold.append(r)
        const |= c
    warn_constant(const, "y_true or y_pred (within a test fold)", "the correlation")
    return np.mean(per_fold, axis=0)
