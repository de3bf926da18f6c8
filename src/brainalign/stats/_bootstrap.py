"""Bootstrap confidence intervals of ROI-mean scores, resampling stimuli, runs or blocks of samples."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._docs import fill_doc
from .._utils import Bunch, check_option, check_random_state
from ._checks import check_fraction, check_int, constant_columns, paired_arrays, warn_constant
from ._scores import _pearson, _r2

__all__ = ["bootstrap_ci", "bootstrap_units"]

_METRICS = ("pearson_r", "r2")


def bootstrap_units(n_samples: int, *, groups: Any = None, block_length: int | None = None) -> list[np.ndarray]:
    """The resampling units of :func:`bootstrap_ci`: lists of sample indices.

    Parameters
    ----------
    n_samples : int
    groups : array of shape (n_samples,), optional
        A label per sample. Alone: every group is one unit (e.g. stimulus ids, or runs).
        With ``block_length``: the runs inside which blocks are cut.
    block_length : int, optional
        Cut the samples (of every group, in order) into consecutive blocks of this many
        samples, the last block of a group possibly shorter. 1 makes every sample a unit.

    Returns
    -------
    units : list of arrays of sample indices, in order of first appearance

    Examples
    --------
    >>> [u.tolist() for u in bootstrap_units(5, block_length=2)]
    [[0, 1], [2, 3], [4]]
    """
    n_samples = check_int("n_samples", n_samples, min_value=1)
    if block_length is not None:
        block_length = check_int("block_length", block_length, min_value=1)
    if groups is None:
        if block_length is None:
            raise ValueError("Give groups or block_length to define the resampling units.")
        runs = [np.arange(n_samples)]
    else:
        g = np.asarray(groups)
        if g.shape != (n_samples,):
            raise ValueError(f"groups has {g.size} labels but there are {n_samples} samples.")
        _, first = np.unique(g, return_index=True)
        runs = [np.flatnonzero(g == g[i]) for i in np.sort(first)]
        if block_length is None:
            return runs
    return [r[s:s + block_length] for r in runs for s in range(0, len(r), block_length)]


def _lag1_of_products(yt: np.ndarray, yp: np.ndarray) -> tuple[float, float]:
    """Lag-1 autocorrelation of the per-sample products z(y)·z(pred) averaged over targets, and its z-score."""
    ok = ~(constant_columns(yt) | constant_columns(yp))
    if not ok.any():
        return 0.0, 0.0
    zy = (yt[:, ok] - yt[:, ok].mean(0)) / yt[:, ok].std(0)
    zp = (yp[:, ok] - yp[:, ok].mean(0)) / yp[:, ok].std(0)
    v = (zy * zp).mean(1)
    v = v - v.mean()
    den = (v * v).sum()
    if den == 0:
        return 0.0, 0.0
    rho = float((v[1:] * v[:-1]).sum() / den)
    return rho, rho * np.sqrt(len(v))


def _interval_percentiles(ci: float, n_units: int, interval: str) -> list[float]:
    """The two percentiles (in %) of the bootstrap distribution that bound the interval.

    ``"percentile"``: ``50 (1 - ci)`` and ``100 - 50 (1 - ci)``. ``"expanded_percentile"``
    (Hesterberg 2015): the tail level is shrunk so that its normal quantile becomes
    ``sqrt(n / (n - 1)) t_{n-1}`` for ``n`` resampling units, which undoes the narrowness of
    the bootstrap with few units (the bootstrap variance of a mean is ``(n - 1) / n`` times
    the unbiased one, and a t rather than a normal quantile is due); negligible for many units.
    """
    check_option("interval", interval, ["percentile", "expanded_percentile"])
    tail = (1 - ci) / 2
    if interval == "expanded_percentile" and n_units > 1:
        from scipy.stats import norm, t

        tail = float(norm.sf(np.sqrt(n_units / (n_units - 1)) * t.isf(tail, n_units - 1)))
    return [100 * tail, 100 * (1 - tail)]


def _draws(rng: np.random.Generator, n_units: int, n_resamples: int) -> np.ndarray:
    """(n_resamples, n_units) unit indices drawn with replacement: the same for the same seed and sizes."""
    return rng.integers(0, n_units, size=(n_resamples, n_units))


def _unit_sums(yt: np.ndarray, yp: np.ndarray, units: list[np.ndarray], metric: str) -> dict[str, np.ndarray]:
    """Per-unit sums (n_units, n_targets) of the terms the metric needs (data centred first, for conditioning)."""
    yc, pc = yt - yt.mean(0), yp - yp.mean(0)
    order = np.concatenate(units)
    starts = np.r_[0, np.cumsum([len(u) for u in units])[:-1]]

    def per_unit(v: np.ndarray) -> np.ndarray:
        return np.add.reduceat(v[order], starts, axis=0)

    out = {"y": per_unit(yc), "yy": per_unit(yc * yc), "n": np.array([len(u) for u in units], dtype=np.float64)}
    if metric == "pearson_r":
        out.update(p=per_unit(pc), pp=per_unit(pc * pc), yp=per_unit(yc * pc))
    else:
        out.update(dd=per_unit((yt - yp) ** 2))
    return out


def _weighted_scores(sums: dict[str, np.ndarray], counts: np.ndarray, metric: str) -> np.ndarray:
    """(n_resamples, n_targets) scores of the resamples given as unit counts (n_resamples, n_units)."""
    nw = (counts @ sums["n"])[:, None]
    sy, syy = counts @ sums["y"], counts @ sums["yy"]
    var_y = syy - sy * sy / nw
    if metric == "pearson_r":
        sp, spp, syp = counts @ sums["p"], counts @ sums["pp"], counts @ sums["yp"]
        num = syp - sy * sp / nw
        den = np.sqrt(np.clip(var_y, 0, None) * np.clip(spp - sp * sp / nw, 0, None))
        tiny = den <= 1e-12 * np.sqrt(np.clip(syy * spp, 0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tiny, np.nan, np.clip(num / np.where(tiny, 1, den), -1, 1))
    sse = counts @ sums["dd"]
    tiny = var_y <= 1e-12 * np.clip(syy, 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tiny, np.nan, 1 - sse / np.where(tiny, 1, var_y))


@fill_doc
def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    *,
    groups: Any = None,
    block_length: int | None = None,
    metric: str | Callable[[np.ndarray, np.ndarray], np.ndarray] = "pearson_r",
    n_resamples: int = 1000,
    ci: float = 0.95,
    interval: str = "expanded_percentile",
    random_state: Any = 0,
) -> Bunch:
    """Percentile bootstrap CI of the mean score over targets (e.g. the voxels of an ROI).

    Units are drawn with replacement; for each draw the per-target scores are recomputed
    and averaged over targets. Say what the samples are:

    - ``groups`` alone: each group (a stimulus id, or a run) is a unit;
    - ``block_length`` (and optionally ``groups`` = runs): blocks of consecutive samples
      within runs are the units — the moving-free block bootstrap for time series, where
      neighbouring samples are not independent. Take blocks several times longer than the
      autocorrelation of the data (e.g. 10 to 20 TRs of fMRI);
    - neither: every sample is a unit, which assumes the samples are **independent**
      (i.i.d.). Because that is wrong for time series (the interval is then too narrow:
      0.585 coverage for a nominal 0.95 on AR(0.8) data), this default refuses data whose
      per-sample score contributions ``z(y)·z(pred)`` have a clearly positive lag-1
      autocorrelation (above 0.1 and 3.3 standard errors). Pass ``block_length=1`` to
      state that the samples are independent and skip that check.

    The draws depend only on ``random_state``, ``n_resamples`` and the number of units:
    two calls with the same units and ``random_state`` (e.g. two layers, or two subjects
    shown the same stimuli) resample the same units, so their replicates are paired.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets)
        Finite values.
    groups : array of shape (n_samples,), optional
        Resampling unit of every sample (stimulus id or run), or the runs inside which
        ``block_length`` blocks are cut.
    block_length : int, optional
        Length of the blocks of consecutive samples that are resampled.
    metric : {"pearson_r", "r2"} or callable
        The per-target score; a callable ``metric(y_true, y_pred) -> (n_targets,)`` is
        recomputed on every resample (slower than the built-in metrics, which are computed
        from weighted sums).
    %(n_resamples)s
    %(ci)s
    %(random_state)s

    Returns
    -------
    Bunch with ``mean`` (observed ROI mean), ``ci_low``, ``ci_high``, ``distribution``
    (n_resamples,) and ``n_units``. Targets whose score is undefined in a resample (a
    column constant in it) are left out of that resample's mean.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((100, 3)); pred = y + rng.standard_normal((100, 3))
    >>> res = bootstrap_ci(y, pred, groups=np.repeat(np.arange(20), 5), n_resamples=200)
    >>> bool(res.ci_low < res.mean < res.ci_high)
    True
    """
    ci = check_fraction("ci", ci)
    n_resamples = check_int("n_resamples", n_resamples, min_value=1)
    if not callable(metric) and metric not in _METRICS:
        raise ValueError(f"Invalid value for the 'metric' parameter. Allowed values are 'pearson_r', 'r2' or a "
                         f"callable, but got {metric!r} instead.")
    yt, yp = paired_arrays(y_true, y_pred)
    n = yt.shape[0]
    if groups is None and block_length is None:
        rho, z = _lag1_of_products(yt, yp)
        if rho > 0.1 and z > 3.3:
            raise ValueError(
                f"The per-sample score contributions are autocorrelated (lag-1 r = {rho:.2f} over {n} samples), "
                "so the samples are not independent and an i.i.d. bootstrap would give too narrow an interval. "
                "Pass groups= (stimulus ids, or runs) or block_length= (consecutive samples resampled together, "
                "within the runs given as groups=); block_length=1 states that the samples are independent.")
        block_length = 1
    units = bootstrap_units(n, groups=groups, block_length=block_length)
    if len(units) < 2:
        raise ValueError(f"The bootstrap needs at least 2 resampling units; got {len(units)}.")
    rng = check_random_state(random_state)
    draws = _draws(rng, len(units), n_resamples)
    if callable(metric):
        observed = np.asarray(metric(yt, yp), dtype=np.float64)
        dist = np.empty(n_resamples)
        for k in range(n_resamples):
            idx = np.concatenate([units[i] for i in draws[k]])
            dist[k] = np.nanmean(metric(yt[idx], yp[idx]))
    else:
        observed, const = (_pearson if metric == "pearson_r" else _r2)(yt, yp)
        warn_constant(const, "y_true or y_pred" if metric == "pearson_r" else "y_true", "the score", stacklevel=2)
        sums = _unit_sums(yt.astype(np.float64), yp.astype(np.float64), units, metric)
        dist = np.empty(n_resamples)
        step = max(1, int(2e7 // (len(units) * (1 + yt.shape[1]))))  # bound the (chunk, n_targets) arrays
        for s in range(0, n_resamples, step):
            chunk = draws[s:s + step]
            flat = (np.arange(len(chunk))[:, None] * len(units) + chunk).ravel()
            counts = np.bincount(flat, minlength=chunk.size).reshape(len(chunk), len(units)).astype(np.float64)
            scores = _weighted_scores(sums, counts, metric)
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(scores).any(1)
                dist[s:s + step] = np.where(ok, np.nanmean(np.where(ok[:, None], scores, 0), axis=1), np.nan)
    lo, hi = np.nanpercentile(dist, _interval_percentiles(ci, len(units), interval))
    return Bunch(mean=float(np.nanmean(observed)) if np.isfinite(observed).any() else np.nan,
                 ci_low=float(lo), ci_high=float(hi), distribution=dist, n_units=len(units))
