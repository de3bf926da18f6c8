"""The entry points: :func:`compare` for one pair, :func:`pairwise` for grids of matrices."""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import numpy as np

from .._utils import logger, progress_bar
from . import _cca, _kernel, _knn, _predictivity, _rsa, _shape, _stochastic
from ._prepare import Rep, as_reps, check_same_stimuli
from ._registry import Measure, get_measure

__all__ = ["compare", "pairwise"]

_GRIDS = {
    "cka": _kernel.grid,
    "procrustes": _shape.procrustes_grid,
    "permutation": _shape.permutation_grid,
    "cca": _cca.grid,
    "knn": _knn.grid,
    "predictivity": _predictivity.grid,
    "rsa": partial(_rsa.grid, topological=False),
    "trsa": partial(_rsa.grid, topological=True),
    "stochastic": _stochastic.grid,
}


def resolve_params(m: Measure, params: dict) -> dict:
    """The measure's defaults updated by ``params``, with unknown / fixed names refused."""
    tunable = sorted(m.parameters)
    fixed = set(m.defaults) - set(tunable)
    for key in params:
        if key in fixed:
            raise ValueError(f"{key!r} is fixed by the measure name {m.name!r} ({key}={m.defaults[key]!r}); choose "
                             f"another method instead. Parameters of {m.name!r}: {tunable}.")
        if key not in m.defaults:
            raise TypeError(f"{m.name!r} got an unexpected parameter {key!r}; its parameters are {tunable}.")
    return {**m.defaults, **params}


def _run(m: Measure, A: list[Rep], B: list[Rep], same: bool, params: dict, groups=None) -> np.ndarray:
    kw = {k: v for k, v in params.items()}
    if m.family in ("knn", "cka") and groups is not None:
        kw["groups"] = groups
    return np.asarray(_GRIDS[m.family](A, B, same=same, **kw), dtype=np.float64)


def _methods(method: Any) -> tuple[list[Measure], bool]:
    if isinstance(method, (list, tuple)):
        if not method:
            raise ValueError("method is an empty list; give one or more measure names (see similarity.MEASURES).")
        return [get_measure(x) for x in method], False
    return [get_measure(method)], True


def _inputs(A: Any, B: Any, measures: list[Measure], device: Any, dtype: Any):
    needs = {("repeats" in m.needs) for m in measures}
    if len(needs) > 1:
        raise ValueError("The stochastic measures take repeated responses (3-D) and the others single responses (2-D): "
                         "call them separately.")
    repeats = needs.pop()
    reps_a, labels_a, single_a = as_reps(A, name="X", device=device, dtype=dtype, repeats=repeats)
    if B is None:
        return reps_a, reps_a, labels_a, labels_a, single_a, single_a, True
    reps_b, labels_b, single_b = as_reps(B, name="Y", device=device, dtype=dtype, repeats=repeats)
    check_same_stimuli(reps_a, reps_b)
    return reps_a, reps_b, labels_a, labels_b, single_a, single_b, False


def compare(X: Any, Y: Any, *, method: str = "cka", device: Any = "auto", dtype: Any = "float64",
            **params: Any) -> float:
    """Similarity (or distance) between two representations of the same stimuli.

    Parameters
    ----------
    X : array or tensor of shape (n_stimuli, n_features_x)
        E.g. a model layer; for the stochastic measures ``(n_repeats, n_stimuli, n_features_x)``.
    Y : array or tensor of shape (n_stimuli, n_features_y)
        E.g. a brain region (same stimuli, same order).
    method : str
        A name of :data:`brainalign.similarity.MEASURES` (``"cka"``, ``"procrustes-angular"``,
        ``"mutual_knn"``, ``"pls"``...). The value returned is the *raw* value (a distance for
        distances); :func:`brainalign.similarity.to_score` turns it into a higher-is-better score.
    device : "auto", str or torch.device
        Where the computation runs (``"auto"``: CUDA when available).
    dtype : {"float64", "float32"}
        Working precision (float64 agrees with the references to ~1e-10).
    **params
        Parameters of the measure (``MEASURES[method].defaults`` lists them and their defaults),
        e.g. ``alpha=0.5`` (Procrustes), ``k=5`` (kNN), ``sigma=0.8`` (RBF CKA),
        ``n_components=10`` (PLS).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 20)); Q = np.linalg.qr(rng.standard_normal((20, 20)))[0]
    >>> round(compare(X, 3 * X @ Q + 1, method="cka", device="cpu"), 6)
    1.0
    >>> round(compare(X, X @ Q, method="procrustes-angular", device="cpu"), 6)
    0.0
    """
    out = pairwise(X, Y, method=method, device=device, dtype=dtype, **params)
    return float(np.asarray(out).reshape(-1)[0])


def pairwise(A: Any, B: Any = None, *, method: str | Sequence[str] = "cka", device: Any = "auto",
             dtype: Any = "float64", verbose: bool = False, **params: Any):
    """A measure between every matrix of ``A`` and every matrix of ``B`` (layer x layer, layer x ROI).

    Everything a measure derives from one matrix (centred data, norms, SVD, whitening, kernels,
    neighbour lists, RDMs) is computed once and reused for every pair and every measure of the
    call; the cross products of one matrix with all matrices of the other side are batched,
    in chunks sized from the free memory of ``device`` (``BRAINALIGN_MEMORY_LIMIT`` caps it).

    Parameters
    ----------
    A : list, tuple or dict of arrays of shape (n_stimuli, n_features_i), or a brainalign Features
        The rows (e.g. the layers of model A). A single array is one row.
    B : same as A, optional
        The columns (e.g. the layers of model B, or ROIs). ``None``: ``A`` against itself
        (symmetric measures compute one triangle).
    method : str or list of str
        One or several names of :data:`brainalign.similarity.MEASURES`.
    device, dtype, **params
        As in :func:`compare` (``params`` apply to every method given; they must be valid for each).
    verbose : bool
        A progress bar over the methods.

    Returns
    -------
    array of shape (n_a, n_b)
        Raw values (distances stay distances; see :func:`brainalign.similarity.to_score`). With
        a list of methods: a dict ``{method: array}``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> layers = [rng.standard_normal((50, 8)) for _ in range(3)]
    >>> pairwise(layers, method="cka", device="cpu").shape
    (3, 3)
    """
    measures, one = _methods(method)
    reps_a, reps_b, _, _, _, _, same = _inputs(A, B, measures, device, dtype)
    results = {}
    for m in progress_bar(measures, verbose=verbose, desc="measures"):
        p = resolve_params(m, params)
        logger.info("similarity.pairwise: %s on %d x %d matrices of %d stimuli", m.name, len(reps_a), len(reps_b),
                    reps_a[0].n)
        results[m.name] = _run(m, reps_a, reps_b, same and m.symmetric, p)
    return results[measures[0].name] if one else results
