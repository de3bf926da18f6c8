"""Linear predictivity: cross-validated ridge (brainalign.encoding) and PLS (scikit-learn).

The stimuli are split into ``cv`` folds (shuffled K-fold, ``random_state``); a model fitted on
the other folds predicts each held-out fold, and the out-of-fold predictions of all folds are
compared with the data: Pearson r per target, then the ``aggregate`` over targets (median for
PLS as Brain-Score does; mean for ridge, as brainalign's encoding scores). ``direction``:
``"x_to_y"`` predicts Y from X (model -> brain), ``"y_to_x"`` the reverse, ``"mean"`` averages
the two.

- ridge: :func:`brainalign.encoding.cross_validate_encoding` with the given outer folds (the
  alphas chosen per target by a 5-fold inner CV on the training stimuli). Ridge treats
  targets independently, so one fit per predictor serves every matrix of the other side.
- PLS: ``sklearn.cross_decomposition.PLSRegression(n_components, scale=False)`` (Brain-Score's
  ``pls_regression``), one fit per pair and fold.

Brain-Score averages per-split correlations over its 10 splits; here the held-out predictions
are pooled before correlating (as ``cross_validate_encoding``). Target units that are constant
(their r is undefined) are left out of the aggregate, with a warning.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._utils import check_option, check_random_state
from ._prepare import Rep, numpy_of


def splits_for(cv, n: int, random_state):
    """Checked (train, test) index pairs over stimuli."""
    from sklearn.model_selection import KFold

    from ..encoding import check_cv

    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds; got {cv}.")
        if n < 2 * cv:
            raise ValueError(f"{n} stimuli are too few for cv={cv} folds (each fold needs at least 2 stimuli); "
                             f"use cv<={max(2, n // 2)}.")
        sk_seed = int(check_random_state(random_state).integers(0, 2**31 - 1))
        cv = KFold(int(cv), shuffle=True, random_state=sk_seed)
    return check_cv(cv, n)


def _keep_varying(Y: np.ndarray, label: str) -> np.ndarray:
    keep = Y.std(0) > 0
    if not keep.all():
        warnings.warn(f"{int((~keep).sum())} of {Y.shape[1]} target units of {label} are constant across stimuli; "
                      "their correlation is undefined and they are left out of the aggregate.", stacklevel=4)
    return keep


def _pearson(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    from ..stats import pearson_r

    return np.asarray(pearson_r(Y, P), dtype=np.float64)


def _ridge_scores(X: np.ndarray, Ys: list[np.ndarray], labels: list[str], splits, alphas, device) -> list[np.ndarray]:
    """Per-target held-out r of ridge X -> each Y (one fit for all of them)."""
    from ..encoding import DEFAULT_ALPHAS, cross_validate_encoding

    keeps = [_keep_varying(Y, lab) for Y, lab in zip(Ys, labels)]
    big = np.concatenate([Y[:, k] for Y, k in zip(Ys, keeps)], axis=1)
    res = cross_validate_encoding(X, big, outer_cv=splits, inner_cv=5,
                                  alphas=DEFAULT_ALPHAS if alphas is None else alphas,
                                  device=device, dtype="float64")
    r = np.asarray(res.r, dtype=np.float64).reshape(-1)
    bounds = np.cumsum([0] + [int(k.sum()) for k in keeps])
    return [r[bounds[t]:bounds[t + 1]] for t in range(len(Ys))]


def _pls_scores(X: np.ndarray, Y: np.ndarray, label: str, splits, n_components: int) -> np.ndarray:
    from sklearn.cross_decomposition import PLSRegression

    keep = _keep_varying(Y, label)
    Y = Y[:, keep]
    pred = np.zeros_like(Y)
    for train, test in splits:
        model = PLSRegression(n_components=n_components, scale=False)
        model.fit(X[train], Y[train])
        pred[test] = model.predict(X[test]).reshape(len(test), -1)
    return _pearson(Y, pred)


def check_n_components(n_components, a: Rep, n_train: int) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer; got {n_components!r}.")
    limit = min(a.p, n_train)
    if n_components > limit:
        raise ValueError(f"n_components={n_components} PLS components exceed what {a.name} allows "
                         f"({a.p} features, {n_train} training stimuli per fold); use n_components<={limit}.")
    return int(n_components)


def grid(A: list[Rep], B: list[Rep], *, same: bool, model: str = "ridge", direction: str = "x_to_y", cv=5,
         alphas=None, n_components: int = 25, aggregate: str = "mean", random_state=0) -> np.ndarray:
    """Cross-validated predictivity of every pair: (n_a, n_b)."""
    check_option("model", model, ["ridge", "pls"])
    check_option("direction", direction, ["x_to_y", "y_to_x", "mean"])
    check_option("aggregate", aggregate, ["mean", "median"])
    agg = np.nanmedian if aggregate == "median" else np.nanmean
    n = A[0].n
    splits = splits_for(cv, n, random_state)
    xa = [numpy_of(r.x) for r in A]
    xb = xa if same else [numpy_of(r.x) for r in B]
    device = A[0].x.device

    def one_way(P: list[Rep], xp, T: list[Rep], xt) -> np.ndarray:
        out = np.empty((len(P), len(T)))
        if model == "ridge":
            for i in range(len(P)):
                rs = _ridge_scores(xp[i], xt, [t.name for t in T], splits, alphas, device)
                out[i] = [agg(r) for r in rs]
        else:
            n_train = min(len(tr) for tr, _ in splits)
            for i, p in enumerate(P):
                nc = check_n_components(n_components, p, n_train)
                for j, t in enumerate(T):
                    out[i, j] = agg(_pls_scores(xp[i], xt[j], t.name, splits, nc))
        return out

    if direction == "x_to_y":
        return one_way(A, xa, B, xb)
    back = one_way(B, xb, A, xa).T
    if direction == "y_to_x":
        return back
    fwd = back.T if same else one_way(A, xa, B, xb)
    return (fwd + back) / 2
