"""Agreement with reference implementations (float64, same random data).

Installed references (test-only, ``dev`` extras): ckatorch (Kornblith's CKA in torch),
repsim (C++ CKA / CCA family), scikit-learn (PLS, ridge, CCA), rsatoolbox (RSA). For the
references that are not packaged (netrep, platonic-rep, Brain-Score, Duong et al.) the numbers
are derived here independently from the published definitions: a second formula, explicit
transforms, brute force over all permutations / rotations.
"""

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from brainalign import similarity as S
from brainalign.similarity import _shape

from sim_data import make_pair

TOL = 1e-8


def cmp(X, Y, method, **kw):
    return S.compare(X, Y, method=method, device="cpu", **kw)


# ---------------------------------------------------------------------------------- CKA
@pytest.mark.parametrize("unbiased,name", [(False, "cka"), (True, "cka-hsic_song")])
def test_linear_cka_equals_ckatorch(pair, unbiased, name):
    ckatorch = pytest.importorskip("ckatorch")
    X, Y = pair
    ref = float(ckatorch.cka_base(torch.tensor(X), torch.tensor(Y), unbiased=unbiased))
    assert abs(cmp(X, Y, name) - ref) < TOL


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("unbiased", [False, True])
def test_rbf_cka_equals_ckatorch(pair, sigma, unbiased):
    # n = 51 stimuli: n^2 entries, an odd count, so the median is unique (ckatorch's
    # torch.median takes the lower middle value where numpy averages the two)
    ckatorch = pytest.importorskip("ckatorch")
    X, Y = pair
    ref = float(ckatorch.cka_base(torch.tensor(X), torch.tensor(Y), kernel="rbf", threshold=sigma,
                                  unbiased=unbiased))
    ours = cmp(X, Y, "cka-rbf", sigma=sigma, hsic="song" if unbiased else "gretton")
    assert abs(ours - ref) < TOL


def test_cka_equals_repsim_gretton(pair):
    repsim = pytest.importorskip("repsim")
    X, Y = pair
    assert abs(repsim.cka([X, Y], kernel_type="linear", estimator="gretton")[0, 1] - cmp(X, Y, "cka")) < TOL
    # repsim's bandwidth: the median distance over distinct pairs (51 * 50 / 2 = 1275 pairs, odd)
    ref = repsim.cka([X, Y], kernel_type="rbf", estimator="gretton")[0, 1]
    assert abs(ref - cmp(X, Y, "cka-rbf", median="pairs")) < TOL


def _hsic(K, L, estimator):
    """HSIC estimators written from their papers (numpy, n x n kernels)."""
    n = K.shape[0]
    H = np.eye(n) - 1 / n
    if estimator == "gretton":
        return np.trace(K @ H @ L @ H)
    if estimator == "lange":
        Kc, Lc = H @ K @ H, H @ L @ H
        np.fill_diagonal(Kc, 0)
        np.fill_diagonal(Lc, 0)
        return np.sum(Kc * Lc)
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0)
    np.fill_diagonal(Lt, 0)
    one = np.ones(n)
    return (np.trace(Kt @ Lt) + one @ Kt @ one * (one @ Lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ Kt @ Lt @ one) / (n * (n - 3))


@pytest.mark.parametrize("estimator,name", [("song", "cka-hsic_song"), ("lange", "cka-hsic_lange")])
def test_debiased_cka_against_the_definition_and_repsims_normalisation(pair, estimator, name):
    """Ours: the same estimator in the numerator and the denominator (Song et al.; Kornblith's
    debiased CKA; ckatorch). repsim divides its song / lange HSIC by the *Gretton* self-HSIC
    (core_CKA: "force Gretton here"), so its numbers differ; reproduced here to document why."""
    repsim = pytest.importorskip("repsim")
    X, Y = pair
    K, L = X @ X.T, Y @ Y.T
    ref = _hsic(K, L, estimator) / np.sqrt(_hsic(K, K, estimator) * _hsic(L, L, estimator))
    assert abs(cmp(X, Y, name) - ref) < TOL
    n = X.shape[0]
    scale = 1 / (n * (n - 3)) if estimator == "lange" else 1.0
    gretton = lambda A, B: _hsic(A, B, "gretton") / (n - 1) ** 2  # noqa: E731
    repsims = _hsic(K, L, estimator) * scale / np.sqrt(gretton(K, K) * gretton(L, L))
    got = repsim.cka([X, Y], kernel_type="linear", estimator=estimator)[0, 1]
    assert abs(got - repsims) < TOL
    assert abs(got - cmp(X, Y, name)) > 1e-3  # they really disagree


def test_cka_gram_route_equals_feature_route():
    X, Y = make_pair(3, n=20, px=60, py=45)  # n < p: centred Gram matrices are used
    K, L = X @ X.T, Y @ Y.T
    for est, name in [("gretton", "cka"), ("song", "cka-hsic_song"), ("lange", "cka-hsic_lange")]:
        ref = _hsic(K, L, est) / np.sqrt(_hsic(K, K, est) * _hsic(L, L, est))
        assert abs(cmp(X, Y, name) - ref) < TOL


# ------------------------------------------------------------------------- shape metrics
def _netrep_whiten(X, alpha):
    """netrep.utils.whiten's definition (preserve_variance=True), for full-rank X."""
    lam, V = np.linalg.eigh(X.T @ X)
    d = alpha + (1 - alpha) * lam ** (-0.5)
    new_var = np.sum(alpha**2 * lam + 2 * alpha * (1 - alpha) * lam**0.5 + (1 - alpha) ** 2)
    d *= np.sqrt(np.sum(lam) / new_var)
    return X @ (V * d) @ V.T


def _netrep_linear_metric(X, Y, alpha, score_method):
    Xw = _netrep_whiten(X - X.mean(0), alpha)
    Yw = _netrep_whiten(Y - Y.mean(0), alpha)
    R, _ = scipy.linalg.orthogonal_procrustes(Xw, Yw)
    A, B = Xw @ R, Yw
    if score_method == "euclidean":
        return np.linalg.norm(A - B)
    return np.arccos(np.clip(np.sum(A * B) / np.linalg.norm(A) / np.linalg.norm(B), -1, 1))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("distance", ["angular", "euclidean"])
def test_procrustes_equals_netreps_definition(alpha, distance):
    X, Y = make_pair(1, n=60, px=10, py=10)
    ours = cmp(X, Y, f"procrustes-{distance}", alpha=alpha)
    assert abs(ours - _netrep_linear_metric(X, Y, alpha, distance)) < TOL


def test_nbs_and_bures_from_kernel_square_roots(pair):
    """Tang et al.'s definitions on the centred kernels, with scipy's matrix square root."""
    X, Y = pair
    Kx = (X - X.mean(0)) @ (X - X.mean(0)).T
    Ky = (Y - Y.mean(0)) @ (Y - Y.mean(0)).T
    lam, V = np.linalg.eigh(Kx)
    rx = (V * np.sqrt(np.clip(lam, 0, None))) @ V.T  # PSD square root
    ev = np.linalg.eigvalsh(rx @ Ky @ rx)
    ev = ev[ev > 1e-9 * ev.max()]  # the kernels have rank 12 and 9: drop round-off in the null space
    fid = np.sum(np.sqrt(ev))
    nbs = fid / np.sqrt(np.trace(Kx) * np.trace(Ky))
    assert abs(cmp(X, Y, "nbs") - nbs) < TOL
    assert abs(cmp(X, Y, "bures_distance") - np.sqrt(np.trace(Kx) + np.trace(Ky) - 2 * fid)) < 1e-7
    assert abs(np.cos(cmp(X, Y, "procrustes-angular")) - cmp(X, Y, "nbs")) < 1e-12
    assert abs(cmp(X, Y, "procrustes-euclidean") - cmp(X, Y, "bures_distance")) < 1e-12


def test_cca_angular_is_arccos_of_mean_canonical_correlation():
    X, Y = make_pair(2, n=80, px=6, py=6)
    rho = np.cos(scipy.linalg.subspace_angles(X - X.mean(0), Y - Y.mean(0)))
    assert abs(np.cos(cmp(X, Y, "cca-angular")) - rho.mean()) < TOL


def test_permutation_distance_brute_force():
    X, Y = make_pair(4, n=30, px=5, py=5)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    best = min(np.linalg.norm(Xc - Yc[:, list(p)]) for p in itertools.permutations(range(5)))
    cos = max(np.sum(Xc * Yc[:, list(p)]) for p in itertools.permutations(range(5)))
    assert abs(cmp(X, Y, "permutation-euclidean") - best) < TOL
    assert abs(cmp(X, Y, "permutation-angular") - np.arccos(cos / np.linalg.norm(Xc) / np.linalg.norm(Yc))) < TOL


def _soft_matching_lp(X, Y):
    from scipy.optimize import linprog

    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    px, py = Xc.shape[1], Yc.shape[1]
    cost = ((Xc[:, :, None] - Yc[:, None, :]) ** 2).sum(0)  # ||x_i - y_j||^2
    A = np.zeros((px + py, px * py))
    for i in range(px):
        A[i, i * py:(i + 1) * py] = 1
    for j in range(py):
        A[px + j, j::py] = 1
    b = np.r_[np.full(px, 1 / px), np.full(py, 1 / py)]
    res = linprog(cost.reshape(-1), A_eq=A, b_eq=b, bounds=(0, None), method="highs")
    return np.sqrt(np.sqrt(px * py) * res.fun)


def test_soft_matching_equals_transport_lp(monkeypatch):
    X, Y = make_pair(5, n=40, px=4, py=6)
    ref = _soft_matching_lp(X, Y)
    assert abs(cmp(X, Y, "permutation-euclidean") - ref) < 1e-7  # replicated assignment (lcm 12)
    monkeypatch.setattr(_shape, "LCM_LIMIT", 1)  # force the LP path
    assert abs(cmp(X, Y, "permutation-euclidean") - ref) < 1e-7


# ------------------------------------------------------------------------------ CCA family
def test_cca_family_against_principal_angles_and_repsim(pair):
    X, Y = pair
    rho = np.cos(scipy.linalg.subspace_angles(X - X.mean(0), Y - Y.mean(0)))
    assert abs(cmp(X, Y, "cca-mean_sq_corr") - np.mean(rho**2)) < TOL
    repsim = pytest.importorskip("repsim")
    assert abs(cmp(X, Y, "cca-mean_sq_corr") - repsim.cca([X, Y], summary_type="yanai")[0, 1]) < TOL
    assert abs(cmp(X, Y, "svcca-var99", variance=1.0) - repsim.cca([X, Y], summary_type="pillai")[0, 1]) < TOL


def test_cca_against_sklearn(pair):
    from sklearn.cross_decomposition import CCA

    X, Y = pair
    k = min(X.shape[1], Y.shape[1])
    cca = CCA(n_components=k, scale=False, max_iter=100000, tol=1e-15).fit(X, Y)
    xs, ys = cca.transform(X, Y)
    rho = [abs(np.corrcoef(xs[:, i], ys[:, i])[0, 1]) for i in range(k)]
    assert abs(cmp(X, Y, "cca-mean_sq_corr") - np.mean(np.square(rho))) < 1e-7


def test_svcca_keeps_the_leading_directions(pair):
    X, Y = pair
    out = []
    for M in (X, Y):
        U, s, _ = np.linalg.svd(M - M.mean(0), full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.95) + 1)
        out.append(U[:, :k])
    rho = np.cos(scipy.linalg.subspace_angles(*out))
    assert abs(cmp(X, Y, "svcca-var95") - rho.mean()) < TOL


def _pwcca_reference(X, Y):
    """Morcos et al.: canonical directions from the generalized eigenproblem, then weights."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Sxx, Syy, Sxy = Xc.T @ Xc, Yc.T @ Yc, Xc.T @ Yc
    M = Sxy @ np.linalg.solve(Syy, Sxy.T)
    lam, A = scipy.linalg.eigh(M, Sxx)
    order = np.argsort(lam)[::-1][: min(X.shape[1], Y.shape[1])]
    rho, A = np.sqrt(np.clip(lam[order], 0, 1)), A[:, order]
    H = Xc @ A
    H /= np.linalg.norm(H, axis=0)
    w = np.abs(H.T @ Xc).sum(1)
    return np.sum(w / w.sum() * rho)


def test_pwcca_against_generalized_eigenproblem_and_repsim(pair):
    X, Y = pair
    assert abs(cmp(X, Y, "pwcca") - _pwcca_reference(X, Y)) < 1e-7
    repsim = pytest.importorskip("repsim")
    # repsim symmetrizes PWCCA (the mean of both weightings); ours weights by X (Morcos et al.)
    both = (cmp(X, Y, "pwcca") + cmp(Y, X, "pwcca")) / 2
    assert abs(repsim.pwcca([X, Y])[0, 1] - both) < TOL


# ------------------------------------------------------------------------------------ kNN
def _knn_sets(X, k):
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    sim = Xn @ Xn.T
    np.fill_diagonal(sim, -np.inf)
    return [set(np.argsort(-row)[:k]) for row in sim]


@pytest.mark.parametrize("k", [1, 5, 12])
def test_knn_measures_brute_force(pair, k):
    X, Y = pair
    nx, ny = _knn_sets(X, k), _knn_sets(Y, k)
    mutual = np.mean([len(a & b) / k for a, b in zip(nx, ny)])
    cycle = np.mean([any(i in nx[j] for j in ny[i]) for i in range(len(X))])
    assert abs(cmp(X, Y, "mutual_knn", k=k) - mutual) < 1e-12
    assert abs(cmp(X, Y, "cycle_knn", k=k) - cycle) < 1e-12


def test_knn_euclidean_brute_force(pair):
    X, Y = pair
    sets = []
    for M in (X, Y):
        d = ((M[:, None] - M[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        sets.append([set(np.argsort(row)[:7]) for row in d])
    ref = np.mean([len(a & b) / 7 for a, b in zip(*sets)])
    assert abs(cmp(X, Y, "mutual_knn", k=7, metric="euclidean") - ref) < 1e-12


# ---------------------------------------------------------------------------- predictivity
def _pearson_cols(A, B):
    A, B = A - A.mean(0), B - B.mean(0)
    return (A * B).sum(0) / np.sqrt((A * A).sum(0) * (B * B).sum(0))


def test_pls_equals_sklearn_cross_val_predict(pair):
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.model_selection import KFold, cross_val_predict

    X, Y = pair
    cv = KFold(5, shuffle=True, random_state=3)
    pred = cross_val_predict(PLSRegression(n_components=4, scale=False), X, Y, cv=cv)
    ref = np.median(_pearson_cols(Y, pred))
    assert abs(cmp(X, Y, "pls", n_components=4, cv=cv) - ref) < TOL
    back = cross_val_predict(PLSRegression(n_components=4, scale=False), Y, X, cv=cv)
    both = (ref + np.median(_pearson_cols(X, back))) / 2
    assert abs(cmp(X, Y, "pls", n_components=4, cv=cv, direction="mean") - both) < TOL


def test_ridge_with_one_alpha_equals_sklearn(pair):
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold, cross_val_predict

    X, Y = pair
    cv = KFold(5, shuffle=True, random_state=0)
    pred = cross_val_predict(Ridge(alpha=10.0), X, Y, cv=cv)
    ref = np.mean(_pearson_cols(Y, pred))
    assert abs(cmp(X, Y, "ridge", alphas=[10.0], cv=cv) - ref) < 1e-7


# -------------------------------------------------------------------------------------- RSA
def test_rsa_equals_rsatoolbox(pair):
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, compare

    X, Y = pair
    for rdm_method, method in [("correlation", "corr"), ("euclidean", "spearman")]:
        ref = compare(calc_rdm(Dataset(X), method=rdm_method), calc_rdm(Dataset(Y), method=rdm_method),
                      method=method)[0, 0]
        assert abs(cmp(X, Y, "rsa", rdm_method=rdm_method, compare=method) - ref) < TOL


def test_trsa_is_topology_trsa(pair):
    from brainalign import rsa, topology

    X, Y = pair
    ref = topology.trsa(rsa.calc_rdm(X, device="cpu"), rsa.calc_rdm(Y, device="cpu"), low=0.1, up=0.6,
                        method="cosine")[0, 0]
    assert abs(cmp(X, Y, "trsa", low=0.1, up=0.6, compare="cosine") - ref) < TOL


# ------------------------------------------------------------------------- stochastic metrics
def _rot(theta, flip):
    c, s = np.cos(theta), np.sin(theta)
    R = np.array([[c, -s], [s, c]])
    return R @ np.diag([1, -1]) if flip else R


def _gaussian_d(X, Y, T, alpha=1.0):
    """netrep's score: per-stimulus means and full covariances (ddof=1), Bures with sqrtm."""
    X = X - X.mean((0, 1))
    Y = Y - Y.mean((0, 1))
    total = 0.0
    for i in range(X.shape[1]):
        mx, my = X[:, i].mean(0), Y[:, i].mean(0) @ T.T
        Sx, Sy = np.cov(X[:, i].T), T @ np.cov(Y[:, i].T) @ T.T
        rx = np.real(scipy.linalg.sqrtm(Sx))
        fid = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(rx @ Sy @ rx), 0, None)))
        total += alpha * np.sum((mx - my) ** 2) + (2 - alpha) * (np.trace(Sx) + np.trace(Sy) - 2 * fid)
    return np.sqrt(total / X.shape[1])


def _energy_d(X, Y, T):
    from scipy.spatial.distance import cdist, pdist

    X = X - X.mean((0, 1))
    Y = Y - Y.mean((0, 1))
    vals = [cdist(X[:, i], Y[:, i] @ T.T).mean() - (pdist(X[:, i]).mean() + pdist(Y[:, i]).mean()) / 2
            for i in range(X.shape[1])]
    return np.sqrt(max(np.mean(vals), 0))


@pytest.mark.parametrize("ground", ["gaussian", "energy"])
def test_stochastic_metrics_brute_force_over_rotations(ground):
    """In 2-D every orthogonal T is a rotation or a reflection: a fine grid over the angle,
    refined by a bounded 1-D search, gives the global optimum to compare with."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(0)
    base = rng.standard_normal((1, 15, 2))
    X = base + 0.4 * rng.standard_normal((6, 15, 2)) * rng.uniform(0.5, 2, (1, 15, 2))
    Y = base @ _rot(0.7, False).T + 0.4 * rng.standard_normal((5, 15, 2))
    f = _gaussian_d if ground == "gaussian" else _energy_d
    best = np.inf
    for flip in (False, True):
        grid = np.linspace(0, 2 * np.pi, 721)
        vals = [f(X, Y, _rot(t, flip)) for t in grid]
        t0 = grid[int(np.argmin(vals))]
        res = minimize_scalar(lambda t: f(X, Y, _rot(t, flip)), bounds=(t0 - 0.01, t0 + 0.01), method="bounded",
                              options={"xatol": 1e-12})
        best = min(best, res.fun)
    ours = cmp(X, Y, f"stochastic-{ground}")
    assert abs(ours - best) < (1e-7 if ground == "gaussian" else 1e-5)


def test_gaussian_stochastic_with_identical_repeats_is_procrustes_of_means():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((20, 4))
    N = M @ np.linalg.qr(rng.standard_normal((4, 4)))[0] + 0.3 * rng.standard_normal((20, 4))
    X, Y = np.stack([M, M]), np.stack([N, N, N])  # no variability: the metric sees the means only
    ref = cmp(M, N, "procrustes-euclidean") / np.sqrt(20)
    assert abs(cmp(X, Y, "stochastic-gaussian") - ref) < 1e-7
