"""Ridge solvers: all alphas and all targets from one eigendecomposition per fold.

The maths (primal case, ``n_features <= n_train``)
-------------------------------------------------
With the centred training Gram matrix ``G = X_trᵀ X_tr = V diag(lam) Vᵀ`` (computed and
decomposed in float64: it is only ``n_features²``), the ridge weights for every alpha are
``W(alpha) = V diag(1 / (lam + alpha)) Vᵀ Z`` with ``Z = X_trᵀ Y_tr``. ``Z`` for every fold
comes from one product on all samples, ``Z_all = Xᵀ Y``, minus the held-out part
``X_valᵀ Y_val`` (the cheapest way to get it).

Held-out predictions for every alpha live in a small space: the filters
``f_alpha = 1 / (lam + alpha)`` (one row per alpha) have a low numerical rank ``M``
(Cauchy-like matrix), so ``f_alpha = sum_m C[alpha, m] q_m`` (truncated SVD of the
row-normalised filter matrix at ``100 * eps`` in float64, ``1e-4`` in float32: far below the
differences between the CV scores of neighbouring alphas). The ``M`` basis
predictions ``P_m = X_val V diag(q_m) Vᵀ Z`` are one GEMM of ``(M n_val, n_features)`` by
``(n_features, n_targets)``, and each alpha's prediction is a cheap combination of them.
``M <= n_alphas`` always; with a narrow feature spectrum ``M`` is far smaller.

Dual case (``n_features > n_train``): the same with the kernel ``K = X_tr X_trᵀ`` and ``Y_tr``
in place of ``G`` and ``Z``.

Targets are processed in chunks sized from the free memory of the device
(:func:`brainalign._backend.available_memory_bytes`, which honours ``BRAINALIGN_MEMORY_LIMIT``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .._docs import fill_doc
from .._backend import as_tensor, available_memory_bytes, resolve_device, resolve_dtype
from .._utils import Bunch, check_option, logger, progress_bar

__all__ = ["solve_ridge", "solve_ridge_cv"]

_SCORINGS = ("r2", "pearson_r")


# ----------------------------------------------------------------------------- input checks
def _check_alphas(alphas: Any) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D sequence of positive numbers; got shape {arr.shape}.")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise ValueError(
            f"alphas must be strictly positive and finite; got {arr[bad][:5].tolist()} "
            f"({int(bad.sum())} of {arr.size} values). Use e.g. np.logspace(-2, 6, 20)."
        )
    return arr


def _resolve(X: Any, device: Any, dtype: Any):
    if device is None or device == "auto":
        dev = X.device if isinstance(X, torch.Tensor) else resolve_device("auto")
    else:
        dev = resolve_device(device)
    if dtype is None and isinstance(X, torch.Tensor) and X.dtype == torch.float64:
        dt = torch.float64
    else:
        dt = resolve_dtype(dtype)
    if dt not in (torch.float32, torch.float64):
        raise ValueError(f"The ridge solvers run in float32 or float64, got dtype {dt}.")
    return dev, dt


def _check_xy(X: Any, Y: Any, dev, dt):
    Xt = as_tensor(X, device=dev, dtype=dt)
    Yt = as_tensor(Y, device=dev, dtype=dt)
    if Xt.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {tuple(Xt.shape)}.")
    squeeze = Yt.ndim == 1
    if squeeze:
        Yt = Yt[:, None]
    if Yt.ndim != 2:
        raise ValueError(f"Y must be 1-D or 2-D (n_samples, n_targets); got shape {tuple(Yt.shape)}.")
    if Xt.shape[0] != Yt.shape[0]:
        raise ValueError(
            f"X and Y have different numbers of samples: X has {Xt.shape[0]}, Y has {Yt.shape[0]}. "
            "They must describe the same time points / stimuli, in the same order."
        )
    for name, t in (("X", Xt), ("Y", Yt)):
        if not bool(torch.isfinite(t).all()):
            n_bad = int((~torch.isfinite(t)).sum())
            raise ValueError(
                f"{name} contains {n_bad} NaN or inf values; remove or impute them before fitting "
                "(e.g. drop voxels with NaN, or BrainData(..., nan_policy='raise') to find them)."
            )
    return Xt, Yt, squeeze


def _batch_size(n_targets: int, per_target: int, itemsize: int, dev, n_targets_batch: Any) -> int:
    if n_targets_batch is None or n_targets_batch == "auto":
        budget = available_memory_bytes(dev) // 3  # leave room for BLAS workspaces and the rest
        size = max(1, int(budget // max(1, per_target * itemsize)))
    else:
        if isinstance(n_targets_batch, bool) or not isinstance(n_targets_batch, (int, np.integer)) or n_targets_batch < 1:
            raise ValueError(f"n_targets_batch must be 'auto' or a positive integer, got {n_targets_batch!r}.")
        size = int(n_targets_batch)
    return min(size, n_targets)


# ----------------------------------------------------------------------------- decompositions
def _eigh64(M: torch.Tensor):
    """Eigendecomposition in float64 (on the CPU if the device's float64 eigh fails)."""
    M64 = M.to(torch.float64)
    M64 = (M64 + M64.T) / 2
    if M64.device.type == "cpu":  # LAPACK through numpy is the quickest on the CPU
        lam, V = np.linalg.eigh(M64.numpy())
        return torch.from_numpy(lam).clamp_min(0), torch.from_numpy(V)
    try:
        lam, V = torch.linalg.eigh(M64)
    except RuntimeError:  # pragma: no cover - GPU solver failure: fall back to the CPU
        lam, V = np.linalg.eigh(M64.cpu().numpy())
        lam, V = torch.from_numpy(lam).to(M.device), torch.from_numpy(V).to(M.device)
    return lam.clamp_min(0), V


def _alpha_basis(lam: torch.Tensor, alphas: np.ndarray, dt) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-rank basis of the filters ``1/(lam+alpha)``: returns C (n_alphas, M), Q (M, d)."""
    al = torch.as_tensor(alphas, dtype=torch.float64, device=lam.device)
    F = 1.0 / (lam[None, :] + al[:, None])
    norms = torch.linalg.vector_norm(F, dim=1, keepdim=True)
    U, s, Vh = torch.linalg.svd(F / norms, full_matrices=False)
    # float64: exact to float precision; float32: 1e-4 relative, far below the differences
    # between the CV scores of neighbouring alphas (checked against sklearn in the tests)
    tol = 100 * torch.finfo(dt).eps if dt == torch.float64 else 1e-4
    m = max(1, int((s > tol * s[0]).sum()))
    C = U[:, :m] * s[:m] * norms
    return C, Vh[:m]


class _Fold:
    """Everything about one fold that does not depend on the targets."""

    def __init__(self, Xc, train, val, alphas, fit_intercept, dual, dt):
        self.train, self.val = train, val
        n_tr = len(train)
        Xtr = Xc[train]
        self.mu = Xtr.mean(0) if fit_intercept else torch.zeros_like(Xc[0])
        Xtr64 = (Xtr - self.mu).to(torch.float64)
        Xv64 = (Xc[val] - self.mu).to(torch.float64)
        if dual:
            lam, U = _eigh64(Xtr64 @ Xtr64.T)
            left = (Xv64 @ Xtr64.T) @ U  # (n_val, n_tr)
        else:
            lam, U = _eigh64(Xtr64.T @ Xtr64)
            left = Xv64 @ U  # (n_val, n_features)
        self.C, Q = _alpha_basis(lam, alphas, dt)
        self.n_basis = Q.shape[0]
        # E[m] = left diag(q_m) Uᵀ, stacked as (M * n_val, d), in the working dtype
        left, Q, Ut = left.to(dt), Q.to(dt), U.T.to(dt)
        self.E = (left[None, :, :] * Q[:, None, :]).reshape(-1, left.shape[1]) @ Ut
        self.C = self.C.to(dt)
        self.Xval = Xc[val]
        self.n_tr = n_tr
        self.dual = dual
        self.fit_intercept = fit_intercept


def _fold_scores(fold: _Fold, Yc, Z_all, scoring, dt):
    """Held-out scores (n_alphas, n_batch) of one fold for every alpha."""
    val = fold.val
    Yv = Yc[val]
    n_val = Yv.shape[0]
    if fold.fit_intercept:
        tr_mean = (Yc.sum(0) - Yv.sum(0)) / fold.n_tr  # train-fold target means
    else:
        tr_mean = torch.zeros_like(Yv[0])
    if fold.dual:
        R = Yc[fold.train] - tr_mean
    else:
        Z_tr = Z_all - fold.Xval.T @ Yv  # (X_trᵀ Y_tr) on globally centred data
        R = Z_tr - fold.n_tr * fold.mu[:, None] * tr_mean[None, :]  # centre within the fold
    M = fold.n_basis
    P = (fold.E @ R).reshape(M, n_val, -1)  # the one big GEMM of the fold
    n_b = P.shape[2]
    yv = Yv - tr_mean  # prediction = P-combination + tr_mean
    yv0 = Yv - Yv.mean(0)
    ss_tot = (yv0 * yv0).sum(0)
    C = fold.C
    psum = C @ P.sum(1)  # (n_alphas, n_batch)
    target = yv if scoring == "r2" else yv0
    # per basis vector (no temporary of P's size)
    cross = C @ torch.stack([torch.linalg.vecdot(P[m], target, dim=0) for m in range(M)])
    n_alphas = C.shape[0]
    # squared norms of every alpha's prediction, over blocks of validation rows so that the
    # temporary (n_alphas, rows, n_batch) block stays small (~64 MB) and P is read once
    sq = torch.zeros((n_alphas, n_b), dtype=dt, device=P.device)
    step = max(1, min(n_val, int(2**24 // max(1, n_alphas * n_b))))
    for v0 in range(0, n_val, step):
        blk = P[:, v0:v0 + step].reshape(M, -1)
        pred = (C @ blk).reshape(n_alphas, -1, n_b)
        sq += torch.linalg.vecdot(pred, pred, dim=1)
    tiny = torch.finfo(dt).tiny
    if scoring == "r2":
        ss_res = (yv * yv).sum(0) - 2 * cross + sq
        score = 1 - ss_res / ss_tot.clamp_min(tiny)
        score = torch.where(ss_tot > 0, score, torch.zeros_like(score))
    else:
        var_p = (sq - psum * psum / n_val).clamp_min(0)
        denom = torch.sqrt(var_p * ss_tot)
        score = torch.where(denom > 0, cross / denom.clamp_min(tiny), torch.zeros_like(cross))
    return score


def _full_decomposition(Xc, dual):
    X64 = Xc.to(torch.float64)
    return _eigh64(X64 @ X64.T if dual else X64.T @ X64)


def _refit(Xc, Yc, A, lam, U, alpha_t, dual, dt):
    """Weights (n_features, n_batch) for per-target alphas ``alpha_t`` (n_batch,).

    Primal: ``A = Xc V`` (formed in float64, then cast) so that ``Aᵀ Y`` carries no error
    amplified by small eigenvalues (forming ``Xᵀ Y`` first would, in float32).
    """
    U = U.to(dt)
    filt = 1.0 / (lam.to(dt)[:, None] + alpha_t[None, :])
    if dual:
        dual_coef = U @ (filt * (U.T @ Yc))
        return Xc.T @ dual_coef
    return U @ (filt * (A.T @ Yc))


def _rotated(Xc, U, dual, dt):
    return None if dual else (Xc.to(torch.float64) @ U).to(dt)


# ----------------------------------------------------------------------------- public solvers
@fill_doc
def solve_ridge_cv(
    X: Any,
    Y: Any,
    alphas: Any = np.logspace(-2, 6, 20),
    *,
    splits: Sequence[tuple[Any, Any]],
    fit_intercept: bool = True,
    alpha_per_target: bool = True,
    scoring: str = "r2",
    solver: str = "auto",
    device: Any = "auto",
    dtype: Any = None,
    n_targets_batch: Any = "auto",
    return_weights: bool = True,
    verbose: bool = False,
) -> Bunch:
    """Cross-validated ridge regression, alphas selected per target, all targets at once.

    Parameters
    ----------
    X : array or tensor of shape (n_samples, n_features)
    Y : array or tensor of shape (n_samples, n_targets) or (n_samples,)
    alphas : array of shape (n_alphas,)
        Strictly positive regularization strengths.
    splits : sequence of (train_indices, validation_indices)
        The inner folds (e.g. from :func:`brainalign.encoding.check_cv`).
    fit_intercept : bool
        Centre X and Y on the training part of every fold (and on all samples for the refit).
    alpha_per_target : bool
        Select one alpha per target (True) or one alpha for all targets (best mean score).
    scoring : {"r2", "pearson_r"}
        Held-out score used to select the alphas (averaged over folds).
    solver : {"auto", "primal", "dual"}
        ``"auto"`` uses the kernel (dual) form when n_features > n_samples of a fold.
    device : "auto", str or torch.device
        ``"auto"``: where the input tensor lives, or :func:`brainalign._backend.resolve_device`.
    dtype : None, "float32" or "float64"
        Working precision (float32 by default; decompositions are always done in float64).
    n_targets_batch : "auto" or int
        Targets per chunk; ``"auto"`` sizes chunks from the device's free memory.
    return_weights : bool
        Refit on all samples with the selected alphas and return the weights.
    %(verbose)s
        Show a progress bar over target chunks.

    Returns
    -------
    Bunch with ``cv_scores`` (n_alphas, n_targets), ``best_alphas`` (n_targets,),
    ``coef`` (n_targets, n_features), ``intercept`` (n_targets,), ``n_batches`` and
    ``n_basis`` (size of the alpha basis per fold), all as torch tensors on ``device``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5)); Y = X @ rng.standard_normal((5, 3))
    >>> folds = [(np.r_[20:60], np.r_[0:20]), (np.r_[0:40], np.r_[40:60])]
    >>> out = solve_ridge_cv(X, Y, [0.1, 10.0], splits=folds)
    >>> tuple(out.coef.shape), tuple(out.cv_scores.shape)
    ((3, 5), (2, 3))
    """
    alphas = _check_alphas(alphas)
    check_option("scoring", scoring, _SCORINGS)
    check_option("solver", solver, ["auto", "primal", "dual"])
    dev, dt = _resolve(X, device, dtype)
    Xt, Yt, _ = _check_xy(X, Y, dev, dt)
    n, p = Xt.shape
    n_targets = Yt.shape[1]
    splits = [(np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64)) for tr, va in splits]
    if not splits:
        raise ValueError("splits is empty: give at least one (train, validation) pair.")
    for k, (tr, va) in enumerate(splits):
        if len(tr) < 2 or len(va) < 2:
            raise ValueError(
                f"Fold {k} has {len(tr)} training and {len(va)} validation samples; every fold needs "
                "at least 2 of each (scores need a variance). Use fewer folds or more samples."
            )
    n_tr_max = max(len(tr) for tr, _ in splits)
    dual = solver == "dual" or (solver == "auto" and p > n_tr_max)

    x_mean = Xt.mean(0) if fit_intercept else torch.zeros(p, dtype=dt, device=dev)
    Xc = Xt - x_mean if fit_intercept else Xt
    folds = [
        _Fold(Xc, torch.as_tensor(tr, device=dev), torch.as_tensor(va, device=dev), alphas, fit_intercept, dual, dt)
        for tr, va in splits
    ]
    n_basis = [f.n_basis for f in folds]
    logger.info("ridge CV: %d folds, %s form, alpha basis sizes %s", len(folds), "dual" if dual else "primal", n_basis)
    lam_full, U_full = _full_decomposition(Xc, dual) if return_weights else (None, None)
    A_full = _rotated(Xc, U_full, dual, dt) if return_weights else None

    n_val_max = max(len(va) for _, va in splits)
    d = n_tr_max if dual else p
    per_target = 3 * n + 3 * d + max(n_basis) * n_val_max + min(len(alphas), 8) * n_val_max + 4 * len(alphas) + p
    batch = _batch_size(n_targets, per_target, torch.finfo(dt).bits // 8, dev, n_targets_batch)
    starts = list(range(0, n_targets, batch))

    al_t = torch.as_tensor(alphas, dtype=dt, device=dev)
    cv_scores = torch.zeros((len(alphas), n_targets), dtype=dt, device=dev)
    coef = torch.zeros((n_targets, p), dtype=dt, device=dev) if return_weights else None
    intercept = torch.zeros(n_targets, dtype=dt, device=dev) if return_weights else None
    # a single alpha for all targets needs every target's score before the refit
    two_pass = return_weights and not alpha_per_target
    for j0 in progress_bar(starts, verbose=verbose, desc="ridge CV"):
        cols = slice(j0, min(j0 + batch, n_targets))
        Yb = Yt[:, cols]
        y_mean = Yb.mean(0) if fit_intercept else None
        Yc = Yb - y_mean if fit_intercept else Yb
        Z_all = None if dual else Xc.T @ Yc
        for fold in folds:
            cv_scores[:, cols] += _fold_scores(fold, Yc, Z_all, scoring, dt)
        if return_weights and not two_pass:
            best = al_t[cv_scores[:, cols].argmax(0)]
            W = _refit(Xc, Yc, A_full, lam_full, U_full, best, dual, dt)
            coef[cols] = W.T
            if fit_intercept:
                intercept[cols] = y_mean - x_mean @ W
    cv_scores /= len(folds)
    if alpha_per_target:
        best_alphas = al_t[cv_scores.argmax(0)]
    else:
        best_alphas = al_t[cv_scores.mean(1).argmax()].repeat(n_targets)
    if two_pass:
        fit = solve_ridge(Xt, Yt, best_alphas, fit_intercept=fit_intercept, device=dev, dtype=dt,
                          n_targets_batch=n_targets_batch, solver="dual" if dual else "primal")
        coef, intercept = fit.coef, fit.intercept
    return Bunch(cv_scores=cv_scores, best_alphas=best_alphas, coef=coef, intercept=intercept,
                 n_batches=len(starts), n_basis=n_basis, dual=dual)


def solve_ridge(
    X: Any,
    Y: Any,
    alpha: Any = 1.0,
    *,
    fit_intercept: bool = True,
    solver: str = "auto",
    device: Any = "auto",
    dtype: Any = None,
    n_targets_batch: Any = "auto",
) -> Bunch:
    """Ridge regression with a fixed alpha (a scalar, or one per target).

    Parameters
    ----------
    X : array or tensor of shape (n_samples, n_features)
    Y : array or tensor of shape (n_samples, n_targets) or (n_samples,)
    alpha : float or array of shape (n_targets,)
    fit_intercept, solver, device, dtype, n_targets_batch
        As in :func:`solve_ridge_cv`.

    Returns
    -------
    Bunch with ``coef`` (n_targets, n_features) and ``intercept`` (n_targets,) tensors.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(4); Y = np.arange(4.0)
    >>> solve_ridge(X, Y, 1.0, fit_intercept=False).coef.shape
    torch.Size([1, 4])
    """
    check_option("solver", solver, ["auto", "primal", "dual"])
    dev, dt = _resolve(X, device, dtype)
    Xt, Yt, _ = _check_xy(X, Y, dev, dt)
    n, p = Xt.shape
    n_targets = Yt.shape[1]
    al = torch.as_tensor(_check_alphas(alpha), dtype=dt, device=dev)
    if al.numel() == 1:
        al = al.repeat(n_targets)
    if al.numel() != n_targets:
        raise ValueError(f"alpha must be a scalar or have one value per target ({n_targets}); got {al.numel()}.")
    dual = solver == "dual" or (solver == "auto" and p > n)
    x_mean = Xt.mean(0) if fit_intercept else torch.zeros(p, dtype=dt, device=dev)
    Xc = Xt - x_mean if fit_intercept else Xt
    lam, U = _full_decomposition(Xc, dual)
    A = _rotated(Xc, U, dual, dt)
    batch = _batch_size(n_targets, 3 * n + 3 * p, torch.finfo(dt).bits // 8, dev, n_targets_batch)
    coef = torch.zeros((n_targets, p), dtype=dt, device=dev)
    intercept = torch.zeros(n_targets, dtype=dt, device=dev)
    for j0 in range(0, n_targets, batch):
        cols = slice(j0, min(j0 + batch, n_targets))
        Yb = Yt[:, cols]
        y_mean = Yb.mean(0) if fit_intercept else None
        Yc = Yb - y_mean if fit_intercept else Yb
        W = _refit(Xc, Yc, A, lam, U, al[cols], dual, dt)
        coef[cols] = W.T
        if fit_intercept:
            intercept[cols] = y_mean - x_mean @ W
    return Bunch(coef=coef, intercept=intercept)
