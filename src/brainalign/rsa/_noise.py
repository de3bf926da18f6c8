"""Noise precision matrices for Mahalanobis / crossnobis RDMs.

The covariance estimators are rsatoolbox's (``rsatoolbox.data.noise``: the sample covariance,
Ledoit-Wolf shrinkage to the identity, Schäfer-Strimmer shrinkage to the diagonal); this
module adds what rsatoolbox users ask for and do not get there: unbalanced designs through
the same entry point, one precision per run (or any other group), and a rank check before
the inversion (numpy's ``inv`` of a singular covariance does not raise on every LAPACK build:
numpy 2.4 returns entries of 1e17).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_option

__all__ = ["noise_precision"]

_METHODS = ("shrinkage_diag", "shrinkage_eye", "diag", "full")


def noise_precision(data: Any, *, descriptor: str | None = None, method: str = "shrinkage_diag",
                    dof: int | None = None, by: str | None = None) -> np.ndarray:
    """Noise precision (inverse covariance over channels) from residuals or repeated measurements.

    Parameters
    ----------
    data : array of shape (n_residuals, n_channels), BrainData or rsatoolbox Dataset
        Residuals (e.g. of a GLM), or measurements with repetitions of each condition.
    descriptor : str, optional
        With measurements: the samples column naming the condition; the residuals are the
        deviations of the samples from their condition means. Balanced designs (every
        condition repeated equally often) use ``rsatoolbox.data.cov_from_measurements``,
        unbalanced ones ``rsatoolbox.data.cov_from_unbalanced``. Without it ``data`` are
        residuals (``rsatoolbox.data.cov_from_residuals``).
    method : {"shrinkage_diag", "shrinkage_eye", "diag", "full"}
        ``shrinkage_diag``: Schäfer & Strimmer (2005) shrinkage towards the diagonal;
        ``shrinkage_eye``: Ledoit & Wolf (2004) shrinkage towards a multiple of the identity;
        ``diag``: variances only; ``full``: the sample covariance.
    dof : int, optional
        Degrees of freedom; defaults as in rsatoolbox: ``n_residuals - 1`` for residuals,
        ``(n_conditions - 1) * n_repetitions`` for balanced measurements,
        ``n_samples - n_conditions`` for unbalanced ones.
    by : str, optional
        A samples column (e.g. ``"run"``): one precision per value of it, in sorted order,
        each estimated from that group's rows only (with ``descriptor``: the deviations of
        the group's samples from the condition means over *all* samples, so a run with one
        sample per condition still has residuals). Pass the result as ``noise=`` to
        :func:`calc_rdm` with ``method="crossnobis"`` and ``cv_descriptor=by``.

    Returns
    -------
    array of shape (n_channels, n_channels), or (n_groups, n_channels, n_channels) with ``by``

    Raises
    ------
    ValueError
        When a covariance is singular (too few residuals for the channels, or duplicated
        channels): use a shrinkage method.

    Examples
    --------
    >>> import numpy as np
    >>> noise_precision(np.random.default_rng(0).standard_normal((50, 3))).shape
    (3, 3)
    """
    check_option("method", method, _METHODS)
    if dof is not None and (isinstance(dof, bool) or not isinstance(dof, (int, np.integer)) or dof < 1):
        raise ValueError(f"dof must be a positive int or None; got {dof!r}.")
    x, samples = _unpack(data)
    if by is not None:
        if by not in samples.columns:
            raise KeyError(f"by={by!r} is not a samples column of the data; columns: {list(samples.columns)}.")
        groups, codes = np.unique(samples[by].to_numpy(), return_inverse=True)
        codes = codes.ravel()
        if descriptor is not None:
            x = x - _condition_means(x, samples, descriptor)
        precs = []
        for g, name in enumerate(groups):
            rows = codes == g
            cov = _cov_residuals(x[rows], dof, method)
            precs.append(_invert_covariance(cov, method, f" ({by}={name!r}, {int(rows.sum())} rows)"))
        return np.stack(precs)
    if descriptor is None:
        cov = _cov_residuals(x, dof, method)
    else:
        cov = _cov_measurements(x, samples, descriptor, dof, method)
    return _invert_covariance(cov, method)


def _unpack(data: Any) -> tuple[np.ndarray, pd.DataFrame]:
    if hasattr(data, "samples") and hasattr(data, "data"):
        x, samples = data.data, data.samples
    elif hasattr(data, "obs_descriptors") and hasattr(data, "measurements"):
        x = data.measurements
        samples = pd.DataFrame({k: list(v) for k, v in data.obs_descriptors.items()})
    else:
        x, samples = data, None
    x = np.array(x, dtype=np.float64)  # a private copy: rsatoolbox demeans in place
    if x.ndim != 2:
        raise ValueError(f"noise_precision needs data of shape (n_samples, n_channels); got shape {x.shape}.")
    if not np.isfinite(x).all():
        row, col = (int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueError(f"The data contain NaN/inf values (first at sample {row}, channel {col}).")
    if samples is None:
        samples = pd.DataFrame(index=range(x.shape[0]))
    return x, samples.reset_index(drop=True)


def _condition_codes(samples: pd.DataFrame, descriptor: str) -> tuple[np.ndarray, np.ndarray]:
    if descriptor not in samples.columns:
        raise KeyError(
            f"descriptor {descriptor!r} is not a samples column of the data; columns: {list(samples.columns)}. "
            "noise_precision with a descriptor needs a BrainData or an rsatoolbox Dataset."
        )
    values, codes = np.unique(samples[descriptor].to_numpy(), return_inverse=True)
    return values, codes.ravel()


def _condition_means(x: np.ndarray, samples: pd.DataFrame, descriptor: str) -> np.ndarray:
    values, codes = _condition_codes(samples, descriptor)
    means = np.zeros((values.size, x.shape[1]))
    np.add.at(means, codes, x)
    return (means / np.bincount(codes)[:, None])[codes]


def _cov_residuals(x: np.ndarray, dof: int | None, method: str) -> np.ndarray:
    from rsatoolbox.data.noise import cov_from_residuals

    if x.shape[0] < 2:
        raise ValueError(f"A noise covariance needs at least 2 residuals; got {x.shape[0]}.")
    return cov_from_residuals(x, dof=dof, method=method)


def _cov_measurements(x: np.ndarray, samples: pd.DataFrame, descriptor: str, dof: int | None,
                      method: str) -> np.ndarray:
    from rsatoolbox.data import Dataset
    from rsatoolbox.data.noise import cov_from_measurements, cov_from_unbalanced

    values, codes = _condition_codes(samples, descriptor)
    counts = np.bincount(codes)
    if counts.max() < 2:
        raise ValueError(
            f"Every condition of {descriptor!r} has a single sample: the noise cannot be estimated from "
            "repetitions. Pass residuals (e.g. of a GLM) without descriptor=, or a precision array."
        )
    ds = Dataset(x, obs_descriptors={descriptor: samples[descriptor].to_numpy()})
    if np.all(counts == counts[0]):
        return cov_from_measurements(ds, descriptor, dof=dof, method=method)
    return cov_from_unbalanced(ds, descriptor, dof=dof, method=method)


def _invert_covariance(cov: np.ndarray, method: str, where: str = "") -> np.ndarray:
    """Invert a symmetric covariance after checking its rank."""
    p = cov.shape[0]
    eigvals = np.linalg.eigvalsh(cov) if np.all(np.isfinite(cov)) else np.zeros(p)
    tol = max(eigvals.max(initial=0.0), 0.0) * p * np.finfo(np.float64).eps
    rank = int(np.sum(eigvals > tol))
    if rank < p:
        raise ValueError(
            f"The {method!r} noise covariance of {p} channels{where} is singular (rank {rank} < {p}: too few "
            "residuals for the number of channels?); use method='shrinkage_diag' or 'shrinkage_eye', "
            "or reduce the number of channels."
        )
    return np.linalg.inv(cov)
