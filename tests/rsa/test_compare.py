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
    with pytest.raises(ValueError, match="not the upper triangle"):
        compare(rng.random(11), rng.random(11))
    with pytest.raises(ValueError, match=r"rdms_a contain infinite dissimilarities \(1, first in RDM 0 at pair 1\)"):
        compare(np.array([1.0, np.inf, 2.0]), rng.random(3))
    with pytest.raises(TypeError, match="numeric array of RDMs; got an array of dtype <U1"):
        compare(np.array(list("abc")), rng.random(3))
    with pytest.raises(ValueError, match=r"5 x 5 matrix but not an RDM: it must be symmetric"):
        compare(rng.random((5, 5)), rng.random((1, 10)))


@pytest.mark.parametrize("method", METHODS)
def test_missing_at_different_pairs_pairwise_deletion(method, rng):
    """rsatoolbox refuses NaNs at different pairs; here each similarity uses the pairs both
    RDMs have (with a warning), equal to comparing the two RDMs with those pairs dropped."""
    a, b = rng.random((3, 45)), rng.random((2, 45))
    a[0, [2, 7]] = np.nan
    a[2, 30] = np.nan
    b[1, [7, 11]] = np.nan
    with pytest.warns(RuntimeWarning, match="different pairs .*pairwise deletion"):
        out = compare(a, b, method=method)
    for i in range(3):
        for j in range(2):  # reference: both RDMs with NaN at the union of their missing pairs
            union = np.isnan(a[i]) | np.isnan(b[j])
            ai, bj = a[i].copy(), b[j].copy()
            ai[union] = bj[union] = np.nan
            ref = rsa_compare(RDMs(ai[None]), RDMs(bj[None]), method=method)[0, 0]
            np.testing.assert_allclose(out[i, j], ref, atol=1e-10)
    # the same NaN pairs everywhere: dropped from every comparison, as rsatoolbox (no warning)
    a[:, 5], b[:, 5] = np.nan, np.nan
    a2, b2 = a.copy(), b.copy()
    a2[np.isnan(a2)] = 0.5
    b2[np.isnan(b2)] = 0.5
    a2[:, 5] = b2[:, 5] = np.nan
    ref = rsa_compare(RDMs(a2), RDMs(b2), method=method)
    np.testing.assert_allclose(compare(a2, b2, method=method), ref, atol=1e-10)


def test_conditions_matched_by_label(rng):
    """11.7: RDMs whose conditions are in another order are compared condition by condition."""
    from brainalign.rsa._common import reorder_vectors

    ids = [f"s{i}" for i in range(8)]
    a, b = rng.random((2, 28)), rng.random((3, 28))
    perm = rng.permutation(8)
    a_rdms = RDMs(a, pattern_descriptors={"stimulus_id": ids, "category": ["x"] * 8})
    b_shuffled = RDMs(reorder_vectors(b, perm), pattern_descriptors={"stimulus_id": [ids[i] for i in perm]})
    np.testing.assert_allclose(compare(a_rdms, b_shuffled), compare(a, b), atol=1e-12)
    assert not np.allclose(compare(a, reorder_vectors(b, perm)), compare(a, b))  # position alone is wrong
    other = RDMs(b, pattern_descriptors={"stimulus_id": ids[:7] + ["t9"]})
    with pytest.raises(ValueError, match=r"describe different conditions \(pattern descriptor 'stimulus_id'\).*"
                                         r"in rdms_a but not rdms_b: \['s7'\]"):
        compare(a_rdms, other)


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
