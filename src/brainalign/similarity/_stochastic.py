"""Stochastic shape metrics (Duong et al. 2023) for repeated, noisy responses.

Inputs are ``(n_repeats, n_stimuli, n_features)``; the numbers of repeats and of features may
differ between X and Y (the narrower is zero-padded, as netrep does). Responses are centred by
their grand mean (translation invariance, as the deterministic shape metrics). An orthogonal
``T`` aligns Y to X; the distance is minimised over ``T`` by alternating / reweighted
Procrustes steps that never increase it (a local optimum, started from the Procrustes alignment
of the stimulus means, as netrep).

- ``ground="gaussian"`` (netrep's ``GaussianStochasticMetric``): every stimulus is summarised by
  its mean ``m_i`` and covariance ``S_i``, and
  ``d^2 = mean_i [alpha ||mx_i - T my_i||^2 + (2 - alpha) B^2(Sx_i, T Sy_i T')]``, ``B`` the
  Bures distance; ``alpha = 1`` is the 2-Wasserstein distance between the Gaussians, ``2`` uses
  the means only, ``0`` the covariances only.
  **Covariance estimate**: the sample covariance of the repeats (``ddof=1``), kept in factored
  form ``S_i = F_i' F_i`` with ``F_i`` the ``(n_repeats, n_features)`` deviations / sqrt(n_repeats - 1):
  it has rank <= n_repeats - 1 and no ``n_features^2`` matrix is ever formed (5,000 full
  768 x 768 covariances would take ~23 GB). With ``rank=k`` only the ``k`` leading principal
  directions of each stimulus's deviations are kept (a low-rank estimate). The Bures term then
  needs only the nuclear norm of the small ``F_i^x T F_i^y'``:
  ``B^2 = tr Sx + tr Sy - 2 ||Fx T Fy'||_*``.
- ``ground="energy"`` (netrep's ``EnergyStochasticMetric``):
  ``d^2 = mean_i [E||x - T y|| - (E||x - x'|| + E||y - y'||) / 2]`` over the repeats of stimulus
  ``i`` (cross term over all pairs of repeats, within terms over distinct pairs), clipped at 0;
  ``T`` by iteratively reweighted Procrustes (Weiszfeld weights).
"""

from __future__ import annotations

import numpy as np

from .._utils import check_option
from ._prepare import Rep


def _padded(rep: Rep, p: int):
    """Grand-mean-centred repeats (n, R, p) with zero columns up to width p."""
    import torch

    def run():
        x = rep.x - rep.x.mean((0, 1), keepdim=True)
        return x.permute(1, 0, 2).contiguous()

    x = rep.cached("stoch_centred", run)
    if x.shape[2] < p:
        x = torch.cat([x, x.new_zeros(x.shape[0], x.shape[1], p - x.shape[2])], dim=2)
    return x


def _polar(M):
    import torch

    U, _, Vh = torch.linalg.svd(M, full_matrices=False)
    return U @ Vh


def _gaussian_parts(rep: Rep, p: int, rank):
    """(means (n, p), factors F (n, k, p), sum_i tr S_i)."""
    import torch

    x = _padded(rep, p)
    mu = x.mean(1)
    F = (x - mu[:, None, :]) / np.sqrt(x.shape[1] - 1)
    if rank is not None and rank < F.shape[1]:
        _, s, Vh = torch.linalg.svd(F, full_matrices=False)
        F = s[:, :rank, None] * Vh[:, :rank]
    return mu, F, float((F * F).sum())


def gaussian_distance(a: Rep, b: Rep, *, alpha: float = 1.0, rank=None, max_iter: int = 100,
                      tol: float = 1e-8) -> float:
    """Gaussian (2-Wasserstein for alpha=1) stochastic shape distance of one pair."""
    import torch

    p = max(a.p, b.p)
    mx, Fx, trx = _gaussian_parts(a, p, rank)
    my, Fy, try_ = _gaussian_parts(b, p, rank)
    n = mx.shape[0]
    wa, wb = float(alpha), 2.0 - float(alpha)
    Mmu = mx.T @ my  # sum_i mx_i my_i'
    T = _polar(Mmu) if wa > 0 else torch.eye(p, dtype=mx.dtype, device=mx.device)
    last = -np.inf
    for _ in range(int(max_iter)):
        G = Fx @ (Fy @ T.T).transpose(1, 2)  # (n, Rx, Ry) = Fx_i T Fy_i'
        P, S, Qh = torch.linalg.svd(G, full_matrices=False)
        gain = wa * float((Mmu * T).sum()) + wb * float(S.sum())
        if gain - last <= tol * max(1.0, abs(gain)):
            break
        last = gain
        W = P @ Qh  # maximiser of tr(W' G_i)
        M = wa * Mmu + wb * (Fx.reshape(-1, p).T @ (W @ Fy).reshape(-1, p))  # sum_i Fx_i' W_i Fy_i
        T = _polar(M)
    G = Fx @ (Fy @ T.T).transpose(1, 2)
    nuc = float(torch.linalg.svdvals(G).sum())
    means = float((mx * mx).sum() + (my * my).sum()) - 2 * float((Mmu * T).sum())
    bures = trx + try_ - 2 * nuc
    d2 = (wa * means + wb * bures) / n
    return float(np.sqrt(max(d2, 0.0)))


def _pair_dists(X, Y):
    """(n, Rx, Ry) Euclidean distances between the repeats of every stimulus."""
    sx = (X * X).sum(2)
    sy = (Y * Y).sum(2)
    return (sx[:, :, None] + sy[:, None, :] - 2 * X @ Y.transpose(1, 2)).clamp_min(0).sqrt()


def _within(X) -> float:
    """mean_i E||x - x'|| over distinct pairs of repeats."""
    D = _pair_dists(X, X)
    R = X.shape[1]
    return float(D.sum()) / (X.shape[0] * R * (R - 1))


def energy_distance(a: Rep, b: Rep, *, max_iter: int = 100, tol: float = 1e-8) -> float:
    """Energy stochastic shape distance of one pair."""
    p = max(a.p, b.p)
    X, Y = _padded(a, p), _padded(b, p)
    T = _polar(X.mean(1).T @ Y.mean(1))
    last = np.inf
    for _ in range(int(max_iter)):
        D = _pair_dists(X, Y @ T.T)
        loss = float(D.mean())
        if last - loss <= tol * max(1.0, abs(loss)):
            break
        last = loss
        w = 1.0 / D.clamp_min(1e-12 * max(1.0, loss))
        T = _polar(X.reshape(-1, p).T @ (w @ Y).reshape(-1, p))  # sum_i X_i' W_i Y_i
    cross = float(_pair_dists(X, Y @ T.T).mean())
    d2 = cross - 0.5 * (_within(X) + _within(Y))
    return float(np.sqrt(max(d2, 0.0)))


def grid(A: list[Rep], B: list[Rep], *, same: bool, ground: str = "gaussian", alpha: float = 1.0, rank=None,
         max_iter: int = 100, tol: float = 1e-8) -> np.ndarray:
    """Stochastic shape distances of every pair: (n_a, n_b)."""
    check_option("ground", ground, ["gaussian", "energy"])
    if ground == "gaussian":
        if not (0.0 <= float(alpha) <= 2.0):
            raise ValueError(f"alpha of the Gaussian stochastic metric must be in [0, 2] (0: covariances only, "
                             f"1: 2-Wasserstein, 2: means only); got {alpha!r}.")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1):
            raise ValueError(f"rank (principal directions kept per stimulus covariance) must be None or a positive "
                             f"integer; got {rank!r}.")
    out = np.zeros((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            if same and j < i:
                out[i, j] = out[j, i]
            elif same and i == j:
                out[i, j] = 0.0
            elif ground == "gaussian":
                out[i, j] = gaussian_distance(a, b, alpha=alpha, rank=rank, max_iter=max_iter, tol=tol)
            else:
                out[i, j] = energy_distance(a, b, max_iter=max_iter, tol=tol)
    return out
