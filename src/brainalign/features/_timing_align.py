"""align_to: the one path from Features to a design matrix (public through ``features.timing``)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .._utils import Bunch, as_list, check_option
from ._timing_delays import delay_steps, make_delays
from ._timing_resample import lanczos_resample

__all__ = ["align_to"]

_ZSCORE = {False: (False, False), None: (False, False), True: (True, True), "both": (True, True),
           "features": (True, False), "responses": (False, True)}


def align_to(features: Any, brain: Any, *, layer: Any = None, events: Any = None, method: str = "lanczos",
             delays: Any = None, lags: Any = None, trim: Any = 0, zscore: Any = False, return_y: bool = False,
             missing: str = "error", window: int = 3, cutoff: float | None = None, normalize: str | None = None,
             time_offset: float = 0.0) -> Bunch:
    """The design matrix of ``brain`` from ``features``: one path for event and continuous designs.

    Three timelines, one result:

    Event designs (one item per sample)
        ``brain.samples`` has a ``stimulus_id`` column: row ``i`` is the features of the
        item shown at sample ``i`` (repetitions repeat the row). Samples whose id is
        missing (NaN / None / "") or not among the features raise a KeyError listing them,
        unless ``missing="zeros"``, which gives them rows of zeros (e.g. rest periods).
        With ``method="sum"`` / ``"mean"`` and a ``stimulus_ids`` column (the tuple of every
        stimulus of a volume, as :func:`~brainalign.datasets.load_fmri` writes it), every
        stimulus of a sample counts: row ``i`` is the sum / mean of their features.
    Timed events (several items per sample)
        ``events`` is a table of timed items (``onset`` in s, ``stimulus_id``, optional
        ``run`` and ``duration``), e.g. all the events of a volume when onsets coincide: each
        event brings the features of its ``stimulus_id`` and they are put on the sample grid
        with ``method`` (``"sum"`` adds the features of the events within a sample).
    Continuous designs (many timed items per sample)
        The features carry onsets (``features.item_table["onset"]``: words, phonemes, video
        frames): they are put on the sample grid with ``method``.

    For timed items the recording needs ``tr`` / ``sfreq``; sample times are
    ``samples["onset"]`` when present, else ``time_offset + arange(n) / sfreq`` per run.
    Items go to runs by their ``run`` column; without one, by time when the samples carry
    onsets on one clock (a single run takes every item; an item in no run's span raises).
    Items may start before the first sample of their run (volumes trimmed before loading, as
    in ds003020): they reach the first samples through the Lanczos kernel and are left out of
    sum / mean bins (with a warning). Items after the end of their run raise, and so does a
    run whose items all precede it. Then, in this order: trim, z-score
    (statistics over the kept samples of each run), delay within runs (delayed rows may
    see the features of trimmed samples), drop the trimmed samples.

    Parameters
    ----------
    features : Features
    brain : BrainData
    layer : str, int or list, optional
        Layer(s) to use; None takes every layer. Several layers are stacked side by side, one
        band per layer.
    events : DataFrame, optional
        Timed events with columns ``onset`` (s), ``stimulus_id`` (an item of ``features``),
        and optional ``run`` and ``duration`` (s). Takes precedence over ``stimulus_id`` in
        ``brain.samples``.
    method : {"lanczos", "sum", "mean"}
        How timed items become one row per sample. ``"lanczos"`` (the default, as in fMRI
        language encoding, Huth et al. 2016): :func:`lanczos_resample` onto the sample times.
        ``"sum"`` / ``"mean"``: the sum / mean of the features of the items whose onset falls
        in the sample's bin ``[t_j, t_{j+1})`` (rows of zeros for empty bins), or of the
        stimuli listed in ``samples["stimulus_ids"]`` for event designs.
    delays : sequence of int, optional
        FIR delays in samples (e.g. ``[1, 2, 3, 4]`` TRs), within runs (:func:`make_delays`).
    lags : sequence of float, optional
        Delays in seconds (M/EEG), converted with ``brain.sfreq``; whole samples only.
    trim : int or (int, int)
        Samples dropped at the start (and end, with a pair) of every run, e.g. the first
        volumes before the BOLD signal is steady.
    zscore : bool or {"features", "responses", "both"}
        Z-score each column per run (over the kept samples): the features (before delaying),
        the responses (``Y``), or both (``True``). A column constant within a run becomes 0.
    return_y : bool
        Also return the responses of the kept samples, ``brain.data[keep]``.
    missing : {"error", "zeros"}
        Samples or events whose stimulus is not among the features: raise, or rows of zeros
        (a missing event contributes nothing).
    window, cutoff, normalize
        Passed to :func:`lanczos_resample` (``method="lanczos"``).
    time_offset : float
        Time of the first sample of each run (s) when ``samples`` has no ``onset``.

    Returns
    -------
    Bunch with
        X : array of shape (n_kept, n_columns)
            The design: for each layer (in order) its features, delay-major when delayed
            (column ``k * n_features + j`` of a layer is feature ``j`` at delay ``k``).
        columns : DataFrame with one row per column of ``X``
            ``layer``, ``feature`` (index within the layer), ``delay`` (samples; 0 when not
            delayed) and ``lag`` (s; NaN without a sampling rate).
        bands : dict layer -> slice
            The columns of each layer, for ``BandedRidgeCV(bands=...)`` or to score each layer
            alone.
        groups : array of shape (n_kept,)
            Run of every kept sample (for run-aware cross-validation).
        keep : bool array of shape (n_samples,)
            The samples of ``brain`` that were kept (not trimmed).
        samples : DataFrame
            ``brain.samples`` of the kept samples.
        Y : array of shape (n_kept, n_channels[, n_times]) or None
            The responses (z-scored per run with ``zscore``), when ``return_y``.

    Examples
    --------
    >>> from brainalign import BrainData, Features
    >>> f = Features({"l0": np.eye(2)}, items=["a", "b"])
    >>> b = BrainData(np.zeros((3, 1)), samples={"stimulus_id": ["b", "a", "b"]})
    >>> align_to(f, b, layer="l0").X
    array([[0., 1.],
           [1., 0.],
           [0., 1.]])
    """
    check_option("missing", missing, ["error", "zeros"])
    check_option("method", method, ["lanczos", "sum", "mean"])
    if not isinstance(zscore, (bool, str, type(None))) or zscore not in _ZSCORE:
        check_option("zscore", zscore, list(_ZSCORE))
    zs_features, zs_responses = _ZSCORE[zscore]
    if delays is not None and lags is not None:
        raise ValueError("Give delays= (samples) or lags= (seconds), not both.")
    if lags is not None and not brain.sfreq:
        raise ValueError("lags= (seconds) needs a recording with sfreq or tr; use delays= in samples.")
    steps = None
    if delays is not None or lags is not None:
        steps = delay_steps(delays, lags, brain.sfreq if lags is not None else None)
    names = features.layer_names if layer is None else [features._check_layer(n) for n in as_list(layer)]
    samples = brain.samples
    n = brain.n_samples
    runs = _runs(samples, n)
    keep = _trim_mask(trim, runs)

    if events is not None:
        items = _event_items(features, events, missing)
        designs = _timed_design(features, brain, names, items, runs, method=method, window=window, cutoff=cutoff,
                                normalize=normalize, time_offset=time_offset)
    elif method != "lanczos" and "stimulus_ids" in samples.columns:
        designs = _several_per_sample(features, samples["stimulus_ids"], names, missing, mean=method == "mean")
    elif "stimulus_id" in samples.columns:
        rows = _event_rows(features, samples["stimulus_id"], missing)
        designs = {}
        for name in names:
            F = np.asarray(features[name]).reshape(features.n_items, -1)
            X = np.zeros((len(rows), F.shape[1]), dtype=np.result_type(F.dtype, np.float32))
            ok = rows >= 0
            X[ok] = F[rows[ok]]
            designs[name] = X
    else:
        items = _feature_items(features)
        designs = _timed_design(features, brain, names, items, runs, method=method, window=window, cutoff=cutoff,
                                normalize=normalize, time_offset=time_offset)

    if zs_features:
        designs = {name: _zscore_runs(X, runs, keep) for name, X in designs.items()}
    parts, bands, col_tables, start = [], {}, [], 0
    for name in names:
        X = designs[name]
        n_feat = X.shape[1]
        if steps is not None:
            X = make_delays(X, steps, groups=runs)
        parts.append(X[keep])
        width = X.shape[1]
        bands[name] = slice(start, start + width)
        start += width
        d = steps if steps is not None else np.zeros(1, dtype=int)
        col_tables.append(pd.DataFrame({"layer": name, "feature": np.tile(np.arange(n_feat), len(d)),
                                        "delay": np.repeat(d, n_feat)}))
    X = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    columns = pd.concat(col_tables, ignore_index=True)
    columns["lag"] = columns["delay"] / brain.sfreq if brain.sfreq else np.nan
    Y = None
    if return_y:
        Y = np.array(brain.data[keep], dtype=np.result_type(brain.data.dtype, np.float32))
        if zs_responses:
            Y = _zscore_runs(Y, runs[keep], np.ones(len(Y), dtype=bool))
    return Bunch(X=X, columns=columns, bands=bands, groups=runs[keep], keep=keep,
                 samples=samples[keep].reset_index(drop=True), Y=Y)


# --------------------------------------------------------------------------- helpers
def _runs(table: pd.DataFrame | None, n: int) -> np.ndarray:
    if table is not None and "run" in table.columns:
        return table["run"].astype(str).to_numpy()
    return np.full(n, "0", dtype=object)


def _trim_mask(trim: Any, runs: np.ndarray) -> np.ndarray:
    pair = tuple(trim) if isinstance(trim, (tuple, list)) else (trim, 0)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
                                 for v in pair):
        raise ValueError(f"trim must be a number of samples >= 0 or a pair (start, end) of them; got {trim!r}.")
    start, end = int(pair[0]), int(pair[1])
    keep = np.ones(len(runs), dtype=bool)
    if start == 0 and end == 0:
        return keep
    for run in pd.unique(runs):
        pos = np.flatnonzero(runs == run)
        if len(pos) <= start + end:
            raise ValueError(f"trim={trim!r} removes all {len(pos)} samples of run {run!r}; trim fewer samples "
                             "or drop that run.")
        keep[pos[:start]] = False
        if end:
            keep[pos[len(pos) - end:]] = False
    return keep


def _zscore_runs(X: np.ndarray, runs: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Z-score every column within each run, with the mean and sd of the run's kept samples (constant -> 0)."""
    out = np.array(X, dtype=np.result_type(X.dtype, np.float32))
    for run in pd.unique(runs):
        rows = runs == run
        ref = out[rows & keep]
        mu, sd = ref.mean(0), ref.std(0)
        ok = sd > 0
        out[rows] = np.where(ok, (out[rows] - mu) / np.where(ok, sd, 1.0), 0.0)
    return out


def _event_rows(features, ids: pd.Series, missing: str) -> np.ndarray:
    index = pd.Index(pd.Series(features.items, dtype=object).astype(str))
    null = ids.isna().to_numpy() | (ids.astype(str) == "").to_numpy()
    rows = index.get_indexer(ids.astype(str))
    rows[null] = -1
    unknown = (rows < 0) & ~null
    if missing == "error" and (null.any() or unknown.any()):
        bad = pd.unique(ids[unknown].astype(str))
        raise KeyError(
            f"{int(null.sum())} samples have no stimulus_id and {int(unknown.sum())} samples name stimuli "
            f"that are not in the features ({list(bad[:10])}); features have {features.n_items} items "
            f"({features.items[:5]}...). Pass missing='zeros' to give those samples rows of zeros "
            "(e.g. rest), or extract features for these stimuli."
        )
    return rows


def _several_per_sample(features, ids: pd.Series, names, missing: str, *, mean: bool) -> dict:
    """Event designs with a tuple of stimulus ids per sample (``samples['stimulus_ids']``): sum / mean of their rows."""
    from scipy import sparse

    lists = [() if v is None or (not isinstance(v, (tuple, list, np.ndarray)) and pd.isna(v))
             else ((v,) if isinstance(v, str) else tuple(v)) for v in ids]
    sample_of = np.repeat(np.arange(len(lists)), [len(v) for v in lists])
    flat = pd.Series([str(x) for v in lists for x in v], dtype=object)
    index = pd.Index(pd.Series(features.items, dtype=object).astype(str))
    rows = index.get_indexer(flat) if len(flat) else np.zeros(0, dtype=int)
    empty = np.array([len(v) == 0 for v in lists])
    unknown = rows < 0
    if missing == "error" and (empty.any() or unknown.any()):
        bad = pd.unique(flat[unknown])
        raise KeyError(
            f"{int(empty.sum())} samples list no stimulus in stimulus_ids and {int(unknown.sum())} listed stimuli are "
            f"not in the features ({list(bad[:10])}); features have {features.n_items} items. Pass missing='zeros' "
            "to give samples without a known stimulus rows of zeros (e.g. rest), or extract features for them."
        )
    ok = ~unknown
    S = sparse.csr_matrix((np.ones(int(ok.sum())), (sample_of[ok], rows[ok])), shape=(len(lists), features.n_items))
    if mean:
        counts = np.asarray(S.sum(1)).ravel()
        S = sparse.diags(np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)) @ S
    return {name: np.asarray(S @ np.asarray(features[name]).reshape(features.n_items, -1), dtype=np.float64)
            for name in names}


def _feature_items(features) -> pd.DataFrame:
    """The features' own items as timed items (continuous designs)."""
    table = features.item_table
    if table is None or "onset" not in table.columns:
        raise ValueError(
            "The recording has no stimulus_id column (so it is continuous) but the features carry no onsets; "
            "extract features from Stimuli with an onset column (e.g. Stimuli.from_words), pass events= (a table "
            "of onset and stimulus_id), or add a stimulus_id column to brain.samples for an event design."
        )
    onset = table["onset"].to_numpy(float)
    dur = np.nan_to_num(table["duration"].to_numpy(float)) if "duration" in table.columns else np.zeros(len(onset))
    return pd.DataFrame({"onset": onset, "end": onset + dur, "label": [str(i) for i in features.items],
                         "row": np.arange(features.n_items),
                         "run": table["run"].astype(str).to_numpy() if "run" in table.columns else None})


def _event_items(features, events: Any, missing: str) -> pd.DataFrame:
    """A table of timed events (onset, stimulus_id[, run, duration]) as timed items."""
    ev = pd.DataFrame(events)
    need = [c for c in ("onset", "stimulus_id") if c not in ev.columns]
    if need:
        raise ValueError(f"events lacks the column(s) {need}; it needs onset (s) and stimulus_id (and may have run "
                         f"and duration). Its columns: {list(ev.columns)}.")
    rows = _event_rows(features, ev["stimulus_id"].reset_index(drop=True), missing)
    onset = ev["onset"].to_numpy(float)
    dur = np.nan_to_num(ev["duration"].to_numpy(float)) if "duration" in ev.columns else np.zeros(len(ev))
    return pd.DataFrame({"onset": onset, "end": onset + dur, "label": ev["stimulus_id"].astype(str).to_numpy(),
                         "row": rows, "run": ev["run"].astype(str).to_numpy() if "run" in ev.columns else None})


def _sample_times(brain, runs: np.ndarray, run: str, time_offset: float) -> np.ndarray:
    pos = np.flatnonzero(runs == run)
    if "onset" in brain.samples.columns:
        t = brain.samples["onset"].to_numpy(float)[pos]
        if not np.isfinite(t).all():
            raise ValueError(f"Run {run!r}: brain.samples['onset'] has {int((~np.isfinite(t)).sum())} NaN/inf values.")
        bad = np.flatnonzero(np.diff(t) <= 0)
        if len(bad):
            raise ValueError(f"Run {run!r}: the sample onsets are not increasing (sample {int(pos[bad[0] + 1])} at "
                             f"{t[bad[0] + 1]:g} s follows {t[bad[0]]:g} s); sort the samples by time within each run.")
        return t
    return time_offset + np.arange(len(pos)) / brain.sfreq


def _assign_runs(items: pd.DataFrame, runs: np.ndarray, spans: dict) -> np.ndarray:
    b_set = list(pd.unique(runs))
    if items["run"].notna().all():
        f_set = list(pd.unique(items["run"]))
        if set(b_set) != set(f_set):
            raise ValueError(
                f"The runs do not match: the recording has runs {b_set}, the items have runs {f_set} "
                f"(only in recording: {sorted(set(b_set) - set(f_set))}, only in items: "
                f"{sorted(set(f_set) - set(b_set))}). Select matching runs first."
            )
        return items["run"].to_numpy()
    if len(b_set) == 1:
        return np.full(len(items), b_set[0], dtype=object)
    if spans is None:
        raise ValueError(
            f"The items carry no run column and the recording has {len(b_set)} runs {b_set[:6]} whose sample times "
            "restart in every run (no 'onset' column in brain.samples); add a run column to the items "
            "(features.item_table or events) so that each item goes to its run."
        )
    out = np.full(len(items), None, dtype=object)
    hits = np.zeros(len(items), dtype=int)
    for run, (lo, hi) in spans.items():
        inside = (items["onset"].to_numpy() >= lo) & (items["onset"].to_numpy() < hi)
        out[inside] = run
        hits += inside
    if (hits > 1).any():
        raise ValueError(f"{int((hits > 1).sum())} items fall in the time span of several runs (the runs' sample "
                         "onsets overlap); add a run column to the items.")
    lost = np.flatnonzero(hits == 0)
    if len(lost):
        shown = ", ".join(f"{items['label'].iat[i]!r} at {items['onset'].iat[i]:g} s" for i in lost[:5])
        span_txt = ", ".join(f"{r!r}: {lo:g}-{hi:g} s" for r, (lo, hi) in list(spans.items())[:6])
        raise ValueError(f"{len(lost)} of {len(items)} items fall outside every run's time span ({shown}"
                         f"{', ...' if len(lost) > 5 else ''}); runs cover {span_txt}. Check the onsets' clock, "
                         "the TR / sampling rate, or drop those items.")
    return out


def _timed_design(features, brain, names, items: pd.DataFrame, runs: np.ndarray, *, method, window, cutoff,
                  normalize, time_offset) -> dict:
    """Timed items (onsets) on the sample grid of every run, by Lanczos resampling or binning."""
    if not brain.sfreq:
        raise ValueError("Timed items need the recording's tr or sfreq; build BrainData with tr= or sfreq=.")
    if brain.data.ndim == 3:
        raise ValueError("Continuous alignment needs continuous data (n_samples, n_channels), not epochs.")
    if not np.isfinite(items["onset"].to_numpy()).all():
        raise ValueError(f"{int((~np.isfinite(items['onset'].to_numpy())).sum())} items have a NaN/inf onset; "
                         "every timed item needs an onset in seconds.")
    step = 1.0 / brain.sfreq
    times = {run: _sample_times(brain, runs, run, time_offset) for run in pd.unique(runs)}
    lead = step if method == "lanczos" else 0.0  # Lanczos reaches one sample before the first one
    spans = ({run: (t[0] - lead, t[-1] + step) for run, t in times.items()}
             if "onset" in brain.samples.columns else None)
    item_runs = _assign_runs(items, runs, spans)
    flat = {name: np.asarray(features[name]).reshape(features.n_items, -1) for name in names}
    out = {name: np.zeros((brain.n_samples, F.shape[1])) for name, F in flat.items()}
    empty = []
    for run, t in times.items():
        pos = np.flatnonzero(runs == run)
        sel = np.flatnonzero(item_runs == run)
        run_items = items.iloc[sel]
        onsets = run_items["onset"].to_numpy()
        bad = np.flatnonzero(np.diff(onsets) < 0)
        if len(bad):
            i = bad[0]
            raise ValueError(
                f"Run {run!r}: the item onsets are not in time order: {run_items['label'].iat[i + 1]!r} at "
                f"{onsets[i + 1]:g} s comes after {run_items['label'].iat[i]!r} at {onsets[i]:g} s. Sort the items by "
                "onset (words in the order they were heard)."
            )
        t_end = t[-1] + step
        ends = run_items["end"].to_numpy()
        late = ends > t_end + 1e-9
        if method != "lanczos":
            late |= onsets >= t_end  # a bin holds onsets in [t_j, t_j + step)
        where = (f"the recording, which covers {t[0]:g}-{t_end:g} s ({len(t)} samples at {step:g} s)")
        if late.any():
            idx = np.flatnonzero(late)
            shown = ", ".join(f"{run_items['label'].iat[i]!r} at {onsets[i]:g} s" for i in idx[:5])
            raise ValueError(
                f"Run {run!r}: {len(idx)} of {len(onsets)} items lie after the end of {where}: "
                f"{shown}{', ...' if len(idx) > 5 else ''} (the items span {onsets.min():g}-{ends.max():g} s). Check "
                "that the features and the recording belong to the same run, the TR / sampling rate, and time_offset."
            )
        early = onsets < t[0] - 1e-9
        if len(onsets) and early.all():
            raise ValueError(
                f"Run {run!r}: all {len(onsets)} items start before {where} (the items span {onsets.min():g}-"
                f"{ends.max():g} s): none of them falls in it. Check that the onsets and brain.samples['onset'] use "
                "one clock, the run labels, and time_offset."
            )
        if method != "lanczos" and early.any():
            warnings.warn(
                f"Run {run!r}: {int(early.sum())} of {len(onsets)} items start before its first sample ({t[0]:g} s; "
                "volumes trimmed before loading?) and fall in no bin: they are left out.", stacklevel=3,
            )
        rows = run_items["row"].to_numpy()
        use = rows >= 0
        if not use.any():
            empty.append(run)
            continue
        for name, F in flat.items():
            Fi = F[rows[use]]
            if method == "lanczos":
                out[name][pos] = lanczos_resample(Fi, onsets[use], t, window=window, cutoff=cutoff, normalize=normalize)
            else:
                out[name][pos] = _bin_sum(Fi, onsets[use], t, mean=method == "mean")
    if empty:
        warnings.warn(f"Runs {empty[:10]} have no items: their rows of the design are zeros.", stacklevel=3)
    return out


def _bin_sum(F: np.ndarray, onsets: np.ndarray, t: np.ndarray, *, mean: bool) -> np.ndarray:
    """Sum (or mean) of the rows of ``F`` whose onset falls in each bin ``[t_j, t_{j+1})`` (onsets sorted)."""
    out = np.zeros((len(t), F.shape[1]))
    bins = np.searchsorted(t, onsets, side="right") - 1
    inside = bins >= 0  # items before the first sample fall in no bin (the caller warns)
    F, bins = F[inside], np.minimum(bins[inside], len(t) - 1)
    if len(bins) == 0:
        return out
    counts = np.bincount(bins, minlength=len(t))
    nz = np.flatnonzero(counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nz]
    out[nz] = np.add.reduceat(F, starts, axis=0)
    if mean:
        out[nz] /= counts[nz][:, None]
    return out
