"""Searchlight RSA over an fMRI volume: spheres in mm, chunked, parallel over chunks."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._docs import fill_doc
from .._utils import Bunch, check_option, parallel_map
from ._common import as_vectors
from ._compare import compare
from ._inference import _names
from ._rdm import _from_gram

__all__ = ["searchlight"]


def _coordinates_mm(brain: Any) -> np.ndarray:
    ch = brain.channels
    if all(c in ch for c in ("x", "y", "z")):
        return ch[["x", "y", "z"]].to_numpy(float)
    if all(c in ch for c in ("i", "j", "k")) and "affine" in brain.space:
        ijk = ch[["i", "j", "k"]].to_numpy(float)
        aff = np.asarray(brain.space["affine"], float)
        return ijk @ aff[:3, :3].T + aff[:3, 3]
    raise ValueError(
        "Searchlight needs voxel coordinates: channels columns x, y, z (mm), or i, j, k with an "
        f"affine in brain.space; channels columns are {list(ch.columns)}."
    )


def _sphere_rdms(x: np.ndarray, spheres: list, method: str) -> np.ndarray:
    """Correlation / euclidean RDM vectors (upper triangles) of each sphere's patterns."""
    iu = np.triu_indices(x.shape[0], 1)
    out = np.empty((len(spheres), iu[0].size))
    for k, idx in enumerate(spheres):
        p = x[:, idx]
        if method == "correlation":
            p = p - p.mean(1, keepdims=True)
        out[k] = _from_gram(p @ p.T, method, p.shape[1], iu)
    return out


@fill_doc
def searchlight(brain: Any, model_rdms: Any, *, radius: float = 6.0, rdm_method: str = "correlation",
                compare_method: str = "spearman", descriptor: str | None = None, min_voxels: int = 5,
                chunk_size: int = 256, n_jobs: int = 1, verbose: bool = False) -> Bunch:
    """Searchlight RSA: at every voxel, the RDM of the sphere around it vs each model RDM.

    Parameters
    ----------
    brain : BrainData
        Volume data (n_samples, n_voxels) with voxel coordinates (channels ``x, y, z`` in
        mm, or ``i, j, k`` and ``space["affine"]``).
    model_rdms : rsatoolbox.rdm.RDMs or array, n_models RDMs over the conditions
    radius : float
        Sphere radius in mm.
    rdm_method : {"correlation", "euclidean"}
    compare_method : str
        Method of :func:`compare`.
    descriptor : str, optional
        Samples column to average repetitions by (conditions sorted by value).
    min_voxels : int
        Spheres with fewer voxels get NaN.
    chunk_size : int
        Spheres per chunk (RDMs of a chunk are compared in one batched call).
    %(n_jobs)s
        Threads working on chunks in parallel (numpy releases the GIL in the products).

    Returns
    -------
    Bunch
        ``maps``: array (n_models, n_voxels); ``n_voxels``: voxels per sphere;
        ``images``: list of brain-space images (``brain.to_image``), one per model, when the
        data have a volume space; ``names``.
    """
    check_option("rdm_method", rdm_method, ["correlation", "euclidean"])
    from scipy.spatial import cKDTree

    if radius <= 0:
        raise ValueError(f"radius must be positive (mm); got {radius}.")
    if descriptor is not None:
        brain = brain.average_repetitions(by=descriptor)
        order = np.argsort(brain.samples[descriptor].to_numpy(), kind="stable")
        x = np.asarray(brain.data, float)[order]
    else:
        x = np.asarray(brain.data, float)
    vm = as_vectors(model_rdms, "model_rdms")
    if vm.shape[1] != x.shape[0] * (x.shape[0] - 1) // 2:
        raise ValueError(
            f"model_rdms describe {vm.shape[1]} pairs but the data have {x.shape[0]} conditions "
            f"({x.shape[0] * (x.shape[0] - 1) // 2} pairs)."
        )
    coords = _coordinates_mm(brain)
    spheres = cKDTree(coords).query_ball_point(coords, r=radius)
    sizes = np.array([len(s) for s in spheres])
    maps = np.full((vm.shape[0], len(spheres)), np.nan)
    valid = np.flatnonzero(sizes >= min_voxels)
    chunks = [valid[i:i + chunk_size] for i in range(0, valid.size, chunk_size)]

    def run(centres):
        rdms = _sphere_rdms(x, [spheres[c] for c in centres], rdm_method)
        bad = np.isnan(rdms).any(1)
        res = np.full((vm.shape[0], len(centres)), np.nan)
        if (~bad).any():
            res[:, ~bad] = compare(vm, rdms[~bad], method=compare_method)
        return centres, res

    for centres, res in parallel_map(run, chunks, n_jobs=n_jobs, verbose=verbose, desc="searchlight"):
        maps[:, centres] = res
    images = None
    if brain.space.get("kind") == "volume":
        images = [brain.to_image(m) for m in np.nan_to_num(maps)]
    return Bunch(maps=maps, n_voxels=sizes, images=images, names=_names(model_rdms, vm.shape[0], "model"))
