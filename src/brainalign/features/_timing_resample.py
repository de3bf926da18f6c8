"""Lanczos resampling of irregularly timed values (public through ``features.timing``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils import check_option

__all__ = ["lanczos_kernel", "lanczos_resample"]


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
    if vals.ndim == 0 or vals.shape[0] == 0 or len(t) == 0:
        raise ValueError(
            f"lanczos_resample got no events: values has shape {vals.shape} and times has {len(t)} entries. "
            "Give at least one event (one row of values per time); a run without events has no features to resample."
        )
    if len(nt) == 0:
        raise ValueError("new_times is empty: give the times (s) to resample onto, e.g. the TR acquisition times.")
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
