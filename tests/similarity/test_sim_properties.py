"""Property tests (hypothesis): every measure is invariant to what its registry entry claims,
symmetric when it says so, maximal (or zero) for identical inputs, and the metrics satisfy the
triangle inequality."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brainalign import similarity as S

FAST = [name for name, m in S.MEASURES.items() if m.family not in ("predictivity", "stochastic")]
SEEDS = st.integers(0, 2**32 - 1)


def cmp(X, Y, method, **kw):
    return S.compare(X, Y, method=method, device="cpu", **kw)


def _data(seed, n, px, py, shared=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, px))
    Y = (np.tanh(X @ rng.standard_normal((px, py))) if shared else 0) + 0.7 * rng.standard_normal((n, py))
    return rng, X, Y


def _transform(kind, Y, rng):
    p = Y.shape[1]
    if kind == "orthogonal":
        return Y @ np.linalg.qr(rng.standard_normal((p, p)))[0]
    if kind == "isotropic_scaling":
        return 3.7 * Y
    if kind == "translation":
        return Y + 5 * rng.standard_normal(p)
    if kind == "permutation":
        return Y[:, rng.permutation(p)]
    return Y @ (np.eye(p) + 0.5 * rng.standard_normal((p, p)))  # invertible_linear


def _close(a, b, name):
    tol = 1e-7 if S.MEASURES[name].score != "negative" else 1e-7 * max(1.0, abs(a))
    return abs(a - b) <= tol


@pytest.mark.parametrize("name", FAST)
@settings(max_examples=12, deadline=None)
@given(seed=SEEDS, n=st.integers(24, 40), px=st.integers(2, 5), py=st.integers(2, 5))
def test_invariances(name, seed, n, px, py):
    m = S.MEASURES[name]
    kw = {"k": 4} if m.family == "knn" else {}
    if name.startswith("permutation"):
        py = px
    if m.family in ("rsa", "trsa"):  # 2-unit patterns: correlation distances are all 0 or 2 (ties)
        px, py = px + 1, py + 1
    rng, X, Y = _data(seed, n, px, py)
    ref = cmp(X, Y, name, **kw)
    for kind in m.invariances:
        for side in ("Y", "X"):
            if side == "X":
                got = cmp(_transform(kind, X, rng), Y, name, **kw)
            else:
                got = cmp(X, _transform(kind, Y, rng), name, **kw)
            assert _close(got, ref, name), (name, kind, side, got, ref)


@pytest.mark.parametrize("name", [n for n in FAST if S.MEASURES[n].symmetric])
@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, n=st.integers(24, 40), px=st.integers(2, 5), py=st.integers(2, 5))
def test_symmetry(name, seed, n, px, py):
    _, X, Y = _data(seed, n, px, py)
    assert _close(cmp(X, Y, name), cmp(Y, X, name), name)


@pytest.mark.parametrize("name", [n for n in FAST if n != "cycle_knn"])
@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, n=st.integers(24, 40), p=st.integers(2, 5))
def test_identity_is_the_best(name, seed, n, p):
    m = S.MEASURES[name]
    _, X, _ = _data(seed, n, p, p)
    best = 0.0 if m.kind == "distance" else m.range[1]
    assert abs(cmp(X, X, name) - best) < 1e-6


@pytest.mark.parametrize("name", [n for n in FAST if S.MEASURES[n].metric])
@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, n=st.integers(20, 30), p=st.integers(2, 5))
def test_triangle_inequality(name, seed, n, p):
    rng = np.random.default_rng(seed)
    X, Y, Z = (rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) for _ in range(3))
    dxz, dxy, dyz = cmp(X, Z, name), cmp(X, Y, name), cmp(Y, Z, name)
    assert dxz <= dxy + dyz + 1e-9


@pytest.mark.parametrize("name", ["stochastic-gaussian", "stochastic-energy"])
@settings(max_examples=5, deadline=None)
@given(seed=SEEDS)
def test_stochastic_invariances_symmetry_identity(name, seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((1, 12, 3))
    X = base + 0.5 * rng.standard_normal((4, 12, 3))
    Y = np.tanh(base) + 0.5 * rng.standard_normal((5, 12, 3))
    ref = cmp(X, Y, name)
    Q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    for Y2 in (Y @ Q, Y + 4 * rng.standard_normal(3), Y[..., rng.permutation(3)]):
        assert abs(cmp(X, Y2, name) - ref) < 1e-6 * max(1, ref)
    assert abs(cmp(Y, X, name) - ref) < 1e-6 * max(1, ref)
    assert cmp(X, X, name) < 1e-6


@settings(max_examples=4, deadline=None)
@given(seed=SEEDS)
def test_predictivity_invariances(seed):
    rng, X, Y = _data(seed, 40, 4, 3)
    # PLS: scikit-learn's NIPALS stops at tol=1e-6 from a start that depends on the unit order,
    # so its invariances hold only approximately (up to 3e-3 in r seen when two singular values
    # are close and the power iteration converges slowly; Brain-Score uses the same defaults)
    for name, kw, tol in (("ridge", {}, 1e-6), ("pls", {"n_components": 2}, 1e-2)):
        ref = cmp(X, Y, name, **kw)
        for kind in S.MEASURES[name].invariances:
            assert abs(cmp(_transform(kind, X, rng), Y, name, **kw) - ref) < tol, (name, kind)
            assert abs(cmp(X, _transform(kind, Y, rng), name, **kw) - ref) < tol, (name, kind)


def test_cycle_knn_of_identical_inputs_is_the_reciprocity_of_the_knn_graph():
    """The exception: i -> its neighbour j -> j's neighbours need not include i (hubs)."""
    X = np.random.default_rng(0).standard_normal((240, 50))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    sim = Xn @ Xn.T
    np.fill_diagonal(sim, -np.inf)
    nn = np.argsort(-sim, axis=1)[:, :3]
    recip = np.mean([any(i in nn[j] for j in nn[i]) for i in range(240)])
    assert cmp(X, X, "cycle_knn", k=3) == pytest.approx(recip) and recip < 1
