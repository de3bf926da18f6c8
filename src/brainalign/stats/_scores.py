"""Per-target scores: Pearson r, R² and the split (per-band) R²."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import to_numpy

__all__ = ["pearson_r", "r2_score", "r2_score_split"]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    yt, yp = to_numpy(y_true), to_numpy(y_pred)
    if yt.ndim == 1:
        yt = yt[:, None]
    if yp.ndim == 1:
        yp = yp[:, None]
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape (n_samples, n_targets); got {yt.shape} and {yp.shape}.")
    if yt.shape[0] < 2:
        raise ValueError(f"Scores need at least 2 samples; got {yt.shape[0]}.")
    dt = np.result_type(yt.dtype, yp.dtype, np.float32)
    return yt.astype(dt, copy=False), yp.astype(dt, copy=False)


def pearson_r(y_true: Any, y_pred: Any) -> np.ndarray:
    """Pearson correlation of every column of ``y_true`` with the same column of ``y_pred``.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    r : array of shape (n_targets,)
        0 where either column is constant.

    Examples
    --------
    >>> pearson_r([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]).round(3)
    array([0.993])
    """
    yt, yp = _pair(y_true, y_pred)
    yt = yt - yt.mean(0)
    yp = yp - yp.mean(0)
    num = (yt * yp).sum(0)
    den = np.sqrt((yt * yt).sum(0) * (yp * yp).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return r.astype(yt.dtype)


def r2_score(y_true: Any, y_pred: Any) -> np.ndarray:
    """Coefficient of determination of every column (as ``sklearn.metrics.r2_score`` raw values).

    ``1 - sum((y - y_pred)²) / sum((y - mean(y))²)``; can be negative. 0 for a constant column.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    r2 : array of shape (n_targets,)

    Examples
    --------
    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]).round(3)
    array([0.5])
    """
    yt, yp = _pair(y_true, y_pred)
    ss_res = ((yt - yp) ** 2).sum(0)
    ss_tot = ((yt - yt.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0).astype(yt.dtype)


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
    if ys.shape[1:] != yt.shape:
        raise ValueError(f"y_pred_split must have shape (n_bands, {yt.shape[0]}, {yt.shape[1]}); got {ys.shape}.")
    yt = yt - yt.mean(0)
    ys = ys - ys.mean(1, keepdims=True)
    total = ys.sum(0)
    ss = (yt * yt).sum(0)
    parts = 2 * (ys * yt[None]).sum(1) - (ys * total[None]).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ss > 0, parts / np.where(ss > 0, ss, 1), 0.0)
