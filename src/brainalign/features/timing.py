"""Time alignment of features with recordings: Lanczos resampling, FIR delays, design matrices.

* :func:`lanczos_resample` moves word-rate or frame-rate features onto the fMRI TR grid
  (or any grid) with a Lanczos-windowed sinc low-pass, as in voxelwise language encoding
  (Huth et al., 2016).
* :func:`make_delays` stacks delayed copies of a design matrix (FIR model of the
  hemodynamic response, or M/EEG lags in seconds), zero-padded at run boundaries.
* :func:`align_to` builds the design matrix of a :class:`~brainalign.BrainData` from
  :class:`~brainalign.Features`, per stimulus (event designs) or resampled and delayed
  (continuous recordings), and refuses when the timelines do not line up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._utils import as_list, check_option

__all__ = ["lanczos_resample", "make_delays", "align_to", "lanczos_kernel"]


def lanczos_kernel(dt: np.ndarray, cutoff: float, window: int = 3) -> np.ndarray:
    """Lanczos-windowed sinc ``sinc(2 fc dt) * sinc(2 fc dt / a)`` for ``|2 fc dt| < a``, else 0.

    ``sinc(x) = sin(pi x) / (pi x)``; equals 1 at ``dt = 0``.
    """
    x = 2.0 * float(cutoff) * np.asarray(dt, dtype=float)
    out = np.sinc(x) * np.sinc(x / window)
    out[np.abs(x) >= window] = 0.0
    return out


def lanczos_resample(values: Any, times: Any, new_times: Any, *, window: int = 3, cutoff: float | None = None,
                     normalize: str | None = None) -> np.ndarray:
    """Resample irregularly timed values onto new times with a Lanczos-windowed sinc.

    ``out[j] = sum_i K(new_times[j] - times[i]) * values[i]`` with
    ``K(dt) = sinc(2 fc dt) sinc(2 fc dt / window)`` (zero beyond ``window`` lobes), where
    ``fc = cutoff``. Each event contributes with weight 1 at its own time, so the result
    grows with the event rate (words per TR), as in Huth et al. (2016).

    Parameters
    ----------
    values : array of shape (n_events, ...) 
        E.g. word features (n_words, n_features).
    times : array of shape (n_events,)
        Event times (s).
    new_times : array of shape (n_new,)
        Output times (s), e.g. TR acquisition times.
    window : int
        Number of lobes of the Lanczos window.
    cutoff : float, optional
        Low-pass cutoff in Hz; default the Nyquist frequency of the new grid,
        ``1 / (2 * median(diff(new_times)))``.
    normalize : {None, "sum"}
        ``"sum"`` divides by the sum of the weights at each new time (an interpolation that
        reproduces constants and slow signals); None keeps the raw weighted sum.

    Returns
    -------
    array of shape (n_new, ...)

    Examples
    --------
    >>> t = np.arange(0, 100, 0.1)
    >>> tr = np.arange(0, 100, 2.0)
    >>> y = lanczos_resample(np.sin(0.05 * t), t, tr, normalize="sum")
    >>> bool(np.abs(y[5:-5] - np.sin(0.05 * tr[5:-5])).max() < 0.01)
    True
    """
    check_option("normalize", normalize, [None, "sum"])
    vals = np.asarray(values, dtype=float)
    t = np.asarray(times, dtype=float).ravel()
    nt = np.asarray(new_times, dtype=float).ravel()
    if vals.shape[0] != len(t):
        raise ValueError(f"values has {vals.shape[0]} rows but times has {len(t)} entries; give one time per row.")
    if not (np.isfinite(t).all() and np.isfinite(nt).all()):
        raise ValueError("times and new_times must be finite.")
    if int(window) < 1:
        raise ValueError(f"window must be a positive number of lobes; got {window}.")
    if cutoff is None:
        if len(nt) < 2:
            raise ValueError("With a single new time the cutoff cannot be inferred; pass cutoff= (Hz).")
        step = float(np.median(np.diff(nt)))
        if step <= 0:
            raise ValueError("new_times must increase to infer the cutoff; pass cutoff= (Hz).")
        cutoff = 1.0 / (2.0 * step)
    if cutoff <= 0:
        raise ValueError(f"cutoff must be > 0 Hz; got {cutoff}.")
    flat = vals.reshape(len(t), -1)
    out = np.zeros((len(nt), flat.shape[1]))
    weights_sum = np.zeros(len(nt))
    half = window / (2.0 * cutoff)  # support of the kernel in seconds
    order = np.argsort(t, kind="stable")
    ts, fs = t[order], flat[order]
    chunk = max(1, int(2**22 // max(1, len(t))))
    for a in range(0, len(nt), chunk):
        sub = nt[a:a + chunk]
        lo = np.searchsorted(ts, sub.min() - half, side="left")
        hi = np.searchsorted(ts, sub.max() + half, side="right")
        k = lanczos_kernel(sub[:, None] - ts[None, lo:hi], cutoff, window)
        out[a:a + chunk] = k @ fs[lo:hi]
        weights_sum[a:a + chunk] = k.sum(1)
    if normalize == "sum":
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(weights_sum[:, None] != 0, out / weights_sum[:, None], 0.0)
    return out.reshape((len(nt),) + vals.shape[1:])


def make_delays(X: Any, delays: Any, *, groups: Any = None, sfreq: float | None = None) -> np.ndarray:
    """Stack delayed copies of ``X``: ``[X(t - d0), X(t - d1), ...]``, zero-padded.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    delays : sequence of int (samples), or of float (seconds) when ``sfreq`` is given
        Positive delays shift the features later (the response follows the stimulus);
        negative ones shift them earlier.
    groups : array of shape (n_samples,), optional
        Run of each sample. Delays never cross a run boundary: the first ``d`` samples of
        every run get zeros, not the end of the previous run. Samples of a run need not be
        contiguous but must be in time order.
    sfreq : float, optional
        Sampling rate (Hz) to turn lags in seconds into samples (M/EEG).

    Returns
    -------
    array of shape (n_samples, n_features * n_delays)
        Delay-major: columns ``k * n_features ... (k + 1) * n_features`` hold delay ``k``.

    Examples
    --------
    >>> make_delays(np.arange(4.0)[:, None], [0, 1], groups=[0, 0, 1, 1])
    array([[0., 0.],
           [1., 0.],
           [2., 0.],
           [3., 2.]])
    """
    arr = np.asarray(X)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"X must be of shape (n_samples, n_features); got shape {arr.shape}.")
    lags = np.asarray(as_list(delays), dtype=float)
    if lags.size == 0:
        raise ValueError("delays is empty; give e.g. [1, 2, 3, 4] (samples) or lags in seconds with sfreq=.")
    if sfreq is not None:
        samples = lags * float(sfreq)
        steps = np.round(samples).astype(int)
        if np.abs(samples - steps).max() > 1e-6:
            raise ValueError(f"Lags {lags.tolist()} s are not whole samples at sfreq={sfreq} Hz "
                             f"({samples.tolist()} samples); use multiples of {1 / float(sfreq):g} s.")
    else:
        steps = np.round(lags).astype(int)
        if np.abs(lags - steps).max() > 0:
            raise ValueError(f"Delays {lags.tolist()} are not whole samples; give integers, or lags in "
                             "seconds with sfreq=.")
    n = arr.shape[0]
    if groups is None:
        blocks = [np.arange(n)]
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups has {g.shape} entries but X has {n} samples; give one run label per sample.")
        codes = pd.factorize(g)[0]
        blocks = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    out = np.zeros((n, arr.shape[1] * len(steps)), dtype=np.result_type(arr.dtype, np.float32))
    p = arr.shape[1]
    for idx in blocks:
        block = arr[idx]
        m = len(idx)
        for k, d in enumerate(steps):
            cols = slice(k * p, (k + 1) * p)
            if abs(d) >= m:
                continue
            if d >= 0:
                out[idx[d:], cols] = block[:m - d]
            else:
                out[idx[:m + d], cols] = block[-d:]
    return out


# --------------------------------------------------------------------------- align_to
def _runs(table: pd.DataFrame | None, n: int) -> np.ndarray:
    if table is not None and "run" in table.columns:
        return table["run"].astype(str).to_numpy()
    return np.full(n, "0", dtype=object)


def align_to(features: Any, brain: Any, *, layer: Any = None, delays: Any = None, lags: Any = None,
             window: int = 3, cutoff: float | None = None, normalize: str | None = None,
             missing: str = "error", time_offset: float = 0.0) -> Any:
    """The design matrix of ``brain`` from ``features``.

    Event / condition designs
        ``brain.samples`` has a ``stimulus_id`` column: row ``i`` is the features of the
        item shown at sample ``i`` (repetitions repeat the row). Samples whose id is
        missing (NaN / None / "") or not among the features raise a KeyError listing them,
        unless ``missing="zeros"``, which gives them rows of zeros (e.g. rest periods).
    Continuous designs
        The features carry onsets (``features.item_table["onset"]``, e.g. words of a
        narrative) and the recording has a ``tr`` / ``sfreq``: per run, the features are
        Lanczos-resampled onto the sample times (``samples["onset"]`` when present, else
        ``time_offset + arange(n) / sfreq``). Runs match by the ``run`` columns (a single
        run when absent). Mismatched runs or onsets outside a run's time span raise a
        ValueError with the numbers.

    Parameters
    ----------
    features : Features
    brain : BrainData
    layer : str, int or list, optional
        One layer -> one array; a list or None (all layers) -> dict layer -> array.
    delays : sequence of int, optional
        FIR delays in samples (e.g. ``[1, 2, 3, 4]`` TRs), applied within runs.
    lags : sequence of float, optional
        Delays in seconds (M/EEG), converted with ``brain.sfreq``.
    window, cutoff, normalize
        Passed to :func:`lanczos_resample` (continuous designs).
    missing : {"error", "zeros"}
    time_offset : float
        Time of the first sample of each run (s) when ``samples`` has no ``onset``.

    Returns
    -------
    array of shape (n_samples, n_features * n_delays), or dict of them

    Examples
    --------
    >>> from brainalign import BrainData, Features
    >>> f = Features({"l0": np.eye(2)}, items=["a", "b"])
    >>> b = BrainData(np.zeros((3, 1)), samples={"stimulus_id": ["b", "a", "b"]})
    >>> align_to(f, b, layer="l0")
    array([[0., 1.],
           [1., 0.],
           [0., 1.]])
    """
    check_option("missing", missing, ["error", "zeros"])
    if delays is not None and lags is not None:
        raise ValueError("Give delays= (samples) or lags= (seconds), not both.")
    names = features.layer_names if layer is None else [features._check_layer(n) for n in as_list(layer)]
    samples = brain.samples
    if "stimulus_id" in samples.columns:
        rows = _event_rows(features, samples["stimulus_id"], missing)
        designs = {}
        for n in names:
            F = np.asarray(features[n]).reshape(features.n_items, -1)
            X = np.zeros((len(rows), F.shape[1]), dtype=np.result_type(F.dtype, np.float32))
            ok = rows >= 0
            X[ok] = F[rows[ok]]
            designs[n] = X
    else:
        designs = _continuous(features, brain, names, window=window, cutoff=cutoff, normalize=normalize,
                              time_offset=time_offset)
    if delays is not None or lags is not None:
        groups = _runs(samples, brain.n_samples)
        sf = None
        if lags is not None:
            if not brain.sfreq:
                raise ValueError("lags= (seconds) needs a recording with sfreq or tr; use delays= in samples.")
            sf = brain.sfreq
        designs = {n: make_delays(X, lags if lags is not None else delays, groups=groups, sfreq=sf)
                   for n, X in designs.items()}
    if layer is not None and not isinstance(layer, (list, tuple)):
        return designs[names[0]]
    return designs


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


def _continuous(features, brain, names, *, window, cutoff, normalize, time_offset) -> dict:
    table = features.item_table
    if table is None or "onset" not in table.columns:
        raise ValueError(
            "The recording has no stimulus_id column (so it is continuous) but the features carry no onsets; "
            "extract features from Stimuli with an onset column (e.g. Stimuli.from_words) or add a "
            "stimulus_id column to brain.samples for an event design."
        )
    if not brain.sfreq:
        raise ValueError("A continuous design needs the recording's tr or sfreq; build BrainData with tr= or sfreq=.")
    if brain.data.ndim == 3:
        raise ValueError("Continuous alignment needs continuous data (n_samples, n_channels), not epochs.")
    samples = brain.samples
    b_runs = _runs(samples, brain.n_samples)
    f_runs = _runs(table, features.n_items)
    b_set, f_set = list(pd.unique(b_runs)), list(pd.unique(f_runs))
    if set(b_set) != set(f_set):
        raise ValueError(
            f"The runs do not match: the recording has runs {b_set}, the features have runs {f_set} "
            f"(only in recording: {sorted(set(b_set) - set(f_set))}, only in features: "
            f"{sorted(set(f_set) - set(b_set))}). Select matching runs first."
        )
    onsets = table["onset"].to_numpy(float)
    if "duration" in table.columns:
        ends = onsets + np.nan_to_num(table["duration"].to_numpy(float))
    else:
        ends = onsets
    flat = {n: np.asarray(features[n]).reshape(features.n_items, -1) for n in names}
    out = {n: np.zeros((brain.n_samples, F.shape[1])) for n, F in flat.items()}
    step = 1.0 / brain.sfreq
    for run in b_set:
        bi = np.flatnonzero(b_runs == run)
        fi = np.flatnonzero(f_runs == run)
        if "onset" in samples.columns:
            t = samples["onset"].to_numpy(float)[bi]
        else:
            t = time_offset + np.arange(len(bi)) * step
        t_end = t[-1] + step
        if onsets[fi].min() < t[0] - step or ends[fi].max() > t_end + 1e-9:
            raise ValueError(
                f"Run {run!r}: the stimuli span {onsets[fi].min():g}-{ends[fi].max():g} s but the recording "
                f"covers {t[0]:g}-{t_end:g} s ({len(bi)} samples at {step:g} s). Check that the features and "
                "the recording belong to the same run, the TR / sampling rate, and time_offset."
            )
        for n, F in flat.items():
            out[n][bi] = lanczos_resample(F[fi], onsets[fi], t, window=window, cutoff=cutoff, normalize=normalize)
    return out
