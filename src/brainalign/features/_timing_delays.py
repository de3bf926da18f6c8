"""FIR delays within runs, and the canonical haemodynamic response (public through ``features.timing``)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from .._utils import as_list, check_option

__all__ = ["make_delays", "hrf", "hrf_response", "convolve_hrf"]


# --------------------------------------------------------------------------- delays
def delay_steps(delays: Any = None, lags: Any = None, sfreq: float | None = None) -> np.ndarray:
    """Delays in samples (int array) from ``delays`` (samples) or ``lags`` (seconds, with ``sfreq``)."""
    if delays is not None and lags is not None:
        raise ValueError("Give delays= (samples) or lags= (seconds, with sfreq=), not both.")
    if delays is None and lags is None:
        raise ValueError("Give delays= in samples (e.g. [1, 2, 3, 4] TRs) or lags= in seconds with sfreq= (M/EEG).")
    if lags is not None:
        vals = np.asarray(as_list(lags), dtype=float)
        if vals.size == 0:
            raise ValueError("lags is empty; give lags in seconds, e.g. np.arange(0, 0.41, 0.01), with sfreq=.")
        if sfreq is None:
            raise ValueError(f"lags={vals.tolist()[:6]} are in seconds and need sfreq= (Hz) to become samples; "
                             "or give delays= in samples.")
        if not (np.isfinite(sfreq) and sfreq > 0):
            raise ValueError(f"sfreq must be a positive number of Hz, got {sfreq!r}.")
        samples = vals * float(sfreq)
        steps = np.round(samples).astype(int)
        if np.abs(samples - steps).max() > 1e-6:
            bad = vals[np.abs(samples - steps) > 1e-6]
            raise ValueError(f"lags {bad.tolist()[:6]} s are not whole samples at sfreq={sfreq:g} Hz "
                             f"({(bad * float(sfreq)).tolist()[:6]} samples); use multiples of {1 / float(sfreq):g} s.")
    else:
        if sfreq is not None:
            raise ValueError(f"sfreq= converts lags= (seconds) to samples, but delays={as_list(delays)[:6]} are "
                             "already in samples. Pass lags=... with sfreq=..., or drop sfreq=.")
        vals = np.asarray(as_list(delays), dtype=float)
        if vals.size == 0:
            raise ValueError("delays is empty; give e.g. [1, 2, 3, 4] (samples), or lags= in seconds with sfreq=.")
        steps = np.round(vals).astype(int)
        if not np.isfinite(vals).all() or np.abs(vals - steps).max() > 0:
            raise ValueError(f"delays {vals.tolist()[:6]} are not whole numbers of samples; give integers, or lags= "
                             "in seconds with sfreq=.")
    if len(np.unique(steps)) != len(steps):
        dup = pd.Series(steps).loc[pd.Series(steps).duplicated()].unique().tolist()
        raise ValueError(f"The delays repeat {dup} (samples): each delay would give identical columns. "
                         "Give each delay once.")
    return steps


def run_blocks(groups: Any, n: int) -> list[np.ndarray]:
    """Sample positions of every run, in order of first appearance (one block when ``groups`` is None)."""
    if groups is None:
        return [np.arange(n)]
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups has {g.shape} entries but X has {n} samples; give one run label per sample.")
    codes = pd.factorize(g)[0]
    if (codes < 0).any():
        raise ValueError(f"groups has {int((codes < 0).sum())} missing run labels (NaN/None); give every sample a run.")
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def check_delays_fit_runs(steps: np.ndarray, lengths: list[int], *, what: str = "run") -> None:
    """Raise when a delay is at least as long as every run (its columns would be all zeros); warn for some runs."""
    lengths = np.asarray(lengths)
    longest = int(lengths.max())
    too_long = [int(d) for d in steps if abs(d) >= longest]
    shown = lengths[:10].tolist() + (["..."] if len(lengths) > 10 else [])
    if too_long:
        raise ValueError(
            f"Delay(s) {too_long} (samples) are at least as long as every {what} ({what} lengths: {shown}): their "
            f"columns would be all zeros. Use delays shorter than {longest} samples, or check the units "
            "(delays= are samples; use lags= with sfreq= for seconds)."
        )
    short = lengths <= np.abs(steps).max()
    if short.any():
        warnings.warn(
            f"{int(short.sum())} of {len(lengths)} {what}s are not longer than the longest delay "
            f"({int(np.abs(steps).max())} samples; lengths {lengths[short][:10].tolist()}): those {what}s get zeros "
            "in the columns of the delays they cannot hold.", stacklevel=3,
        )


def _fill_block(out: np.ndarray, rows: np.ndarray, block: np.ndarray, steps: np.ndarray) -> None:
    """Write the delayed copies of one run (``block``, in time order) into ``out[rows]``."""
    m, p = block.shape
    n_d = len(steps)
    contiguous = m > 0 and rows[-1] - rows[0] == m - 1
    if n_d > 1 and np.array_equal(np.diff(steps), np.ones(n_d - 1, dtype=steps.dtype)):
        # consecutive delays d0..d0+K-1: row t is the reversed window X[t-d0-K+1 .. t-d0], one copy per row
        dmax = int(steps[-1])
        buf = np.zeros((m + n_d - 1, p), dtype=out.dtype)
        lo, hi = max(0, dmax), min(m + n_d - 1, dmax + m)
        if hi > lo:
            buf[lo:hi] = block[lo - dmax:hi - dmax]
        rev = np.ascontiguousarray(buf[::-1]).reshape(-1)
        delayed = sliding_window_view(rev, n_d * p)[::p][::-1]
        if contiguous:
            out[rows[0]:rows[-1] + 1] = delayed
        else:
            out[rows] = delayed
        return
    for k, d in enumerate(steps):
        cols = slice(k * p, (k + 1) * p)
        if abs(d) >= m:
            continue
        if contiguous:
            a = rows[0]
            if d >= 0:
                out[a + d:a + m, cols] = block[:m - d]
            else:
                out[a:a + m + d, cols] = block[-d:]
        elif d >= 0:
            out[rows[d:], cols] = block[:m - d]
        else:
            out[rows[:m + d], cols] = block[-d:]


def make_delays(X: Any, delays: Any = None, *, lags: Any = None, sfreq: float | None = None,
                groups: Any = None) -> np.ndarray:
    """Stack delayed copies of ``X``: ``[X(t - d0), X(t - d1), ...]``, zero-padded within runs.

    The one definition of a delayed (FIR / lagged) design in brainalign: :func:`align_to`,
    :class:`~brainalign.features.Delayer` and :class:`~brainalign.encoding.TRF` use it.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    delays : sequence of int, optional
        Delays in samples (fMRI: e.g. ``[1, 2, 3, 4]`` TRs). Positive delays shift the
        features later (the response follows the stimulus); negative ones shift them earlier.
    lags : sequence of float, optional
        Delays in seconds (M/EEG), turned into samples with ``sfreq``; they must be whole
        samples. Give ``delays`` or ``lags``, not both.
    sfreq : float, optional
        Sampling rate (Hz) of ``X``; only with ``lags``.
    groups : array of shape (n_samples,), optional
        Run of each sample. Delays never cross a run boundary: the first ``d`` samples of
        every run get zeros, not the end of the previous run. Samples of a run need not be
        contiguous but must be in time order.

    Returns
    -------
    array of shape (n_samples, n_features * n_delays)
        Delay-major: columns ``k * n_features ... (k + 1) * n_features`` hold delay ``k``,
        i.e. column ``k * n_features + j`` is feature ``j`` delayed by ``delays[k]``.

    Raises
    ------
    ValueError
        When a delay is at least as long as every run (its columns would be all zeros), for
        repeated delays, non-integer delays, and lags that are not whole samples. A delay
        longer than only some runs warns (those runs get zeros in its columns).

    Examples
    --------
    >>> make_delays(np.arange(4.0)[:, None], [0, 1], groups=[0, 0, 1, 1])
    array([[0., 0.],
           [1., 0.],
           [2., 0.],
           [3., 2.]])
    >>> make_delays(np.arange(3.0)[:, None], lags=[0.0, 0.01], sfreq=100.0)
    array([[0., 0.],
           [1., 0.],
           [2., 1.]])
    """
    arr = np.asarray(X)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"X must be of shape (n_samples, n_features); got shape {arr.shape}.")
    steps = delay_steps(delays, lags, sfreq)
    n, p = arr.shape
    blocks = run_blocks(groups, n)
    out = np.zeros((n, p * len(steps)), dtype=np.result_type(arr.dtype, np.float32))
    if n == 0:
        return out
    check_delays_fit_runs(steps, [len(b) for b in blocks])
    for rows in blocks:
        _fill_block(out, rows, arr[rows], steps)
    return out


# --------------------------------------------------------------------------- HRF
_PEAK_SHAPE, _UNDERSHOOT_SHAPE, _RATIO = 6.0, 16.0, 6.0  # SPM canonical HRF parameters
_HRF_LENGTH = 32.0


def _hrf_continuous(t: np.ndarray) -> np.ndarray:
    from scipy.stats import gamma

    t = np.asarray(t, dtype=float)
    out = gamma.pdf(t, _PEAK_SHAPE) - gamma.pdf(t, _UNDERSHOOT_SHAPE) / _RATIO
    return np.where(t >= 0, out, 0.0)


def _hrf_integral(t: np.ndarray) -> np.ndarray:
    """Integral of the (unnormalised) HRF from 0 to t."""
    from scipy.stats import gamma

    t = np.asarray(t, dtype=float)
    out = gamma.cdf(t, _PEAK_SHAPE) - gamma.cdf(t, _UNDERSHOOT_SHAPE) / _RATIO
    return np.where(t >= 0, out, 0.0)


_HRF_PEAK: float | None = None


def _hrf_peak() -> float:
    global _HRF_PEAK
    if _HRF_PEAK is None:  # computed on first use: scipy.stats stays out of `import brainalign.features`
        _HRF_PEAK = float(_hrf_continuous(np.linspace(3, 7, 40001)).max())
    return _HRF_PEAK


def hrf_response(times: Any, *, event_duration: float = 0.0) -> np.ndarray:
    """The canonical HRF's response to one event, at ``times`` seconds after its onset.

    ``event_duration=0`` gives the impulse response ``h(t)`` (see :func:`hrf`); a positive
    duration gives the response to a boxcar of unit height and that length, integrated
    exactly, ``H(t) - H(t - duration)`` with ``H`` the integral of ``h``. Both are scaled
    by the peak of the impulse response, so an impulse peaks at 1.

    Parameters
    ----------
    times : array of shape (n_times,)
        Seconds after the event onset (negative times give 0).
    event_duration : float
        Length of the event in seconds (>= 0).

    Returns
    -------
    array of shape (n_times,)

    Examples
    --------
    >>> round(float(hrf_response([5.0])[0]), 3)
    1.0
    >>> bool(hrf_response([6.0], event_duration=2.0)[0] > 1.5)
    True
    """
    t = np.asarray(times, dtype=float)
    if not np.isfinite(t).all():
        raise ValueError("times must be finite (seconds after the event onset).")
    if not (np.isfinite(event_duration) and event_duration >= 0):
        raise ValueError(f"event_duration must be >= 0 seconds, got {event_duration!r}.")
    if event_duration > 0:
        return (_hrf_integral(t) - _hrf_integral(t - event_duration)) / _hrf_peak()
    return _hrf_continuous(t) / _hrf_peak()


def hrf(tr: float, duration: float = _HRF_LENGTH, *, normalize: str = "peak") -> np.ndarray:
    """SPM's canonical (double-gamma) haemodynamic response function, sampled every ``tr``.

    ``h(t) = g(t; 6) - g(t; 16) / 6`` where ``g(t; k)`` is the gamma density of shape ``k``
    and scale 1 s (SPM's defaults: response delay 6 s, undershoot delay 16 s, dispersions
    1, ratio 6, onset 0). It peaks at about 5 s and undershoots (minimum about 15.7 s).

    Parameters
    ----------
    tr : float
        Sampling interval in seconds.
    duration : float
        Length of the kernel in seconds (samples at ``0, tr, ..., <= duration``).
    normalize : {"peak", "sum"}
        ``"peak"`` scales the continuous curve to a maximum of 1; ``"sum"`` scales the samples
        to sum to 1 (as SPM's ``spm_hrf``).

    Returns
    -------
    array of shape (n_samples,)
        The kernel at times ``np.arange(n_samples) * tr``.

    Examples
    --------
    >>> h = hrf(0.1)
    >>> round(float(np.argmax(h) * 0.1), 1)
    5.0
    """
    check_option("normalize", normalize, ["peak", "sum"])
    if not (np.isfinite(tr) and tr > 0):
        raise ValueError(f"tr must be a positive number of seconds, got {tr!r}.")
    if not (np.isfinite(duration) and duration >= tr):
        raise ValueError(f"duration must be at least one tr ({tr} s), got {duration!r}.")
    t = np.arange(int(np.floor(duration / tr + 1e-9)) + 1) * tr
    h = _hrf_continuous(t)
    return h / _hrf_peak() if normalize == "peak" else h / h.sum()


def convolve_hrf(X: Any, *, tr: float, groups: Any = None, duration: float = _HRF_LENGTH,
                 normalize: str = "peak") -> np.ndarray:
    """Convolve every column of ``X`` with the canonical HRF, within runs.

    ``out[t] = sum_k hrf[k] X[t - k]`` over the samples of the same run (causal, truncated
    at the end of the run): the haemodynamic prediction of a block or event design sampled
    every ``tr``, with no response leaking from one run into the next.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        E.g. boxcars (1 while a condition is on) or stimulus features, one row per volume.
    tr : float
        Sampling interval in seconds.
    groups : array of shape (n_samples,), optional
        Run of each sample (samples of a run in time order).
    duration, normalize
        As in :func:`hrf`.

    Returns
    -------
    array of shape (n_samples, n_features)

    Examples
    --------
    >>> box = np.r_[np.ones(3), np.zeros(7)][:, None]
    >>> y = convolve_hrf(box, tr=2.0)
    >>> int(np.argmax(y[:, 0]))
    4
    """
    arr = np.asarray(X, dtype=float)
    squeeze = arr.ndim == 1
    if squeeze:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"X must be of shape (n_samples, n_features); got shape {arr.shape}.")
    kernel = hrf(tr, duration, normalize=normalize)
    from scipy.signal import lfilter

    out = np.zeros_like(arr)
    for rows in run_blocks(groups, arr.shape[0]):
        if len(rows):
            out[rows] = lfilter(kernel, [1.0], arr[rows], axis=0)  # causal FIR, truncated at the run's end
    return out[:, 0] if squeeze else out
