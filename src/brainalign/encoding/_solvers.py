"""Ridge solvers: all alphas and all targets from one eigendecomposition per fold.

The maths (primal case, ``n_features <= n_train``)
-------------------------------------------------
With the centred training Gram matrix ``G = X_trᵀ X_tr = V diag(lam) Vᵀ`` (computed and
decomposed in float64: it is only ``n_features²``), the ridge weights for every alpha are
``W(alpha) = V diag(1 / (lam + alpha)) Vᵀ Z`` with ``Z = X_trᵀ Y_tr``. When the training set
is the complement of the validation set (KFold, GroupKFold, LeaveOneGroupOut...), ``Z`` of
every fold comes from the product on all samples minus the held-out part (the cheapest way
to get it); any other fold (TimeSeriesSplit, hand-made lists) uses its own training rows.
Means are always those of the fold's training rows.

Held-out predictions for every alpha live in a small space: the filters
``f_alpha = 1 / (lam + alpha)`` (one row per alpha) have a low numerical rank ``M``
(Cauchy-like matrix), so ``f_alpha = sum_m C[alpha, m] q_m``, a truncated SVD of the filters
relative to the least regularized one, ``(lam + alpha_min) / (lam + alpha)``, rows scaled to
unit norm (error ``100 * eps`` in float64, ``1e-4`` in float32; this weighting keeps ``C`` of
order 1, so float32 stays accurate when X is ill-conditioned). The ``M`` basis predictions
``P_m = X_val V diag(q_m) Vᵀ Z`` are one GEMM of ``(n_targets, n_features)`` by
``(n_features, M n_val)``; the held-out R² (or r) of every alpha then needs only, per target,
the ``(M, M)`` Gram matrix of the ``P_m`` and their products with the held-out targets (one
batched product), never every alpha's prediction. ``M <= n_alphas`` always (about 10 for 20
alphas over 8 decades).

Dual case (``n_features > n_train``): the same with the kernel ``K = X_tr X_trᵀ`` (every
fold's block taken from one float64 ``X Xᵀ``) and ``Y_tr`` in place of ``G`` and ``Z``.

Scale: X is multiplied by a power of two (and the alphas by its square) when its entries
are far from 1, and so is every target column, which changes no result (powers of two
are exact) but keeps float32 from overflowing or underflowing (``X * 1e20``).

Targets are processed in chunks sized from the free memory of the device
(:func:`brainalign._backend.available_memory_bytes`, which honours ``BRAINALIGN_MEMORY_LIMIT``).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.utils._param_validation import validate_params

from .._backend import as_tensor, available_memory_bytes, resolve_device, resolve_dtype, to_numpy
from .._docs import fill_doc
from .._utils import Bunch, check_finite, logger, progress_bar
from ._cv import check_splits
from ._params import DEFAULT_ALPHAS, RIDGE_CONSTRAINTS, SOLVER_CONSTRAINT
from ._ridge_math import Fold, Refit, fold_scores, gram64

__all__ = ["solve_ridge", "solve_ridge_cv"]

_F32, _F64 = torch.float32, torch.float64
#: entries (or target columns) whose largest magnitude is outside 2**±_SAFE_EXP are rescaled
_SAFE_EXP = 30
#: every alpha below (above) this factor times the mean eigenvalue of XᵀX: warn
_ALPHA_RANGE = 1e10


# ----------------------------------------------------------------------------- input checks
def _check_alphas(alphas: Any) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(to_numpy(alphas), dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"alphas must be a non-empty 1-D sequence of positive numbers; got shape {arr.shape}.")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise ValueError(
            f"alphas must be strictly positive and finite; got {arr[bad][:5].tolist()} "
            f"({int(bad.sum())} of {arr.size} values). Use e.g. np.logspace(-2, 6, 20)."
        )
    return arr


def working_dtype(X: Any, dtype: Any = None):
    """The solvers' dtype policy: ``dtype`` if given, else X's float precision.

    float32 and float64 are kept; float16 and bfloat16 are computed in float32 (too few
    digits for a ridge); anything else (integers, booleans) in float64.
    """
    if dtype is not None:
        dt = resolve_dtype(dtype)
        if dt not in (_F32, _F64):
            raise ValueError(f"The ridge solvers run in float32 or float64, got dtype={dtype!r}: half precision "
                             "has ~3 significant digits, too few for a ridge. Use dtype='float32'.")
        return dt
    src = X.dtype if isinstance(X, torch.Tensor) else np.asarray(X).dtype
    if src in (_F64, np.float64):
        return _F64
    if src in (_F32, torch.float16, torch.bfloat16, np.float32, np.float16):
        return _F32
    return _F64


def _resolve_device(X: Any, device: Any):
    if device is None or (isinstance(device, str) and device == "auto"):
        if isinstance(X, torch.Tensor):
            if X.device.type == "mps":  # no float64 there: decompositions need it
                logger.info("ridge: X is on an MPS device, which lacks float64; solving on the CPU.")
                return torch.device("cpu")
            return X.device
        return resolve_device("auto", need_float64=True)
    return resolve_device(device, need_float64=True)


def _as_checked(A: Any, name: str, dev, dt) -> torch.Tensor:
    t = as_tensor(A, device=dev, dtype=dt)
    if not bool(torch.isfinite(t).all()):
        orig = to_numpy(A)
        check_finite(orig, name, hint="Remove or impute them before fitting (e.g. drop channels with NaN).")
        raise ValueError(
            f"{name} has values beyond the range of {str(dt).replace('torch.', '')} (largest magnitude "
            f"{float(np.nanmax(np.abs(orig))):.3g}); pass dtype='float64' or rescale {name}."
        )
    return t


def _check_xy(X: Any, Y: Any, dev, dt):
    if getattr(X, "ndim", np.ndim(X)) != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {tuple(np.shape(X))}.")
    y_ndim = getattr(Y, "ndim", np.ndim(Y))
    if y_ndim not in (1, 2):
        raise ValueError(f"Y must be 1-D or 2-D (n_samples, n_targets); got shape {tuple(np.shape(Y))}.")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y have different numbers of samples: X has {X.shape[0]}, Y has {Y.shape[0]}. "
            "They must describe the same time points / stimuli, in the same order."
        )
    Xt = _as_checked(X, "X", dev, dt)
    Yt = _as_checked(Y, "Y", dev, dt)
    squeeze = Yt.ndim == 1
    return Xt, (Yt[:, None] if squeeze else Yt), squeeze


def _pow2(maxabs: torch.Tensor) -> torch.Tensor:
    """Powers of two that bring ``maxabs`` near 1 where it is outside 2**±_SAFE_EXP, else 1."""
    m = maxabs.to(_F64)
    e = torch.floor(torch.log2(torch.where(m > 0, m, torch.ones_like(m))))
    return torch.where(e.abs() > _SAFE_EXP, torch.exp2(e), torch.ones_like(e))


def _batch_size(n_targets: int, per_target: int, itemsize: int, dev, n_targets_batch: Any) -> int:
    if n_targets_batch is None or n_targets_batch == "auto":
        budget = available_memory_bytes(dev) // 3  # leave room for BLAS workspaces and the rest
        size = max(1, int(budget // max(1, per_target * itemsize)))
    else:
        size = int(n_targets_batch)
    return min(size, n_targets)


class _Problem:
    """Checked, centred and scaled inputs shared by both solvers."""

    def __init__(self, X, Y, *, device, dtype, fit_intercept, solver, n_train=None):
        self.dev = _resolve_device(X, device)
        self.dt = working_dtype(X, dtype)
        Xt, self.Y, self.squeeze = _check_xy(X, Y, self.dev, self.dt)
        self.n, self.p = Xt.shape
        self.n_targets = self.Y.shape[1]
        if self.p == 0 or self.n_targets == 0:
            raise ValueError(f"X has {self.p} features and Y {self.n_targets} targets; both need at least one.")
        self.fit_intercept = fit_intercept
        self.sx = float(_pow2(torch.linalg.vector_norm(Xt, float("inf"))))
        if self.sx != 1.0:
            Xt = Xt / self.sx
        self.x_mean = Xt.mean(0) if fit_intercept else torch.zeros(self.p, dtype=self.dt, device=self.dev)
        self.Xc = Xt - self.x_mean if fit_intercept else Xt
        n_tr = self.n if n_train is None else n_train
        self.dual = solver == "dual" or (solver == "auto" and self.p > n_tr)

    def targets(self, cols: slice):
        """Centred, scaled targets of one batch, their means, scales and column sums."""
        Yb = self.Y[:, cols]
        y_mean = Yb.mean(0) if self.fit_intercept else torch.zeros_like(Yb[0])
        Yc = Yb - y_mean if self.fit_intercept else Yb
        sy = _pow2(torch.linalg.vector_norm(Yc, float("inf"), dim=0))
        scaled = bool((sy != 1).any())
        sy = sy.to(self.dt)
        if scaled:
            Yc = Yc / sy
        return Yc, y_mean, sy, scaled

    def store(self, W, Yc_mean, sy, scaled, coef, intercept, cols):
        """Weights of the scaled problem -> coef (n_targets, n_features) and intercept."""
        if self.sx != 1.0:
            W = W / self.sx
        if scaled:
            W = W * sy
        coef[cols] = W.T
        if self.fit_intercept:
            intercept[cols] = Yc_mean - (self.x_mean * self.sx) @ W

    def warn_alpha_scale(self, gram: torch.Tensor, alphas_w: np.ndarray, alphas: np.ndarray, stacklevel: int):
        """Warn when every alpha is negligible, or overwhelming, on the scale of XᵀX."""
        mean_eig = float(gram.diagonal().sum()) / max(min(self.n, self.p), 1)
        if not mean_eig > 0:
            return
        lo, hi = alphas_w.min() / mean_eig, alphas_w.max() / mean_eig
        if lo <= _ALPHA_RANGE and hi >= 1 / _ALPHA_RANGE:
            return
        what = ("negligible: the fit is unregularized least squares" if hi < 1
                else "overwhelming: the weights are shrunk to almost 0")
        grid = (f"alpha={alphas[0]:.3g} is" if alphas.size == 1
                else f"alphas from {alphas.min():.3g} to {alphas.max():.3g} are")
        max_abs = self.sx * float(torch.linalg.vector_norm(self.Xc + self.x_mean, float("inf")))
        warnings.warn(
            f"On the scale of X (largest |X| = {max_abs:.3g}), {grid} {what}. The mean eigenvalue "
            f"of XᵀX is {mean_eig * self.sx ** 2:.3g}: standardize X (e.g. sklearn.preprocessing.StandardScaler) "
            "or give alphas around that value.", stacklevel=stacklevel)


def _targets_per_batch(prob: _Problem, folds, d: int, n_alphas: int, n_targets_batch: Any, *,
                       keep_val_products: bool = False) -> int:
    n_val = max((len(f.val) for f in folds), default=0)
    m = max((f.n_basis for f in folds), default=0)
    per_target = 3 * prob.n + 4 * d + m * n_val + 2 * n_val + 4 * n_alphas + prob.p
    if keep_val_products:  # every fold's Xᵥᵀ Yᵥ is kept while the folds are scored
        per_target += len(folds) * d
    return _batch_size(prob.n_targets, per_target, torch.finfo(prob.dt).bits // 8, prob.dev, n_targets_batch)


def _check_weights(coef, prob: _Problem) -> None:
    """The weights are computed on a rescaled problem; refuse ones that the dtype cannot hold."""
    if coef is not None and not bool(torch.isfinite(coef).all()):
        raise ValueError(
            f"The ridge weights exceed the range of {str(prob.dt).replace('torch.', '')}: they scale as |Y| / |X|, and "
            f"here |X| is about {prob.sx:.3g}. Pass dtype='float64', or rescale X or Y."
        )


# ----------------------------------------------------------------------------- public solvers
@fill_doc
@validate_params(
    {"X": ["array-like"], "Y": ["array-like"], "splits": "no_validation", "alpha_per_target": ["boolean"],
     "solver": SOLVER_CONSTRAINT, "return_weights": ["boolean"], **RIDGE_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def solve_ridge_cv(
    X: Any,
    Y: Any,
    alphas: Any = DEFAULT_ALPHAS,
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
    %(alphas)s
    splits : sequence of (train_indices, validation_indices)
        The folds (e.g. from :func:`brainalign.encoding.check_cv`); any disjoint pairs of
        integer indices, the training set need not be the complement of the validation set.
    %(fit_intercept)s
    alpha_per_target : bool
        Select one alpha per target (True) or one alpha for all targets (best mean score).
    %(scoring)s
    %(solver)s
    %(device)s
    %(dtype)s
    %(n_targets_batch)s
    return_weights : bool
        Refit on all samples with the selected alphas and return the weights.
    %(verbose)s

    Returns
    -------
    Bunch with ``cv_scores`` (n_alphas, n_targets), ``best_alphas`` (n_targets,; float64,
    values of ``alphas``), ``best_score`` (n_targets,; the selected alpha's score),
    ``coef`` (n_targets, n_features) and ``intercept`` (n_targets,) (None without
    ``return_weights``), all torch tensors on the device in the working dtype; ``n_batches``
    and ``n_basis`` (size of the alpha basis per fold).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5)); Y = X @ rng.standard_normal((5, 3))
    >>> folds = [(np.r_[20:60], np.r_[0:20]), (np.r_[0:40], np.r_[40:60])]
    >>> out = solve_ridge_cv(X, Y, [0.1, 10.0], splits=folds)
    >>> tuple(out.coef.shape), tuple(out.cv_scores.shape), out.coef.dtype
    ((3, 5), (2, 3), torch.float64)
    """
    alphas = _check_alphas(alphas)
    n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
    return _solve_cv(X, Y, alphas, check_splits(splits, n_samples), fit_intercept=fit_intercept,
                     alpha_per_target=alpha_per_target, scoring=scoring, solver=solver, device=device, dtype=dtype,
                     n_targets_batch=n_targets_batch, return_weights=return_weights, verbose=verbose,
                     warn_stacklevel=5)


def _solve_cv(X, Y, alphas: np.ndarray, folds_idx, *, fit_intercept=True, alpha_per_target=True, scoring="r2",
              solver="auto", device="auto", dtype=None, n_targets_batch="auto", return_weights=True,
              verbose=False, warn_stacklevel=4) -> Bunch:
    """:func:`solve_ridge_cv` on checked alphas and folds (``check_splits``' triples).

    ``warn_stacklevel``: where the alpha-scale warning points (4: the caller of the function
    that calls this one); 0 turns it off.
    """
    n_tr_max = max(len(tr) for tr, _, _ in folds_idx)
    prob = _Problem(X, Y, device=device, dtype=dtype, fit_intercept=fit_intercept, solver=solver, n_train=n_tr_max)
    dt, dev, dual = prob.dt, prob.dev, prob.dual
    alphas_w = alphas / prob.sx ** 2
    gram = gram64(prob.Xc, dual=dual)
    d = n_tr_max if dual else prob.p
    if warn_stacklevel:
        prob.warn_alpha_scale(gram, alphas_w, alphas, warn_stacklevel)
    folds = [Fold(prob.Xc, gram, tr, va, comp, alphas_w, fit_intercept=fit_intercept, dual=dual, dt=dt,
                  n_targets=prob.n_targets) for tr, va, comp in folds_idx]
    n_basis = [f.n_basis for f in folds]
    logger.info("ridge CV: %d folds (%d complements), %s form, alpha basis sizes %s", len(folds),
                sum(f.complement for f in folds), "dual" if dual else "primal", n_basis)
    refit = Refit(prob.Xc, gram, dual=dual, dt=dt) if return_weights else None
    # complement folds whose validation sets partition the rows (KFold, GroupKFold, leave one run
    # out): XᵀY is the sum of the folds' validation products, which each fold needs anyway
    val_rows = np.concatenate([np.asarray(va) for _, va, _ in folds_idx]) if folds_idx else np.array([], int)
    partition = (not dual and all(f.complement for f in folds) and len(val_rows) == prob.n
                 and np.unique(val_rows).size == prob.n)
    batch = _targets_per_batch(prob, folds, d, len(alphas), n_targets_batch, keep_val_products=partition)
    starts = list(range(0, prob.n_targets, batch))

    al64 = torch.as_tensor(alphas, dtype=_F64, device=dev)
    alw64 = torch.as_tensor(alphas_w, dtype=_F64, device=dev)
    cv_scores = torch.zeros((len(alphas), prob.n_targets), dtype=dt, device=dev)
    coef = torch.zeros((prob.n_targets, prob.p), dtype=dt, device=dev) if return_weights else None
    intercept = torch.zeros(prob.n_targets, dtype=dt, device=dev) if return_weights else None
    # a single alpha for all targets needs every target's score before the refit
    two_pass = return_weights and not alpha_per_target
    need_z = not dual and (any(f.complement for f in folds) or return_weights)
    for j0 in progress_bar(starts, verbose=verbose, desc="ridge CV"):
        cols = slice(j0, min(j0 + batch, prob.n_targets))
        Yc, y_mean, sy, scaled = prob.targets(cols)
        ysum = Yc.sum(0)
        if partition:
            Z_val = [fold.Xval.T @ Yc[fold.val] for fold in folds]
            Z_all = Z_val[0].clone()
            for z in Z_val[1:]:
                Z_all += z
        else:
            Z_val = [None] * len(folds)
            Z_all = prob.Xc.T @ Yc if need_z else None
        for fold, z_val in zip(folds, Z_val):
            cv_scores[:, cols] += fold_scores(fold, Yc, ysum, Z_all, scoring, dt, Z_val=z_val)
        del Z_val
        if return_weights and not two_pass:
            W = refit.weights(Yc, Z_all, alw64[cv_scores[:, cols].argmax(0)])
            prob.store(W, y_mean, sy, scaled, coef, intercept, cols)
    cv_scores /= len(folds)
    if alpha_per_target:
        best = cv_scores.argmax(0)
    else:
        best = cv_scores.mean(1).argmax().repeat(prob.n_targets)
    if two_pass:
        for j0 in starts:
            cols = slice(j0, min(j0 + batch, prob.n_targets))
            Yc, y_mean, sy, scaled = prob.targets(cols)
            Z_all = prob.Xc.T @ Yc if need_z else None
            prob.store(refit.weights(Yc, Z_all, alw64[best[cols]]), y_mean, sy, scaled, coef, intercept, cols)
    _check_weights(coef, prob)
    return Bunch(cv_scores=cv_scores, best_alphas=al64[best], best_score=cv_scores.gather(0, best[None, :])[0],
                 coef=coef, intercept=intercept, n_batches=len(starts), n_basis=n_basis, dual=dual)


@fill_doc
@validate_params(
    {"X": ["array-like"], "Y": ["array-like"], "alpha": ["array-like", RIDGE_CONSTRAINTS["alphas"][1]],
     "solver": SOLVER_CONSTRAINT,
     **{k: RIDGE_CONSTRAINTS[k] for k in ("fit_intercept", "device", "dtype", "n_targets_batch")}},
    prefer_skip_nested_validation=True,
)
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
        Strictly positive.
    %(fit_intercept)s
    %(solver)s
    %(device)s
    %(dtype)s
    %(n_targets_batch)s

    Returns
    -------
    Bunch with ``coef`` (n_targets, n_features) and ``intercept`` (n_targets,) tensors in the
    working dtype.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(4); Y = np.arange(4.0)
    >>> solve_ridge(X, Y, 1.0, fit_intercept=False).coef.shape
    torch.Size([1, 4])
    """
    return _solve(X, Y, _check_alphas(alpha), fit_intercept=fit_intercept, solver=solver, device=device, dtype=dtype,
                  n_targets_batch=n_targets_batch, warn_stacklevel=5)


def _solve(X, Y, al: np.ndarray, *, fit_intercept=True, solver="auto", device="auto", dtype=None,
           n_targets_batch="auto", warn_stacklevel=4) -> Bunch:
    """:func:`solve_ridge` on checked alphas (see ``_solve_cv`` for ``warn_stacklevel``)."""
    prob = _Problem(X, Y, device=device, dtype=dtype, fit_intercept=fit_intercept, solver=solver)
    if al.size == 1:
        al = np.repeat(al, prob.n_targets)
    if al.size != prob.n_targets:
        raise ValueError(f"alpha must be a scalar or have one value per target ({prob.n_targets}); got {al.size}.")
    alw64 = torch.as_tensor(al / prob.sx ** 2, dtype=_F64, device=prob.dev)
    gram = gram64(prob.Xc, dual=prob.dual)
    if warn_stacklevel:
        prob.warn_alpha_scale(gram, al / prob.sx ** 2, al, warn_stacklevel)
    refit = Refit(prob.Xc, gram, dual=prob.dual, dt=prob.dt)
    batch = _batch_size(prob.n_targets, 3 * prob.n + 3 * prob.p, torch.finfo(prob.dt).bits // 8, prob.dev,
                        n_targets_batch)
    coef = torch.zeros((prob.n_targets, prob.p), dtype=prob.dt, device=prob.dev)
    intercept = torch.zeros(prob.n_targets, dtype=prob.dt, device=prob.dev)
    for j0 in range(0, prob.n_targets, batch):
        cols = slice(j0, min(j0 + batch, prob.n_targets))
        Yc, y_mean, sy, scaled = prob.targets(cols)
        prob.store(refit.weights(Yc, None, alw64[cols]), y_mean, sy, scaled, coef, intercept, cols)
    _check_weights(coef, prob)
    return Bunch(coef=coef, intercept=intercept)
