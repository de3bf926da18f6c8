"""RDM computation: a chunked torch path (CPU or GPU) equal to ``rsatoolbox.rdm.calc_rdm``.

The patterns never have to fit in memory whole: the channels are streamed in chunks and
only condition-by-condition Gram matrices (float64) are accumulated, so 10,000 stimuli x
100,000 channels needs the 10,000 x 10,000 result plus one chunk of channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._backend import as_tensor, available_memory_bytes, resolve_device, resolve_dtype
from .._docs import fill_doc
from .._utils import check_option, logger, progress_bar
from ._common import condition_table, make_rdms
from ._noise import noise_precision

__all__ = ["calc_rdm", "RDM_METHODS"]

RDM_METHODS = ("euclidean", "correlation", "cosine", "mahalanobis", "crossnobis")
_MEASURE = {"euclidean": "squared euclidean", "correlation": "correlation", "cosine": "cosine",
            "mahalanobis": "squared mahalanobis", "crossnobis": "crossnobis"}


@fill_doc
def calc_rdm(data: Any, *, method: str = "correlation", descriptor: str | None = None,
             cv_descriptor: str | None = None, noise: Any = None, remove_mean: bool = False,
             device: Any = "auto", dtype: Any = "float64", chunk_size: int | None = None,
             verbose: bool = False):
    """Representational dissimilarity matrices from brain data, features or arrays.

    Parameters
    ----------
    data : BrainData, Features, rsatoolbox Dataset, or array of shape (n_samples, n_channels)
        ``BrainData``: the samples are the patterns (2-D data; for data with a time axis use
        :func:`brainalign.rsa.time_resolved`). ``Features``: one RDM per layer, with
        ``layer`` and ``model`` rdm descriptors. Arrays may be numpy arrays, memory-maps
        or torch tensors.
    method : {"correlation", "euclidean", "cosine", "mahalanobis", "crossnobis"}
        Conventions of rsatoolbox: ``euclidean`` is the squared Euclidean distance divided
        by the number of channels, ``mahalanobis`` ``(x-y)' P (x-y) / n_channels``,
        ``correlation`` ``1 - r``, ``cosine`` ``1 - cos``, ``crossnobis`` the leave-one-fold-out
        cross-validated Mahalanobis distance ``(a_i-a_j)' P (b_i-b_j) / n_channels``
        (``a``: mean of the other folds, ``b``: the held-out fold), averaged over folds.
    descriptor : str, optional
        A samples column (BrainData) or obs descriptor (Dataset) naming the condition;
        samples sharing a value are averaged. The conditions are sorted by value (as in
        rsatoolbox). Required for crossnobis.
    cv_descriptor : str, optional
        The column naming the cross-validation folds of crossnobis (e.g. ``"run"``); by
        default the k-th repetition of each condition forms fold k (rsatoolbox's default).
    noise : array, str or None
        Noise precision: None (identity), an array of shape (n_channels,) (diagonal) or
        (n_channels, n_channels), or an estimator name (``"shrinkage_diag"``,
        ``"shrinkage_eye"``, ``"diag"``, ``"full"``) to compute it from the deviations of the
        samples from their condition means (:func:`noise_precision`). For crossnobis also
        one precision per cross-validation fold, of shape (n_folds, n_channels, n_channels)
        in the order of the sorted fold values (e.g. ``noise_precision(brain,
        descriptor="stimulus_id", by="run")``): each is the precision of that fold's
        condition means, and every pair of folds ``(i, j)`` uses the inverse of the mean of
        their two covariances, averaged over pairs (rsatoolbox's convention for a list of
        precisions).
    remove_mean : bool
        Subtract each pattern's mean over channels first (euclidean, cosine, mahalanobis,
        crossnobis).
    device : str or torch.device
        Where the products run (``"auto"``: CUDA when available).
    dtype : str
        Accumulation dtype; float64 (default) agrees with rsatoolbox to ~1e-12.
    chunk_size : int, optional
        Channels per chunk (a positive int); by default chosen from the free memory
        (``BRAINALIGN_MEMORY_LIMIT`` caps it).
    %(verbose)s
        Show a progress bar over chunks.

    Returns
    -------
    rsatoolbox.rdm.RDMs
        One RDM (or one per layer), with ``pattern_descriptors`` from the samples table and
        ``rdm_descriptors`` (subject, roi / layer, model).

    Raises
    ------
    ValueError
        When a dissimilarity would be undefined, naming what is at fault: a NaN or inf value
        (its sample and channel), no channel, fewer than 2 conditions, a condition whose
        pattern is constant over channels (``correlation``) or all zero (``cosine``).
    TypeError
        For data that are not numeric (e.g. strings).

    Examples
    --------
    >>> import numpy as np
    >>> rdm = calc_rdm(np.random.default_rng(0).standard_normal((5, 20)), device="cpu")
    >>> rdm.n_cond, rdm.dissimilarity_measure
    (5, 'correlation')
    """
    check_option("method", method, RDM_METHODS)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int (channels per chunk) or None; got {chunk_size!r}.")
    if _is_features(data):
        return _calc_features(data, method=method, noise=noise, remove_mean=remove_mean,
                              device=device, dtype=dtype, chunk_size=chunk_size, verbose=verbose)
    x, samples, rdm_desc, base_desc = _unpack(data)
    if method == "crossnobis" and descriptor is None:
        raise ValueError(
            "method='crossnobis' needs descriptor= (the samples column naming the condition, e.g. "
            "'stimulus_id'): cross-validation averages repeated measurements of each condition."
        )
    codes, cond_table = condition_table(samples, descriptor, x.shape[0])
    if len(cond_table) < 2:
        raise ValueError(
            f"An RDM needs at least 2 conditions; the data have {len(cond_table)} "
            f"({x.shape[0]} samples{'' if descriptor is None else f' averaged by {descriptor!r}'})."
        )
    dev = resolve_device(device)
    tdt = resolve_dtype(dtype, "float64")
    chunk = chunk_size or _auto_chunk(x.shape[0], dev, tdt)
    if method == "crossnobis":
        folds, fold_values = _folds(samples, descriptor, cv_descriptor, codes)
        prec = _precision(noise, data, descriptor, x.shape[1], method, n_folds=len(fold_values))
        if prec is not None and prec.ndim == 3:
            vec = _crossnobis_per_fold(x, codes, folds, prec, remove_mean, dev, tdt, chunk, verbose)
        else:
            vec = _crossnobis(x, codes, folds, prec, remove_mean, dev, tdt, chunk, verbose)
    else:
        prec = _precision(noise, data, descriptor, x.shape[1], method)
        center = method == "correlation" or remove_mean
        gram, sumsq = _gram(x, codes, prec, center, dev, tdt, chunk, verbose)
        if method in ("correlation", "cosine"):
            check_norms(np.diag(gram), sumsq, method, cond_table, descriptor)
        vec = _from_gram(gram, method, x.shape[1])
    extra = {"cv_descriptor": cv_descriptor} if method == "crossnobis" and cv_descriptor else {}
    return make_rdms(vec[None], dissimilarity_measure=_MEASURE[method]
                     if (method != "mahalanobis" or prec is not None) else "squared euclidean",
                     rdm_descriptors={k: [v] for k, v in rdm_desc.items()},
                     pattern_descriptors={c: list(cond_table[c]) for c in cond_table.columns},
                     descriptors={**base_desc, **extra})


# ------------------------------------------------------------------------------ inputs
def _is_features(data: Any) -> bool:
    return hasattr(data, "layer_names") and hasattr(data, "items")


def _calc_features(features, **kw):
    from rsatoolbox.rdm import concat

    out = []
    for name in features.layer_names:
        arr = features[name]
        arr = arr.reshape(arr.shape[0], -1)
        try:
            rdm = calc_rdm(arr, **kw)
        except ValueError as err:
            raise ValueError(f"Layer {name!r} of the features: {err}") from None
        rdm.rdm_descriptors["layer"] = [name]
        rdm.rdm_descriptors["model"] = [features.model_id]
        rdm.pattern_descriptors["stimulus_id"] = list(features.items)
        out.append(rdm)
    return concat(out)


def _unpack(data: Any) -> tuple[Any, pd.DataFrame, dict, dict]:
    """(array-like of shape (n_samples, n_channels), samples table, rdm descriptors, descriptors)."""
    if hasattr(data, "samples") and hasattr(data, "channels") and hasattr(data, "data"):
        if data.data.ndim == 3:
            raise ValueError(
                f"This BrainData has a time axis (shape {data.shape}); calc_rdm needs 2-D data. Use "
                "brainalign.rsa.time_resolved for one RDM per time point, or select one time point."
            )
        rdm_desc = {}
        if data.subject is not None:
            rdm_desc["subject"] = data.subject
        if "roi" in data.channels and data.channels["roi"].nunique() == 1:
            rdm_desc["roi"] = data.channels["roi"].iloc[0]
        return _check_numeric(data.data), data.samples, rdm_desc, {}
    if hasattr(data, "measurements") and hasattr(data, "obs_descriptors"):
        x = np.asarray(data.measurements)
        if x.ndim != 2:
            raise ValueError(f"Only 2-D rsatoolbox Datasets are supported here; got shape {x.shape}.")
        samples = pd.DataFrame({k: list(v) for k, v in data.obs_descriptors.items()}, index=range(len(x)))
        desc = {k: v for k, v in data.descriptors.items() if np.isscalar(v) or isinstance(v, str)}
        return _check_numeric(x), samples, dict(desc), {}
    if hasattr(data, "detach") or isinstance(data, np.ndarray) or isinstance(data, (list, tuple)):
        x = data if (hasattr(data, "detach") or isinstance(data, np.ndarray)) else np.asarray(data)
        if x.ndim != 2:
            raise ValueError(f"calc_rdm needs data of shape (n_samples, n_channels); got shape {tuple(x.shape)}.")
        return _check_numeric(x), pd.DataFrame(index=range(x.shape[0])), {}, {}
    raise TypeError(
        f"calc_rdm takes BrainData, Features, an rsatoolbox Dataset or an array; got {type(data).__name__}."
    )


def _check_numeric(x: Any) -> Any:
    """``x`` if it is a numeric 2-D array with at least one channel, else a clear error."""
    kind = "f" if hasattr(x, "detach") and x.is_floating_point() else getattr(getattr(x, "dtype", None), "kind", "O")
    if hasattr(x, "detach") and not x.is_floating_point() and not x.is_complex():
        kind = "i"
    if kind not in "biuf":
        raise TypeError(
            f"calc_rdm needs numeric data; got an array of dtype {x.dtype} (e.g. {x.ravel()[0]!r}). "
            "Convert it with np.asarray(data, dtype=float) if the values are numbers."
        )
    if x.shape[1] == 0:
        raise ValueError(f"The data have no channel (shape {tuple(x.shape)}): an RDM needs at least 1 feature.")
    return x


def _precision(noise: Any, data: Any, descriptor: str | None, n_channels: int, method: str,
               n_folds: int | None = None):
    if noise is None or method not in ("mahalanobis", "crossnobis"):
        if noise is not None:
            logger.info("noise= is ignored for method=%r (as in rsatoolbox).", method)
        return None
    if isinstance(noise, str):
        if descriptor is None:
            raise ValueError(f"noise={noise!r} estimates the noise from repetitions: it needs descriptor=.")
        return noise_precision(data, descriptor=descriptor, method=noise)
    prec = np.array(noise, dtype=np.float64)  # a private, writable copy
    shapes = [(n_channels,), (n_channels, n_channels)]
    if n_folds is not None:
        shapes.append((n_folds, n_channels, n_channels))
    if prec.shape not in shapes:
        per_fold = f" or one per fold ({n_folds}, {n_channels}, {n_channels})" if n_folds is not None else ""
        raise ValueError(
            f"noise must be a precision of shape ({n_channels},) or ({n_channels}, {n_channels}){per_fold} for "
            f"{n_channels} channels; got shape {prec.shape}."
        )
    if not np.isfinite(prec).all():
        raise ValueError("noise (the precision) contains NaN or inf values.")
    if prec.ndim == 2 and not np.any(prec - np.diag(np.diag(prec))):
        prec = np.diag(prec).copy()
    return prec


def _auto_chunk(n_rows: int, device, dtype) -> int:
    itemsize = 8 if "64" in str(dtype) else 4
    budget = min(available_memory_bytes(device) // 8, 512 * 1024**2)
    return int(max(16, budget // max(1, 4 * n_rows * itemsize)))


def _condition_name(table: pd.DataFrame, descriptor: str | None, i: int) -> str:
    if descriptor is not None and descriptor in table:
        return f"condition {table[descriptor].iloc[i]!r} (row {i} of the RDM)"
    return f"sample {i}"


def check_norms(norm2: np.ndarray, sumsq: np.ndarray, method: str, table: pd.DataFrame,
                descriptor: str | None, where: str = "") -> None:
    """Raise when a correlation / cosine distance is undefined: a pattern that is constant over
    channels (its centred norm is 0 up to rounding) or all zero (cosine)."""
    if method == "cosine":
        bad = np.flatnonzero(norm2 <= 0)
        what = "all zero"
        fix = "use method='euclidean', or drop the condition"
    else:  # centred sum of squares against the raw one: rounding leaves ~eps^2 of it
        bad = np.flatnonzero(norm2 <= 1e-24 * sumsq)
        what = "constant over channels"
        fix = "use method='euclidean' or 'cosine', or drop the condition"
    if bad.size:
        names = ", ".join(_condition_name(table, descriptor, int(i)) for i in bad[:3])
        subject = (f"The pattern of {names} is" if bad.size == 1 else
                   f"The patterns of {names}{' ...' if bad.size > 3 else ''} ({bad.size} in all) are")
        raise ValueError(
            f"{subject} {what}{where}: the {method} distance to every other condition is undefined (0 / 0). "
            f"{fix[0].upper()}{fix[1:]}."
        )


# ------------------------------------------------------------------------------ kernels
def _chunks(x: Any, chunk: int, verbose: bool):
    n_ch = x.shape[1]
    starts = range(0, n_ch, chunk)
    for s in progress_bar(starts, verbose=verbose, total=len(starts), desc="RDM chunks"):
        yield slice(s, min(s + chunk, n_ch))


def _block(x: Any, sl: slice, dev, tdt):
    """Channels ``sl`` of the data as a tensor; NaN / inf raise, naming the sample and channel."""
    import torch

    b = as_tensor(x[:, sl] if hasattr(x, "detach") else np.asarray(x[:, sl]), device=dev, dtype=tdt)
    if not bool(torch.isfinite(b.sum())) and not bool(torch.isfinite(b).all()):  # one reduction in the usual case
        bad = ~torch.isfinite(b)
        row, col = (int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(
            f"The data contain {int(bad.sum())} NaN/inf value(s) in channels {sl.start}-{sl.stop - 1}; the first "
            f"at sample {row}, channel {sl.start + col} (value {float(b[row, col])}). Dissimilarities would be "
            "undefined: drop that channel (or sample), or impute the missing values first."
        )
    return b


def _average(block, codes_t, counts_t, n_cond: int):
    import torch

    out = torch.zeros((n_cond, block.shape[1]), dtype=block.dtype, device=block.device)
    out.index_add_(0, codes_t, block)
    return out / counts_t[:, None]


def _gram(x, codes, prec, center, dev, tdt, chunk, verbose) -> tuple[np.ndarray, np.ndarray]:
    """Condition x condition inner products of the (averaged, centred, whitened) patterns, and
    the raw sum of squares of each (averaged, unwhitened) pattern, for the degeneracy checks."""
    import torch

    n_ch = x.shape[1]
    n_cond = x.shape[0] if codes is None else int(codes.max()) + 1
    codes_t = counts_t = None
    if codes is not None:
        codes_t = torch.as_tensor(codes, device=dev)
        counts_t = torch.bincount(codes_t, minlength=n_cond).to(tdt)
    full = prec is not None and prec.ndim == 2

    def patterns(sl):
        b = _block(x, sl, dev, tdt)
        return b if codes is None else _average(b, codes_t, counts_t, n_cond)

    means = None
    if center:  # first pass: mean of each (averaged) pattern over all channels
        means = torch.zeros(n_cond, dtype=tdt, device=dev)
        for sl in _chunks(x, chunk, False):
            means += patterns(sl).sum(1)
        means /= n_ch
    if full:  # a full precision couples channels: materialise the averaged patterns
        pats = torch.cat([patterns(sl) for sl in _chunks(x, chunk, verbose)], dim=1)
        if means is not None:
            pats = pats - means[:, None]
        p = torch.as_tensor(prec, dtype=tdt, device=dev)
        gram = (pats @ p @ pats.T).cpu().numpy()
        sumsq = (pats * pats).sum(1).cpu().numpy()
    else:
        gram_t = torch.zeros((n_cond, n_cond), dtype=tdt, device=dev)
        w = None if prec is None else torch.as_tensor(prec, dtype=tdt, device=dev)
        for sl in _chunks(x, chunk, verbose):
            a = patterns(sl)
            if means is not None:
                a = a - means[:, None]
            if dev.type == "cpu":  # numpy spots a @ a.T and uses BLAS syrk (half the flops)
                an = a.numpy()
                bn = an if w is None else an * w[sl].numpy()[None, :]
                gram_t += torch.from_numpy(an @ bn.T)
            else:
                b = a if w is None else a * w[sl][None, :]
                gram_t += a @ b.T
        gram = gram_t.cpu().numpy()
        sumsq = np.diag(gram) if w is None else None
    if means is not None and sumsq is not None:  # raw = centred + n * mean^2
        sumsq = sumsq + n_ch * means.cpu().numpy() ** 2
    return gram, sumsq


def _from_gram(gram: np.ndarray, method: str, n_ch: int, iu: tuple | None = None) -> np.ndarray:
    """Upper-triangle dissimilarities from Gram matrices of shape (..., n, n): ``1 - cos`` of the
    (centred) patterns for correlation / cosine, ``(g_ii + g_jj - 2 g_ij) / n_ch`` otherwise
    (``iu``: precomputed triu indices)."""
    n = gram.shape[-1]
    iu = np.triu_indices(n, 1) if iu is None else iu
    flat = gram.reshape(gram.shape[:-2] + (n * n,))
    d = flat[..., :: n + 1]
    if method in ("correlation", "cosine"):
        with np.errstate(invalid="ignore", divide="ignore"):  # undefined (0-norm) patterns give NaN
            inv = 1.0 / np.sqrt(d)
            off = np.take(flat, iu[0] * n + iu[1], axis=-1)
            off *= np.take(inv, iu[0], axis=-1)
            off *= np.take(inv, iu[1], axis=-1)
        return np.subtract(1.0, off, out=off)
    off = np.take(flat, iu[0] * n + iu[1], axis=-1)
    out = np.take(d, iu[0], axis=-1)
    out += np.take(d, iu[1], axis=-1)
    off *= 2.0
    out -= off
    out /= n_ch
    return out


def _folds(samples, descriptor, cv_descriptor, codes) -> tuple[np.ndarray, np.ndarray]:
    """Fold code of each sample and the sorted fold values."""
    if cv_descriptor is not None:
        if cv_descriptor not in samples.columns:
            raise KeyError(f"cv_descriptor {cv_descriptor!r} is not a samples column; columns: {list(samples.columns)}.")
        values, folds = np.unique(samples[cv_descriptor].to_numpy(), return_inverse=True)
        return folds.astype(np.int64).ravel(), values
    counts = np.bincount(codes)
    if not np.all(counts == counts[0]):
        raise ValueError(
            f"Without cv_descriptor every condition needs the same number of repetitions (the k-th "
            f"repetition forms fold k); counts range from {counts.min()} to {counts.max()}. Pass cv_descriptor='run'."
        )
    folds = np.empty(codes.size, np.int64)
    for c in range(counts.size):
        idx = np.flatnonzero(codes == c)
        folds[idx] = np.arange(idx.size)
    return folds, np.arange(int(counts[0]))


def _fold_means(x, codes, folds, dev, tdt, chunk, verbose, sl=None):
    """(train, test) condition means per fold of channels ``sl`` (all channels if None): test is
    the fold's own mean, train the mean of the other folds; each (n_fold, n_cond, n_ch)."""
    import torch

    n_cond, n_fold = int(codes.max()) + 1, int(folds.max()) + 1
    if n_fold < 2:
        raise ValueError("crossnobis needs at least 2 cross-validation folds (e.g. 2 runs); got 1.")
    cell = torch.as_tensor(folds * n_cond + codes, device=dev)
    counts = torch.bincount(cell, minlength=n_fold * n_cond).to(tdt).reshape(n_fold, n_cond)
    if (counts == 0).any():
        f, c = (int(i) for i in torch.nonzero(counts == 0)[0])
        raise ValueError(f"Condition {c} has no sample in cross-validation fold {f}; every fold needs every condition.")
    train_counts = counts.sum(0, keepdim=True) - counts
    slices = [sl] if sl is not None else list(_chunks(x, chunk, verbose))
    tests, trains = [], []
    for part in slices:
        b = _block(x, part, dev, tdt)
        sums = torch.zeros((n_fold * n_cond, b.shape[1]), dtype=tdt, device=dev).index_add_(0, cell, b)
        sums = sums.reshape(n_fold, n_cond, -1)
        tests.append(sums / counts[..., None])
        trains.append((sums.sum(0, keepdim=True) - sums) / train_counts[..., None])
    return torch.cat(trains, -1), torch.cat(tests, -1)


def _kernel_to_rdm(k: np.ndarray) -> np.ndarray:
    """Cross-validated distances from kernels (..., n, n): k_ii + k_jj - k_ij - k_ji (upper triangles)."""
    n = k.shape[-1]
    diag = np.diagonal(k, axis1=-2, axis2=-1)
    iu = np.triu_indices(n, 1)
    return diag[..., iu[0]] + diag[..., iu[1]] - k[..., iu[0], iu[1]] - k[..., iu[1], iu[0]]


def _crossnobis(x, codes, folds, prec, remove_mean, dev, tdt, chunk, verbose) -> np.ndarray:
    import torch

    n_ch = x.shape[1]
    if prec is not None and prec.ndim == 2:  # a full precision couples channels: materialise
        tr, te = _fold_means(x, codes, folds, dev, tdt, chunk, verbose)
        if remove_mean:
            tr, te = tr - tr.mean(-1, keepdim=True), te - te.mean(-1, keepdim=True)
        kernel = tr @ torch.as_tensor(prec, dtype=tdt, device=dev) @ te.transpose(1, 2)
        return _kernel_to_rdm(kernel.cpu().numpy()).mean(0) / n_ch
    w = None if prec is None else torch.as_tensor(prec, dtype=tdt, device=dev)
    m_tr = m_te = 0.0
    if remove_mean:  # first pass: the mean of every fold's train / test pattern over channels
        for sl in _chunks(x, chunk, False):
            tr, te = _fold_means(x, codes, folds, dev, tdt, chunk, False, sl=sl)
            m_tr, m_te = m_tr + tr.sum(-1, keepdim=True), m_te + te.sum(-1, keepdim=True)
        m_tr, m_te = m_tr / n_ch, m_te / n_ch
    kernel = 0.0
    for sl in _chunks(x, chunk, verbose):
        tr, te = _fold_means(x, codes, folds, dev, tdt, chunk, False, sl=sl)
        tr, te = tr - m_tr, te - m_te
        if w is not None:
            te = te * w[sl]
        kernel = kernel + tr @ te.transpose(1, 2)
    return _kernel_to_rdm(kernel.cpu().numpy()).mean(0) / n_ch


def _crossnobis_per_fold(x, codes, folds, precs, remove_mean, dev, tdt, chunk, verbose) -> np.ndarray:
    """rsatoolbox's crossnobis with one precision per fold: every pair of folds (i < j), the
    fold means compared with the inverse of the mean of the two fold covariances."""
    import torch

    _, means = _fold_means(x, codes, folds, dev, tdt, chunk, verbose)  # per-fold condition means
    if remove_mean:
        means = means - means.mean(-1, keepdim=True)
    covs = np.linalg.inv(precs)
    rdms = []
    n_fold = means.shape[0]
    for i in range(n_fold):
        for j in range(i + 1, n_fold):
            p = torch.as_tensor(np.linalg.inv((covs[i] + covs[j]) / 2), dtype=tdt, device=dev)
            rdms.append(_kernel_to_rdm((means[i] @ p @ means[j].T).cpu().numpy()))
    return np.mean(rdms, axis=0) / x.shape[1]
