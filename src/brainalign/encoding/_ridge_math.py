"""The ridge solvers' arithmetic: fold decompositions, held-out scores of every alpha, refits.

Private to the encoding room; :mod:`._solvers` documents the maths and holds the public
functions. Everything here works on torch tensors that are already checked, centred and
scaled (see ``_solvers._prepare``).
"""

from __future__ import annotations

import numpy as np
import torch

_F64 = torch.float64
#: rows per block when a float64 Gram matrix or product is accumulated from a float32 X
_ROWS_BLOCK = 8192


# ----------------------------------------------------------------------------- decompositions
def eigh64(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigendecomposition of a symmetric float64 matrix (LAPACK through numpy on the CPU)."""
    M = (M + M.T) / 2
    if M.device.type == "cpu":
        lam, V = np.linalg.eigh(M.numpy())
        return torch.from_numpy(lam).clamp_min(0), torch.from_numpy(V)
    try:
        lam, V = torch.linalg.eigh(M)
    except RuntimeError:  # pragma: no cover - GPU solver failure: fall back to the CPU
        lam, V = np.linalg.eigh(M.cpu().numpy())
        lam, V = torch.from_numpy(lam).to(M.device), torch.from_numpy(V).to(M.device)
    return lam.clamp_min(0), V


def gram64(X: torch.Tensor, *, dual: bool) -> torch.Tensor:
    """``XᵀX`` (primal) or ``XXᵀ`` (dual) in float64, X converted block by block."""
    if X.dtype == _F64:
        return X @ X.T if dual else X.T @ X
    if dual:  # accumulate over blocks of columns
        K = torch.zeros((X.shape[0], X.shape[0]), dtype=_F64, device=X.device)
        for j in range(0, X.shape[1], _ROWS_BLOCK):
            blk = X[:, j:j + _ROWS_BLOCK].to(_F64)
            K.addmm_(blk, blk.T)
        return K
    G = torch.zeros((X.shape[1], X.shape[1]), dtype=_F64, device=X.device)
    for i in range(0, X.shape[0], _ROWS_BLOCK):
        blk = X[i:i + _ROWS_BLOCK].to(_F64)
        G.addmm_(blk.T, blk)
    return G


def rotate64(X: torch.Tensor, U: torch.Tensor, dt) -> torch.Tensor:
    """``X @ U`` formed in float64 (block by block) and returned in ``dt``."""
    if X.dtype == _F64:
        return (X @ U).to(dt)
    out = torch.empty((X.shape[0], U.shape[1]), dtype=dt, device=X.device)
    for i in range(0, X.shape[0], _ROWS_BLOCK):
        out[i:i + _ROWS_BLOCK] = (X[i:i + _ROWS_BLOCK].to(_F64) @ U).to(dt)
    return out


def alpha_basis(lam: torch.Tensor, alphas: np.ndarray, dt) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-rank basis of the filters ``1/(lam+alpha)``: returns C (n_alphas, M), Q (M, d).

    ``1/(lam+alpha) = sum_m C[alpha, m] Q[m]``. The rows approximated are the filters relative
    to the least regularized one, ``g = (lam + alpha_min) / (lam + alpha)`` (entries in (0, 1]),
    each scaled to unit norm: an error in ``g`` weighs every eigen-direction as it weighs in the
    predictions, so the truncation error is relative to each alpha's prediction and the
    coefficients C stay of order 1 (no cancellation between basis predictions, even when X is
    ill-conditioned and float32).
    """
    al = torch.as_tensor(alphas, dtype=_F64, device=lam.device)
    base = lam + al.min()
    G = base[None, :] / (lam[None, :] + al[:, None])
    norms = torch.linalg.vector_norm(G, dim=1, keepdim=True)
    U, s, Vh = torch.linalg.svd(G / norms, full_matrices=False)
    # float64: exact to float precision; float32: 1e-4 relative, far below the differences
    # between the CV scores of neighbouring alphas (checked against sklearn in the tests)
    tol = 100 * torch.finfo(dt).eps if dt == _F64 else 1e-4
    m = max(1, int((s > tol * s[0]).sum()))
    return U[:, :m] * s[:m] * norms, Vh[:m] / base[None, :]


class Fold:
    """Everything about one fold that does not depend on the targets.

    ``complement`` folds (training = every sample not in validation, no repeats) get their
    training cross-products as "all minus validation"; other folds (e.g. TimeSeriesSplit,
    hand-made lists) from their own training rows.
    """

    def __init__(self, Xc, gram, train, val, complement, alphas, *, fit_intercept, dual, dt, n_targets):
        self.train = torch.as_tensor(train, device=Xc.device)
        self.val = torch.as_tensor(val, device=Xc.device)
        self.complement, self.dual, self.fit_intercept = complement, dual, fit_intercept
        self.n_tr = len(train)
        self.Xval = Xc[self.val]
        self.Xtr = None
        if dual:
            lam, U, left = self._dual(gram)
        else:
            lam, U, left = self._primal(Xc, gram)
        C, Q = alpha_basis(lam, alphas, dt)
        self.C, self.n_basis = C.to(dt), Q.shape[0]
        # P_m = left diag(q_m) Uᵀ R for every m is one GEMM; it is formed transposed, as
        # (n_batch, M, n_val), so that the per-target Gram of the M predictions is one bmm.
        # LqT[:, m * n_val + v] = left[v] * q_m
        LqT = (left[None, :, :] * Q[:, None, :]).reshape(-1, left.shape[1]).T.to(dt)
        Udt = U.to(dt)
        # Eᵀ = U Lqᵀ costs M n_val d² once; without it every target costs d² more
        use_e = n_targets > self.n_basis * len(val)
        self.ET, self.LqT, self.U = ((Udt @ LqT).contiguous(), None, None) if use_e else (None, LqT.contiguous(), Udt)

    def _primal(self, Xc, gram):
        Xv64 = self.Xval.to(_F64)
        # the training Gram from the centred training rows (as "all minus validation" it would
        # lose the small eigenvalues of an ill-conditioned X to cancellation)
        Xtr = Xc[self.train]
        if not self.complement:
            self.Xtr = Xtr  # its cross-products with the targets are needed per batch
        if self.fit_intercept:
            self.mu = Xtr.mean(0, dtype=_F64).to(Xc.dtype)
            G = gram64(Xtr - self.mu, dual=False)
        else:
            self.mu = torch.zeros_like(Xc[0])
            G = gram64(Xtr, dual=False)
        lam, U = eigh64(G)
        return lam, U, (Xv64 - self.mu.to(_F64)) @ U

    def _dual(self, K):
        tr, va = self.train, self.val
        Ktt, Kvt = K[tr][:, tr], K[va][:, tr]
        if self.fit_intercept:  # centre on the training mean in feature space, from K alone
            m_tr, m_va, mm = Ktt.mean(1), Kvt.mean(1), Ktt.mean()
            Ktt = Ktt - m_tr[:, None] - m_tr[None, :] + mm
            Kvt = Kvt - m_va[:, None] - m_tr[None, :] + mm
        lam, U = eigh64(Ktt)
        return lam, U, Kvt @ U


def fold_scores(fold: Fold, Yc, ysum, Z_all, scoring: str, dt, *, Z_val=None) -> torch.Tensor:
    """Held-out scores (n_alphas, n_batch) of one fold for every alpha (``Z_val``: the fold's
    ``Xᵥᵀ Yᵥ`` when the caller has it already)."""
    Yv = Yc[fold.val]
    n_val = Yv.shape[0]
    if not fold.fit_intercept:
        tr_mean = torch.zeros_like(Yv[0])
    elif fold.complement:
        tr_mean = (ysum - Yv.sum(0)) / fold.n_tr
    else:
        tr_mean = Yc[fold.train].mean(0)
    if fold.dual:
        R = Yc[fold.train] - tr_mean
    else:
        if fold.complement:
            Z_tr = Z_all - (fold.Xval.T @ Yv if Z_val is None else Z_val)
        else:
            Z_tr = fold.Xtr.T @ Yc[fold.train]
        R = Z_tr - fold.n_tr * fold.mu[:, None] * tr_mean[None, :]  # centre within the fold
    M = fold.n_basis
    # PT[j, m, v]: basis prediction m of target j at validation sample v
    PT = R.T @ fold.ET if fold.ET is not None else (R.T @ fold.U) @ fold.LqT
    n_b = PT.shape[0]
    PT = PT.reshape(n_b, M, n_val)
    yv = Yv - tr_mean  # prediction = tr_mean + sum_m C[a, m] P_m
    yv0 = Yv - Yv.mean(0)
    ss_tot = (yv0 * yv0).sum(0)
    C = fold.C
    target = (yv if scoring == "r2" else yv0).T.contiguous()
    cross = C @ torch.bmm(PT, target[:, :, None])[:, :, 0].T  # (n_alphas, n_batch)
    # ||sum_m C[a, m] P_m||² = C[a]ᵀ Gram C[a], with the (M, M) Gram of every target
    gram = torch.bmm(PT, PT.transpose(1, 2)).reshape(n_b, M * M)
    sq = (C[:, :, None] * C[:, None, :]).reshape(-1, M * M) @ gram.T
    tiny = torch.finfo(dt).tiny
    if scoring == "r2":
        ss_res = (yv * yv).sum(0) - 2 * cross + sq
        score = 1 - ss_res / ss_tot.clamp_min(tiny)
        return torch.where(ss_tot > 0, score, torch.zeros_like(score))
    psum = C @ PT.sum(2).T  # (n_alphas, n_batch)
    var_p = (sq - psum * psum / n_val).clamp_min(0)
    denom = torch.sqrt(var_p * ss_tot)
    return torch.where(denom > 0, cross / denom.clamp_min(tiny), torch.zeros_like(cross))


class Refit:
    """Weights on all samples for per-target alphas, from one decomposition of all of X.

    Primal: ``W = U diag(1/(lam+alpha)) Uᵀ Xᵀ Y``. With a benign spectrum ``Uᵀ (Xᵀ Y)``
    reuses the cross-products of the CV; when ``lam_max / (lam_min + alpha)`` is large, a
    float32 ``Xᵀ Y`` would carry an error amplified by the small eigenvalues, so ``A = X U``
    is formed in float64 (then cast) and ``Aᵀ Y`` is used instead. Dual:
    ``W = Xᵀ U diag(1/(lam+alpha)) Uᵀ Y``.
    """

    #: largest lam_max / (lam_min + alpha) for which float32 uses Uᵀ (Xᵀ Y)
    SAFE_CONDITION = 1e4

    def __init__(self, Xc, gram, *, dual, dt):
        self.lam, self.U = eigh64(gram)
        self.Xc, self.dual, self.dt = Xc, dual, dt
        self.Ut = self.U.T.to(dt)
        self.Udt = self.U.to(dt)
        self._A = None

    def weights(self, Yc, Z_all, alphas_t: torch.Tensor) -> torch.Tensor:
        """Weights (n_features, n_batch) for the per-target alphas ``alphas_t`` (float64)."""
        filt = (1.0 / (self.lam[:, None] + alphas_t[None, :])).to(self.dt)
        if self.dual:
            return self.Xc.T @ (self.Udt @ (filt * (self.Ut @ Yc)))
        if Z_all is not None and (self.dt == _F64 or self._benign(alphas_t)):
            return self.Udt @ (filt * (self.Ut @ Z_all))
        if self._A is None:
            self._A = rotate64(self.Xc, self.U, self.dt)
        return self.Udt @ (filt * (self._A.T @ Yc))

    def _benign(self, alphas_t):
        lam_max = float(self.lam.max())
        return lam_max <= self.SAFE_CONDITION * (float(self.lam.min()) + float(alphas_t.min()))
