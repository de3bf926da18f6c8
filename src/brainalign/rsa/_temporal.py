"""Time-resolved RSA for epoched M/EEG (BrainData with a time axis), batched over time.

The conditions are averaged once for all time points (one pass over the data), the data are
laid out time-major once, every time point's (or window's) Gram matrix comes from one BLAS
``syrk`` call per time point (half the flops of the batched ``gemm`` of numpy's stacked
``matmul``), the dissimilarities of all time points from one vectorised expression, and the
ranks and comparisons with all models from one batched :func:`compare` call. Time points are
processed in chunks that fit a memory budget, two chunks at a time on 2 threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._utils import Bunch, check_option, progress_bar
from ._common import (average_conditions, condition_labels, condition_table, make_rdms, match_conditions,
                      memory_budget, rdm_vectors, reorder_vectors)
from ._compare import COMPARE_METHODS, compare_vectors
from ._inference import _names
from ._noise import noise_precision
from ._ranks import map_threads
from ._rdm import _MEASURE, RDM_METHODS, _folds, _from_gram, _kernel_to_rdm, check_norms

__all__ = ["time_resolved"]

_BUDGET = 256 * 1024**2  # bytes of intermediates (Gram matrices, time-major copies) of the chunks in flight


@fill_doc
def time_resolved(brain: Any, model_rdms: Any, *, rdm_method: str = "correlation",
                  compare_method: str = "spearman", descriptor: str | None = None,
                  cv_descriptor: str | None = None, noise: Any = None, window: int = 1, step: int = 1,
                  window_mode: str = "average", verbose: bool = False) -> Bunch:
    """One RDM per time point (or sliding window), compared with every model / layer RDM.

    Parameters
    ----------
    brain : BrainData
        Epoched data of shape (n_samples, n_channels, n_times).
    model_rdms : rsatoolbox.rdm.RDMs or array, n_models RDMs over the same conditions
        When ``model_rdms`` is an ``RDMs`` with a pattern descriptor that the data's
        conditions also have (e.g. ``stimulus_id`` or ``condition``, unique per condition),
        the models are reordered to the data's conditions by that label, and different
        condition sets raise. Without a shared label (e.g. plain arrays) the conditions are
        matched by position: the sorted ``descriptor`` values, or the samples.
    rdm_method : {"correlation", "euclidean", "cosine", "mahalanobis", "crossnobis"}
        As in :func:`calc_rdm` (``crossnobis`` needs ``descriptor`` and folds).
    compare_method : str
        Method of :func:`compare`.
    descriptor, cv_descriptor : str, optional
        As in :func:`calc_rdm` (e.g. ``"stimulus_id"``, ``"run"``): samples sharing a
        ``descriptor`` value are averaged, once for all time points.
    noise : array or str, optional
        Noise precision for ``mahalanobis`` / ``crossnobis``, as in :func:`calc_rdm` (the same
        for every time point). An estimator name (e.g. ``"shrinkage_diag"``) estimates it
        from the deviations of the samples from their condition means, pooled over time.
    window : int
        Number of time points per RDM (1: one RDM per time point).
    step : int
        Hop between windows, in time points.
    window_mode : {"average", "concatenate"}
        ``"average"``: the RDM of the window's mean pattern; ``"concatenate"``: the window's
        time points are features beside the channels (``n_channels * window`` features, the
        spatio-temporal patterns of mne-rsa's ``temporal_radius``).
    %(verbose)s

    Returns
    -------
    Bunch
        ``scores``: array (n_models, n_windows); ``times``: centre of each window (s);
        ``rdms``: the data RDMs (rdm descriptor ``time``, pattern descriptors of the data's
        conditions); ``table``: tidy DataFrame (layer, time, score).

    Raises
    ------
    ValueError
        As :func:`calc_rdm` does for undefined dissimilarities (naming the condition and the
        time), and for model RDMs over other conditions than the data.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import BrainData
    >>> x = np.random.default_rng(0).standard_normal((6, 4, 5))
    >>> res = time_resolved(BrainData(x, sfreq=100.0), np.random.default_rng(1).random((2, 15)))
    >>> res.scores.shape
    (2, 5)
    """
    check_option("rdm_method", rdm_method, RDM_METHODS)
    check_option("compare_method", compare_method, COMPARE_METHODS)
    check_option("window_mode", window_mode, ["average", "concatenate"])
    data = getattr(brain, "data", None)
    if data is None or np.ndim(data) != 3:
        raise ValueError(
            "time_resolved needs a BrainData with a time axis, data of shape (n_samples, n_channels, "
            f"n_times); got {None if data is None else np.shape(data)}."
        )
    n_samples, n_ch, n_times = data.shape
    for name, val in (("window", window), ("step", step)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
            raise TypeError(f"{name} must be an int (time points); got {val!r}.")
    if not (1 <= window <= n_times) or step < 1:
        raise ValueError(f"Need 1 <= window <= n_times ({n_times}) and step >= 1; got window={window}, step={step}.")
    if rdm_method == "crossnobis" and descriptor is None:
        raise ValueError("rdm_method='crossnobis' needs descriptor= (the samples column naming the condition).")
    codes, table = condition_table(brain.samples, descriptor, n_samples)
    n_cond = len(table)
    if n_cond < 2:
        raise ValueError(f"An RDM needs at least 2 conditions; the data have {n_cond}.")
    labels = {k: list(table[k]) for k in table.columns if k != "index"}
    vm = rdm_vectors(model_rdms, "model_rdms")
    if vm.shape[1] != n_cond * (n_cond - 1) // 2:
        raise ValueError(
            f"The model RDMs have {vm.shape[1]} pairs but the data's {n_cond} conditions "
            f"{n_cond * (n_cond - 1) // 2}; they must describe the same conditions (check descriptor=)."
        )
    perm = match_conditions(condition_labels(model_rdms), labels, source_name="model_rdms",
                            target_name="the data's conditions", prefer=descriptor)
    if perm is not None:
        vm = reorder_vectors(vm, perm)
    starts = np.arange(0, n_times - window + 1, step)
    times = np.asarray(brain.times, dtype=float)
    centres = times[starts] if window == 1 else \
        np.lib.stride_tricks.sliding_window_view(times, window)[starts].mean(-1)
    ctx = dict(method=rdm_method, table=table, descriptor=descriptor, times=times, verbose=verbose)
    if rdm_method == "crossnobis":
        folds, fold_values = _folds(brain.samples, descriptor, cv_descriptor, codes)
        prec = _time_precision(noise, brain, descriptor, codes, n_ch, rdm_method, len(fold_values))
        vd = _crossnobis_time(data, codes, folds, prec, starts, window, window_mode, ctx)
    else:
        prec = _time_precision(noise, brain, descriptor, codes, n_ch, rdm_method)
        rows = None
        lazy = prec is None and (window == 1 or window_mode == "concatenate")
        if lazy and (codes is None or n_cond == n_samples):  # nothing to average: read the epochs in place
            avg = np.asarray(data)
            rows = None if codes is None else np.argsort(codes)  # (every sample its own condition)
        else:
            avg = _whiten(average_conditions(data, codes, n_cond), prec)
        _check_finite(avg, data, codes)
        vd = _rdm_time(avg, starts, window, window_mode, ctx, rows=rows)
    scores = compare_vectors(vm, vd, method=compare_method, names=("model_rdms", "the data RDMs"))
    measure = _MEASURE[rdm_method] if (rdm_method != "mahalanobis" or prec is not None) else "squared euclidean"
    rdms = make_rdms(vd, dissimilarity_measure=measure, rdm_descriptors={"time": list(centres)},
                     pattern_descriptors=labels)
    names = _names(model_rdms, vm.shape[0], "layer")
    result_table = pd.DataFrame({"layer": np.repeat(names, len(centres)), "time": np.tile(centres, len(names)),
                                 "score": scores.ravel()})
    return Bunch(scores=scores, times=centres, rdms=rdms, table=result_table)


# ------------------------------------------------------------------------------ inputs
def _time_precision(noise, brain, descriptor, codes, n_ch, method, n_folds=None):
    if noise is None or method not in ("mahalanobis", "crossnobis"):
        return None
    if isinstance(noise, str):
        if descriptor is None:
            raise ValueError(f"noise={noise!r} estimates the noise from repetitions: it needs descriptor=.")
        x = np.asarray(brain.data, dtype=np.float64)
        avg = average_conditions(x, codes, int(codes.max()) + 1)
        resid = (x - avg[codes]).transpose(0, 2, 1).reshape(-1, n_ch)  # pooled over time points
        return noise_precision(resid, method=noise)
    prec = np.array(noise, dtype=np.float64)
    shapes = [(n_ch,), (n_ch, n_ch)] + ([(n_folds, n_ch, n_ch)] if n_folds else [])
    if prec.shape not in shapes:
        raise ValueError(f"noise must be a precision of shape {' or '.join(map(str, shapes))}; got {prec.shape}.")
    if not np.isfinite(prec).all():
        raise ValueError("noise (the precision) contains NaN or inf values.")
    return prec


def _check_finite(avg: np.ndarray, x: np.ndarray, codes) -> None:
    """NaN / inf anywhere in the data show up in the condition means; name the first one."""
    if np.isfinite(avg.sum()) or np.isfinite(avg).all():  # one reduction; exact check only on overflow
        return
    s, c, t = (int(i) for i in np.argwhere(~np.isfinite(np.asarray(x)))[0])
    raise ValueError(
        f"The data contain {int((~np.isfinite(np.asarray(x))).sum())} NaN/inf value(s); the first at sample {s}, "
        f"channel {c}, time point {t}. Dissimilarities would be undefined: drop that channel or epoch, or "
        "restrict the times (brain.select(time=...))."
    )


def _whiten(x: np.ndarray, prec: np.ndarray | None) -> np.ndarray:
    """Patterns (..., n_channels, n_times) transformed so that plain inner products are
    ``a' P b``: scaled by sqrt(P) (diagonal) or mapped through ``W`` with ``W W' = P``."""
    if prec is None:
        return x
    if prec.ndim == 1:
        return x * np.sqrt(prec)[:, None]
    lam, vec = np.linalg.eigh((prec + prec.T) / 2)
    w = vec * np.sqrt(np.clip(lam, 0, None))
    return np.moveaxis(np.tensordot(x, w, axes=([-2], [0])), -1, -2)


# ------------------------------------------------------------------------------ kernels
def _time_major(x: np.ndarray, center: str | None, rows: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, c, t) -> contiguous float64 (t, n, c), in one pass (``rows``: take the patterns in
    this order); ``center="channels"`` removes each pattern's mean over channels (returned,
    (t, n)), ``"conditions"`` the mean pattern over conditions (a common shift, which distances
    ignore: it only makes the Gram trick more precise)."""
    n, c, t = x.shape
    means = None
    shift = None
    if center == "channels":
        means = x.mean(1, dtype=np.float64).T  # (t, n)
        if rows is not None:
            means = means[:, rows]
        shift = means[:, :, None]
    elif center == "conditions":
        shift = x.mean(0, dtype=np.float64).T[:, None, :]  # (t, 1, c)
    out = np.empty((t, n, c))
    for lo in range(0, c, 32):  # channel blocks keep the strided copy cache-friendly
        block = (x[:, lo:lo + 32, :] if rows is None else x[rows, lo:lo + 32, :]).transpose(2, 0, 1)
        if shift is None:
            out[:, :, lo:lo + 32] = block
        elif center == "channels":
            np.subtract(block, shift, out=out[:, :, lo:lo + 32])
        else:
            np.subtract(block, shift[:, :, lo:lo + 32], out=out[:, :, lo:lo + 32])
    return out, means


def _gram_per_time(a: np.ndarray) -> np.ndarray:
    """``a[t] @ a[t].T`` for every t of a (t, n, c) array: one BLAS syrk per time point (half
    the flops of a batched gemm, which numpy's stacked ``matmul`` does not use)."""
    out = np.empty(a.shape[:2] + (a.shape[1],))
    for i in range(a.shape[0]):
        np.matmul(a[i], a[i].T, out=out[i])
    return out


def _chunk_size(n: int, c: int, window: int, mode: str, n_fold: int = 1) -> int:
    width = window if mode == "concatenate" else 1
    per_window = 8 * n_fold * (3 * n * n + 2 * n * c) * width
    budget = memory_budget(_BUDGET) // 2  # two chunks are processed at once
    return int(max(1, budget // per_window))


def _window_means(x: np.ndarray, rel: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last axis of ``x[..., s:s + window]`` for each s in ``rel`` (a view when
    ``window`` is 1 and ``rel`` evenly spaced)."""
    if window == 1:
        hop = int(rel[1] - rel[0]) if rel.size > 1 else 1
        if hop > 0 and np.array_equal(rel, rel[0] + hop * np.arange(rel.size)):
            return x[..., int(rel[0]):int(rel[-1]) + 1:hop]
        return x[..., rel]
    return np.lib.stride_tricks.sliding_window_view(x, window, axis=-1)[..., rel, :].mean(-1)


def _rdm_time(avg: np.ndarray, starts: np.ndarray, window: int, mode: str, ctx: dict,
              rows: np.ndarray | None = None) -> np.ndarray:
    """Dissimilarity vectors (n_windows, n_pairs) of condition means (n, c, n_times) (``rows``:
    the patterns are ``avg[rows]``, read in place; only with ``window == 1`` or concatenation)."""
    method = ctx["method"]
    n, c, _ = avg.shape
    center = "channels" if method == "correlation" else ("conditions" if method != "cosine" else None)
    n_feat = c * (window if mode == "concatenate" else 1)
    # chunks of windows, at least two when there is enough work: they run on 2 threads (every
    # step releases the GIL: strided copies, BLAS, gathers)
    chunk = _chunk_size(n, c, window, mode)
    if n * n * c * starts.size > 200_000_000:
        chunk = min(chunk, -(-starts.size // 2))
    out = np.empty((starts.size, n * (n - 1) // 2))
    iu = np.triu_indices(n, 1)

    def run(j0):
        sel = starts[j0:j0 + chunk]
        t0, t1 = int(sel[0]), int(sel[-1]) + window
        if mode == "average":
            a, means = _time_major(_window_means(avg[:, :, t0:t1], sel - t0, window), center, rows)
            gram = _gram_per_time(a)
            raw = None if means is None else np.diagonal(gram, axis1=-2, axis2=-1) + c * means**2
        else:
            a, means = _time_major(avg[:, :, t0:t1], center, rows)
            g_t = _gram_per_time(a)
            rel = sel - t0
            gram = sum(g_t[rel + d] for d in range(window))
            raw = None
            if means is not None:
                raw_t = np.diagonal(g_t, axis1=-2, axis2=-1) + c * means**2
                raw = sum(raw_t[rel + d] for d in range(window))
                if window > 1:  # centring over the whole window adds the spread of the per-time means
                    wm = np.stack([means[rel + d] for d in range(window)])
                    wm -= wm.mean(0)
                    gram += c * np.einsum("dwi,dwj->wij", wm, wm)
        if method in ("correlation", "cosine"):
            norm2 = np.diagonal(gram, axis1=-2, axis2=-1)
            _check_window_norms(norm2, norm2 if raw is None else raw, method, ctx,
                                [ctx["times"][s:s + window] for s in sel])
        out[j0:j0 + sel.size] = _from_gram(gram, method, n_feat, iu)

    blocks = list(range(0, starts.size, chunk))
    for pair in progress_bar([blocks[i:i + 2] for i in range(0, len(blocks), 2)], verbose=ctx["verbose"],
                             total=-(-len(blocks) // 2), desc="time chunks"):
        map_threads(run, pair)
    return out


def _check_window_norms(norm2, raw, method, ctx, win_times) -> None:
    bad = (norm2 <= 0) if method == "cosine" else (norm2 <= 1e-24 * raw)
    if bad.any():
        w = int(np.flatnonzero(bad.any(1))[0])
        t = win_times[w]
        where = f" at time {t[0]:.4g} s" if len(t) == 1 else f" in the window {t[0]:.4g}-{t[-1]:.4g} s"
        check_norms(norm2[w], raw[w], method, ctx["table"], ctx["descriptor"], where=where)


def _crossnobis_time(x, codes, folds, prec, starts, window, mode, ctx) -> np.ndarray:
    """Crossnobis vectors (n_windows, n_pairs): leave-one-fold-out (one precision) or every pair
    of folds (one precision per fold), as :func:`calc_rdm`."""
    n_cond, n_fold = int(codes.max()) + 1, int(folds.max()) + 1
    if n_fold < 2:
        raise ValueError("crossnobis needs at least 2 cross-validation folds (e.g. 2 runs); got 1.")
    cells = average_conditions(x, folds * n_cond + codes, n_fold * n_cond)
    _check_finite(cells, x, codes)
    counts = np.bincount(folds * n_cond + codes, minlength=n_fold * n_cond).reshape(n_fold, n_cond)
    if (counts == 0).any():
        f, c = (int(i) for i in np.argwhere(counts == 0)[0])
        raise ValueError(f"Condition {c} has no sample in cross-validation fold {f}; every fold needs every condition.")
    test = cells.reshape((n_fold, n_cond) + x.shape[1:])
    n_ch = x.shape[1]
    if prec is not None and prec.ndim == 3:  # one precision per fold: every pair of folds
        covs = np.linalg.inv(prec)
        pairs = [(i, j) for i in range(n_fold) for j in range(i + 1, n_fold)]
        left = np.stack([_whiten(test[i], np.linalg.inv((covs[i] + covs[j]) / 2)) for i, j in pairs])
        right = np.stack([_whiten(test[j], np.linalg.inv((covs[i] + covs[j]) / 2)) for i, j in pairs])
    else:
        sums = test * counts[..., None, None]
        train = (sums.sum(0, keepdims=True) - sums) / (counts.sum(0)[None] - counts)[..., None, None]
        left, right = _whiten(train, prec), _whiten(test, prec)
    n_feat = n_ch * (window if mode == "concatenate" else 1)
    chunk = _chunk_size(n_cond, n_ch, window, mode, left.shape[0])
    out = np.empty((starts.size, n_cond * (n_cond - 1) // 2))
    for j0 in range(0, starts.size, chunk):
        sel = starts[j0:j0 + chunk]
        t0, t1 = int(sel[0]), int(sel[-1]) + window
        if mode == "average":
            kern = _kernels(_window_means(left[..., t0:t1], sel - t0, window),
                            _window_means(right[..., t0:t1], sel - t0, window))
        else:
            k_t = _kernels(left[..., t0:t1], right[..., t0:t1])
            kern = sum(k_t[sel - t0 + d] for d in range(window))
        out[j0:j0 + sel.size] = _kernel_to_rdm(kern).mean(1) / n_feat
    return out


def _kernels(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left[f, :, :, t] @ right[f, :, :, t].T`` for every fold f and time t: (t, f, n, n)."""
    a = np.ascontiguousarray(np.moveaxis(left, -1, 0))
    b = np.ascontiguousarray(np.moveaxis(right, -1, 0))
    return np.matmul(a, b.swapaxes(-1, -2))
