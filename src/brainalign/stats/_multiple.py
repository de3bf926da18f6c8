"""Multiple-comparison corrections: Benjamini–Hochberg FDR and max-statistic FWE."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils import check_option

__all__ = ["fdr_correction", "max_stat_pvalues"]


def fdr_correction(pvals: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg false discovery rate correction (independent or positively dependent tests).

    Same results as ``mne.stats.fdr_correction(p, alpha, method="indep")`` and
    ``statsmodels.stats.multitest.multipletests(p, alpha, method="fdr_bh")``.

    Parameters
    ----------
    pvals : array of any shape
    alpha : float
        FDR level in (0, 1).

    Returns
    -------
    reject : bool array, same shape
    pvals_corrected : array, same shape (BH-adjusted p-values, capped at 1)

    Examples
    --------
    >>> fdr_correction([0.01, 0.02, 0.5])[1].round(3)
    array([0.03, 0.03, 0.5 ])
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    p = np.asarray(pvals, dtype=np.float64)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must lie in [0, 1] and contain no NaN.")
    shape = p.shape
    flat = p.ravel()
    order = np.argsort(flat, kind="mergesort")
    ranked = flat[order]
    m = flat.size
    adj = ranked * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    adj = np.minimum(adj, 1.0)
    out = np.empty_like(adj)
    out[order] = adj
    return (out <= alpha).reshape(shape), out.reshape(shape)


def max_stat_pvalues(observed: Any, null: Any, *, tail: str = "greater") -> np.ndarray:
    """Family-wise error corrected p-values with the maximum statistic (Nichols & Holmes 2002).

    Each target's corrected p-value is the fraction of permutations whose *maximum over
    targets* reaches the observed value: ``(1 + #{k : max_j null[k, j] >= obs}) / (1 + n_permutations)``.

    Parameters
    ----------
    observed : array of shape (n_targets,)
    null : array of shape (n_permutations, n_targets)
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
    obs = np.asarray(observed, dtype=np.float64)
    nul = np.asarray(null, dtype=np.float64)
    if nul.ndim != 2 or nul.shape[1] != obs.size:
        raise ValueError(f"null must have shape (n_permutations, {obs.size}); got {nul.shape}.")
    if tail == "two-sided":
        obs, nul = np.abs(obs), np.abs(nul)
    mx = np.sort(nul.max(1))
    count = nul.shape[0] - np.searchsorted(mx, obs, side="left")
    return (1 + count) / (1 + nul.shape[0])
