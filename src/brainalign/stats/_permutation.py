"""Permutation tests for encoding scores that respect temporal autocorrelation."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._docs import fill_doc
from .._backend import to_numpy
from .._utils import Bunch, check_option, check_random_state, progress_bar
from ._multiple import fdr_correction, max_stat_pvalues
from ._scores import pearson_r, r2_score

__all__ = ["permutation_test"]


def _blocks(n: int, groups: Any, block_size: int | None) -> list[np.ndarray]:
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups has {g.size} labels but there are {n} samples.")
        _, first = np.unique(g, return_index=True)
        return [np.flatnonzero(g == g[i]) for i in np.sort(first)]
    if block_size is None:
        raise ValueError("Give groups (runs) or block_size to define the blocks that are permuted or shifted.")
    return [np.arange(s, min(s + block_size, n)) for s in range(0, n, block_size)]


@fill_doc
def permutation_test(
    y_true: Any,
    y_pred: Any,
    *,
    groups: Any = None,
    method: str = "circular_shift",
    block_size: int | None = None,
    n_permutations: int = 1000,
    metric: str = "pearson_r",
    alpha: float = 0.05,
    random_state: Any = 0,
    verbose: bool = False,
) -> Bunch:
    """Per-target permutation p-values of held-out scores, preserving autocorrelation.

    The predictions are scrambled in a way that keeps their temporal structure, and the
    score is recomputed against the untouched data:

    - ``"circular_shift"``: within every run (or block), the predictions are rotated by a
      random offset (at least 10% of the run away from 0), so each stays a smooth time series;
    - ``"block"``: whole blocks (runs, or ``block_size`` chunks of equal length) of the
      predictions are permuted between positions (needs blocks of equal length).

    The same permutation is applied to every target, so the null distribution keeps the
    spatial correlation and supports the max-statistic FWE correction.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets)
    groups : array of shape (n_samples,), optional
        Run labels (preferred); else ``block_size``.
    method : {"circular_shift", "block"}
    block_size : int, optional
    %(n_permutations)s
    metric : {"pearson_r", "r2"}
    alpha : float
        Level for the FDR decision ``reject_fdr``.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    Bunch with ``score`` (n_targets,), ``pvalues`` (uncorrected, ``(1 + #null >= score) /
    (1 + n_permutations)``), ``pvalues_fdr`` (Benjamini–Hochberg), ``pvalues_fwe``
    (max statistic), ``reject_fdr`` and ``null`` (n_permutations, n_targets).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((200, 2)); pred = y + rng.standard_normal((200, 2))
    >>> res = permutation_test(y, pred, block_size=50, n_permutations=99)
    >>> bool((res.pvalues < 0.05).all())
    True
    """
    check_option("method", method, ["circular_shift", "block"])
    check_option("metric", metric, ["pearson_r", "r2"])
    yt, yp = to_numpy(y_true), to_numpy(y_pred)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None] if yp.ndim == 1 else yp
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape; got {yt.shape} and {yp.shape}.")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}.")
    score_fn = pearson_r if metric == "pearson_r" else r2_score
    n = yt.shape[0]
    blocks = _blocks(n, groups, block_size)
    if method == "block":
        lengths = {len(b) for b in blocks}
        if len(lengths) != 1:
            raise ValueError(f"method='block' needs blocks of equal length; got lengths {sorted(lengths)}. "
                             "Use method='circular_shift' or a block_size that divides the samples.")
        if len(blocks) < 2:
            raise ValueError("method='block' needs at least 2 blocks.")
        to_sample_order = np.argsort(np.concatenate(blocks))  # the same for every permutation
    rng = check_random_state(random_state)
    observed = score_fn(yt, yp)
    null = np.empty((n_permutations, yt.shape[1]))
    for k in progress_bar(range(n_permutations), verbose=verbose, desc="permutations"):
        if method == "circular_shift":
            perm = np.empty(n, dtype=np.int64)
            for b in blocks:
                m = len(b)
                lo = max(1, int(0.1 * m))
                shift = rng.integers(lo, m - lo + 1) if m - lo >= lo else rng.integers(1, max(m, 2))
                perm[b] = np.roll(b, shift)
        else:
            order = rng.permutation(len(blocks))
            perm = np.concatenate([blocks[i] for i in order])[to_sample_order]
        null[k] = score_fn(yt, yp[perm])
    pvals = (1 + (null >= observed[None]).sum(0)) / (1 + n_permutations)
    reject, p_fdr = fdr_correction(pvals, alpha)
    return Bunch(score=observed, pvalues=pvals, pvalues_fdr=p_fdr, reject_fdr=reject,
                 pvalues_fwe=max_stat_pvalues(observed, null), null=null)
