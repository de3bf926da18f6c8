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
