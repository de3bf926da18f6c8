"""RDM computation: a chunked torch path (CPU or GPU) equal to ``rsatoolbox.rdm.calc_rdm``.

The patterns never have to fit in memory whole: the channels are streamed in chunks and
only condition-by-condition Gram matrices (float64) are accumulated, so 10,000 stimuli x
100,000 channels needs the 10,000 x 10,000 result plus one chunk of channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._backend import as_tensor, available_memory_bytes, resolve_device, resolve_dtype
from .._utils import check_option, logger, progress_bar
from ._common import make_rdms
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
        samples from their condition means (:func:`noise_precision`).
    remove_mean : bool
        Subtract each pattern's mean over channels first (euclidean, cosine, mahalanobis,
        crossnobis).
    device : str or torch.device
        Where the products run (``"auto"``: CUDA when available).
    dtype : str
        Accumulation dtype; float64 (default) agrees with rsatoolbox to ~1e-12.
    chunk_size : int, optional
        Channels per chunk; by default chosen from the free memory (``BRAINALIGN_MEMORY_LIMIT``
        caps it).
    %(verbose)s
        Show a progress bar over chunks.

    Returns
    -------
    rsatoolbox.rdm.RDMs
        One RDM (or one per layer), with ``pattern_descriptors`` from the samples table and
        ``rdm_descriptors`` (subject, roi / layer, model).

    Examples
    --------
    >>> import numpy as np
    >>> rdm = calc_rdm(np.random.default_rng(0).standard_normal((5, 20)), device="cpu")
    >>> rdm.n_cond, rdm.dissimilarity_measure
    (5, 'correlation')
    """
    check_option("method", method, RDM_METHODS)
    if _is_features(data):
        return _calc_features(data, method=method, noise=noise, remove_mean=remove_mean,
                              device=device, dtype=dtype, chunk_size=chunk_size, verbose=verbose)
    x, samples, rdm_desc, base_desc = _unpack(data)
    if method == "crossnobis" and descriptor is None:
        raise ValueError(
            "method='crossnobis' needs descriptor= (the samples column naming the condition, e.g. "
            "'stimulus_id'): cross-validation averages repeated measurements of each condition."
        )
    codes, cond_table = _conditions(samples, descriptor, x.shape[0])
    prec = _precision(noise, data, descriptor, x.shape[1], method)
    dev = resolve_device(device)
    tdt = resolve_dtype(dtype, "float64")
    chunk = chunk_size or _auto_chunk(x.shape[0], dev, tdt)
    if method == "crossnobis":
        folds = _folds(samples, descriptor, cv_descriptor, codes)
        vec = _crossnobis(x, codes, folds, prec, remove_mean, dev, tdt, chunk, verbose)
    else:
        center = method == "correlation" or remove_mean
        gram = _gram(x, codes, prec, center, dev, tdt, chunk, verbose)
        vec = _from_gram(gram, method, x.shape[1])
    extra = {"cv_descriptor": cv_descriptor} if method == "crossnobis" and cv_descriptor else {}
    return make_rdms(vec[None], measure=_MEASURE[method] if (method != "mahalanobis" or prec is not None)
                     else "squared euclidean",
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
        rdm = calc_rdm(arr, **kw)
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
        return data.data, data.samples, rdm_desc, {}
    if hasattr(data, "measurements") and hasattr(data, "obs_descriptors"):
        x = np.asarray(data.measurements)
        if x.ndim != 2:
            raise ValueError(f"Only 2-D rsatoolbox Datasets are supported here; got shape {x.shape}.")
        samples = pd.DataFrame({k: list(v) for k, v in data.obs_descriptors.items()}, index=range(len(x)))
        desc = {k: v for k, v in data.descriptors.items() if np.isscalar(v) or isinstance(v, str)}
        return x, samples, dict(desc), {}
    if hasattr(data, "detach") or isinstance(data, np.ndarray) or isinstance(data, (list, tuple)):
        x = data if (hasattr(data, "detach") or isinstance(data, np.ndarray)) else np.asarray(data)
        if x.ndim != 2:
            raise ValueError(f"calc_rdm needs data of shape (n_samples, n_channels); got shape {tuple(x.shape)}.")
        return x, pd.DataFrame(index=range(x.shape[0])), {}, {}
    raise TypeError(
        f"calc_rdm takes BrainData, Features, an rsatoolbox Dataset or an array; got {type(data).__name__}."
    )


def _conditions(samples: pd.DataFrame, descriptor: str | None, n: int) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Condition code of each sample (None: no averaging) and the condition table."""
    if descriptor is None:
        table = samples.reset_index(drop=True).copy()
        table["index"] = np.arange(n)
        return None, table
    if descriptor not in samples.columns:
        raise KeyError(f"descriptor {descriptor!r} is not a samples column; columns: {list(samples.columns)}.")
    values = samples[descriptor].to_numpy()
    uniq, codes = np.unique(values, return_inverse=True)
    keep = {descriptor: uniq}
    grouped = samples.groupby(codes, sort=True)
    for col in samples.columns:
        if col != descriptor and (grouped[col].nunique(dropna=False) <= 1).all():
            keep[col] = grouped[col].first().to_numpy()
    table = pd.DataFrame(keep)
    table["index"] = np.arange(len(uniq))
    return codes.astype(np.int64), table


def _precision(noise: Any, data: Any, descriptor: str | None, n_channels: int, method: str):
    if noise is None or method not in ("mahalanobis", "crossnobis"):
        if noise is not None:
            logger.info("noise= is ignored for method=%r (as in rsatoolbox).", method)
        return None
    if isinstance(noise, str):
        if descriptor is None:
            raise ValueError(f"noise={noise!r} estimates the noise from repetitions: it needs descriptor=.")
        return noise_precision(data, descriptor=descriptor, method=noise)
    prec = np.array(noise, dtype=np.float64)  # a private, writable copy
    if prec.shape not in ((n_channels,), (n_channels, n_channels)):
        raise ValueError(
            f"noise must be a precision of shape ({n_channels},) or ({n_channels}, {n_channels}) for "
            f"{n_channels} channels; got shape {prec.shape}."
        )
    if prec.ndim == 2 and not np.any(prec - np.diag(np.diag(prec))):
        prec = np.diag(prec).copy()
    return prec


def _auto_chunk(n_rows: int, device, dtype) -> int:
    itemsize = 8 if "64" in str(dtype) else 4
    budget = min(available_memory_bytes(device) // 8, 512 * 1024**2)
    return int(max(16, budget // max(1, 4 * n_rows * itemsize)))


# ------------------------------------------------------------------------------ kernels
def _chunks(x: Any, chunk: int, verbose: bool):
    n_ch = x.shape[1]
    starts = range(0, n_ch, chunk)
    for s in progress_bar(starts, verbose=verbose, total=len(starts), desc="RDM chunks"):
        yield slice(s, min(s + chunk, n_ch))


def _block(x: Any, sl: slice, dev, tdt):
    return as_tensor(x[:, sl] if hasattr(x, "detach") else np.asarray(x[:, sl]), device=dev, dtype=tdt)


def _average(block, codes_t, counts_t, n_cond: int):
    import torch

    out = torch.zeros((n_cond, block.shape[1]), dtype=block.dtype, device=block.device)
    out.index_add_(0, codes_t, block)
    return out / counts_t[:, None]


def _gram(x, codes, prec, center, dev, tdt, chunk, verbose) -> np.ndarray:
    """Condition x condition inner products of the (averaged, centred, whitened) patterns."""
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
        return (pats @ p @ pats.T).cpu().numpy()
    gram = torch.zeros((n_cond, n_cond), dtype=tdt, device=dev)
    w = None if prec is None else torch.as_tensor(prec, dtype=tdt, device=dev)
    for sl in _chunks(x, chunk, verbose):
        a = patterns(sl)
        if means is not None:
            a = a - means[:, None]
        if dev.type == "cpu":  # numpy spots a @ a.T and uses BLAS syrk (half the flops)
            an = a.numpy()
            bn = an if w is None else an * w[sl].numpy()[None, :]
            gram += torch.from_numpy(an @ bn.T)
        else:
            b = a if w is None else a * w[sl][None, :]
            gram += a @ b.T
    return gram.cpu().numpy()


def _from_gram(gram: np.ndarray, method: str, n_ch: int, iu: tuple | None = None) -> np.ndarray:
    """Upper-triangle dissimilarities from a Gram matrix (``iu``: precomputed triu indices)."""
    iu = np.triu_indices(gram.shape[0], 1) if iu is None else iu
    d = np.diag(gram)
    if method in ("correlation", "cosine"):
        norm = np.sqrt(d)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 - gram[iu] / (norm[iu[0]] * norm[iu[1]])
    return (d[iu[0]] + d[iu[1]] - 2.0 * gram[iu]) / n_ch


def _folds(samples, descriptor, cv_descriptor, codes) -> np.ndarray:
    if cv_descriptor is not None:
        if cv_descriptor not in samples.columns:
            raise KeyError(f"cv_descriptor {cv_descriptor!r} is not a samples column; columns: {list(samples.columns)}.")
        _, folds = np.unique(samples[cv_descriptor].to_numpy(), return_inverse=True)
        return folds.astype(np.int64)
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
    return folds


def _crossnobis(x, codes, folds, prec, remove_mean, dev, tdt, chunk, verbose) -> np.ndarray:
    import torch

    n_cond, n_fold, n_ch = int(codes.max()) + 1, int(folds.max()) + 1, x.shape[1]
    if n_fold < 2:
        raise ValueError("crossnobis needs at least 2 cross-validation folds (e.g. 2 runs); got 1.")
    cell = torch.as_tensor(folds * n_cond + codes, device=dev)
    counts = torch.bincount(cell, minlength=n_fold * n_cond).to(tdt).reshape(n_fold, n_cond)
    if (counts == 0).any():
        f, c = (int(i) for i in torch.nonzero(counts == 0)[0])
        raise ValueError(f"Condition {c} has no sample in cross-validation fold {f}; every fold needs every condition.")
    train_counts = counts.sum(0, keepdim=True) - counts

    def fold_means(sl):
        b = _block(x, sl, dev, tdt)
        sums = torch.zeros((n_fold * n_cond, b.shape[1]), dtype=tdt, device=dev).index_add_(0, cell, b)
        sums = sums.reshape(n_fold, n_cond, -1)
        test = sums / counts[..., None]
        train = (sums.sum(0, keepdim=True) - sums) / train_counts[..., None]
        return train, test

    mtrain = mtest = None
    if remove_mean:
        mtrain = torch.zeros((n_fold, n_cond), dtype=tdt, device=dev)
        mtest = torch.zeros_like(mtrain)
        for sl in _chunks(x, chunk, False):
            tr, te = fold_means(sl)
            mtrain += tr.sum(-1)
            mtest += te.sum(-1)
        mtrain, mtest = mtrain / n_ch, mtest / n_ch
    full = prec is not None and prec.ndim == 2
    if full:
        parts = [fold_means(sl) for sl in _chunks(x, chunk, verbose)]
        tr = torch.cat([p[0] for p in parts], -1)
        te = torch.cat([p[1] for p in parts], -1)
        if remove_mean:
            tr, te = tr - mtrain[..., None], te - mtest[..., None]
        p = torch.as_tensor(prec, dtype=tdt, device=dev)
        kernel = tr @ p @ te.transpose(1, 2)
    else:
        w = None if prec is None else torch.as_tensor(prec, dtype=tdt, device=dev)
        kernel = torch.zeros((n_fold, n_cond, n_cond), dtype=tdt, device=dev)
        for sl in _chunks(x, chunk, verbose):
            tr, te = fold_means(sl)
            if remove_mean:
                tr, te = tr - mtrain[..., None], te - mtest[..., None]
            if w is not None:
                te = te * w[sl]
            kernel += tr @ te.transpose(1, 2)
    k = kernel.cpu().numpy()
    diag = np.diagonal(k, axis1=1, axis2=2)
    iu = np.triu_indices(n_cond, 1)
    rdm = diag[:, iu[0]] + diag[:, iu[1]] - k[:, iu[0], iu[1]] - k[:, iu[1], iu[0]]
    return rdm.mean(0) / n_ch
