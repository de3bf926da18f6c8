"""Noise ceilings and bootstrap inference vs rsatoolbox and simulated ground truth."""

import numpy as np
import pytest
from rsatoolbox.inference import boot_noise_ceiling
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm import compare as rsa_compare

from brainalign.rsa import bootstrap, bootstrap_pairs, compare, rdm_ceiling, take_pairs


@pytest.mark.filterwarnings("ignore:Noise ceiling for tau")
@pytest.mark.parametrize("method", ["spearman", "corr", "cosine", "rho-a", "tau-a", "corr_cov", "cosine_cov"])
def test_rdm_ceiling_equals_rsatoolbox_92(method, k92):
    ref = boot_noise_ceiling(k92.hit_rdms, method=method, rdm_descriptor="subject")
    ours = rdm_ceiling(k92.hit_rdms, method=method, rdm_descriptor="subject")
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert ours[0] <= ours[1]


def test_rdm_ceiling_errors(rng):
    r = RDMs(rng.random((3, 10)), rdm_descriptors={"subject": [0, 0, 0]})
    with pytest.raises(ValueError, match="at least 2"):
        rdm_ceiling(r)
    with pytest.raises(KeyError, match="no rdm descriptor 'run'"):
        rdm_ceiling(r, rdm_descriptor="run")


def test_bootstrap_pairs_drop_self_pairs_like_rsatoolbox(rng):
    n = 12
    data = RDMs(rng.random((2, n * (n - 1) // 2)))
    model = RDMs(rng.random((3, n * (n - 1) // 2)))
    sample = rng.integers(0, n, n)
    assert len(set(sample)) < n  # duplicates present
    idx = bootstrap_pairs(n, sample)
    assert (idx < 0).sum() > 0
    for method in ["spearman", "corr", "tau-a", "cosine_cov"]:
        ref = rsa_compare(model.subsample_pattern("index", sample), data.subsample_pattern("index", sample), method)
        ours = compare(take_pairs(model.get_vectors(), idx), take_pairs(data.get_vectors(), idx), method=method)
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_bootstrap_ci_and_paired_test(rng):
    n = 20
    base = rng.random(n * (n - 1) // 2)
    data = RDMs(np.stack([base + 0.3 * rng.random(base.size) for _ in range(4)]),
                rdm_descriptors={"subject": [0, 1, 2, 3]})
    models = RDMs(np.stack([base, rng.random(base.size)]), rdm_descriptors={"layer": ["good", "bad"]})
    for resample in ["stimuli", "subjects", "both"]:
        res = bootstrap(models, data, n_resamples=200, resample=resample, random_state=0)
        s = res.scores.set_index("model")
        assert s.loc["good", "ci_low"] <= s.loc["good", "score"] <= s.loc["good", "ci_high"]
        assert s.loc["good", "ci_low"] > s.loc["bad", "ci_high"]
        assert res.paired.loc[0, "p"] < 0.05 and res.paired.loc[0, "difference"] > 0
    again = bootstrap(models, data, n_resamples=50, random_state=3).samples
    np.testing.assert_array_equal(again, bootstrap(models, data, n_resamples=50, random_state=3).samples)


def test_bootstrap_errors(rng):
    with pytest.raises(ValueError, match="Allowed values"):
        bootstrap(rng.random((1, 10)), rng.random((1, 10)), resample="items")
    with pytest.raises(ValueError, match="ci must be"):
        bootstrap(rng.random((1, 10)), rng.random((1, 10)), ci=95)
    with pytest.raises(ValueError, match="same conditions"):
        bootstrap(rng.random((1, 10)), rng.random((1, 15)))
    with pytest.raises(TypeError, match="n_resamples must be an int"):
        bootstrap(rng.random((1, 10)), rng.random((1, 10)), n_resamples=5.5)


def test_rdm_ceiling_named_tuple_and_missing_pairs(k92):
    from brainalign.rsa import RDMCeiling, pool_rdms

    c = rdm_ceiling(k92.hit_rdms, method="corr")
    assert isinstance(c, RDMCeiling) and c.lower == c[0] and c.upper == c[1]
    # subjects with NaN at different pairs (e.g. conditions missing in some sessions): no
    # "rdms_a and rdms_b" message; each comparison uses the pairs both RDMs have
    v = k92.hit_rdms.get_vectors().copy()
    v[0, :50] = np.nan
    v[5, 100:130] = np.nan
    r = RDMs(v, rdm_descriptors={"subject": k92.hit_rdms.rdm_descriptors["subject"]})
    with pytest.warns(RuntimeWarning, match="different pairs.*pairwise deletion") as rec:
        lo, up = rdm_ceiling(r, method="spearman")
    assert not any("rdms_a" in str(w.message) for w in rec)
    subj = np.asarray(r.rdm_descriptors["subject"])
    ref_lo = []
    for s in np.unique(subj):
        pooled = pool_rdms(v[subj != s], "spearman")
        ref_lo.append(np.mean([_pairwise_spearman(pooled[0], row) for row in v[subj == s]]))
    np.testing.assert_allclose(lo, np.mean(ref_lo), atol=1e-12)
    assert lo <= up
    # a pooled RDM is NaN only where every RDM is
    assert not np.isnan(pool_rdms(v, "corr")).any()


def _pairwise_spearman(a, b):
    import scipy.stats as ss

    keep = ~(np.isnan(a) | np.isnan(b))
    return ss.spearmanr(a[keep], b[keep])[0]


def test_bootstrap_needs_enough_conditions_and_subjects(rng):
    """13.4: with 3 conditions every resample repeats the RDM or is dropped: se 0, CI of zero width."""
    with pytest.raises(ValueError, match="at least 5 conditions; the RDMs have 3.*standard error would be 0"):
        bootstrap(rng.random((2, 3)), rng.random((2, 3)), n_resamples=50, random_state=0)
    with pytest.raises(ValueError, match="at least 5 conditions; the RDMs have 4"):
        bootstrap(rng.random((2, 6)), rng.random((2, 6)), resample="both", n_resamples=50, random_state=0)
    res = bootstrap(rng.random((2, 10)), rng.random((3, 10)), n_resamples=200, random_state=0)  # 5 conditions
    assert (res.scores["se"] > 0).all() and (res.scores["ci_high"] > res.scores["ci_low"]).all()
    one = RDMs(rng.random((2, 10)), rdm_descriptors={"subject": [0, 0]})
    with pytest.raises(ValueError, match="at least 2 subjects in data_rdms; got 1"):
        bootstrap(rng.random((1, 10)), one, resample="subjects", n_resamples=20)
    # 3 conditions are fine when subjects are resampled
    three = RDMs(rng.random((4, 3)), rdm_descriptors={"subject": [0, 1, 2, 3]})
    assert bootstrap(rng.random((1, 3)), three, resample="subjects", n_resamples=50, random_state=0).scores["se"][0] > 0


def test_bootstrap_matches_models_to_data_by_label(rng):
    from brainalign.rsa._common import reorder_vectors

    ids = [f"s{i}" for i in range(10)]
    data = RDMs(rng.random((3, 45)), pattern_descriptors={"stimulus_id": ids})
    models = rng.random((2, 45))
    perm = rng.permutation(10)
    shuffled = RDMs(reorder_vectors(models, perm), pattern_descriptors={"stimulus_id": [ids[i] for i in perm]},
                    rdm_descriptors={"layer": ["a", "b"]})
    a = bootstrap(shuffled, data, n_resamples=30, random_state=1)
    b = bootstrap(models, data, n_resamples=30, random_state=1)
    np.testing.assert_allclose(a.samples, b.samples, atol=1e-12)
    assert list(a.scores["model"]) == ["a", "b"]


# ------------------------------------------------------------------ permutation test
@pytest.mark.parametrize("method", ["spearman", "corr", "cosine", "rho-a", "tau-a", "corr_cov"])
def test_permutation_test_equals_brute_force(method, rng):
    from brainalign.rsa import permutation_test
    from brainalign.rsa._common import reorder_vectors

    n = 9
    data, models = rng.random(n * (n - 1) // 2), rng.random((3, n * (n - 1) // 2))
    data[3] = data[4]  # a tie
    res = permutation_test(models, data, method=method, n_permutations=40, random_state=7, memory_budget=1)
    # the same permutations, drawn the same way, applied one by one
    gen = np.random.default_rng(7)
    perms = gen.permuted(np.tile(np.arange(n), (40, 1)), axis=1)
    ref = np.stack([compare(models, reorder_vectors(data[None], p), method=method)[:, 0] for p in perms])
    np.testing.assert_allclose(res.null, ref, atol=1e-12)
    np.testing.assert_allclose(res.score, compare(models, data, method=method)[:, 0])
    assert res.pvalues.shape == (3,) and ((res.pvalues > 0) & (res.pvalues <= 1)).all()


def test_permutation_test_memory_is_bounded(rng, monkeypatch):
    """13 'load': the null is streamed; no block holds more permuted RDMs than the budget allows."""
    import brainalign.rsa._permutation as mod
    from brainalign.rsa import permutation_test

    n = 120
    m = n * (n - 1) // 2
    seen = []
    real = mod._permuted_pairs

    def spy(perms, iu, ju, n_):
        seen.append(perms.shape[0])
        return real(perms, iu, ju, n_)

    monkeypatch.setattr(mod, "_permuted_pairs", spy)
    budget = 40 * m * 7  # room for 7 permutations per block
    res = permutation_test(rng.random((2, m)), rng.random(m), n_permutations=50, random_state=0, memory_budget=budget)
    assert max(seen) == 7 and sum(seen) == 50 and res.null.shape == (50, 2)


def test_permutation_test_false_positive_rate(rng):
    """Under the null (data unrelated to the models) p <= 0.05 in ~5% of data sets."""
    from scipy.stats import binomtest

    from brainalign.rsa import permutation_test

    n_sim, n = 300, 8
    model = rng.random((1, n * (n - 1) // 2))
    pvals = [permutation_test(model, rng.random(n * (n - 1) // 2), n_permutations=99, random_state=i).pvalues[0]
             for i in range(n_sim)]
    k = int((np.array(pvals) <= 0.05).sum())
    assert binomtest(k, n_sim, 0.05).pvalue > 0.01, k


def test_permutation_test_errors(rng):
    from brainalign.rsa import permutation_test

    with pytest.raises(ValueError, match="n_permutations must be a positive int"):
        permutation_test(rng.random((1, 10)), rng.random(10), n_permutations=0)
    with pytest.raises(ValueError, match="data_rdm must hold one RDM; got 2"):
        permutation_test(rng.random((1, 10)), rng.random((2, 10)))
