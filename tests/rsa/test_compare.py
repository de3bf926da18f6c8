"""compare(): agreement with rsatoolbox, NaN handling, properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm import compare as rsa_compare

from brainalign.rsa import COMPARE_METHODS, compare
from brainalign.rsa._ranks import average_ranks, dense_ranks, discordant_pairs, sort_order

METHODS = ["spearman", "corr", "cosine", "tau-a", "rho-a", "corr_cov", "cosine_cov", "kendall"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("with_nan", [False, True])
def test_equals_rsatoolbox_random(method, with_nan, rng):
    a, b = rng.random((3, 190)), rng.random((4, 190))
    b[1] = np.round(b[1] * 4)  # heavy ties
    a[2] = np.round(a[2] * 3)
    if with_nan:
        a[:, [3, 50]] = np.nan
        b[:, [3, 50]] = np.nan
    ref = rsa_compare(RDMs(a), RDMs(b), method=method)
    np.testing.assert_allclose(compare(RDMs(a), RDMs(b), method=method), ref, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_equals_rsatoolbox_92_images(method, k92):
    ours = compare(k92.alexnet_rdms, k92.hit_rdms, method=method)
    ref = rsa_compare(k92.alexnet_rdms, k92.hit_rdms, method=method)
    assert ours.shape == (9, 8)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_large_tau_a_equals_rsatoolbox(rng):
    n = 200
    a = rng.random((1, n * (n - 1) // 2))
    b = np.round(rng.random((2, a.shape[1])) * 50)
    np.testing.assert_allclose(compare(a, b, method="tau-a"), rsa_compare(RDMs(a), RDMs(b), method="tau-a"),
                               atol=1e-12)


def test_accepts_matrices_and_tensors(rng):
    import torch
    from scipy.spatial.distance import squareform

    v = rng.random((2, 45))
    mats = np.stack([squareform(x) for x in v])
    np.testing.assert_allclose(compare(mats, torch.from_numpy(v), method="corr"), compare(v, v, method="corr"))


def test_errors(rng):
    with pytest.raises(ValueError, match="Allowed values"):
        compare(rng.random(10), rng.random(10), method="pearsn")
    with pytest.raises(ValueError, match="same conditions"):
        compare(rng.random(10), rng.random(15))
    a, b = rng.random((1, 10)), rng.random((1, 10))
    a[0, 2] = np.nan
    with pytest.raises(ValueError, match="different pairs"):
        compare(a, b)
    with pytest.raises(ValueError, match="not the upper triangle"):
        compare(rng.random(11), rng.random(11))
    with pytest.raises(ValueError, match="infinite"):
        compare(np.array([1.0, np.inf, 2.0]), rng.random(3))


def test_constant_rdm_gives_zero_not_nan(rng):
    out = compare(np.ones((1, 10)), rng.random((1, 10)), method="corr")
    assert out[0, 0] == 0.0


def test_ranks_and_kendall_kernels(rng):
    import scipy.stats as ss

    for x in [rng.random(6000), np.round(rng.random(6000) * 9) - 3, np.r_[rng.random(3000), 1 + 1e-15 * np.arange(3000)]]:
        np.testing.assert_array_equal(sort_order(x), np.argsort(x, kind="stable"))
        np.testing.assert_array_equal(average_ranks(x), ss.rankdata(x))
    x, y = np.round(rng.random(3000) * 7), np.round(rng.random(3000) * 20)
    px, rx, _ = dense_ranks(x)
    _, ry, _ = dense_ranks(y)
    # the vectorised numpy fallback equals the compiled counter
    assert discordant_pairs(rx[px], ry[px], use_compiled=False) == discordant_pairs(rx[px], ry[px])


@settings(max_examples=15, deadline=None)
@given(st.integers(4, 12), st.sampled_from(["spearman", "corr", "tau-a", "cosine_cov"]), st.integers(0, 10_000))
def test_invariant_to_common_permutation(n, method, random_state):
    from scipy.spatial.distance import squareform

    rng = np.random.default_rng(random_state)
    a, b = rng.random((2, n * (n - 1) // 2)), rng.random((3, n * (n - 1) // 2))
    perm = rng.permutation(n)

    def permute(v):
        return np.stack([squareform(squareform(x)[np.ix_(perm, perm)]) for x in v])

    np.testing.assert_allclose(compare(permute(a), permute(b), method=method), compare(a, b, method=method),
                               atol=1e-10)


def test_methods_list():
    assert set(METHODS) <= set(COMPARE_METHODS)
