"""Topological RSA: comparisons of geo-topological summaries, threshold selection by nested
cross-validation, and leave-one-subject-out identification (Lin & Kriegeskorte)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._utils import Bunch
from ..rsa._common import as_vectors
from ..rsa._compare import compare
from ._transforms import geodesic as _geodesic
from ._transforms import geotopological

__all__ = ["trsa", "trsa_grid", "identify"]


def _transform(rdms: Any, low: float, up: float, use_geodesic: bool, rank: bool) -> np.ndarray:
    if use_geodesic:
        return _geodesic(rdms, low=low, up=up, rank=rank, disconnected=1.0).get_vectors()
    return geotopological(rdms, low=low, up=up, rank=rank).get_vectors()


def trsa(model_rdms: Any, data_rdms: Any, *, low: float, up: float, method: str = "cosine",
         geodesic: bool = False, rank: bool = True) -> np.ndarray:
    """Compare models and data through their geo-topological summaries.

    Parameters
    ----------
    model_rdms, data_rdms : rsatoolbox.rdm.RDMs or array
    low, up : float
        Quantile thresholds of the RGTM (``0 <= low <= up <= 1``).
    method : str
        Any method of :func:`brainalign.rsa.compare` (the paper uses cosine / correlation).
    geodesic : bool
        Compare geodesic RGDMs (disconnected pairs capped at 1) instead of RGTMs.
    rank : bool
        Rank-transform before thresholding.

    Returns
    -------
    array of shape (n_models, n_data)

    Examples
    --------
    >>> import numpy as np
    >>> r = np.random.default_rng(0).random((2, 45))
    >>> trsa(r, r, low=0.1, up=0.5).shape
    (2, 2)
    """
    a = _transform(model_rdms, low, up, geodesic, rank)
    b = _transform(data_rdms, low, up, geodesic, rank)
    return compare(a, b, method=method)


def _default_grid() -> list[tuple[float, float]]:
    steps = np.round(np.arange(0.0, 1.01, 0.1), 2)
    return [(float(lo), float(hi)) for lo in steps for hi in steps if hi >= lo]


def _subjects(data_rdms: Any, rdm_descriptor: str, n: int) -> np.ndarray:
    desc = getattr(data_rdms, "rdm_descriptors", {})
    if rdm_descriptor in desc:
        return np.asarray(desc[rdm_descriptor])
    if rdm_descriptor == "index":
        return np.arange(n)
    raise KeyError(
        f"data_rdms have no rdm descriptor {rdm_descriptor!r}; available: {sorted(desc)}. "
        "Pass rdm_descriptor='index' to treat every RDM as its own subject."
    )


def trsa_grid(model_rdms: Any, data_rdms: Any, *, truth: Sequence[int], grid: Sequence[tuple] | None = None,
              method: str = "cosine", geodesic: bool = False, rank: bool = True,
              rdm_descriptor: str = "subject") -> Bunch:
    """tRSA over a (low, up) grid with nested leave-one-subject-out threshold selection.

    For every held-out subject the thresholds are chosen on the other subjects only — the
    grid point with the highest identification accuracy of the true model (ties broken by
    the mean margin of the true model over the best other model) — and then scored on the
    held-out subject. The nested accuracy is therefore not inflated by the selection.

    Parameters
    ----------
    model_rdms : rsatoolbox.rdm.RDMs or array, n_models RDMs
    data_rdms : rsatoolbox.rdm.RDMs or array, n_data RDMs
    truth : sequence of int of length n_data
        Index of the model that generated (or corresponds to) each data RDM.
    grid : sequence of (low, up), optional
        Default: every ``0 <= low <= up <= 1`` on steps of 0.1 (66 points).
    method, geodesic, rank : see :func:`trsa`.
    rdm_descriptor : str
        The rdm descriptor of ``data_rdms`` naming the subject (``"index"``: each RDM).

    Returns
    -------
    Bunch
        ``grid``: DataFrame (low, up, accuracy, margin) over all subjects;
        ``folds``: DataFrame (subject, low, up, accuracy) of the nested selection;
        ``accuracy``: nested cross-validated identification accuracy;
        ``similarities``: array (n_grid, n_models, n_data).
    """
    grid = list(grid) if grid is not None else _default_grid()
    vm, vd = as_vectors(model_rdms, "model_rdms"), as_vectors(data_rdms, "data_rdms")
    truth = np.asarray(truth, dtype=int)
    if truth.shape != (vd.shape[0],) or truth.min() < 0 or truth.max() >= vm.shape[0]:
        raise ValueError(
            f"truth needs one model index (0..{vm.shape[0] - 1}) per data RDM ({vd.shape[0]}); got {truth.tolist()[:10]}."
        )
    subj = _subjects(data_rdms, rdm_descriptor, vd.shape[0])
    sims = np.stack([trsa(vm, vd, low=lo, up=hi, method=method, geodesic=geodesic, rank=rank) for lo, hi in grid])
    cols = np.arange(vd.shape[0])
    correct = sims[:, truth, cols]
    others = sims.copy()
    others[:, truth, cols] = -np.inf
    margin = correct - others.max(1)  # (n_grid, n_data)
    hit = margin > 0
    folds = []
    for s in pd.unique(subj):
        test = subj == s
        acc_train = hit[:, ~test].mean(1) if (~test).any() else hit.mean(1)
        marg_train = margin[:, ~test].mean(1) if (~test).any() else margin.mean(1)
        best = int(np.lexsort((-marg_train, -acc_train))[0])
        folds.append({"subject": s, "low": grid[best][0], "up": grid[best][1],
                      "accuracy": float(hit[best, test].mean())})
    folds_df = pd.DataFrame(folds)
    table = pd.DataFrame({"low": [g[0] for g in grid], "up": [g[1] for g in grid],
                          "accuracy": hit.mean(1), "margin": margin.mean(1)})
    n_test = pd.Series(subj).value_counts().reindex(folds_df["subject"]).to_numpy()
    return Bunch(grid=table, folds=folds_df, similarities=sims,
                 accuracy=float(np.average(folds_df["accuracy"], weights=n_test)))


def identify(rdms: Any, *, labels: Sequence[Any], rdm_descriptor: str = "subject", method: str = "cosine",
             low: float | None = None, up: float | None = None, geodesic: bool = False,
             rank: bool = True) -> Bunch:
    """Leave-one-subject-out nearest-centroid identification of regions / layers.

    For each subject, the centroid of every label (region or layer) is the mean summary
    (RDM, RGTM or RGDM) of the *other* subjects; each RDM of the held-out subject is
    assigned the label of the most similar centroid (by ``method``).

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs or array, one RDM per (subject, label)
    labels : sequence of length n_rdms
        Region / layer of each RDM.
    rdm_descriptor : str
        Rdm descriptor naming the subject.
    method : str
        Comparison method (:func:`brainalign.rsa.compare`).
    low, up : float, optional
        When given, compare geo-topological summaries (RGTM; RGDM with ``geodesic=True``);
        otherwise the RDMs themselves.

    Returns
    -------
    Bunch
        ``accuracy`` (float), ``predictions`` (DataFrame: subject, label, predicted, correct).
    """
    v = as_vectors(rdms)
    labels = np.asarray(labels)
    if labels.shape != (v.shape[0],):
        raise ValueError(f"labels needs one entry per RDM ({v.shape[0]}); got {labels.shape[0]}.")
    if low is not None or up is not None:
        if low is None or up is None:
            raise ValueError("Give both low and up (or neither, to identify with the RDMs themselves).")
        v = _transform(v, low, up, geodesic, rank)
    subj = _subjects(rdms, rdm_descriptor, v.shape[0])
    uniq = list(pd.unique(labels))
    rows = []
    for s in pd.unique(subj):
        test, train = subj == s, subj != s
        if not train.any():
            raise ValueError("Identification needs at least 2 subjects.")
        present = [u for u in uniq if (train & (labels == u)).any()]
        cents = np.stack([np.nanmean(v[train & (labels == u)], 0) for u in present])
        sim = compare(v[test], cents, method=method)
        pred = [present[i] for i in np.argmax(sim, 1)]
        for lab, p in zip(labels[test], pred):
            rows.append({"subject": s, "label": lab, "predicted": p, "correct": lab == p})
    table = pd.DataFrame(rows)
    return Bunch(accuracy=float(table["correct"].mean()), predictions=table)
