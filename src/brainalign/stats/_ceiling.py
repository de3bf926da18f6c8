"""Noise ceilings from repeated stimuli: split-half reliability, explainable variance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._backend import to_numpy
from .._utils import check_option, check_random_state
from ._scores import pearson_r

__all__ = ["explainable_variance", "noise_ceiling", "normalize_scores", "split_half_reliability"]


def _repeat_groups(data: Any, stimulus_ids: Any):
    X = to_numpy(data)
    if X.ndim != 2:
        raise ValueError(f"data must be 2-D (n_samples, n_channels); got shape {X.shape}.")
    ids = np.asarray(stimulus_ids)
    if ids.shape != (X.shape[0],):
        raise ValueError(f"stimulus_ids has {ids.size} labels but data has {X.shape[0]} samples.")
    codes, _ = pd.factorize(ids)
    counts = np.bincount(codes)
    if counts.max() < 2:
        raise ValueError("No stimulus is repeated: a noise ceiling needs at least 2 presentations of some stimuli.")
    return X, codes, counts


@fill_doc
def split_half_reliability(data: Any, stimulus_ids: Any, *, n_splits: int = 100, spearman_brown: bool = True,
                           random_state: Any = 0) -> np.ndarray:
    """Split-half reliability of every channel from repeated presentations.

    For each of ``n_splits`` random splits, the repetitions of every stimulus are divided in
    two halves, averaged within each half, and the two per-stimulus response profiles are
    correlated (Pearson) per channel; the correlations are averaged over splits. With
    ``spearman_brown`` the half-data reliability ``r`` becomes the full-data reliability
    ``2r / (1 + r)``. Stimuli shown once are ignored.

    Parameters
    ----------
    data : array of shape (n_samples, n_channels)
    stimulus_ids : array of shape (n_samples,)
    n_splits : int
    spearman_brown : bool
    %(random_state)s

    Returns
    -------
    reliability : array of shape (n_channels,)
        A correlation; use ``normalize_scores(r, reliability, convention="r/sqrt(c)")``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((20, 3)); ids = np.tile(np.arange(20), 4)
    >>> data = np.tile(signal, (4, 1)) + 0.1 * rng.standard_normal((80, 3))
    >>> bool((split_half_reliability(data, ids, n_splits=5) > 0.95).all())
    True
    """
    X, codes, counts = _repeat_groups(stimulus_ids=stimulus_ids, data=data)
    keep = np.flatnonzero(counts >= 2)
    if len(keep) < 3:
        raise ValueError(f"Only {len(keep)} stimuli are repeated; split-half reliability needs at least 3.")
    rng = check_random_state(random_state)
    members = [np.flatnonzero(codes == k) for k in keep]
    total = np.zeros(X.shape[1])
    for _ in range(int(n_splits)):
        a = np.empty((len(keep), X.shape[1]))
        b = np.empty_like(a)
        for i, idx in enumerate(members):
            perm = rng.permutation(idx)
            h = len(perm) // 2
            a[i] = X[perm[:h]].mean(0)
            b[i] = X[perm[h:]].mean(0)
        total += pearson_r(a, b)
    r = total / n_splits
    if spearman_brown:
        r = 2 * r / (1 + r)
    return r


def explainable_variance(data_repeats: Any, *, bias_correction: bool = True) -> np.ndarray:
    """Fraction of a channel's variance that is explainable (stimulus-driven).

    ``data_repeats`` holds ``n_repeats`` presentations of the same ``n_stimuli``, used as
    recorded (z-score each repeat beforehand if that is your convention). Following the Gallant-lab
    definition (Hsu et al. 2004; Sahani & Linden 2003; himalaya / voxelwise tutorials)::

        ev = 1 - mean_r var_s(y_r - mean_r y_r) / mean_r var_s(y_r)

    i.e. the variance of the mean over repeats relative to the mean variance. With
    ``bias_correction`` the finite number of repeats is corrected for:
    ``ev_c = ev - (1 - ev) / (n_repeats - 1)`` (the Natural Scenes Dataset "noise ceiling"
    variant is the same quantity in SNR form, ``ncsnr² / (ncsnr² + 1/n)``).

    Parameters
    ----------
    data_repeats : array of shape (n_repeats, n_stimuli, n_channels)
    bias_correction : bool

    Returns
    -------
    ev : array of shape (n_channels,)
        A fraction of variance (an R²-like ceiling); use
        ``normalize_scores(r2, ev, convention="r2/c")``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.standard_normal((1, 50, 2)); reps = s + rng.standard_normal((10, 50, 2))
    >>> bool(abs(explainable_variance(reps).mean() - 0.5) < 0.15)
    True
    """
    R = to_numpy(data_repeats).astype(np.float64)
    if R.ndim == 2:
        R = R[:, :, None]
    if R.ndim != 3 or R.shape[0] < 2:
        raise ValueError(f"data_repeats must have shape (n_repeats>=2, n_stimuli, n_channels); got {R.shape}.")
    n_rep = R.shape[0]
    residual = R - R.mean(0, keepdims=True)
    total_var = R.var(1).mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ev = np.where(total_var > 0, 1 - residual.var(1).mean(0) / np.where(total_var > 0, total_var, 1), 0.0)
    if bias_correction:
        ev = ev - (1 - ev) / (n_rep - 1)
    return ev


def normalize_scores(scores: Any, ceiling: Any, *, convention: str = "r/sqrt(c)", floor: float = 1e-6) -> np.ndarray:
    """Scores as a fraction of the noise ceiling.

    Two conventions are in use; name the one you report:

    - ``"r/sqrt(c)"``: a correlation ``r`` divided by the square root of a reliability ``c``
      that is itself a correlation-squared-like ceiling (e.g. Spearman–Brown split-half
      reliability, the ceiling of ``r²``): ``r / sqrt(c)``.
    - ``"r2/c"``: a variance explained (R² or r²) divided by the explainable variance ``c``:
      ``r2 / c``.

    Channels with a ceiling below ``floor`` give NaN.

    Parameters
    ----------
    scores : array of shape (n_channels,)
    ceiling : array of shape (n_channels,)
    convention : {"r/sqrt(c)", "r2/c"}
    floor : float

    Returns
    -------
    array of shape (n_channels,)

    Examples
    --------
    >>> normalize_scores([0.3], [0.36], convention="r/sqrt(c)")
    array([0.5])
    """
    check_option("convention", convention, ["r/sqrt(c)", "r2/c"])
    s = np.asarray(to_numpy(scores), dtype=np.float64)
    c = np.broadcast_to(np.asarray(to_numpy(ceiling), dtype=np.float64), s.shape)
    ok = c > floor
    with np.errstate(invalid="ignore", divide="ignore"):
        if convention == "r/sqrt(c)":
            return np.where(ok, s / np.sqrt(np.where(ok, c, 1)), np.nan)
        return np.where(ok, s / np.where(ok, c, 1), np.nan)


def noise_ceiling(brain: Any, *, by: str = "stimulus_id", method: str = "split_half", **kwargs: Any) -> np.ndarray:
    """Per-channel noise ceiling of a BrainData with repeated stimuli.

    Parameters
    ----------
    brain : BrainData
        Samples table with a ``by`` column (repeated ids).
    by : str
    method : {"split_half", "explainable_variance"}
        ``"split_half"``: :func:`split_half_reliability` (a correlation ceiling, use
        ``convention="r/sqrt(c)"``); ``"explainable_variance"``: :func:`explainable_variance`
        on the stimuli shown the most often, each repeat in order of appearance (use
        ``convention="r2/c"``).
    **kwargs
        Passed to the underlying function.

    Returns
    -------
    array of shape (n_channels,)

    Examples
    --------
    >>> from brainalign import BrainData
    >>> rng = np.random.default_rng(0)
    >>> s = rng.standard_normal((10, 2)); data = np.tile(s, (3, 1)) + 0.1 * rng.standard_normal((30, 2))
    >>> bd = BrainData(data, samples={"stimulus_id": np.tile(np.arange(10), 3)})
    >>> noise_ceiling(bd, method="explainable_variance").round(1)
    array([1., 1.])
    """
    check_option("method", method, ["split_half", "explainable_variance"])
    if by not in brain.samples.columns:
        raise KeyError(f"The samples table has no {by!r} column (columns: {list(brain.samples.columns)}).")
    data = np.asarray(brain.data)
    if data.ndim != 2:
        raise ValueError(f"noise_ceiling needs 2-D data (n_samples, n_channels); got {data.shape}.")
    ids = brain.samples[by].to_numpy()
    if method == "split_half":
        return split_half_reliability(data, ids, **kwargs)
    codes, _ = pd.factorize(ids)
    counts = np.bincount(codes)
    n_rep = int(counts.max())
    stims = np.flatnonzero(counts == n_rep)
    if n_rep < 2 or len(stims) < 2:
        raise ValueError(f"explainable_variance needs at least 2 stimuli with repeats; the most repeated stimuli "
                         f"({len(stims)}) are shown {n_rep} times.")
    reps = np.stack([data[np.flatnonzero(codes == k)] for k in stims], axis=1)  # (n_rep, n_stim, n_channels)
    return explainable_variance(reps, **kwargs)
