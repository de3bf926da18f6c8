"""Bootstrap confidence intervals of ROI-mean scores, resampling stimuli or runs."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._docs import fill_doc
from .._backend import to_numpy
from .._utils import Bunch, check_random_state
from ._scores import pearson_r

__all__ = ["bootstrap_ci"]


@fill_doc
def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    *,
    groups: Any = None,
    score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] = pearson_r,
    n_resamples: int = 1000,
    ci: float = 0.95,
    random_state: Any = 0,
) -> Bunch:
    """Percentile bootstrap CI of the mean score over targets (e.g. the voxels of an ROI).

    Units (samples, or whole ``groups`` such as stimuli or runs) are drawn with replacement;
    for each draw the per-target scores are recomputed and averaged over targets.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets)
    groups : array of shape (n_samples,), optional
        Resampling unit of every sample (stimulus id or run); default: each sample.
    score_fn : callable
        ``score_fn(y_true, y_pred) -> (n_targets,)``; default :func:`pearson_r`.
    %(n_resamples)s
    ci : float
        Coverage, e.g. 0.95 for the 2.5 and 97.5 percentiles.
    %(random_state)s

    Returns
    -------
    Bunch with ``mean`` (observed ROI mean), ``ci_low``, ``ci_high`` and ``distribution``
    (n_resamples,).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((100, 3)); pred = y + rng.standard_normal((100, 3))
    >>> res = bootstrap_ci(y, pred, n_resamples=200)
    >>> bool(res.ci_low < res.mean < res.ci_high)
    True
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}.")
    yt, yp = to_numpy(y_true), to_numpy(y_pred)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp.reshape(-1, 1)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape; got {yt.shape} and {yp.shape}.")
    n = yt.shape[0]
    if groups is None:
        units = [np.array([i]) for i in range(n)]
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups has {g.size} labels but there are {n} samples.")
        units = [np.flatnonzero(g == u) for u in np.unique(g)]
    if len(units) < 2:
        raise ValueError(f"The bootstrap needs at least 2 resampling units; got {len(units)}.")
    rng = check_random_state(random_state)
    dist = np.empty(n_resamples)
    for k in range(n_resamples):
        idx = np.concatenate([units[i] for i in rng.integers(0, len(units), len(units))])
        dist[k] = np.nanmean(score_fn(yt[idx], yp[idx]))
    lo, hi = np.percentile(dist, [50 * (1 - ci), 100 - 50 * (1 - ci)])
    return Bunch(mean=float(np.mean(score_fn(yt, yp))), ci_low=float(lo), ci_high=float(hi), distribution=dist)
