"""Topological RSA: comparisons of geo-topological summaries, threshold selection by nested
cross-validation, and leave-one-subject-out identification (Lin & Kriegeskorte).

How this differs from the authors' evaluation (doerlbh/TopologicalRSA): they identify
regions / layers by Euclidean nearest-centroid classification (scikit-learn's
``NearestCentroid``), leaving one subject out, with the raw RDMs as the baseline, and choose
the thresholds on a 0.05 grid by the accuracy of the same subjects (in-sample: the reported
accuracy of the best grid point is optimistic). Here the comparison method is a parameter
(``method="euclidean"`` reproduces theirs), the baselines include the rank-transformed RDM
(what separates the effect of thresholding from that of ranking), and the thresholds are
chosen by nested cross-validation (:func:`trsa_grid`, ``identify(grid=...)``), so the
reported accuracy is not inflated by the selection; the in-sample grid is returned beside it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._utils import Bunch, check_option
from ..rsa import COMPARE_METHODS, compare, rdm_vectors
from ._transforms import geodesic as _geodesic
from ._transforms import geotopological

__all__ = ["trsa", "trsa_grid", "identify", "default_grid"]

IDENTIFY_METHODS = (*COMPARE_METHODS, "euclidean")


def _transform(rdms: Any, low: float, up: float, use_geodesic: bool, rank: bool,
               convention: str = "authors") -> np.ndarray:
    if use_geodesic:
        return _geodesic(rdms, low=low, up=up, rank=rank, convention=convention, disconnected=1.0).get_vectors()
    return geotopological(rdms, low=low, up=up, rank=rank).get_vectors()


def trsa(model_rdms: Any, data_rdms: Any, *, low: float, up: float, method: str = "cosine",
         geodesic: bool = False, rank: bool = True, convention: str = "authors") -> np.ndarray:
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
    convention : {"authors", "contract"}
        The geodesic's convention (:func:`geodesic`).

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
    a = _transform(model_rdms, low, up, geodesic, rank, convention)
    b = _transform(data_rdms, low, up, geodesic, rank, convention)
    return compare(a, b, method=method)


def default_grid(*, geodesic: bool = False, convention: str = "authors", step: float = 0.1) -> list[tuple[float, float]]:
    """The (low, up) thresholds searched by default, outside the degenerate region.

    Every ``0 <= low <= up <= 1`` on steps of ``step`` except (0, 0) and (1, 1), whose RGTMs
    are constant but for one pair. For geodesics with the authors' convention (band edges
    only) bands of at least two steps (``up - low >= 2 * step``): with an empty band there is
    no edge and the RGDM is constant, and a one-step band leaves up to 44% of the pairs of a
    92-image human-IT RDM disconnected (tied at the top rank). With ``convention="contract"``
    the same, and only ``low = 0``: any ``low`` above ~1 / n_conditions merges most conditions
    at distance 0 (on the 92-image human-IT RDMs, ``low = 0.1`` makes 81% of every RGDM 0,
    ``low = 0.3`` all of it).

    Parameters
    ----------
    geodesic : bool
    convention : {"authors", "contract"}
    step : float

    Returns
    -------
    list of (low, up)

    Examples
    --------
    >>> len(default_grid()), len(default_grid(geodesic=True)), len(default_grid(geodesic=True, convention="contract"))
    (64, 45, 9)
    """
    steps = np.round(np.arange(0.0, 1.0 + step / 2, step), 6)
    grid = [(float(lo), float(hi)) for lo in steps for hi in steps
            if hi >= lo and not (lo == hi and lo in (0.0, 1.0))]
    if geodesic:
        grid = [(lo, hi) for lo, hi in grid if hi - lo >= 2 * step - 1e-9 and (convention == "authors" or lo == 0.0)]
    return grid


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
              method: str = "cosine", geodesic: bool = False, rank: bool = True, convention: str = "authors",
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
        Default: :func:`default_grid` (steps of 0.1, the degenerate corners left out).
    method, geodesic, rank, convention : see :func:`trsa`.
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
    grid = list(grid) if grid is not None else default_grid(geodesic=geodesic, convention=convention)
    vm, vd = rdm_vectors(model_rdms, "model_rdms"), rdm_vectors(data_rdms, "data_rdms")
    truth = np.asarray(truth, dtype=int)
    if truth.shape != (vd.shape[0],) or truth.min() < 0 or truth.max() >= vm.shape[0]:
        raise ValueError(
            f"truth needs one model index (0..{vm.shape[0] - 1}) per data RDM ({vd.shape[0]}); got {truth.tolist()[:10]}."
        )
    subj = _subjects(data_rdms, rdm_descriptor, vd.shape[0])
    sims = np.stack([trsa(vm, vd, low=lo, up=hi, method=method, geodesic=geodesic, rank=rank, convention=convention)
                     for lo, hi in grid])
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
             low: float | None = None, up: float | None = None, grid: Sequence[tuple] | None = None,
             geodesic: bool = False, rank: bool = True, convention: str = "authors") -> Bunch:
    """Leave-one-subject-out nearest-centroid identification of regions / layers.

    For each subject, the centroid of every label (region or layer) is the mean summary
    (RDM, RGTM or RGDM) of the *other* subjects; each RDM of the held-out subject is
    assigned the label of the nearest centroid.

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs or array, one RDM per (subject, label)
    labels : sequence of length n_rdms
        Region / layer of each RDM.
    rdm_descriptor : str
        Rdm descriptor naming the subject (``"index"``: every RDM its own subject).
    method : str
        ``"euclidean"``: the nearest centroid by Euclidean distance (the authors' choice,
        scikit-learn's ``NearestCentroid``); or a comparison method of
        :func:`brainalign.rsa.compare` (the most similar centroid).
    low, up : float, optional
        When given, compare geo-topological summaries (RGTM; RGDM with ``geodesic=True``);
        otherwise the RDMs themselves.
    grid : sequence of (low, up), optional
        Choose the thresholds by nested cross-validation: for each held-out subject, the
        grid point with the best leave-one-subject-out accuracy among the *other* subjects
        (ties: the first) is used. ``"default"`` gives :func:`default_grid`.
    geodesic, rank, convention : see :func:`trsa`.

    Returns
    -------
    Bunch
        ``accuracy`` (float; nested when ``grid`` is given), ``predictions`` (DataFrame:
        subject, label, predicted, correct); with ``grid`` also ``grid`` (DataFrame: low, up,
        accuracy over all subjects: the in-sample accuracy, optimistic when read as the
        maximum) and ``folds`` (DataFrame: subject, low, up, accuracy).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> base = rng.random((2, 45))
    >>> rdms = np.concatenate([base + 0.1 * rng.random((2, 45)) for _ in range(3)])
    >>> from rsatoolbox.rdm import RDMs
    >>> r = RDMs(rdms, rdm_descriptors={"subject": [0, 0, 1, 1, 2, 2]})
    >>> identify(r, labels=["V1", "IT"] * 3, method="euclidean").accuracy
    1.0
    """
    check_option("method", method, IDENTIFY_METHODS)
    v = rdm_vectors(rdms)
    labels = np.asarray(labels)
    if labels.shape != (v.shape[0],):
        raise ValueError(f"labels needs one entry per RDM ({v.shape[0]}); got {labels.shape[0]}.")
    if grid is not None and (low is not None or up is not None):
        raise ValueError("Give either low and up (fixed thresholds) or grid= (thresholds chosen by nested CV).")
    subj = _subjects(rdms, rdm_descriptor, v.shape[0])
    uniq = pd.unique(subj)
    if uniq.size < 2:
        raise ValueError("Identification needs at least 2 subjects.")
    if grid is None:
        if low is not None or up is not None:
            if low is None or up is None:
                raise ValueError("Give both low and up (or neither, to identify with the RDMs themselves).")
            v = _transform(v, low, up, geodesic, rank, convention)
        nc = _Centroids(v, labels, subj)
        table = pd.DataFrame(nc.predictions(range(len(nc.subjects)), method))
        return Bunch(accuracy=float(table["correct"].mean()), predictions=table)
    if isinstance(grid, str):
        check_option("grid", grid, ["default"])
        grid = default_grid(geodesic=geodesic, convention=convention)
    grid = list(grid)
    if uniq.size < 3:
        raise ValueError("Nested threshold selection needs at least 3 subjects (2 to choose on, 1 to test).")
    fits = [_Centroids(_transform(v, lo, hi, geodesic, rank, convention), labels, subj) for lo, hi in grid]
    n_s = len(fits[0].subjects)
    rows, folds = [], []
    for i in range(n_s):  # held-out subject i; thresholds chosen on the others only
        others = [j for j in range(n_s) if j != i]
        inner = [np.mean([r["correct"] for r in nc.predictions(others, method, also_out=i)]) for nc in fits]
        best = int(np.argmax(inner))
        test = fits[best].predictions([i], method)
        rows.extend(test)
        folds.append({"subject": fits[0].subjects[i], "low": grid[best][0], "up": grid[best][1],
                      "accuracy": float(np.mean([r["correct"] for r in test]))})
    in_sample = [np.mean([r["correct"] for r in nc.predictions(range(n_s), method)]) for nc in fits]
    table = pd.DataFrame(rows)
    return Bunch(accuracy=float(table["correct"].mean()), predictions=table, folds=pd.DataFrame(folds),
                 grid=pd.DataFrame({"low": [g[0] for g in grid], "up": [g[1] for g in grid], "accuracy": in_sample}))


class _Centroids:
    """Leave-subjects-out nearest centroids from per-(subject, label) sums of the summaries."""

    def __init__(self, v: np.ndarray, labels: np.ndarray, subj: np.ndarray):
        self.v, self.labels, self.subj = v, labels, subj
        self.subjects, s_idx = _codes(subj)
        self.names, l_idx = _codes(labels)
        self.s_idx, self.l_idx = s_idx, l_idx
        present = ~np.isnan(v)
        n_s, n_l = len(self.subjects), len(self.names)
        onehot = np.zeros((n_s * n_l, len(v)))
        onehot[s_idx * n_l + l_idx, np.arange(len(v))] = 1.0
        self.sums = (onehot @ np.where(present, v, 0.0)).reshape(n_s, n_l, -1)
        self.counts = (onehot @ present).reshape(n_s, n_l, -1)

    def predictions(self, test_subjects, method: str, also_out: int | None = None) -> list[dict]:
        """Predicted labels of the RDMs of each test subject, centroids from the subjects that
        are neither the test subject nor ``also_out``."""
        tot_s, tot_c = self.sums.sum(0), self.counts.sum(0)
        if also_out is not None:
            tot_s, tot_c = tot_s - self.sums[also_out], tot_c - self.counts[also_out]
        rows = []
        for i in test_subjects:
            cnt = tot_c - self.counts[i]
            present = np.flatnonzero(cnt.sum(1) > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                cents = (tot_s - self.sums[i])[present] / cnt[present]
            test = np.flatnonzero(self.s_idx == i)
            if method == "euclidean":
                diff = self.v[test][:, None, :] - cents[None]
                pred = present[np.argmin(np.sqrt(np.nansum(diff**2, -1)), 1)]
            else:
                pred = present[np.argmax(compare(self.v[test], cents, method=method), 1)]
            for t, p in zip(test, pred):
                lab = self.labels[t]
                rows.append({"subject": self.subjects[i], "label": lab, "predicted": self.names[p],
                             "correct": bool(lab == self.names[p])})
        return rows


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique values in order of appearance and the code of each value."""
    codes, uniques = pd.factorize(pd.Series(values))
    return np.asarray(uniques), codes
