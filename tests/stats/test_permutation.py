import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.stats import binom

from brainalign.stats import pearson_r, permutation_test, r2_score


def _ar1(rng, phi, n_runs, n_per_run, n_targets=1, burn=200):
    e = rng.standard_normal((n_runs, n_per_run + burn, n_targets))
    return lfilter([1.0], [1.0, -phi], e, axis=1)[:, burn:].reshape(-1, n_targets)


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


@pytest.mark.parametrize("metric, score", [("pearson_r", pearson_r), ("r2", r2_score)])
def test_circular_null_is_every_nonzero_lag(rng, metric, score):
    """The FFT null equals the score of the rotated predictions, and lags next to 0 are drawn (issue 11.2)."""
    m = 20
    y, pred = rng.standard_normal((m, 2)), rng.standard_normal((m, 2)) + 0.3
    direct = np.stack([score(y, np.roll(pred, s, axis=0)) for s in range(m)])  # (lag, target)
    res = permutation_test(y, pred, groups=np.zeros(m), metric=metric, n_permutations=2000, random_state=1)
    lag = np.abs(res.null[:, None, :] - direct[None]).sum(2).argmin(1)
    np.testing.assert_allclose(res.null, direct[lag], atol=1e-10)
    assert set(lag.tolist()) == set(range(1, m))  # every non-zero lag, 1 and m-1 included; never 0
    np.testing.assert_allclose(res.score, score(y, pred), atol=1e-12)


def test_block_null_is_every_other_order(rng):
    y, pred = rng.standard_normal((30, 1)), rng.standard_normal((30, 1))
    groups = np.repeat([2, 0, 1], 10)  # labels out of order: blocks follow the samples
    with pytest.warns(UserWarning, match="only 6 orders"):
        res = permutation_test(y, pred, groups=groups, method="block", n_permutations=300)
    blocks = [np.arange(0, 10), np.arange(10, 20), np.arange(20, 30)]
    from itertools import permutations

    values = []
    for order in permutations(range(3)):
        values.append(pearson_r(y, pred[np.concatenate([blocks[i] for i in order])])[0])
    hit = np.abs(res.null[:, :1] - np.array(values)[None]).argmin(1)
    np.testing.assert_allclose(res.null[:, 0], np.array(values)[hit], atol=1e-10)
    assert set(hit.tolist()) == set(range(1, 6))  # the 5 orders that are not the identity


def test_constant_target_and_bad_parameters(rng):
    y = rng.standard_normal((100, 3))
    y[:, 2] = 1.0
    pred = y + rng.standard_normal((100, 3))
    with pytest.warns(RuntimeWarning, match=r"constant in 1 column\(s\) \(first: column 2\)"):
        res = permutation_test(y, pred, block_size=25, n_permutations=49)
    assert np.isnan(res.pvalues[2]) and np.isnan(res.pvalues_fdr[2]) and np.isnan(res.pvalues_fwe[2])
    assert np.isfinite(res.pvalues[:2]).all()
    with pytest.raises(TypeError, match="n_permutations must be an int >= 1; got float 5.5"):
        permutation_test(y, pred, block_size=25, n_permutations=5.5)
    with pytest.raises(ValueError, match="n_permutations must be an int >= 1; got -3"):
        permutation_test(y, pred, block_size=25, n_permutations=-3)
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\)"):
        permutation_test(y, pred, block_size=25, alpha=5)
    with pytest.raises(ValueError, match="block_size must be an int >= 1; got 0"):
        permutation_test(y, pred, block_size=0)
    with pytest.raises(ValueError, match=r"y_true holds 1 NaN .* column 1, sample 3"):
        permutation_test(np.where((np.arange(100) == 3)[:, None] & (np.arange(3) == 1), np.nan, y), pred,
                         block_size=25)


def test_warns_when_few_independent_blocks(rng):
    y, pred = _ar1(rng, 0.95, 1, 80), _ar1(rng, 0.95, 1, 80)
    with pytest.warns(UserWarning, match="independent blocks .* coarse"):
        permutation_test(y, pred, groups=np.zeros(80), n_permutations=49)
    y, pred = _ar1(rng, 0.9, 1, 200), _ar1(rng, 0.9, 1, 200)
    with pytest.warns(UserWarning, match="shorter than twice the autocorrelation time"):
        permutation_test(y, pred, block_size=10, method="block", n_permutations=49)
    y, pred = rng.standard_normal((90, 1)), rng.standard_normal((90, 1))
    with pytest.warns(UserWarning, match="only 6 orders"):
        permutation_test(y, pred, groups=np.repeat(np.arange(3), 30), method="block", n_permutations=49)


@pytest.mark.slow
def test_false_positive_rate_on_autocorrelated_noise():
    """Issue 11.2: AR(1) noise, 4 runs × 100 samples: the rate at α = 0.05 stays in the binomial 99% interval of
    0.05 for φ = 0, 0.5, 0.9 (it was 0.099 at φ = 0.9 when lags near 0 were excluded); so does the max-stat FWE."""
    n_sets, n_runs, m = 800, 4, 100
    lo, hi = binom.interval(0.99, n_sets, 0.05)
    groups = np.repeat(np.arange(n_runs), m)
    for phi in (0.0, 0.5, 0.9):
        rng = np.random.default_rng(int(phi * 10))
        hits, fwe = 0, 0
        for k in range(n_sets):
            y, pred = _ar1(rng, phi, n_runs, m, 3), _ar1(rng, phi, n_runs, m, 3)
            res = permutation_test(y, pred, groups=groups, n_permutations=199, random_state=k)
            hits += res.pvalues[0] <= 0.05
            fwe += (res.pvalues_fwe <= 0.05).any()
        assert lo <= hits <= hi, (phi, hits / n_sets)
        assert lo <= fwe <= hi, (phi, fwe / n_sets)
