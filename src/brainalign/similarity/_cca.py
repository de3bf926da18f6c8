"""The CCA family: mean squared canonical correlation, SVCCA and PWCCA.

The canonical correlations of ``X`` and ``Y`` are the singular values of ``Ux' Uy``, where
``Ux`` is an orthonormal basis of the centred ``X`` (its left singular vectors, truncated at
the numerical rank; with ``variance`` set, the fewest leading directions that keep that
fraction of the variance, as in SVCCA). The basis of every matrix is computed once.

- ``mean_sq_corr`` (Yanai's GCD, Kornblith's R^2_CCA): ``||Ux' Uy||_F^2 / min(r_x, r_y)``;
- ``mean_corr`` (SVCCA, Raghu et al. 2017): ``||Ux' Uy||_* / min(r_x, r_y)``;
- ``pwcca`` (Morcos et al. 2018): ``sum_i w_i rho_i`` with ``w_i`` proportional to
  ``sum_j |<h_i, x_j>|``, ``h_i`` the i-th canonical variate of X (unit norm) and ``x_j`` the
  centred units of X. PWCCA is not symmetric (the weights come from X).

Without regularization CCA is degenerate when ``r_x + r_y > n - 1`` (the two subspaces of the
``n - 1``-dimensional centred stimulus space must intersect, so some canonical correlations are
1 whatever the data): that raises an error instead of returning an inflated similarity.
"""

from __future__ import annotations

import numpy as np

from .._utils import check_option
from ._prepare import Rep

SUMMARIES = ("mean_sq_corr", "mean_corr", "pwcca")


def _check_variance(variance) -> float | None:
    if variance is None:
        return None
    v = float(variance)
    if not (0.0 < v <= 1.0):
        raise ValueError(f"variance (the fraction of variance kept before CCA) must be in (0, 1]; got {variance!r}.")
    return v


def _basis(rep: Rep, variance: float | None):
    def run():
        U, s = rep.svd()
        if variance is None or variance >= 1.0:
            return U
        frac = np.cumsum(s.pow(2).cpu().numpy()) / float(s.pow(2).sum())
        k = int(np.searchsorted(frac, variance - 1e-12) + 1)
        return U[:, :min(k, U.shape[1])]

    return rep.cached(("cca_basis", variance), run)


def check_dims(a: Rep, ra: int, b: Rep, rb: int, variance: float | None, method_hint: str) -> None:
    n = a.n_distinct
    if ra + rb > n - 1:
        kept = "kept directions" if variance is not None else "ranks"
        raise ValueError(
            f"CCA is degenerate here: {n} {'distinct ' if n < a.n else ''}stimuli span {n - 1} dimensions after centring, but the {kept} of "
            f"{a.name} ({ra}, of {a.p} features) and {b.name} ({rb}, of {b.p} features) add up to {ra + rb}, so at "
            f"least {ra + rb - n + 1} canonical correlations equal 1 whatever the data. Use more stimuli, reduce "
            f"the features with PCA, or keep fewer directions ({method_hint}: e.g. 'svcca-var95', or "
            "variance=0.9)."
        )


def grid(A: list[Rep], B: list[Rep], *, same: bool, summary: str = "mean_sq_corr",
         variance: float | None = None) -> np.ndarray:
    """CCA-family similarity of every pair: (n_a, n_b)."""
    import torch

    check_option("summary", summary, SUMMARIES)
    variance = _check_variance(variance)
    hint = "svcca-var99 / pwcca with variance=" if summary == "mean_sq_corr" else "a smaller variance="
    ba = [_basis(r, variance) for r in A]
    bb = ba if same else [_basis(r, variance) for r in B]
    out = np.zeros((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            if same and j < i and summary != "pwcca":
                out[i, j] = out[j, i]
                continue
            ra, rb = ba[i].shape[1], bb[j].shape[1]
            check_dims(a, ra, b, rb, variance, hint)
            M = ba[i].T @ bb[j]
            r = min(ra, rb)
            if summary == "mean_sq_corr":
                out[i, j] = float((M * M).sum()) / r
            elif summary == "mean_corr":
                out[i, j] = float(torch.linalg.svdvals(M).sum()) / r
            else:
                L, rho, _ = torch.linalg.svd(M, full_matrices=False)
                H = ba[i] @ L[:, :r]  # canonical variates of X (n, r), unit norm
                w = (H.T @ a.centred).abs().sum(1)
                w = w / w.sum()
                out[i, j] = float((w * rho[:r].clamp(0, 1)).sum())
    return out
