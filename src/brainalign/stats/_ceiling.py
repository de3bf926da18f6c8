"""Per-channel noise ceilings from repeated stimuli: split-half reliability, explainable
variance, the single-presentation ceiling; and :func:`channel_ceiling` on a BrainData.

Every ceiling has a **unit**: the score it bounds is computed either against single
presentations (one trial, one run of a story) or against the mean of ``n`` repeats. A
ceiling in one unit must not normalize a score in the other: the mean of ``n`` repeats is
less noisy, so its ceiling is higher (``S / (S + N / n)`` rather than ``S / (S + N)`` for
signal variance ``S`` and noise variance ``N``).

==================================  ============================  =======================  =========================
function                            quantity                      unit                     normalize with
==================================  ============================  =======================  =========================
:func:`split_half_reliability`      reliability (a correlation)   mean of all n repeats    ``"r/sqrt(c)"`` (or
                                    of the repeat mean            (n / 2 without           Brain-Score's ``"r/c"``)
                                                                  Spearman–Brown)
:func:`explainable_variance`        fraction of variance          single presentation      ``"r2/c"`` (r² or R²),
                                    (R²-like)                                              ``"r/sqrt(c)"`` (r)
:func:`single_presentation_ceiling` best attainable r             single presentation      ``"r/c"``
:func:`inter_subject_ceiling`       best attainable r             single subject, single   ``"r/c"``
                                                                  presentation
==================================  ============================  =======================  =========================
"""

from __future__ import annotations

import warnings
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from .._backend import to_numpy
from .._docs import fill_doc
from .._utils import check_option, check_random_state
from ._checks import check_finite_columns, check_int, safe_divide, warn_constant
from ._scores import _pearson

__all__ = ["channel_ceiling", "explainable_variance", "single_presentation_ceiling", "split_half_reliability"]


def _data_and_ids(data: Any, stimulus_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Finite 2-D float data and the integer code of every sample's stimulus (-1: no stimulus)."""
    X = to_numpy(data)
    if X.ndim != 2:
        raise ValueError(f"data must be 2-D (n_samples, n_channels); got shape {X.shape}.")
    ids = np.asarray(stimulus_ids, dtype=object)
    if ids.shape != (X.shape[0],):
        raise ValueError(f"stimulus_ids has {ids.size} labels but data has {X.shape[0]} samples.")
    check_finite_columns(X, "data")
    codes, _ = pd.factorize(pd.Series(ids, dtype=object), use_na_sentinel=True)
    return X.astype(np.float64, copy=False), np.asarray(codes)


@fill_doc
def split_half_reliability(data: Any, stimulus_ids: Any, *, n_splits: int = 100, spearman_brown: bool = True,
                           random_state: Any = 0) -> np.ndarray:
    """Split-half reliability of every channel from repeated presentations.

    For each of ``n_splits`` random splits, the repetitions of every stimulus are divided in
    two halves, averaged within each half, and the two per-stimulus response profiles are
    correlated (Pearson) per channel; the correlations are averaged over splits. With
    ``spearman_brown`` the half-data reliability ``r`` becomes the full-data reliability
    ``2r / (1 + r)``. Stimuli shown once, and samples without a stimulus id (NaN / None),
    are ignored.

    **Unit: the mean of the repeats.** With ``spearman_brown`` (default) this is the
    reliability of the mean of all ``n`` repeats, ``S / (S + N / n)`` for signal variance
    ``S`` and noise variance ``N`` (the quantity of the Natural Scenes Dataset noise ceiling
    ``ncsnr² / (ncsnr² + 1 / n)``); without it, that of the mean of ``n / 2`` repeats. It
    bounds ``r²`` of a model scored against the **repeat-averaged** response: normalize with
    ``normalize_scores(r, reliability, convention="r/sqrt(c)")`` (Schoppe et al. 2016; Hsu et
    al. 2004), or Brain-Score's ``convention="r/c"`` (the reliability itself). For scores
    against single presentations use :func:`single_presentation_ceiling`.

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
        NaN (with a warning) for a channel that is constant over stimuli in a split.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((20, 3)); ids = np.tile(np.arange(20), 4)
    >>> data = np.tile(signal, (4, 1)) + 0.1 * rng.standard_normal((80, 3))
    >>> bool((split_half_reliability(data, ids, n_splits=5) > 0.95).all())
    True
    """
    n_splits = check_int("n_splits", n_splits, min_value=1)
    X, codes = _data_and_ids(data, stimulus_ids)
    counts = np.bincount(codes[codes >= 0]) if (codes >= 0).any() else np.zeros(0, int)
    if counts.size == 0 or counts.max() < 2:
        raise ValueError("No stimulus is repeated: a noise ceiling needs at least 2 presentations of some stimuli.")
    keep = np.flatnonzero(counts >= 2)
    if len(keep) < 3:
        raise ValueError(f"Only {len(keep)} stimuli are repeated; split-half reliability needs at least 3.")
    rows = np.flatnonzero(np.isin(codes, keep))
    sub_codes, Xr = codes[rows], X[rows]
    group_counts = counts[keep]  # stimuli in increasing code order, as the sort below lays them out
    starts = np.r_[0, np.cumsum(group_counts)[:-1]]
    half = group_counts // 2
    rank = np.arange(len(rows)) - np.repeat(starts, group_counts)
    in_a = rank < np.repeat(half, group_counts)
    rng = check_random_state(random_state)
    total, const = np.zeros(X.shape[1]), np.zeros(X.shape[1], dtype=bool)
    for _ in range(n_splits):
        order = np.lexsort((rng.random(len(rows)), sub_codes))  # by stimulus, random order within
        Xs = Xr[order]
        a = np.add.reduceat(Xs[in_a], np.r_[0, np.cumsum(half)[:-1]], axis=0) / half[:, None]
        b = np.add.reduceat(Xs[~in_a], np.r_[0, np.cumsum(group_counts - half)[:-1]], axis=0)
        b /= (group_counts - half)[:, None]
        r, c = _pearson(a, b)
        total += r
        const |= c
    warn_constant(const, "A channel's half-mean response", "the split-half correlation", stacklevel=2)
    r = total / n_splits
    if spearman_brown:
        r = safe_divide(2 * r, 1 + r, where=np.isfinite(r) & (r > -1))
    return r


def explainable_variance(data_repeats: Any, *, bias_correction: bool = True) -> np.ndarray:
    """Fraction of a single presentation's variance that is explainable (stimulus-driven).

    ``data_repeats`` holds ``n_repeats`` presentations of the same ``n_stimuli``, used as
    recorded (z-score each repeat beforehand if that is your convention). Following the Gallant-lab
    definition (Hsu et al. 2004; Sahani & Linden 2003; himalaya / voxelwise tutorials)::

        ev = 1 - mean_r var_s(y_r - mean_r y_r) / mean_r var_s(y_r)

    With ``bias_correction`` the finite number of repeats is corrected for:
    ``ev_c = ev - (1 - ev) / (n_repeats - 1)``, an unbiased estimate of ``S / (S + N)`` for
    signal variance ``S`` and noise variance ``N``.

    **Unit: a single presentation.** The corrected value is the largest R² (or r²) a model
    can reach against **one** presentation; normalize with ``convention="r2/c"`` (or
    ``"r/sqrt(c)"`` for a correlation), and ``sqrt(ev)`` estimates the same quantity as
    :func:`single_presentation_ceiling`. This is **not** the Natural Scenes Dataset noise
    ceiling ``ncsnr² / (ncsnr² + 1 / n)``, which is the explainable fraction of the **mean of
    n trials**, ``S / (S + N / n)``; the two agree only for ``n = 1``. Without
    ``bias_correction`` the value is neither: ``(S + N / n) / (S + N)``.

    Parameters
    ----------
    data_repeats : array of shape (n_repeats, n_stimuli, n_channels)
    bias_correction : bool

    Returns
    -------
    ev : array of shape (n_channels,)
        NaN (with a warning) for a channel that is constant over all its samples.

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
    if R.ndim != 3 or R.shape[0] < 2 or R.shape[1] < 2:
        raise ValueError(f"data_repeats must have shape (n_repeats>=2, n_stimuli>=2, n_channels); got {R.shape}.")
    check_finite_columns(R.reshape(-1, R.shape[-1]), "data_repeats")
    n_rep = R.shape[0]
    residual = R - R.mean(0, keepdims=True)
    total_var = R.var(1).mean(0)
    const = total_var == 0
    ev = 1 - safe_divide(residual.var(1).mean(0), total_var)
    warn_constant(const, "data_repeats", "the explainable variance", stacklevel=2)
    if bias_correction:
        ev = ev - (1 - ev) / (n_rep - 1)
    return ev


def _presentations(codes: np.ndarray, groups: Any) -> np.ndarray:
    """Presentation code of every sample: the k-th occurrence of its stimulus, or its ``groups`` label."""
    if groups is None:
        pres = np.full(len(codes), -1)
        ok = codes >= 0
        pres[ok] = pd.Series(codes[ok]).groupby(codes[ok]).cumcount().to_numpy()
        return pres
    g = np.asarray(groups, dtype=object)
    if g.shape != codes.shape:
        raise ValueError(f"groups has {g.size} labels but data has {codes.size} samples.")
    pres, _ = pd.factorize(pd.Series(g, dtype=object), use_na_sentinel=True)
    return np.asarray(pres)


def _presentation_means(X: np.ndarray, codes: np.ndarray, pres: np.ndarray, p: int, stims: np.ndarray) -> np.ndarray:
    """(len(stims), n_channels) response of each stimulus in presentation ``p`` (mean of its samples there)."""
    rows = np.flatnonzero((pres == p) & np.isin(codes, stims))
    pos = np.searchsorted(stims, codes[rows])
    if len(np.unique(pos)) == len(pos):
        out = np.empty((len(stims), X.shape[1]))
        out[pos] = X[rows]
        return out
    out = np.zeros((len(stims), X.shape[1]))
    np.add.at(out, pos, X[rows])
    return out / np.bincount(pos, minlength=len(stims))[:, None]


@fill_doc
def single_presentation_ceiling(data: Any, stimulus_ids: Any, *, groups: Any = None, max_pairs: int = 45,
                                random_state: Any = 0) -> np.ndarray:
    """Per-channel ceiling of the correlation between a prediction and **single presentations**.

    An encoding score correlates predictions with single presentations (not with the mean
    of the repeats), so its ceiling is that of one presentation: ``sqrt(c1)``, where ``c1``
    is the correlation between two single presentations of the same stimuli. For signal
    plus independent noise, ``c1 = S / (S + N)`` and the best attainable r is ``sqrt(c1)``.
    ``c1`` is computed for pairs of presentations ``(i, j)`` over the stimuli shown in both
    (at least 3), and averaged over pairs; negative ``c1`` gives a ceiling of 0.

    **Unit: a single presentation.** Normalize with ``normalize_scores(r, ceiling,
    convention="r/c")``. ``sqrt(explainable_variance(...))`` estimates the same quantity.

    Parameters
    ----------
    data : array of shape (n_samples, n_channels)
    stimulus_ids : array of shape (n_samples,)
        Samples without a stimulus (NaN / None) are ignored.
    groups : array of shape (n_samples,), optional
        The presentation (repeat, run or session) of every sample: presentations ``i`` and
        ``j`` are two values of ``groups`` (the samples of one stimulus within one group are
        averaged, with a warning). Default: the ``k``-th time a stimulus appears in the data
        is its presentation ``k``.
    max_pairs : int
        With more presentation pairs than this, a fixed random subset of that many is used.
    %(random_state)s
        Chooses that subset.

    Returns
    -------
    ceiling : array of shape (n_channels,)
        NaN (with a warning) for a channel constant over stimuli in a presentation.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((200, 2)); ids = np.tile(np.arange(200), 3)
    >>> data = np.tile(signal, (3, 1)) + rng.standard_normal((600, 2))  # S = N: sqrt(1/2)
    >>> bool(np.all(np.abs(single_presentation_ceiling(data, ids) - 0.707) < 0.05))
    True
    """
    max_pairs = check_int("max_pairs", max_pairs, min_value=1)
    X, codes = _data_and_ids(data, stimulus_ids)
    pres = _presentations(codes, groups)
    valid = (codes >= 0) & (pres >= 0)
    if groups is not None:
        per_cell = pd.Series(1, index=pd.MultiIndex.from_arrays([codes[valid], pres[valid]])).groupby(level=[0, 1]).size()
        if (per_cell > 1).any():
            warnings.warn(f"{int((per_cell > 1).sum())} (stimulus, group) cells hold several samples, which are "
                          "averaged: their presentations are no longer single. Give groups that separate repeats.",
                          UserWarning, stacklevel=2)
    n_pres = int(pres[valid].max()) + 1 if valid.any() else 0
    pairs = list(combinations(range(n_pres), 2))
    if len(pairs) > max_pairs:
        pick = check_random_state(random_state).choice(len(pairs), max_pairs, replace=False)
        pairs = [pairs[k] for k in np.sort(pick)]
    shown = [set(np.unique(codes[valid & (pres == p)]).tolist()) for p in range(n_pres)]
    rel, const = [], np.zeros(X.shape[1], dtype=bool)
    for i, j in pairs:
        stims = np.array(sorted(shown[i] & shown[j]), dtype=np.int64)
        if len(stims) < 3:
            continue
        a = _presentation_means(X, codes, pres, i, stims)
        b = _presentation_means(X, codes, pres, j, stims)
        r, c = _pearson(a, b)
        rel.append(r)
        const |= c
    if not rel:
        raise ValueError("Fewer than 3 stimuli are presented at least twice (in two presentations), so there is "
                         "no noise ceiling; check stimulus_ids (and groups), or record repeats.")
    warn_constant(const, "A channel's response in one presentation", "the ceiling", stacklevel=2)
    return np.sqrt(np.clip(np.mean(rel, axis=0), 0, None))


def channel_ceiling(brain: Any, *, by: str = "stimulus_id", method: str = "split_half", **kwargs: Any) -> np.ndarray:
    """Per-channel noise ceiling of a BrainData with repeated stimuli.

    Samples whose ``by`` value is missing (rest, fixation) are left out.

    Parameters
    ----------
    brain : BrainData
        2-D data and a samples table with a ``by`` column (repeated ids).
    by : str
        The samples column that names the stimulus of every sample.
    method : {"split_half", "single_presentation", "explainable_variance"}
        - ``"split_half"``: :func:`split_half_reliability`, the reliability of the **mean of
          the repeats** (a correlation; normalize r against the repeat mean with
          ``convention="r/sqrt(c)"``);
        - ``"single_presentation"``: :func:`single_presentation_ceiling`, the best r against
          a **single presentation** (normalize with ``convention="r/c"``); ``groups=`` may
          name a samples column (e.g. ``groups="run"``);
        - ``"explainable_variance"``: :func:`explainable_variance` on the stimuli shown the
          most often, each repeat in order of appearance: the explainable fraction of a
          **single presentation**'s variance (normalize R² with ``convention="r2/c"``).
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
    >>> channel_ceiling(bd, method="explainable_variance").round(1)
    array([1., 1.])
    """
    check_option("method", method, ["split_half", "single_presentation", "explainable_variance"])
    if by not in brain.samples.columns:
        raise KeyError(f"The samples table has no {by!r} column (columns: {list(brain.samples.columns)}); "
                       "pass by= to name the column of stimulus ids.")
    data = np.asarray(brain.data)
    if data.ndim != 2:
        raise ValueError(f"channel_ceiling needs 2-D data (n_samples, n_channels); got {data.shape}. Average or "
                         "select a time window of epoched data first.")
    keep = brain.samples[by].notna().to_numpy()
    data, ids = data[keep], brain.samples[by].to_numpy()[keep]
    if method == "split_half":
        return split_half_reliability(data, ids, **kwargs)
    if method == "single_presentation":
        groups = kwargs.pop("groups", None)
        if isinstance(groups, str):
            if groups not in brain.samples.columns:
                raise KeyError(f"groups={groups!r} is not a samples column (columns: {list(brain.samples.columns)}).")
            groups = brain.samples[groups].to_numpy()
        if groups is not None:
            groups = np.asarray(groups)
            groups = groups[keep] if groups.shape == keep.shape else groups
        return single_presentation_ceiling(data, ids, groups=groups, **kwargs)
    codes, _ = pd.factorize(pd.Series(ids, dtype=object))
    counts = np.bincount(codes)
    n_rep = int(counts.max())
    stims = np.flatnonzero(counts == n_rep)
    if n_rep < 2 or len(stims) < 2:
        raise ValueError(f"explainable_variance needs at least 2 stimuli with repeats; the most repeated stimuli "
                         f"({len(stims)}) are shown {n_rep} times.")
    reps = np.stack([data[np.flatnonzero(codes == k)] for k in stims], axis=1)  # (n_rep, n_stim, n_channels)
    return explainable_variance(reps, **kwargs)
