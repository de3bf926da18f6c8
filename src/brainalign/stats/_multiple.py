"""Multiple-comparison corrections: Benjamini–Hochberg / –Yekutieli FDR, Holm FWE, max-statistic FWE."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils import check_option
from ._checks import check_fraction

__all__ = ["fdr_correction", "holm_correction", "max_stat_pvalues"]


def _pvalues(pvals: Any) -> np.ndarray:
    p = np.asarray(pvals, dtype=np.float64)
    if p.size == 0:
        raise ValueError("pvals is empty: there is nothing to correct.")
    bad = np.isnan(p) | (p < 0) | (p > 1)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"p-values must lie in [0, 1] and contain no NaN; {int(bad.sum())} do not (first at index "
                         f"{first}: {float(p[first])}). Drop the tests whose p-value is undefined before correcting.")
    return p


def fdr_correction(pvals: Any, alpha: float = 0.05, *, method: str = "bh") -> tuple[np.ndarray, np.ndarray]:
    """False discovery rate correction (``scipy.stats.false_discovery_control``).

    ``"bh"``: Benjamini–Hochberg, for independent or positively dependent tests; ``"by"``:
    Benjamini–Yekutieli, valid under any dependence (more conservative). The same results as
    ``mne.stats.fdr_correction(p, alpha, method="indep" / "negcorr")`` and
    ``statsmodels.stats.multitest.multipletests(p, alpha, method="fdr_bh" / "fdr_by")``.

    Parameters
    ----------
    pvals : array of any shape
        p-values in [0, 1] (NaN raises: drop undefined tests first).
    alpha : float
        FDR level in (0, 1).
    method : {"bh", "by"}

    Returns
    -------
    reject : bool array, same shape
    pvals_corrected : array, same shape
        Adjusted p-values, capped at 1.

    Examples
    --------
    >>> fdr_correction([0.01, 0.02, 0.5])[1].round(3)
    array([0.03, 0.03, 0.5 ])
    """
    from scipy.stats import false_discovery_control

    alpha = check_fraction("alpha", alpha)
    check_option("method", method, ["bh", "by"])
    p = _pvalues(pvals)
    adj = np.minimum(false_discovery_control(p.ravel(), method=method), 1.0).reshape(p.shape)
    return adj <= alpha, adj


def holm_correction(pvals: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down family-wise error correction (valid under any dependence).

    The ``k``-th smallest of ``m`` p-values is multiplied by ``m - k + 1``; the adjusted
    values are made non-decreasing in that order and capped at 1 (as
    ``statsmodels.stats.multitest.multipletests(p, alpha, method="holm")``).

    Parameters
    ----------
    pvals : array of any shape
    alpha : float
        Family-wise error level in (0, 1).

    Returns
    -------
    reject : bool array, same shape
    pvals_corrected : array, same shape

    Examples
    --------
    >>> holm_correction([0.01, 0.02, 0.5])[1].round(3)
    array([0.03, 0.04, 0.5 ])
    """
    alpha = check_fraction("alpha", alpha)
    p = _pvalues(pvals)
    flat = p.ravel()
    m = flat.size
    order = np.argsort(flat, kind="mergesort")
    adj_sorted = np.minimum(np.maximum.accumulate(flat[order] * (m - np.arange(m))), 1.0)
    adj = np.empty(m)
    adj[order] = adj_sorted
    adj = adj.reshape(p.shape)
    return adj <= alpha, adj


def max_stat_pvalues(observed: Any, null: Any, *, tail: str = "greater") -> np.ndarray:
    """Family-wise error corrected p-values with the maximum statistic (Nichols & Holmes 2002).

    Each target's corrected p-value is the fraction of permutations whose *maximum over
    targets* reaches the observed value: ``(1 + #{k : max_j null[k, j] >= obs}) / (1 + n_permutations)``.
    The null must come from one permutation applied to every target at once (as
    :func:`permutation_test` makes it), so that the maximum keeps their dependence.

    Parameters
    ----------
    observed : array of shape (n_targets,)
        NaN (an undefined score) gives a NaN p-value.
    null : array of shape (n_permutations, n_targets)
        NaN entries (targets whose score is undefined) are left out of the maximum.
    tail : {"greater", "two-sided"}

    Returns
    -------
    p_fwe : array of shape (n_targets,)

    Examples
    --------
    >>> null = np.array([[0.1, 0.2], [0.3, 0.0]])
    >>> max_stat_pvalues([0.5, 0.25], null).round(3)
    array([0.333, 0.667])
    """
    check_option("tail", tail, ["greater", "two-sided"])
    obs = np.asarray(observed, dtype=np.float64).ravel()
    nul = np.asarray(null, dtype=np.float64)
    if nul.ndim != 2 or nul.shape[1] != obs.size or nul.shape[0] < 1:
        raise ValueError(f"null must have shape (n_permutations, {obs.size}); got {nul.shape}.")
    if tail == "two-sided":
        obs, nul = np.abs(obs), np.abs(nul)
    finite = np.isfinite(nul)
    if not finite.any(axis=1).all():
        raise ValueError("Every permutation of the null is NaN for all targets: there is no null distribution.")
    mx = np.sort(np.where(finite, nul, -np.inf).max(1))
    count = nul.shape[0] - np.searchsorted(mx, np.where(np.isnan(obs), np.inf, obs), side="left")
    return np.where(np.isnan(obs), np.nan, (1 + count) / (1 + nul.shape[0]))
