"""Conversions between arrays and rsatoolbox ``RDMs`` used across the rsa and topology rooms."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import to_numpy


def n_cond_from_pairs(n_pairs: int) -> int:
    """Number of conditions of an RDM with ``n_pairs`` dissimilarities (raises if impossible)."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(
            f"A dissimilarity vector of length {n_pairs} is not the upper triangle of any square "
            "RDM (lengths are n(n-1)/2: 1, 3, 6, 10, ...); pass full (n, n) matrices or RDMs."
        )
    return n


def as_vectors(rdms: Any, name: str = "rdms") -> np.ndarray:
    """RDMs / arrays / tensors -> float64 array of shape (n_rdms, n_pairs) (upper triangles).

    Accepts an ``rsatoolbox.rdm.RDMs``, an array of shape (n_pairs,), (n_rdms, n_pairs),
    (n, n) or (n_rdms, n, n) (square matrices must be symmetric; their diagonal is dropped).
    """
    if hasattr(rdms, "get_vectors") and hasattr(rdms, "dissimilarities"):
        return np.asarray(rdms.get_vectors(), dtype=np.float64)
    try:
        arr = np.asarray(to_numpy(rdms), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be an rsatoolbox RDMs object or an array of RDMs; got {type(rdms).__name__}."
        ) from err
    if arr.ndim == 1:
        n_cond_from_pairs(arr.size)
        return arr[None, :]
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.shape[0] > 1 and _looks_square(arr):
        arr = arr[None]
    if arr.ndim == 2:
        n_cond_from_pairs(arr.shape[1])
        return arr
    if arr.ndim == 3:
        if arr.shape[1] != arr.shape[2]:
            raise ValueError(f"{name}: stacked RDM matrices must be square, got shape {arr.shape}.")
        iu = np.triu_indices(arr.shape[1], 1)
        upper, lower = arr[:, iu[0], iu[1]], arr[:, iu[1], iu[0]]
        both = ~(np.isnan(upper) & np.isnan(lower))
        if not np.allclose(upper[both], lower[both], rtol=1e-6, atol=1e-9):
            raise ValueError(f"{name}: RDM matrices must be symmetric; the upper and lower triangles differ.")
        return upper
    raise ValueError(
        f"{name} must have shape (n_pairs,), (n_rdms, n_pairs), (n, n) or (n_rdms, n, n); got {arr.shape}."
    )


def _looks_square(arr: np.ndarray) -> bool:
    """A 2-D array that is a symmetric matrix with a zero / NaN diagonal is one RDM."""
    d = np.diag(arr)
    return bool(np.all((d == 0) | np.isnan(d)) and np.allclose(arr, arr.T, equal_nan=True))


def to_matrices(vectors: np.ndarray) -> np.ndarray:
    """(n_rdms, n_pairs) -> (n_rdms, n, n) symmetric with zero diagonal."""
    n = n_cond_from_pairs(vectors.shape[1])
    out = np.zeros((vectors.shape[0], n, n), dtype=vectors.dtype)
    iu = np.triu_indices(n, 1)
    out[:, iu[0], iu[1]] = vectors
    out[:, iu[1], iu[0]] = vectors
    return out


def make_rdms(vectors: np.ndarray, *, like: Any = None, measure: str | None = None,
              rdm_descriptors: dict | None = None, pattern_descriptors: dict | None = None,
              descriptors: dict | None = None):
    """An ``rsatoolbox.rdm.RDMs`` from vectors, copying the descriptors of ``like`` if given."""
    from rsatoolbox.rdm import RDMs

    if like is not None and hasattr(like, "rdm_descriptors"):
        if rdm_descriptors is None:
            rdm_descriptors = {k: list(v) for k, v in like.rdm_descriptors.items() if k != "index"}
        if pattern_descriptors is None:
            pattern_descriptors = {k: list(v) for k, v in like.pattern_descriptors.items() if k != "index"}
        if descriptors is None:
            descriptors = dict(like.descriptors)
        if measure is None:
            measure = like.dissimilarity_measure
    return RDMs(np.asarray(vectors, dtype=np.float64), dissimilarity_measure=measure,
                descriptors=descriptors or {}, rdm_descriptors=rdm_descriptors or None,
                pattern_descriptors=pattern_descriptors or None)
