"""Noise precision matrices for Mahalanobis / crossnobis RDMs (rsatoolbox's estimators)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils import check_option

__all__ = ["noise_precision"]

_METHODS = ("shrinkage_diag", "shrinkage_eye", "diag", "full")


def noise_precision(data: Any, *, descriptor: str | None = None, method: str = "shrinkage_diag",
                    dof: int | None = None) -> np.ndarray:
    """Noise precision (inverse covariance over channels) from residuals or repeated measurements.

    Parameters
    ----------
    data : array of shape (n_residuals, n_channels), BrainData or rsatoolbox Dataset
        Residuals (e.g. of a GLM), or measurements with repetitions of each condition.
    descriptor : str, optional
        With measurements: the samples column naming the condition. Every condition must have
        the same number of repetitions; residuals are the deviations from the condition means
        (``rsatoolbox.data.prec_from_measurements``). Without it ``data`` are residuals
        (``rsatoolbox.data.prec_from_residuals``).
    method : {"shrinkage_diag", "shrinkage_eye", "diag", "full"}
        ``shrinkage_diag``: Schäfer & Strimmer (2005) shrinkage towards the diagonal;
        ``shrinkage_eye``: Ledoit & Wolf (2004) shrinkage towards a multiple of the identity;
        ``diag``: variances only; ``full``: the sample covariance.
    dof : int, optional
        Degrees of freedom; defaults as in rsatoolbox (``n_residuals - 1``, or
        ``(n_conditions - 1) * n_repetitions`` with a descriptor).

    Returns
    -------
    array of shape (n_channels, n_channels)

    Examples
    --------
    >>> import numpy as np
    >>> noise_precision(np.random.default_rng(0).standard_normal((50, 3))).shape
    (3, 3)
    """
    check_option("method", method, _METHODS)
    if descriptor is None:
        x = np.asarray(getattr(data, "data", getattr(data, "measurements", data)), dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"Residuals must have shape (n_residuals, n_channels); got {x.shape}.")
        x = x - x.mean(0, keepdims=True)
        nat_dof = x.shape[0] - 1
    else:
        x, nat_dof = _residuals_by(data, descriptor)
    cov = _covariance(x, nat_dof if dof is None else int(dof), method)
    return _invert_covariance(cov, method)


def _invert_covariance(cov: np.ndarray, method: str) -> np.ndarray:
    """Invert a symmetric covariance after checking its rank (``inv`` alone does not raise on
    every LAPACK build for a rank-deficient matrix: numpy 2.4 returns entries of 1e17)."""
    p = cov.shape[0]
    eigvals = np.linalg.eigvalsh(cov)
    tol = max(eigvals.max(initial=0.0), 0.0) * p * np.finfo(np.float64).eps
    rank = int(np.sum(eigvals > tol))
    if rank < p or not np.all(np.isfinite(cov)):
        raise ValueError(
            f"The {method!r} noise covariance of {p} channels is singular (rank {rank} < {p}: too few "
            "residuals for the number of channels?); use method='shrinkage_diag' or 'shrinkage_eye', "
            "or reduce the number of channels."
        )
    return np.linalg.inv(cov)


def _residuals_by(data: Any, descriptor: str) -> tuple[np.ndarray, int]:
    if hasattr(data, "samples") and hasattr(data, "data"):
        values = np.asarray(data.samples[descriptor]) if descriptor in data.samples else None
        x = np.asarray(data.data, dtype=np.float64)
    elif hasattr(data, "obs_descriptors"):
        values = np.asarray(data.obs_descriptors.get(descriptor)) if descriptor in data.obs_descriptors else None
        x = np.asarray(data.measurements, dtype=np.float64)
    else:
        raise TypeError("noise_precision with a descriptor needs a BrainData or an rsatoolbox Dataset.")
    if values is None:
        raise KeyError(f"descriptor {descriptor!r} is not a samples column of the data.")
    uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if not np.all(counts == counts[0]):
        raise ValueError(
            f"Every condition needs the same number of repetitions to estimate the noise this way; "
            f"got counts from {counts.min()} to {counts.max()}."
        )
    means = np.zeros((uniq.size, x.shape[1]))
    np.add.at(means, inverse, x)
    means /= counts[:, None]
    return x - means[inverse], (uniq.size - 1) * int(counts[0])


def _covariance(x: np.ndarray, dof: int, method: str) -> np.ndarray:
    n = x.shape[0]
    if method == "diag":
        return np.diag(np.einsum("ij,ij->j", x, x) / dof)
    s_sum = x.T @ x
    if method == "full":
        return s_sum / dof
    x2 = x * x
    s2_sum = x2.T @ x2
    p = x.shape[1]
    if method == "shrinkage_eye":
        s = s_sum / n
        b2 = np.sum(s2_sum / n - s * s) / n
        mu = np.trace(s) / p
        d2 = np.sum((s - mu * np.eye(p)) ** 2)
        b2 = min(d2, b2)
        return (b2 / d2 * mu * np.eye(p) + (d2 - b2) / d2 * s) * n / dof
    s = s_sum / dof
    var = np.diag(s)
    std = np.sqrt(var)
    s_mean = s_sum / std[None, :] / std[:, None] / (n - 1)
    s2_mean = s2_sum / var[None, :] / var[:, None] / (n - 1)
    var_hat = n / dof**2 * (s2_mean - s_mean**2)
    off = ~np.eye(p, dtype=bool)
    lamb = float(np.clip(var_hat[off].sum() / np.sum(s_mean[off] ** 2), 0, 1))
    return s * (np.eye(p) + (1 - lamb) * off)
