"""Run-aware cross-validation: fold checks and outer leave-runs-out encoding CV."""

from __future__ import annotations

import warnings

from typing import Any

import numpy as np

from .._backend import to_numpy
from .._docs import fill_doc
from .._utils import Bunch, check_finite, progress_bar
from ._params import DEFAULT_ALPHAS

__all__ = ["check_cv", "check_splits", "cross_validate_encoding"]


def check_cv(cv: Any, n_samples: int, groups: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Turn ``cv`` into a list of (train, validation) index pairs, checked.

    Parameters
    ----------
    cv : int, "run" / "loro", scikit-learn splitter, iterable of (train, validation), or None
        An int gives ``KFold(cv)`` (contiguous blocks, no shuffling: time series stay whole)
        or, with ``groups``, ``GroupKFold(cv)`` (whole runs left out). ``"run"`` leaves one
        group (run) out at a time and needs ``groups``. None means 5. Any splitter works,
        including those whose training set is not the complement of the validation set
        (``TimeSeriesSplit``).
    n_samples : int
    groups : array of shape (n_samples,), optional
        Run (or session) label of every sample.

    Returns
    -------
    list of (train_indices, validation_indices)
        Integer arrays; every fold has at least 2 samples in each set, no index outside
        ``0 .. n_samples - 1`` and no sample in both sets (each of these raises a ValueError).

    Examples
    --------
    >>> [len(v) for _, v in check_cv(2, 6)]
    [3, 3]
    """
    return [(tr, va) for tr, va, _ in _check_cv_folds(cv, n_samples, groups)]


def _check_cv_folds(cv: Any, n_samples: int, groups: Any = None) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """:func:`check_cv`, returning :func:`check_splits`' triples (train, validation, complement)."""
    from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut

    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n_samples,):
            raise ValueError(f"groups has shape {groups.shape} but there are {n_samples} samples; give one label per sample.")
    n_groups = len(np.unique(groups)) if groups is not None else None
    if cv is None:
        cv = 5
    if isinstance(cv, str):
        if cv not in ("run", "loro"):
            raise ValueError(f"Invalid value for the 'cv' parameter: {cv!r}. Allowed strings are 'run' and 'loro'; "
                             "or give an int, a scikit-learn splitter or a list of (train, validation) pairs.")
        if groups is None:
            raise ValueError("cv='run' leaves one run out at a time and needs groups (one run label per sample).")
        if n_groups < 2:
            raise ValueError(f"cv='run' needs at least 2 runs; groups has {n_groups}.")
        splits = list(LeaveOneGroupOut().split(np.zeros(n_samples), groups=groups))
    elif isinstance(cv, (int, np.integer)) and not isinstance(cv, (bool, np.bool_)):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds (each fold is held out once), got cv={cv}.")
        if groups is not None:
            if n_groups < 2:
                raise ValueError(f"groups has a single distinct value ({groups[0]!r}): leaving whole groups (runs) "
                                 "out needs at least 2 of them. Give one label per run, or no groups for "
                                 "contiguous K-fold blocks.")
            if n_groups < cv:
                raise ValueError(f"Fewer groups than folds: {n_groups} distinct groups (runs) for cv={cv} folds. "
                                 f"Use cv<={n_groups} or cv='run'.")
            splits = list(GroupKFold(n_splits=int(cv)).split(np.zeros(n_samples), groups=groups))
        else:
            if n_samples < 4:
                raise ValueError(f"{n_samples} samples are too few to cross-validate: the smallest CV (cv=2) needs "
                                 "at least 4 samples (2 per fold).")
            if n_samples < 2 * cv:
                raise ValueError(f"{n_samples} samples are too few for cv={cv} folds: every fold needs at least "
                                 f"2 samples. Use 2 <= cv <= {n_samples // 2}.")
            splits = list(KFold(n_splits=int(cv)).split(np.zeros(n_samples)))
    elif hasattr(cv, "split"):
        splits = list(cv.split(np.zeros(n_samples), groups=groups))
    else:
        splits = cv
    return check_splits(splits, n_samples)


def _as_indices(a: Any, k: int, which: str, n_samples: int) -> np.ndarray:
    arr = np.asarray(to_numpy(a))
    if arr.dtype == bool:
        raise ValueError(f"Fold {k}: the {which} set is a boolean mask; give integer indices instead "
                         "(np.flatnonzero(mask)).")
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"Fold {k}: the {which} set must be a 1-D array of integer sample indices; got "
                         f"dtype {arr.dtype} and shape {arr.shape}.")
    bad = (arr < 0) | (arr >= n_samples)
    if bad.any():
        raise ValueError(f"Fold {k}: {int(bad.sum())} {which} indices are outside 0..{n_samples - 1} "
                         f"(there are {n_samples} samples): {arr[bad][:5].tolist()}. Indices count the rows "
                         "of X as given (negative indices are not allowed).")
    return arr.astype(np.int64, copy=False)


def check_splits(splits: Any, n_samples: int) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Check (train, validation) pairs; return them with a flag "training = complement".

    The flag lets the solvers take training cross-products as "all minus validation"
    (the fast path); any other fold is solved from its own training rows.
    """
    out = []
    for k, pair in enumerate(splits):
        try:
            tr, va = pair
        except (TypeError, ValueError):
            raise ValueError(f"Fold {k} of cv is not a (train, validation) pair of index arrays; got "
                             f"{type(pair).__name__} {str(pair)[:60]}.") from None
        tr = _as_indices(tr, k, "training", n_samples)
        va = _as_indices(va, k, "validation", n_samples)
        if len(tr) < 2 or len(va) < 2:
            raise ValueError(
                f"Fold {k} has {len(tr)} training and {len(va)} validation samples; every fold needs at least 2 "
                "of each (a score needs a variance). Use fewer folds or more samples per run."
            )
        both = np.intersect1d(tr, va)
        if both.size:
            raise ValueError(
                f"Fold {k}: {both.size} samples are in both the training and the validation set "
                f"(first: {both[:5].tolist()}). A held-out score needs disjoint sets; check the (train, "
                "validation) pairs given as cv."
            )
        complement = len(tr) + len(va) == n_samples and np.unique(tr).size == len(tr)
        out.append((tr, va, bool(complement)))
    if not out:
        raise ValueError("The cross-validation gave no folds; give at least one (train, validation) pair.")
    return out


@fill_doc
def cross_validate_encoding(
    X: Any,
    brain: Any,
    *,
    outer_cv: Any = "auto",
    inner_cv: Any = 5,
    alphas: Any = DEFAULT_ALPHAS,
    groups: Any = None,
    stimulus_ids: Any = None,
    stimulus_folds: int = 5,
    gap: int = 0,
    shared_stimuli: str = "raise",
    fit_intercept: bool = True,
    scoring: str = "r2",
    return_predictions: bool = False,
    device: Any = "auto",
    dtype: Any = None,
    n_targets_batch: Any = "auto",
    verbose: bool = False,
) -> Bunch:
    """Outer cross-validation of a ridge encoding model that holds out stimuli, inner alpha search.

    For every outer fold, a :class:`RidgeCV` is fitted on the training samples (alphas
    chosen per target by an inner CV) and scored on the held-out ones. When the stimulus of
    every sample is known, the outer folds hold out *stimuli* (:func:`stimulus_splits`) and
    no test stimulus may be in the training set: in static / repeated designs every run
    holds every stimulus, so leaving runs out would score the memorized response to each
    stimulus rather than a prediction for new stimuli.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Features aligned to the brain samples (e.g. after resampling and delays).
    brain : BrainData or array of shape (n_samples, n_targets)
        With a BrainData, ``groups`` default to ``brain.samples["run"]`` and
        ``stimulus_ids`` to ``brain.samples["stimulus_id"]`` (when those columns exist).
    outer_cv : "auto", "stimulus", "run", int, splitter or iterable of (train, test)
        ``"auto"``: ``"stimulus"`` when the stimuli are known, else ``"run"``.
        ``"stimulus"``: ``stimulus_folds`` folds of whole stimuli (:func:`stimulus_splits`,
        with ``gap``; whole runs when no stimulus occurs in two runs). ``"run"``: leave one
        run out; an int, a splitter or explicit folds as in :func:`check_cv`. The test sets
        must not overlap (every sample is predicted once); training sets need not be complements.
    inner_cv : int, "run", splitter
        Inner folds on the training part for the alpha search. With ``outer_cv="stimulus"``
        an int gives that many folds of whole training stimuli (no gap); otherwise the inner
        folds leave runs out when runs are known.
    %(alphas)s
    groups : array of shape (n_samples,), optional
        Run labels when ``brain`` is an array (samples of a run in time order).
    stimulus_ids : array of shape (n_samples,), optional
        Stimulus of every sample (``None`` / NaN where there is none, e.g. rest).
    stimulus_folds : int
        Number of outer folds with ``outer_cv="stimulus"``.
    gap : int
        Training samples closer than ``gap + 1`` samples (same run) to a test sample are
        dropped (``outer_cv="stimulus"``); set it to the longest FIR delay of ``X``.
    shared_stimuli : {"raise", "warn"}
        What to do when the stimuli are known and an outer test fold shares stimuli with
        its training set (e.g. ``outer_cv="run"`` on repeated stimuli).
    %(fit_intercept)s
    %(scoring)s
    return_predictions : bool
        Also return the held-out predictions, array of shape (n_samples, n_targets) (NaN
        for samples in no test set).
    %(device)s
    %(dtype)s
    %(n_targets_batch)s
    %(verbose)s

    Returns
    -------
    Bunch with ``r`` and ``r2`` (n_targets,) held-out scores (predictions of all outer folds
    concatenated, then scored; ``r_folds`` / ``r2_folds`` (n_outer, n_targets) per fold),
    ``best_alphas`` (n_outer, n_targets), ``splits``, ``outer_cv`` (what was used) and
    optionally ``predictions``, all numpy arrays (the predictions in the working dtype, see
    :class:`RidgeCV`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 4)); Y = X @ rng.standard_normal((4, 3)) + rng.standard_normal((80, 3))
    >>> res = cross_validate_encoding(X, Y, groups=np.repeat([0, 1, 2, 3], 20), inner_cv=3)
    >>> res.r.shape, res.best_alphas.shape
    ((3,), (4, 3))
    """
    from ..stats import pearson_r, r2_score
    from ._sklearn_api import RidgeCV
    from ._stimulus_cv import check_shared_stimuli, stimulus_splits

    if hasattr(brain, "samples") and hasattr(brain, "data"):
        Y = np.asarray(brain.data)
        if Y.ndim != 2:
            raise ValueError(f"cross_validate_encoding needs 2-D brain data (n_samples, n_channels); got {Y.shape}. "
                             "Average or select the time window of epoched data first.")
        if groups is None and "run" in brain.samples.columns:
            groups = brain.samples["run"].to_numpy()
        if stimulus_ids is None and "stimulus_id" in brain.samples.columns:
            stimulus_ids = brain.samples["stimulus_id"].to_numpy()
    else:
        Y = to_numpy(brain)
    Xn = to_numpy(X)
    if Xn.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {Xn.shape}.")
    if Y.ndim == 1:
        Y = Y[:, None]
    if Xn.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y have different numbers of samples: X has {Xn.shape[0]}, Y has {Y.shape[0]}.")
    check_finite(Xn, "X (the features)", hint="Remove or impute them first.")
    check_finite(Y, "Y (the brain data)", hint="Drop or impute those channels first.")
    if stimulus_ids is not None:
        stimulus_ids = np.asarray(stimulus_ids, dtype=object).reshape(-1)
        if len(stimulus_ids) != Xn.shape[0]:
            raise ValueError(f"stimulus_ids has {len(stimulus_ids)} values but there are {Xn.shape[0]} samples.")
    if isinstance(outer_cv, str) and outer_cv == "auto":
        outer_cv = "stimulus" if stimulus_ids is not None else "run"
    by_stimulus = isinstance(outer_cv, str) and outer_cv == "stimulus"
    if by_stimulus:
        if stimulus_ids is None:
            raise ValueError("outer_cv='stimulus' needs the stimulus of every sample: pass stimulus_ids= or a BrainData "
                             "with a 'stimulus_id' samples column.")
        outer = check_cv(stimulus_splits(stimulus_ids, runs=groups, n_splits=stimulus_folds, gap=gap),
                         Xn.shape[0], groups)
    else:
        if outer_cv in ("run", "loro") and groups is None:
            raise ValueError("outer_cv='run' needs run labels: pass a BrainData with a 'run' samples column, or groups=.")
        outer = check_cv(outer_cv, Xn.shape[0], groups)
    if stimulus_ids is not None:
        check_shared_stimuli(outer, stimulus_ids, shared_stimuli=shared_stimuli, where="cross_validate_encoding")
    n, t = Y.shape
    tested_count = np.bincount(np.concatenate([te for _, te in outer]), minlength=n)
    if (tested_count > 1).any():
        twice = np.flatnonzero(tested_count > 1)
        raise ValueError(f"The test sets of outer_cv overlap: {twice.size} samples are tested more than once (first: "
                         f"{twice[:5].tolist()}), so the concatenated predictions would mix folds. Use a partition "
                         "such as 'run', KFold or GroupKFold.")
    r_folds, r2_folds, best = [], [], []
    warned_single_run = False
    preds = None
    for tr, te in progress_bar(outer, verbose=verbose, desc="outer folds"):
        g_tr = None if groups is None else np.asarray(groups)[tr]
        inner, g_inner = inner_cv, g_tr
        if by_stimulus and isinstance(inner_cv, (int, np.integer)) and not isinstance(inner_cv, bool):
            # the alpha search also scores predictions for stimuli it has not seen
            inner, g_inner = stimulus_splits(stimulus_ids[tr], runs=g_tr, n_splits=int(inner_cv)), None
        elif g_tr is not None and isinstance(inner_cv, (int, np.integer)) and len(np.unique(g_tr)) < inner_cv:
            if len(np.unique(g_tr)) >= 2:
                inner = "run"  # fewer training runs than inner folds: leave one run out
            else:  # a single training run: contiguous (unshuffled) K-fold blocks within it
                g_inner = None
                if not warned_single_run:
                    warnings.warn(
                        f"A training set of the outer CV holds a single run, so the inner alpha search uses "
                        f"{inner_cv} contiguous blocks of that run (not whole runs). Record more runs, or pass "
                        "inner_cv=<splitter> to choose yourself.", stacklevel=2)
                    warned_single_run = True
        model = RidgeCV(alphas=alphas, cv=inner, fit_intercept=fit_intercept, scoring=scoring, device=device,
                        dtype=dtype, n_targets_batch=n_targets_batch, verbose=False)
        model.fit(Xn[tr], Y[tr], groups=g_inner)
        pred = model.predict(Xn[te]).reshape(len(te), t)
        if preds is None:
            preds = np.full((n, t), np.nan, dtype=pred.dtype)
        preds[te] = pred
        r_folds.append(pearson_r(Y[te], pred))
        r2_folds.append(r2_score(Y[te], pred))
        best.append(np.broadcast_to(model.best_alphas_, (t,)))
    tested = np.flatnonzero(tested_count)
    out = Bunch(
        r=pearson_r(Y[tested], preds[tested]), r2=r2_score(Y[tested], preds[tested]),
        r_folds=np.stack(r_folds), r2_folds=np.stack(r2_folds), best_alphas=np.stack(best), splits=outer,
        outer_cv="stimulus" if by_stimulus else outer_cv,
    )
    if return_predictions:
        out.predictions = preds
    return out
