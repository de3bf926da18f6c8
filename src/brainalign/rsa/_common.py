"""RDM containers and conditions: arrays <-> rsatoolbox ``RDMs``, condition tables, and the
matching of conditions between RDMs by their labels (never by position alone)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._backend import _parse_bytes, to_numpy
from ._ranks import rank_rows

__all__ = ["rdm_vectors", "make_rdms", "n_cond_from_pairs", "pair_index", "condition_table",
           "average_conditions", "condition_labels", "match_conditions", "reorder_vectors", "rank_transform"]


def memory_budget(default: int) -> int:
    """Bytes a batch of intermediates may take: ``default``, or less when the
    ``BRAINALIGN_MEMORY_LIMIT`` environment variable (bytes, or with K/M/G) asks for it
    (a quarter of the limit). Reading it does not import torch."""
    import os

    limit = os.environ.get("BRAINALIGN_MEMORY_LIMIT")
    return int(min(default, _parse_bytes(limit) // 4)) if limit else int(default)


def n_cond_from_pairs(n_pairs: int) -> int:
    """Number of conditions of an RDM with ``n_pairs`` dissimilarities (raises if impossible)."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(
            f"A dissimilarity vector of length {n_pairs} is not the upper triangle of any square "
            "RDM (lengths are n(n-1)/2: 1, 3, 6, 10, ...); pass full (n, n) matrices or RDMs."
        )
    return n


def pair_index(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Position of the pair (i, j), ``i < j``, in the upper-triangle vector of an n x n RDM."""
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    return i * n - i * (i + 1) // 2 + (j - i - 1)


def rdm_vectors(rdms: Any, name: str = "rdms") -> np.ndarray:
    """RDMs, arrays or tensors as a float64 array of shape (n_rdms, n_pairs) (upper triangles).

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs, array or tensor
        An ``RDMs`` object, or an array of shape (n_pairs,), (n_rdms, n_pairs), (n, n) or
        (n_rdms, n, n). Square matrices must be symmetric; their diagonal is dropped. A
        2-D square array is read as one RDM when it is symmetric with a zero (or NaN)
        diagonal, else as a stack of vectors.
    name : str
        The parameter name used in error messages.

    Returns
    -------
    array of shape (n_rdms, n_pairs)

    Examples
    --------
    >>> import numpy as np
    >>> rdm_vectors(np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]]))
    array([[1., 2., 3.]])
    """
    if hasattr(rdms, "get_vectors") and hasattr(rdms, "dissimilarities"):
        return np.asarray(rdms.get_vectors(), dtype=np.float64)
    try:
        arr = np.asarray(to_numpy(rdms))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be an rsatoolbox RDMs object or a numeric array of RDMs; got {type(rdms).__name__}."
        ) from err
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be an rsatoolbox RDMs object or a numeric array of RDMs; got an array of dtype {arr.dtype}."
        )
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 1:
        n_cond_from_pairs(arr.size)
        return arr[None, :]
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.shape[0] > 1 and _looks_square(arr):
        arr = arr[None]
    elif arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.shape[0] > 1:
        try:
            n_cond_from_pairs(arr.shape[1])
        except ValueError:
            raise ValueError(
                f"{name} is a {arr.shape[0]} x {arr.shape[1]} matrix but not an RDM: it must be "
                "symmetric with a zero (or NaN) diagonal (max |D - D.T| = "
                f"{np.nanmax(np.abs(arr - arr.T)):.3g}, diagonal from {np.nanmin(np.diag(arr)):.3g} to "
                f"{np.nanmax(np.diag(arr)):.3g}). Symmetrize it, or pass upper-triangle vectors of shape "
                "(n_rdms, n_pairs)."
            ) from None
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


def make_rdms(vectors: Any, *, like: Any = None, dissimilarity_measure: str | None = None,
              rdm_descriptors: dict | None = None, pattern_descriptors: dict | None = None,
              descriptors: dict | None = None):
    """An ``rsatoolbox.rdm.RDMs`` from dissimilarity vectors.

    Parameters
    ----------
    vectors : array of shape (n_rdms, n_pairs)
    like : rsatoolbox.rdm.RDMs, optional
        Copy its descriptors and dissimilarity measure (those given explicitly win).
    dissimilarity_measure : str, optional
    rdm_descriptors, pattern_descriptors, descriptors : dict, optional
        As in ``rsatoolbox.rdm.RDMs``.

    Returns
    -------
    rsatoolbox.rdm.RDMs

    Examples
    --------
    >>> import numpy as np
    >>> make_rdms(np.zeros((2, 3)), pattern_descriptors={"stimulus_id": ["a", "b", "c"]}).n_cond
    3
    """
    from rsatoolbox.rdm import RDMs

    if like is not None and hasattr(like, "rdm_descriptors"):
        if rdm_descriptors is None:
            rdm_descriptors = {k: list(v) for k, v in like.rdm_descriptors.items() if k != "index"}
        if pattern_descriptors is None:
            pattern_descriptors = {k: list(v) for k, v in like.pattern_descriptors.items() if k != "index"}
        if descriptors is None:
            descriptors = dict(like.descriptors)
        if dissimilarity_measure is None:
            dissimilarity_measure = like.dissimilarity_measure
    return RDMs(np.asarray(vectors, dtype=np.float64), dissimilarity_measure=dissimilarity_measure,
                descriptors=descriptors or {}, rdm_descriptors=rdm_descriptors or None,
                pattern_descriptors=pattern_descriptors or None)


def rank_transform(rdms):
    """Average ranks of the dissimilarities of each RDM (``rsatoolbox.rdm.rank_transform``).

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs or array of shape (n_rdms, n_pairs) / (n_rdms, n, n)

    Returns
    -------
    rsatoolbox.rdm.RDMs
        Ranks 1..k of each RDM's k non-missing dissimilarities (ties averaged, ``inf``
        ranked last); NaN entries stay NaN. Descriptors are copied from ``rdms``.

    Examples
    --------
    >>> import numpy as np
    >>> rank_transform(np.array([0.3, 0.1, 0.2])).get_vectors()
    array([[3., 1., 2.]])
    """
    return make_rdms(rank_rows(rdm_vectors(rdms)), like=rdms, dissimilarity_measure="rank")


def to_matrices(vectors: np.ndarray) -> np.ndarray:
    """(n_rdms, n_pairs) -> (n_rdms, n, n) symmetric with zero diagonal."""
    n = n_cond_from_pairs(vectors.shape[1])
    out = np.zeros((vectors.shape[0], n, n), dtype=vectors.dtype)
    iu = np.triu_indices(n, 1)
    out[:, iu[0], iu[1]] = vectors
    out[:, iu[1], iu[0]] = vectors
    return out


# ------------------------------------------------------------------------------ conditions
def condition_table(samples: pd.DataFrame, descriptor: str | None, n: int) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Condition code of each sample (None: every sample its own condition) and the table of
    conditions: the ``descriptor`` values sorted (as rsatoolbox), the columns that are
    constant within every condition, and ``index``."""
    if descriptor is None:
        table = samples.reset_index(drop=True).copy()
        table["index"] = np.arange(n)
        return None, table
    if descriptor not in samples.columns:
        raise KeyError(f"descriptor {descriptor!r} is not a samples column; columns: {list(samples.columns)}.")
    values = samples[descriptor].to_numpy()
    if pd.isna(values).any():
        raise ValueError(
            f"The samples column {descriptor!r} (descriptor=) has {int(pd.isna(values).sum())} missing values "
            f"(first at sample {int(np.flatnonzero(pd.isna(values))[0])}); every sample needs a condition."
        )
    try:
        uniq, codes = np.unique(values, return_inverse=True)
    except TypeError as err:
        raise TypeError(f"The values of descriptor {descriptor!r} cannot be sorted (mixed types?): {err}") from None
    codes = codes.astype(np.int64).ravel()
    keep = {descriptor: uniq}
    n_cond = uniq.size
    for col in samples.columns:
        if col == descriptor:
            continue
        try:
            sub, _ = pd.factorize(samples[col], use_na_sentinel=False)
        except TypeError:  # unhashable cells (e.g. lists of labels) cannot be condition labels
            continue
        if np.unique(codes * (int(sub.max(initial=0)) + 1) + sub).size == n_cond:  # constant within conditions
            keep[col] = samples[col].to_numpy()[np.unique(codes, return_index=True)[1]]
    table = pd.DataFrame(keep)
    table["index"] = np.arange(n_cond)
    return codes, table


def average_conditions(x: Any, codes: np.ndarray | None, n_cond: int) -> np.ndarray:
    """Means of the samples of each condition, (n_cond,) + x.shape[1:], in float64, from one
    pass over the data (``codes`` None: the samples themselves, as float64)."""
    if codes is None:
        return np.asarray(x, dtype=np.float64)
    import torch

    x = np.asarray(x)
    flat = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(x.shape[0], -1))
    sums = torch.zeros((n_cond, flat.shape[1]), dtype=torch.float64).index_add_(0, torch.from_numpy(codes), flat)
    counts = np.bincount(codes, minlength=n_cond).astype(np.float64)
    return (sums.numpy() / counts[:, None]).reshape((n_cond,) + x.shape[1:])


def condition_labels(rdms: Any) -> dict:
    """The pattern descriptors of an ``RDMs`` (without ``index``); ``{}`` for plain arrays."""
    desc = getattr(rdms, "pattern_descriptors", None) or {}
    return {k: list(v) for k, v in desc.items() if k != "index"}


def _unique_key(values: list) -> bool:
    try:
        return len(set(values)) == len(values)
    except TypeError:  # unhashable labels cannot identify conditions
        return False


def match_conditions(source: dict, target: dict, *, source_name: str, target_name: str,
                     prefer: str | None = None) -> np.ndarray | None:
    """Order of the ``source`` conditions that matches the ``target`` conditions by label.

    Both arguments are pattern-descriptor dicts (label name -> values). The first label
    name the two share (``prefer`` first) whose values are unique on both sides decides:
    the same values in the same order -> None (already aligned); the same values in another
    order -> the permutation ``perm`` with ``source[perm] == target``; different values ->
    a ValueError listing them. Without such a shared label there is nothing to check and
    the conditions are matched by position (None).
    """
    shared = [k for k in target if k in source]
    if prefer in shared:
        shared.remove(prefer)
        shared.insert(0, prefer)
    for key in shared:
        src, tgt = list(source[key]), list(target[key])
        if not (_unique_key(src) and _unique_key(tgt)):
            continue
        if len(src) == len(tgt) and all(a == b for a, b in zip(src, tgt)):
            return None
        pos = {_label(v): i for i, v in enumerate(src)}
        missing = [v for v in tgt if _label(v) not in pos]
        extra = sorted(set(pos) - {_label(v) for v in tgt}, key=str)
        if missing or extra or len(src) != len(tgt):
            raise ValueError(
                f"{source_name} and {target_name} describe different conditions (pattern descriptor {key!r}): "
                f"{len(src)} vs {len(tgt)} conditions; in {target_name} but not {source_name}: "
                f"{[_label(v) for v in missing[:5]]}{' ...' if len(missing) > 5 else ''}; in {source_name} but "
                f"not {target_name}: {extra[:5]}{' ...' if len(extra) > 5 else ''}. Compute both over the same "
                "conditions (e.g. select the stimuli of the data)."
            )
        return np.array([pos[_label(v)] for v in tgt], dtype=np.int64)
    return None


def _label(value: Any) -> Any:
    """A hashable, type-tolerant key: numpy scalars compare equal to Python ones."""
    return value.item() if isinstance(value, np.generic) else value


def reorder_vectors(vectors: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """RDM vectors (n_rdms, n_pairs) with conditions reordered: new condition i is old ``perm[i]``."""
    n = perm.size
    iu, ju = np.triu_indices(n, 1)
    a, b = perm[iu], perm[ju]
    return vectors[:, pair_index(n, np.minimum(a, b), np.maximum(a, b))]
