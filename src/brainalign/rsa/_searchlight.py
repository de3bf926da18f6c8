"""Searchlight RSA: spheres over fMRI voxels, or spatio-temporal patches over M/EEG sensors.

Spheres are batched: a chunk of spheres is gathered into one padded array (conditions x
voxels of every sphere), centred per sphere, turned into Gram matrices by one batched
product, into dissimilarities by one vectorised expression, and compared with every model
by one batched :func:`compare` call. On a voxel grid the spheres are the grid offsets within
the radius (exact for any affine), looked up in an index volume: no per-sphere Python work.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._docs import fill_doc
from .._utils import Bunch, check_n_jobs, check_option, parallel_map
from ._common import (average_conditions, condition_labels, condition_table, match_conditions, memory_budget,
                      rdm_vectors, reorder_vectors)
from ._compare import COMPARE_METHODS, compare_vectors
from ._inference import _names
from ._rdm import _from_gram

__all__ = ["searchlight"]


@fill_doc
def searchlight(brain: Any, model_rdms: Any, *, radius: float = 6.0, rdm_method: str = "correlation",
                compare_method: str = "spearman", descriptor: str | None = None, min_voxels: int = 5,
                window: int | None = None, step: int = 1, window_mode: str = "concatenate",
                chunk_size: int | None = None, n_jobs: int = 1, verbose: bool = False) -> Bunch:
    """Searchlight RSA: the RDM of every sphere (and time window) vs each model RDM.

    Parameters
    ----------
    brain : BrainData
        Volume or surface data (n_samples, n_voxels) with voxel coordinates (channels
        ``x, y, z`` in mm, or ``i, j, k`` and ``space["affine"]``), or epoched M/EEG
        (n_samples, n_channels, n_times) with sensor positions in the channels ``x, y, z``
        (metres, as :func:`brainalign.datasets.load_mne` stores them): a spatio-temporal
        searchlight, one RDM per sensor neighbourhood and time window.
    model_rdms : rsatoolbox.rdm.RDMs or array, n_models RDMs over the conditions
        Reordered to the data's conditions when both share a condition label (see
        :func:`time_resolved`); otherwise matched by position.
    radius : float
        Sphere radius in the units of the coordinates (mm for volumes, m for MNE sensors);
        a voxel belongs to the sphere when its centre is within ``radius`` (inclusive).
    rdm_method : {"correlation", "euclidean"}
    compare_method : str
        Method of :func:`compare`.
    descriptor : str, optional
        Samples column to average repetitions by (conditions sorted by value).
    min_voxels : int
        Spheres with fewer voxels (channels) get NaN.
    window : int, optional
        Epoched data: time points per patch (default 1); patches start every ``step`` points.
    step : int
        Hop between time windows.
    window_mode : {"concatenate", "average"}
        ``"concatenate"``: the window's time points are features beside the sphere's
        channels (mne-rsa's ``temporal_radius = (window - 1) / 2 / sfreq``); ``"average"``:
        the sphere's pattern averaged over the window.
    chunk_size : int, optional
        Spheres (patches) per batch; by default chosen to keep a batch within ~64 MB.
    %(n_jobs)s
        Threads working on chunks in parallel (numpy releases the GIL in the products).
    %(verbose)s

    Returns
    -------
    Bunch
        ``maps``: array (n_models, n_voxels), or (n_models, n_channels, n_windows) for
        epochs; ``n_voxels``: voxels (channels) per sphere; ``times``: window centres (epochs);
        ``images``: one brain-space image per model when the data have a volume space;
        ``names``. Spheres whose RDM is undefined (a constant pattern) get NaN, with a warning.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import BrainData
    >>> ijk = np.argwhere(np.ones((4, 4, 4)))
    >>> brain = BrainData(np.random.default_rng(0).standard_normal((6, 64)),
    ...                   channels={"x": ijk[:, 0], "y": ijk[:, 1], "z": ijk[:, 2]})
    >>> searchlight(brain, np.random.default_rng(1).random(15), radius=1.0).maps.shape
    (1, 64)
    """
    check_option("rdm_method", rdm_method, ["correlation", "euclidean"])
    check_option("compare_method", compare_method, COMPARE_METHODS)
    check_option("window_mode", window_mode, ["concatenate", "average"])
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be a positive number (in the units of the coordinates); got {radius}.")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int or None; got {chunk_size!r}.")
    check_n_jobs(n_jobs)
    data = np.asarray(brain.data)
    epochs = data.ndim == 3
    codes, table = condition_table(brain.samples, descriptor, data.shape[0])
    n_cond = len(table)
    if n_cond < 2:
        raise ValueError(f"A searchlight RDM needs at least 2 conditions; the data have {n_cond}.")
    x = average_conditions(data, codes, n_cond)
    if not np.isfinite(x).all():
        raise ValueError("The data contain NaN/inf values; drop those voxels / channels before the searchlight.")
    vm = rdm_vectors(model_rdms, "model_rdms")
    if vm.shape[1] != n_cond * (n_cond - 1) // 2:
        raise ValueError(
            f"model_rdms describe {vm.shape[1]} pairs but the data have {n_cond} conditions "
            f"({n_cond * (n_cond - 1) // 2} pairs)."
        )
    perm = match_conditions(condition_labels(model_rdms), {k: list(table[k]) for k in table if k != "index"},
                            source_name="model_rdms", target_name="the data's conditions", prefer=descriptor)
    if perm is not None:
        vm = reorder_vectors(vm, perm)
    neighbours = _neighbours(brain, radius, epochs)
    sizes = (neighbours >= 0).sum(1)
    if epochs and sizes.min() == data.shape[1]:
        raise ValueError(
            f"radius={radius} puts all {data.shape[1]} channels in every sphere; the sensor coordinates are in "
            f"the units of channels x, y, z (metres for MNE data: e.g. radius=0.04)."
        )
    valid = np.flatnonzero(sizes >= min_voxels)
    names = _names(model_rdms, vm.shape[0], "model")
    if epochs:
        return _spatio_temporal(x, brain, neighbours, sizes, valid, vm, names, rdm_method, compare_method,
                                window or 1, step, window_mode, chunk_size, n_jobs, verbose)
    if window is not None:
        raise ValueError("window= is for epoched data (n_samples, n_channels, n_times); these data are 2-D.")
    maps = np.full((vm.shape[0], data.shape[1]), np.nan)
    x_t = np.concatenate([x.T, np.zeros((1, n_cond))])  # (n_voxels + 1, n_cond); row -1 pads
    width = int(sizes.max(initial=1))
    chunk = chunk_size or _auto_chunk(n_cond, width, n_jobs)
    pieces = [valid[i:i + chunk] for i in range(0, valid.size, chunk)]

    def run(centres):
        idx = neighbours[centres]
        return centres, _score_patches(x_t[idx], idx >= 0, vm, rdm_method, compare_method)

    n_bad = 0
    for centres, (res, bad) in parallel_map(run, pieces, n_jobs=n_jobs, verbose=verbose, desc="searchlight"):
        maps[:, centres] = res
        n_bad += bad
    _warn_undefined(n_bad, rdm_method)
    images = None
    if brain.space.get("kind") == "volume":
        images = [brain.to_image(m) for m in np.nan_to_num(maps)]
    return Bunch(maps=maps, n_voxels=sizes, images=images, names=names)


# ------------------------------------------------------------------------------ spheres
def _coordinates(brain: Any) -> np.ndarray:
    ch = brain.channels
    if all(c in ch for c in ("x", "y", "z")):
        return ch[["x", "y", "z"]].to_numpy(float)
    if all(c in ch for c in ("i", "j", "k")) and "affine" in brain.space:
        ijk = ch[["i", "j", "k"]].to_numpy(float)
        aff = np.asarray(brain.space["affine"], float)
        return ijk @ aff[:3, :3].T + aff[:3, 3]
    raise ValueError(
        "Searchlight needs voxel coordinates: channels columns x, y, z (mm; metres for sensors), or i, j, k "
        f"with an affine in brain.space; channels columns are {list(ch.columns)}."
    )


def _neighbours(brain: Any, radius: float, epochs: bool) -> np.ndarray:
    """(n_voxels, max_size) indices of every sphere's voxels, padded with -1."""
    ch = brain.channels
    if not epochs and all(c in ch for c in ("i", "j", "k")) and "affine" in brain.space:
        return _grid_neighbours(ch[["i", "j", "k"]].to_numpy(np.int64), np.asarray(brain.space["affine"], float),
                                radius)
    from scipy.spatial import cKDTree

    coords = _coordinates(brain)
    if not np.isfinite(coords).all():
        raise ValueError("Some channel coordinates are NaN / inf; drop those channels (or give them positions).")
    lists = cKDTree(coords).query_ball_point(coords, r=radius)
    out = np.full((len(lists), max(len(s) for s in lists)), -1, dtype=np.int64)
    for i, s in enumerate(lists):
        out[i, :len(s)] = sorted(s)
    return out


def _grid_neighbours(ijk: np.ndarray, affine: np.ndarray, radius: float) -> np.ndarray:
    """Spheres on a voxel grid: the integer offsets d with ``|A d| <= radius`` (A the linear part
    of the affine), looked up in an index volume of the voxels present."""
    lin = affine[:3, :3]
    reach = np.ceil(radius / np.linalg.svd(lin, compute_uv=False).min()).astype(int)
    grid = np.arange(-reach, reach + 1)
    offsets = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    offsets = offsets[np.linalg.norm(offsets @ lin.T, axis=1) <= radius * (1 + 1e-12)]
    lo = ijk.min(0) - reach
    shape = ijk.max(0) - lo + reach + 1
    volume = np.full(tuple(shape), -1, dtype=np.int64)
    volume[tuple((ijk - lo).T)] = np.arange(len(ijk))
    out = np.empty((len(ijk), len(offsets)), dtype=np.int64)
    for start in range(0, len(ijk), 65536):
        pos = (ijk[start:start + 65536, None, :] - lo) + offsets[None]
        out[start:start + 65536] = volume[pos[..., 0], pos[..., 1], pos[..., 2]]
    out.sort(axis=1)  # present voxels in index order, padding (-1) first
    return out[:, ::-1]


def _auto_chunk(n_cond: int, width: int, n_jobs: int) -> int:
    per_patch = 8 * (3 * n_cond * width + 4 * n_cond * n_cond)
    budget = memory_budget(64 * 1024**2) // max(1, check_n_jobs(n_jobs))
    return int(max(1, budget // per_patch))


# ------------------------------------------------------------------------------ kernel
def _score_patches(q: np.ndarray, mask: np.ndarray, vm: np.ndarray, rdm_method: str,
                   compare_method: str) -> tuple[np.ndarray, int]:
    """Scores (n_models, n_patches) of patches ``q`` (n_patches, n_features, n_cond) whose
    padding rows (``mask`` False) are zero; NaN where the patch RDM is undefined."""
    size = mask.sum(1).astype(np.float64)
    if rdm_method == "correlation":  # centre each condition's pattern over the patch's features
        q -= (q.sum(1) / size[:, None])[:, None, :]
        q *= mask[..., None]
    else:  # distances ignore a common shift: remove the mean pattern for a precise Gram trick
        q -= (q.sum(2) / q.shape[2])[..., None]
    gram = np.matmul(q.transpose(0, 2, 1), q)
    if rdm_method == "correlation":
        norm2 = np.diagonal(gram, axis1=1, axis2=2)
        bad = (norm2 <= 1e-24 * np.maximum(norm2.max(1, keepdims=True), 1e-300)).any(1)
        vec = _from_gram(gram, rdm_method, 1)
    else:
        bad = np.zeros(len(q), bool)
        vec = _from_gram(gram, rdm_method, 1) / size[:, None]
    res = np.full((vm.shape[0], len(q)), np.nan)
    if (~bad).any():
        res[:, ~bad] = compare_vectors(vm, vec[~bad] if bad.any() else vec, method=compare_method,
                                       names=("model_rdms", "the searchlight RDMs"))
    return res, int(bad.sum())


def _warn_undefined(n_bad: int, rdm_method: str) -> None:
    if n_bad:
        warnings.warn(
            f"{n_bad} searchlight sphere(s) have a condition whose pattern is constant over the sphere, so "
            f"their {rdm_method} RDM is undefined; their scores are NaN.", RuntimeWarning, stacklevel=3,
        )


def _spatio_temporal(x, brain, neighbours, sizes, valid, vm, names, rdm_method, compare_method, window, step,
                     window_mode, chunk_size, n_jobs, verbose) -> Bunch:
    n_cond, n_ch, n_times = x.shape
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or not 1 <= window <= n_times:
        raise ValueError(f"window must be an int in [1, n_times={n_times}]; got {window!r}.")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step must be a positive int; got {step!r}.")
    starts = np.arange(0, n_times - window + 1, step)
    times = np.asarray(brain.times, float)
    centres = np.array([times[s:s + window].mean() for s in starts])
    if window_mode == "average" and window > 1:
        x = np.lib.stride_tricks.sliding_window_view(x, window, axis=-1)[:, :, starts].mean(-1)
        starts, width = np.arange(starts.size), 1
    else:
        width = window
    # (n_channels + 1, n_times, n_cond): the last channel is the zero padding
    x_t = np.concatenate([x.transpose(1, 2, 0), np.zeros((1, x.shape[2], n_cond))])
    patches = np.stack(np.meshgrid(valid, np.arange(starts.size), indexing="ij"), -1).reshape(-1, 2)
    k = int(sizes.max(initial=1))
    chunk = chunk_size or _auto_chunk(n_cond, k * width, n_jobs)
    pieces = [patches[i:i + chunk] for i in range(0, len(patches), chunk)]
    offs = np.arange(width)

    def run(piece):
        idx = neighbours[piece[:, 0]]  # (B, k)
        t = starts[piece[:, 1]][:, None] + offs  # (B, width)
        q = x_t[idx[:, :, None], t[:, None, :]].reshape(len(piece), k * width, n_cond)
        mask = np.repeat(idx >= 0, width, axis=1)
        return piece, _score_patches(q, mask, vm, rdm_method, compare_method)

    maps = np.full((vm.shape[0], n_ch, starts.size), np.nan)
    n_bad = 0
    for piece, (res, bad) in parallel_map(run, pieces, n_jobs=n_jobs, verbose=verbose, desc="searchlight"):
        maps[:, piece[:, 0], piece[:, 1]] = res
        n_bad += bad
    _warn_undefined(n_bad, rdm_method)
    return Bunch(maps=maps, n_voxels=sizes, times=centres, images=None, names=names)
