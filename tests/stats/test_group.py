import numpy as np
import pytest
from scipy.stats import binom

from brainalign.stats import joint_bootstrap, p_best, pairwise_comparisons, sign_flip_test


@pytest.mark.parametrize("tail", ["two-sided", "greater", "less"])
def test_exact_sign_flip_equals_scipy(rng, tail):
    from scipy.stats import permutation_test as sp_permutation_test

    d = rng.standard_normal(10) + 0.4
    ours = sign_flip_test(d, tail=tail)
    ref = sp_permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                              n_resamples=np.inf, alternative=tail, vectorized=True)
    assert ours.exact and ours.null.shape == (1024, 1)
    assert ours.pvalues[0] == pytest.approx(ref.pvalue, rel=1e-12)
    from scipy.stats import ttest_1samp

    assert ours.statistic[0] == pytest.approx(ttest_1samp(d, 0).statistic)


def test_random_sign_flips_approach_the_exact_p(rng):
    d = rng.standard_normal((16, 3)) + np.array([0.0, 0.3, 0.8])
    exact = sign_flip_test(d, n_permutations=2**16)
    sampled = sign_flip_test(d, n_permutations=4000, random_state=1)
    assert exact.exact and not sampled.exact
    se = np.sqrt(exact.pvalues * (1 - exact.pvalues) / 4000)
    assert np.all(np.abs(sampled.pvalues - exact.pvalues) <= 4 * se + 1 / 4000)


def test_pairwise_t_test_equals_scipy_and_corrections_are_named(rng):
    from scipy.stats import ttest_rel
    from statsmodels.stats.multitest import multipletests

    scores = rng.normal([0.30, 0.32, 0.40, 0.31], 0.04, size=(9, 4))
    table = pairwise_comparisons(scores, labels=list("abcd"), test="t", correction="holm")
    assert len(table) == 6 and table[["a", "b"]].values[0].tolist() == ["a", "b"]
    for row in table.itertuples():
        i, j = "abcd".index(row.a), "abcd".index(row.b)
        ref = ttest_rel(scores[:, i], scores[:, j])
        assert row.statistic == pytest.approx(ref.statistic) and row.p == pytest.approx(ref.pvalue)
    np.testing.assert_allclose(table.p_corrected, multipletests(table.p, method="holm")[1])
    assert (table.correction == "holm").all() and (table.test == "t").all() and (table.n_subjects == 9).all()
    fdr = pairwise_comparisons(scores, test="t", correction="fdr_bh")
    np.testing.assert_allclose(fdr.p_corrected, multipletests(fdr.p, method="fdr_bh")[1])
    df = __import__("pandas").DataFrame(scores, columns=["l0", "l1", "l2", "l3"])
    assert pairwise_comparisons(df).a.tolist()[:3] == ["l0", "l0", "l0"]


def test_dual_variance_equals_rsatoolbox(rng):
    from rsatoolbox.util.inference_util import _dual_bootstrap

    from brainalign.stats._group import _dual_variance

    v_subj, v_stim = rng.uniform(0.1, 1, 20), rng.uniform(0.1, 1, 20)
    v_both = v_subj + v_stim + rng.uniform(-0.2, 0.6, 20)
    np.testing.assert_allclose(_dual_variance(v_both, v_subj, v_stim, 12, 40),
                               _dual_bootstrap(np.stack([v_both, v_subj, v_stim]), n_rdm=12, n_pattern=40))


def test_p_best(rng):
    scores = rng.normal([0.30, 0.31, 0.40], 0.03, size=(10, 3))
    p = p_best(scores)
    assert p.shape == (3,) and p.sum() == pytest.approx(1) and p[2] > 0.99
    assert p_best(np.tile([0.3, 0.3, 0.2], (5, 1))).tolist() == [0.5, 0.5, 0.0]  # ties share the win
    reps = scores[:, None, :] + 0.01 * rng.standard_normal((10, 300, 3))
    pj = p_best(scores, stimulus_replicates=reps)
    assert pj.sum() == pytest.approx(1) and pj[2] > 0.99
    with pytest.raises(ValueError, match=r"stimulus_replicates must have shape \(n_subjects=10, n_resamples, n_models=3\)"):
        p_best(scores, stimulus_replicates=reps[:, :, :2])


def test_group_errors(rng):
    scores = rng.standard_normal((6, 3))
    bad = scores.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"first: subject row 1, model column 0"):
        pairwise_comparisons(bad)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        sign_flip_test(np.ones((1, 3)))
    with pytest.raises(ValueError, match="labels has 2 names but scores has 3 columns"):
        pairwise_comparisons(scores, labels=["a", "b"])
    with pytest.raises(ValueError, match="test='bootstrap' needs stimulus_replicates"):
        pairwise_comparisons(scores, test="bootstrap")
    reps = scores[:, None] + rng.standard_normal((6, 50, 3))
    with pytest.raises(ValueError, match="correction='max_stat' needs sign flips"):
        pairwise_comparisons(scores, test="bootstrap", correction="max_stat", stimulus_replicates=reps, n_stimuli=20)
    with pytest.raises(ValueError, match="'correction'.*'fdr_bh'"):
        pairwise_comparisons(scores, correction="bonferroni")
    with pytest.raises(ValueError, match="'tail'"):
        sign_flip_test(scores, tail="both")
    with pytest.raises(TypeError, match="n_stimuli must be an int"):
        joint_bootstrap(scores, reps, n_stimuli=20.5)
    with pytest.warns(UserWarning, match="With 4 subjects no sign-flip p-value can be below 0.125"):
        sign_flip_test(scores[:4])


@pytest.mark.slow
def test_subject_level_tests_hold_their_false_positive_rate():
    """Issue 11.13: null differences across 12 subjects (heavy-tailed for the sign flip): each test rejects at the
    nominal rate; with 5 equal models (10 pairs) every correction keeps the family-wise error at most 0.05."""
    rng = np.random.default_rng(3)
    n_sets = 2000
    lo, hi = binom.interval(0.99, n_sets, 0.05)
    d = rng.standard_t(3, size=(12, n_sets))  # every column an independent null data set
    assert lo <= (sign_flip_test(d).pvalues <= 0.05).sum() <= hi
    n_sets = 600
    lo, hi = binom.interval(0.99, n_sets, 0.05)
    first_pair = {"sign_flip": 0, "t": 0}
    errors = {"holm": 0, "fdr_bh": 0, "max_stat": 0}
    for k in range(n_sets):
        scores = 0.3 + rng.standard_normal((12, 1)) + 0.05 * rng.standard_normal((12, 5))  # subject effect, no model
        for test in first_pair:
            first_pair[test] += pairwise_comparisons(scores, test=test, correction="none").reject.iloc[0]
        for correction in errors:
            table = pairwise_comparisons(scores, correction=correction, random_state=k)
            errors[correction] += table.reject.any()
    assert all(lo <= v <= hi for v in first_pair.values()), first_pair
    assert errors["holm"] <= hi and errors["fdr_bh"] <= hi, errors
    assert lo <= errors["max_stat"] <= hi, errors  # exact under the complete null


@pytest.mark.slow
def test_joint_bootstrap_coverage_and_false_positive_rate():
    """Subjects and stimuli both random: x[s, i, m] = mu + a[s, m] + b[i, m] + e[s, i, m]. The corrected joint
    bootstrap covers the population mean at ~0.95 and its paired test rejects equal models at ~0.05."""
    rng = np.random.default_rng(5)
    n_subj, n_stim, n_models, n_res, n_sets = 10, 40, 2, 400, 400
    covered, rejected = 0, 0
    for k in range(n_sets):
        x = (0.3 + 0.05 * rng.standard_normal((n_subj, 1, n_models)) + 0.05 * rng.standard_normal((1, n_stim, n_models))
             + 0.1 * rng.standard_normal((n_subj, n_stim, n_models)))
        draws = rng.integers(0, n_stim, (n_res, n_stim))
        counts = np.bincount((np.arange(n_res)[:, None] * n_stim + draws).ravel(), minlength=n_res * n_stim)
        reps = np.einsum("bn,snm->sbm", counts.reshape(n_res, n_stim), x) / n_stim  # same stimuli for everyone
        scores = x.mean(1)
        res = joint_bootstrap(scores, reps, n_stimuli=n_stim, random_state=k)
        covered += res.ci_low[0] <= 0.3 <= res.ci_high[0]
        table = pairwise_comparisons(scores, test="bootstrap", stimulus_replicates=reps, n_stimuli=n_stim,
                                     correction="none", random_state=k)
        rejected += table.p.iloc[0] <= 0.05
    assert abs(covered / n_sets - 0.95) <= 0.03, covered / n_sets
    lo, hi = binom.interval(0.99, n_sets, 0.05)
    assert lo <= rejected <= hi, rejected / n_sets
