import numpy as np
import pytest

from brainalign import BrainData
from brainalign.stats import (
    bootstrap_ci, explainable_variance, fdr_correction, max_stat_pvalues, noise_ceiling, normalize_scores,
    pearson_r, permutation_test, r2_score, split_half_reliability,
)


def test_scores_equal_references(rng):
    from sklearn.metrics import r2_score as sk_r2

    y, p = rng.standard_normal((50, 4)), rng.standard_normal((50, 4))
    np.testing.assert_allclose(pearson_r(y, p), [np.corrcoef(y[:, j], p[:, j])[0, 1] for j in range(4)], atol=1e-12)
    np.testing.assert_allclose(r2_score(y, p), sk_r2(y, p, multioutput="raw_values"), atol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        pearson_r(y, p[:, :3])


def test_fdr_equals_mne_and_statsmodels(rng):
    from mne.stats import fdr_correction as mne_fdr

    p = rng.uniform(size=200) ** 3
    rej, adj = fdr_correction(p, 0.05)
    rej_m, adj_m = mne_fdr(p, 0.05)
    np.testing.assert_allclose(adj, adj_m)
    np.testing.assert_array_equal(rej, rej_m)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        fdr_correction(p, 1.5)


def test_max_stat_controls_fwe(rng):
    null = rng.standard_normal((500, 50))
    obs = rng.standard_normal(50)  # no effect anywhere
    p = max_stat_pvalues(obs, null)
    assert p.min() > 0.05
    obs[0] = 10.0
    assert max_stat_pvalues(obs, null)[0] == pytest.approx(1 / 501)


@pytest.mark.parametrize("method", ["circular_shift", "block"])
def test_permutation_finds_signal_not_noise(rng, method):
    n = 400
    smooth = np.convolve(rng.standard_normal(n + 20), np.ones(20) / 20, "valid")[:n]
    y = np.stack([smooth + 0.02 * rng.standard_normal(n), rng.standard_normal(n)], 1)
    pred = np.stack([smooth, np.convolve(rng.standard_normal(n + 20), np.ones(20) / 20, "valid")[:n]], 1)
    res = permutation_test(y, pred, groups=np.repeat(np.arange(8), 50), method=method, n_permutations=99)
    assert res.pvalues[0] <= 0.03 and res.pvalues[1] > 0.05
    assert res.null.shape == (99, 2) and res.pvalues_fwe.shape == (2,)
    with pytest.raises(ValueError, match="Give groups"):
        permutation_test(y, pred, method=method)


def test_block_permutation_needs_equal_blocks(rng):
    y = rng.standard_normal((30, 1))
    with pytest.raises(ValueError, match="equal length"):
        permutation_test(y, y, groups=np.r_[np.zeros(10), np.ones(20)], method="block")


def test_ceilings_ground_truth(rng):
    n_stim, n_rep = 80, 6
    signal = rng.standard_normal((n_stim, 3))
    noise_sd = np.array([0.0001, 1.0, 3.0])
    reps = signal[None] + noise_sd * rng.standard_normal((n_rep, n_stim, 3))
    ev = explainable_variance(reps)
    np.testing.assert_allclose(ev, 1 / (1 + noise_sd**2), atol=0.12)
    ids = np.tile(np.arange(n_stim), n_rep)
    data = reps.reshape(-1, 3)
    rel = split_half_reliability(data, ids, n_splits=20)
    # reliability of the mean over all repeats: 1 / (1 + noise_var / (n_rep * signal_var))
    np.testing.assert_allclose(rel, 1 / (1 + noise_sd**2 / n_rep), atol=0.12)
    bd = BrainData(data, samples={"stimulus_id": ids})
    np.testing.assert_allclose(noise_ceiling(bd, method="explainable_variance"), ev, atol=1e-6)
    assert noise_ceiling(bd, method="split_half", n_splits=5).shape == (3,)
    with pytest.raises(ValueError, match="No stimulus is repeated"):
        split_half_reliability(data[:n_stim], ids[:n_stim])


def test_normalized_score_of_noise_only_voxel_approaches_one(rng):
    """A model that predicts the true signal: its normalized score is ~1 for any measurement noise."""
    n_stim, n_rep = 400, 4
    signal = rng.standard_normal((n_stim, 2))
    noise_sd = np.array([0.5, 1.5])
    reps = signal[None] + noise_sd * rng.standard_normal((n_rep, n_stim, 2))
    mean = reps.mean(0)
    r = pearson_r(mean, signal)  # perfect model of the stimulus-driven part
    rel = split_half_reliability(reps.reshape(-1, 2), np.tile(np.arange(n_stim), n_rep), n_splits=20)
    # r² of a perfect model against the repeat-average equals the reliability of that average
    np.testing.assert_allclose(normalize_scores(r, rel**1, convention="r/sqrt(c)"), 1.0, atol=0.05)
    ev = explainable_variance(reps[:, :, :])
    r2_single = np.mean([pearson_r(reps[k], signal) ** 2 for k in range(n_rep)], axis=0)
    np.testing.assert_allclose(normalize_scores(r2_single, ev, convention="r2/c"), 1.0, atol=0.08)
    with pytest.raises(ValueError, match="'convention'"):
        normalize_scores(r, rel, convention="r/c")


def test_bootstrap_ci_covers_and_groups(rng):
    y = rng.standard_normal((120, 5))
    pred = y + rng.standard_normal((120, 5))
    res = bootstrap_ci(y, pred, groups=np.repeat(np.arange(12), 10), n_resamples=300)
    assert res.ci_low < res.mean < res.ci_high
    assert res.ci_low > 0.5 and res.ci_high < 0.9
    with pytest.raises(ValueError, match="at least 2 resampling units"):
        bootstrap_ci(y, pred, groups=np.zeros(120))
