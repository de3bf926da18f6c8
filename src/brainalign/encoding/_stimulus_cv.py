"""Outer folds that hold out stimuli, and the check that no test stimulus is also trained on.

In static and repeated designs every run holds every stimulus, so leaving runs out trains
on the very stimuli it tests: a model with enough features memorizes each stimulus's
response and "predicts" the held-out run without generalizing (random features reach a
large fraction of the noise ceiling). :func:`stimulus_splits` holds out *stimuli* instead
(every presentation of a held-out stimulus is tested, none is trained on) and, in time
series, leaves a gap around the held-out samples, through which a held-out stimulus would
otherwise leak into the training set via the haemodynamic response / FIR delays.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["stimulus_splits", "check_shared_stimuli"]


def _labels(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=object).reshape(-1)
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} values but there are {n} samples; give one label per sample.")
    out = np.empty(n, dtype=object)
    out[:] = [None if pd.isna(v) else v for v in arr]
    return out


def _unit_labels(stim: np.ndarray, runs: np.ndarray) -> tuple[np.ndarray, str]:
    """The label that is held out as a whole: stimulus (carried forward over unlabelled samples
    of a run), or the run itself when no stimulus occurs in two runs."""
    units = np.empty(len(stim), dtype=object)
    for run in pd.unique(runs):
        idx = np.flatnonzero(runs == run)
        last = ("__before_first_stimulus__", run)
        for i in idx:  # a sample without a stimulus still carries the response to the previous one
            if stim[i] is not None:
                last = ("stimulus", str(stim[i]))
            units[i] = last
    labelled = stim != None  # noqa: E711 (object array)
    per_stim = pd.Series(runs[labelled]).groupby(pd.Series(stim[labelled]).astype(str)).nunique()
    if len(pd.unique(runs)) >= 2 and len(per_stim) and (per_stim <= 1).all():
        return np.array([("run", r) for r in runs], dtype=object), "run"
    return units, "stimulus"


def stimulus_splits(stimulus_ids: Any, *, runs: Any = None, n_splits: int = 5,
                    gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds that hold out whole stimuli (and, in time series, a gap around them).

    Each stimulus is tested in exactly one fold, with all its presentations, and never
    trained on in that fold. Samples without a stimulus (``None`` / NaN, e.g. rest volumes)
    belong to the last stimulus before them in the same run (their response still carries
    it); those before the first stimulus of a run form a group of their own. When no
    stimulus occurs in two runs (e.g. each run is a different story), whole runs are held
    out instead, which is then the same thing.

    Parameters
    ----------
    stimulus_ids : array of shape (n_samples,)
        Stimulus of every sample (``None`` / NaN where there is none).
    runs : array of shape (n_samples,), optional
        Run of every sample; samples of a run are in time order. Default: one run.
    n_splits : int
        Number of folds (at most the number of held-out groups); stimuli are spread over
        the folds by :class:`sklearn.model_selection.GroupKFold`.
    gap : int
        In time series, training samples closer than ``gap + 1`` samples (same run) to a
        test sample are dropped from that fold's training set. Set it to the longest FIR
        delay (in samples): with delays, the design rows of the samples that follow a
        held-out block contain that block's features, and their responses its haemodynamic
        response.

    Returns
    -------
    list of (train_indices, test_indices)
        Test sets partition the samples; training sets are their complements minus the gaps.

    Examples
    --------
    >>> ids = ["a", "b", "c", "d"] * 3
    >>> folds = stimulus_splits(ids, runs=[0] * 4 + [1] * 4 + [2] * 4, n_splits=2)
    >>> sorted({ids[i] for i in folds[0][1]}), sorted({ids[i] for i in folds[0][0]})
    (['b', 'd'], ['a', 'c'])
    """
    from sklearn.model_selection import GroupKFold

    stim = np.asarray(stimulus_ids, dtype=object).reshape(-1)
    n = len(stim)
    stim = _labels(stim, n, "stimulus_ids")
    runs_arr = np.zeros(n, dtype=object) if runs is None else _labels(runs, n, "runs")
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}.")
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"gap must be a non-negative integer (samples), got {gap!r}.")
    if all(s is None for s in stim):
        raise ValueError("stimulus_ids holds no stimulus (all values are missing): nothing to hold out.")
    units, kind = _unit_labels(stim, runs_arr)
    codes = pd.factorize(pd.Series([repr(u) for u in units]))[0]
    n_groups = int(codes.max()) + 1
    if n_groups < 2:
        raise ValueError(
            f"Holding out stimuli needs at least 2 distinct stimuli (or runs); the samples have {n_groups} "
            f"{'run' if kind == 'run' else 'stimulus'} group."
        )
    k = min(int(n_splits), n_groups)
    splits = []
    position = np.zeros(n, dtype=np.int64)
    for run in pd.unique(runs_arr):
        idx = np.flatnonzero(runs_arr == run)
        position[idx] = np.arange(len(idx))
    for fold, (_, test) in enumerate(GroupKFold(n_splits=k).split(np.zeros(n), groups=codes)):
        is_test = np.zeros(n, bool)
        is_test[test] = True
        train_mask = ~is_test
        if gap and kind == "stimulus":
            near = np.zeros(n, bool)
            for run in pd.unique(runs_arr):
                idx = np.flatnonzero(runs_arr == run)
                g = int(gap)
                counts = np.concatenate([[0], np.cumsum(np.pad(is_test[idx], g).astype(np.int64))])
                near[idx] = (counts[2 * g + 1:] - counts[:len(idx)]) > 0  # a test sample within +-gap
            train_mask &= ~near
        train = np.flatnonzero(train_mask)
        if len(train) < 2 or len(test) < 2:
            raise ValueError(
                f"Stimulus fold {fold} has {len(train)} training and {len(test)} test samples (gap={gap}); every "
                "fold needs at least 2 of each. Use a smaller gap or fewer folds (n_splits)."
            )
        splits.append((train, np.sort(test)))
    return splits


def check_shared_stimuli(splits: Any, stimulus_ids: Any, *, shared_stimuli: str = "raise",
                         where: str = "outer_cv") -> list[int]:
    """Raise (or warn) when a test fold holds a stimulus that its training set also holds.

    Parameters
    ----------
    splits : list of (train_indices, test_indices)
    stimulus_ids : array of shape (n_samples,)
        ``None`` / NaN where a sample has no stimulus (never counted as shared).
    shared_stimuli : {"raise", "warn"}
        ``"warn"`` keeps such folds (e.g. to measure the reliability of stimulus-specific
        responses, which is not generalization) with a warning.
    where : str
        Name of the CV in the message.

    Returns
    -------
    list of int
        The folds that share stimuli (empty when none do).
    """
    if shared_stimuli not in ("raise", "warn"):
        raise ValueError(f"Invalid value for the 'shared_stimuli' parameter: {shared_stimuli!r}. "
                         "Allowed values are 'raise' and 'warn'.")
    stim = np.asarray(stimulus_ids, dtype=object).reshape(-1)
    stim = _labels(stim, len(stim), "stimulus_ids")
    bad, examples, n_shared = [], [], 0
    for k, (train, test) in enumerate(splits):
        tested = {str(s) for s in stim[np.asarray(test)] if s is not None}
        trained = {str(s) for s in stim[np.asarray(train)] if s is not None}
        shared = sorted(tested & trained)
        if shared:
            bad.append(k)
            n_shared = max(n_shared, len(shared))
            examples = examples or shared[:3]
    if bad:
        n_stim = len({str(s) for s in stim if s is not None})
        msg = (f"{where}: {len(bad)} of {len(splits)} folds test stimuli that their training set also holds (up to "
               f"{n_shared} of {n_stim} stimuli, e.g. {examples}), so the score would reward memorizing each "
               "stimulus's response, not generalizing to new stimuli. Hold stimuli out (outer_cv='stimulus'), "
               "or pass shared_stimuli='warn' to keep these folds knowingly.")
        if shared_stimuli == "raise":
            raise ValueError(msg)
        warnings.warn(msg, stacklevel=3)
    return bad
