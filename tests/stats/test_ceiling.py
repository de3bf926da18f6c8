import numpy as np
import pytest

from brainalign import BrainData
from brainalign.stats import (
    channel_ceiling, explainable_variance, inter_subject_ceiling, normalize_scores, pearson_r,
    single_presentation_ceiling, split_half_reliability,
)


def _repeats(rng, n_stim, n_rep, noise_sd):
    signal = rng.standard_normal((n_stim, len(noise_sd)))
    return signal, signal[None] + np.asarray(noise_sd) * rng.standard_normal((n_rep, n_stim, len(noise_sd)))


def test_ceilings_ground_truth_and_units(rng):
    """Every ceiling against its closed form for signal variance S = 1 and noise variance N = sd²."""
    n_stim, n_rep = 1000, 6
    noise_sd = np.array([0.0001, 1.0, 1.5])
    N = noise_sd**2
    _, reps = _repeats(rng, n_stim, n_rep, noise_sd)
    ids = np.tile(np.arange(n_stim), n_rep)
    data = reps.reshape(-1, 3)
    # single presentation: S / (S + N) (the NSD ncsnr² / (ncsnr² + 1/n) with n = 1), and its square root
    np.testing.assert_allclose(explainable_variance(reps), 1 / (1 + N), atol=0.04)
    np.testing.assert_allclose(single_presentation_ceiling(data, ids), np.sqrt(1 / (1 + N)), atol=0.03)
    # mean of all n repeats: S / (S + N / n) (NSD's value for n trials); without Spearman-Brown, n / 2 repeats
    np.testing.assert_allclose(split_half_reliability(data, ids, n_splits=20), 1 / (1 + N / n_rep), atol=0.03)
    np.testing.assert_allclose(split_half_reliability(data, ids, n_splits=20, spearman_brown=False),
                               1 / (1 + N / (n_rep / 2)), atol=0.03)
    # without the bias correction the explainable variance is neither unit: (S + N / n) / (S + N)
    np.testing.assert_allclose(explainable_variance(reps, bias_correction=False), (1 + N / n_rep) / (1 + N), atol=0.04)
    bd = BrainData(data, samples={"stimulus_id": ids, "run": np.repeat(np.arange(n_rep), n_stim)})
    np.testing.assert_allclose(channel_ceiling(bd, method="explainable_variance"), explainable_variance(reps))
    np.testing.assert_allclose(channel_ceiling(bd, method="single_presentation"), single_presentation_ceiling(data, ids))
    np.testing.assert_allclose(channel_ceiling(bd, method="single_presentation", groups="run"),
                               single_presentation_ceiling(data, ids))  # run k holds presentation k
    np.testing.assert_allclose(channel_ceiling(bd, method="split_half", n_splits=3, random_state=1),
                               split_half_reliability(data, ids, n_splits=3, random_state=1))
    with pytest.raises(KeyError, match="no 'image' column"):
        channel_ceiling(bd, by="image")
    with pytest.raises(ValueError, match="'method'.*'single_presentation'"):
        channel_ceiling(bd, method="noise_ceiling")


def test_split_half_reliability_matches_a_direct_loop(rng):
    """The vectorized splits agree, on average over many splits, with a loop over stimuli that permutes the
    repeats of each and correlates the two half means (the earlier implementation)."""
    _, reps = _repeats(rng, 12, 5, [1.0, 2.0])
    ids = np.tile(np.arange(12), 5)
    data = reps.reshape(-1, 2)
    order = rng.permutation(len(ids))  # samples in any order
    data, ids = data[order], ids[order]
    loop_rng, total = np.random.default_rng(9), np.zeros(2)
    for _ in range(500):
        a, b = [], []
        for k in range(12):
            idx = loop_rng.permutation(np.flatnonzero(ids == k))
            a.append(data[idx[:2]].mean(0))
            b.append(data[idx[2:]].mean(0))
        total += pearson_r(np.array(a), np.array(b))
    ours = split_half_reliability(data, ids, n_splits=500, spearman_brown=False, random_state=4)
    np.testing.assert_allclose(ours, total / 500, atol=0.03)
    np.testing.assert_allclose(split_half_reliability(data, ids, n_splits=500, random_state=4),
                               2 * ours / (1 + ours), atol=1e-12)
    with pytest.raises(ValueError, match="No stimulus is repeated"):
        split_half_reliability(reps[0], np.arange(12))
    with pytest.raises(ValueError, match="data holds 1 NaN"):
        split_half_reliability(np.where(np.arange(60)[:, None] + np.arange(2) == 0, np.nan, data), ids)
    with pytest.raises(TypeError, match="n_splits must be an int"):
        split_half_reliability(data, ids, n_splits=2.5)


def test_single_presentation_ceiling_options(rng):
    n_stim = 200
    _, reps = _repeats(rng, n_stim, 12, [1.0])  # 66 presentation pairs: a subset of 45
    ids = np.tile(np.arange(n_stim), 12).astype(object)
    ids[:5] = None  # samples without a stimulus are ignored
    c = single_presentation_ceiling(reps.reshape(-1, 1), ids)
    assert abs(c[0] - np.sqrt(0.5)) < 0.05
    assert single_presentation_ceiling(reps.reshape(-1, 1), ids, max_pairs=3)[0] != c[0]
    groups = np.repeat(np.arange(6), 2 * n_stim)  # two presentations of every stimulus per group
    with pytest.warns(UserWarning, match="cells hold several samples, which are averaged"):
        single_presentation_ceiling(reps.reshape(-1, 1), ids, groups=groups)
    with pytest.raises(ValueError, match="Fewer than 3 stimuli are presented at least twice"):
        single_presentation_ceiling(reps[0], np.arange(n_stim))


def test_inter_subject_ceiling_recovers_the_single_subject_ceiling(rng):
    """Shared signal (S = 1) + subject noise (N): the corrected ceiling is sqrt(S / (S + N)); the raw
    leave-one-out r is sqrt(rho1) * sqrt(rho_{n-1}), below it."""
    n_subj, n = 8, 2000
    N = np.array([0.25, 1.0, 4.0])
    subjects = rng.standard_normal((n, 3)) + np.sqrt(N) * rng.standard_normal((n_subj, n, 3))
    rho1 = 1 / (1 + N)
    rho_rest = (n_subj - 1) * rho1 / (1 + (n_subj - 2) * rho1)
    np.testing.assert_allclose(inter_subject_ceiling(subjects), np.sqrt(rho1), atol=0.03)
    np.testing.assert_allclose(inter_subject_ceiling(subjects, correction=None), np.sqrt(rho1 * rho_rest), atol=0.03)
    per_subject = inter_subject_ceiling(list(subjects), average=False)  # a list of arrays works too
    assert per_subject.shape == (n_subj, 3)
    # the ceiling is what a perfect model of the shared signal reaches against one subject
    two = inter_subject_ceiling(subjects[:2])
    np.testing.assert_allclose(two, np.sqrt(pearson_r(subjects[0], subjects[1])), atol=1e-12)
    bds = [BrainData(s) for s in subjects[:3]]
    assert inter_subject_ceiling(bds).shape == (3,)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        inter_subject_ceiling(subjects[:1])
    with pytest.raises(ValueError, match="same \\(n_samples, n_channels\\) shape"):
        inter_subject_ceiling([subjects[0], subjects[1][:-1]])
    with pytest.raises(ValueError, match="'correction'"):
        inter_subject_ceiling(subjects, correction="fisher")


def test_normalized_score_of_a_perfect_model_is_one(rng):
    """A model that predicts the true signal scores ~1 once normalized, in each unit with its own ceiling."""
    n_stim, n_rep = 1000, 4
    signal, reps = _repeats(rng, n_stim, n_rep, [0.5, 1.5])
    ids = np.tile(np.arange(n_stim), n_rep)
    data = reps.reshape(-1, 2)
    # against the repeat mean: Schoppe / Hsu r / sqrt(split-half reliability)
    rel = split_half_reliability(data, ids, n_splits=20)
    np.testing.assert_allclose(normalize_scores(pearson_r(reps.mean(0), signal), rel), 1.0, atol=0.05)
    # against single presentations: r / single_presentation_ceiling, r² / explainable variance
    r_single = np.mean([pearson_r(reps[k], signal) for k in range(n_rep)], axis=0)
    np.testing.assert_allclose(normalize_scores(r_single, single_presentation_ceiling(data, ids), convention="r/c"),
                               1.0, atol=0.05)
    r2_single = np.mean([pearson_r(reps[k], signal) ** 2 for k in range(n_rep)], axis=0)
    np.testing.assert_allclose(normalize_scores(r2_single, explainable_variance(reps), convention="r2/c"), 1.0,
                               atol=0.08)
    # Brain-Score divides by the reliability itself: larger than r / sqrt(c) when c < 1
    assert (normalize_scores([0.3], [0.5], convention="r/c") > normalize_scores([0.3], [0.5])).all()
    with pytest.warns(RuntimeWarning, match="1 of 2 ceilings are at or below floor"):
        assert np.isnan(normalize_scores([0.3, 0.2], [0.0, 0.5])[0])
    with pytest.raises(ValueError, match="'convention'"):
        normalize_scores([0.3], [0.5], convention="r/c2")


def test_constant_channel_gives_nan_with_a_warning(rng):
    _, reps = _repeats(rng, 20, 4, [1.0, 1.0])
    reps[:, :, 1] = 3.0
    ids = np.tile(np.arange(20), 4)
    with pytest.warns(RuntimeWarning, match="constant"):
        ev = explainable_variance(reps)
    assert np.isnan(ev[1]) and np.isfinite(ev[0])
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(split_half_reliability(reps.reshape(-1, 2), ids, n_splits=2)[1])
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(single_presentation_ceiling(reps.reshape(-1, 2), ids)[1])
