"""Noise ceiling, bootstrap and permutation test: behaviour and calibration by simulation."""

import numpy as np
import pytest
from sim_data import make_pair

from brainalign import similarity as S


def test_permutation_test_false_positive_rate():
    """Independent X and Y: p-values are uniform, so p <= 0.05 about 5% of the time."""
    rng = np.random.default_rng(0)
    p = [S.permutation_test(rng.standard_normal((25, 3)), rng.standard_normal((25, 3)), method="cka",
                            n_permutations=49, random_state=k, device="cpu").pvalue for k in range(200)]
    rate = np.mean(np.asarray(p) <= 0.05)
    assert 0.01 <= rate <= 0.10, rate  # binomial(200, 0.05): 95% within [0.02, 0.085]
    assert 0.4 < np.mean(p) < 0.6


@pytest.mark.parametrize("method", ["cka", "procrustes-angular", "mutual_knn", "rsa", "trsa", "pwcca",
                                    "bures_distance"])
def test_permutation_test_detects_shared_structure(method):
    X, Y = make_pair(n=40, noise=0.3)
    res = S.permutation_test(X, Y, method=method, n_permutations=49, device="cpu")
    assert res.pvalue == pytest.approx(1 / 50)
    assert res.null.shape == (49,) and res.score > res.null.max()
    assert res.score == pytest.approx(S.to_score(res.value, method))


def test_permutation_knn_relabelling_equals_recomputing():
    X, Y = make_pair(n=30)
    perm = np.random.default_rng(3).permutation(30)
    ref = S.compare(X, Y[perm], method="mutual_knn", k=4, device="cpu")
    from brainalign.similarity import _inference

    m, p, A, B, _ = _inference._prepare(X, Y, "mutual_knn", {"k": 4}, "cpu", "float64")
    assert _inference._score_grid(m, p, A, B, perm=perm)[0, 0] == pytest.approx(ref, abs=1e-12)
    m, p, A, B, _ = _inference._prepare(X, Y, "rsa", {}, "cpu", "float64")
    ref = S.compare(X, Y[perm], method="rsa", device="cpu")
    assert _inference._score_grid(m, p, A, B, perm=perm)[0, 0] == pytest.approx(ref, abs=1e-12)


@pytest.mark.slow
def test_bootstrap_coverage_of_the_population_cka():
    """X ~ N(0, I_p), Y = X + sigma E: the population linear CKA is 1 / (1 + sigma^2). The
    debiased estimator's 90% percentile interval should cover it about 90% of the time."""
    sigma, truth = 1.0, 0.5
    hits = []
    for k in range(60):
        rng = np.random.default_rng(100 + k)
        X = rng.standard_normal((120, 4))
        Y = X + sigma * rng.standard_normal((120, 4))
        res = S.bootstrap(X, Y, method="cka-hsic_song", n_resamples=200, ci=0.9, random_state=k, device="cpu")
        hits.append(res.ci_low <= truth <= res.ci_high)
    assert 0.75 <= np.mean(hits) <= 0.99, np.mean(hits)


def test_bootstrap_is_paired_across_layers_and_handles_duplicates():
    X, Y = make_pair(n=40, noise=0.3)
    layers = [X, X[:, :4], np.random.default_rng(1).standard_normal(X.shape)]
    res = S.bootstrap(layers, Y, method="cka", n_resamples=30, random_state=0, device="cpu")
    assert res.samples.shape == (30, 3, 1)
    assert np.all(res.ci_low < res.ci_high)
    best = np.bincount(np.argmax(res.samples[:, :, 0], axis=1), minlength=3) / 30
    assert best[2] == 0  # the random layer never wins
    # same draws -> same samples (random_state)
    again = S.bootstrap(layers, Y, method="cka", n_resamples=30, random_state=0, device="cpu")
    assert np.array_equal(res.samples, again.samples)
    for method in ("mutual_knn", "rsa", "trsa", "procrustes-euclidean"):
        r = S.bootstrap(X, Y, method=method, n_resamples=10, device="cpu")
        assert r.samples.shape == (10,) and np.isfinite(r.samples).all(), method
        assert r.ci_low <= r.ci_high


def test_bootstrap_knn_never_counts_a_copy_as_neighbour():
    X, Y = make_pair(n=30)
    rows = np.array([0, 0, 0, 1, 2, 3] + list(range(4, 28)))
    from brainalign.similarity import _knn
    from brainalign.similarity._prepare import as_reps

    (rep,), _, _ = as_reps(X[rows], name="X", device="cpu")
    nb = _knn.neighbours(rep, 3, "cosine", rows).numpy()
    for i in range(3):
        assert not set(nb[i]) & {0, 1, 2}


def test_bootstrap_reports_undefined_replicates():
    X, Y = make_pair(n=14, px=6, py=6)  # 12 dimensions: fine for 14 stimuli, degenerate for ~9 distinct
    with pytest.warns(UserWarning, match="replicates are undefined for 'cca-mean_sq_corr'"):
        res = S.bootstrap(X, Y, method="cca-mean_sq_corr", n_resamples=40, device="cpu")
    assert np.isnan(res.samples).any()


def test_split_half_ceiling():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((1, 80, 12))
    ceilings = []
    for noise in (0.0, 0.5, 1.5):
        reps = signal + noise * rng.standard_normal((6, 80, 12))
        ceilings.append(S.split_half_ceiling(reps, method="cka", n_splits=5, device="cpu").ceiling)
    assert ceilings[0] == pytest.approx(1.0)
    assert ceilings[0] > ceilings[1] > ceilings[2]
    # the true signal against the data averaged over all 6 repeats scores above the half-split
    # ceiling: the ceiling is conservative
    data = (signal + 1.5 * rng.standard_normal((6, 80, 12))).mean(0)
    assert S.compare(signal[0], data, method="cka", device="cpu") > ceilings[2]


def test_ceiling_from_stimulus_ids_and_for_distances():
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((30, 5))
    ids = np.repeat(np.arange(30), 3)
    data = signal[ids] + 0.3 * rng.standard_normal((90, 5))
    a = S.split_half_ceiling(data, ids, method="procrustes-angular", n_splits=4, random_state=0, device="cpu")
    reps = np.stack([data[ids == i] for i in range(30)], axis=1)
    b = S.split_half_ceiling(reps, method="procrustes-angular", n_splits=4, random_state=0, device="cpu")
    assert a.ceiling == pytest.approx(b.ceiling)  # same splits from the same random_state
    assert a.scores == pytest.approx(np.cos(a.raw))
    sb = S.split_half_ceiling(reps, method="rsa", n_splits=4, spearman_brown=True, device="cpu")
    raw = S.split_half_ceiling(reps, method="rsa", n_splits=4, device="cpu")
    assert sb.ceiling == pytest.approx(2 * raw.ceiling / (1 + raw.ceiling))
    with pytest.raises(ValueError, match="spearman_brown=True needs a correlation-like score"):
        S.split_half_ceiling(reps, method="bures_distance", spearman_brown=True, device="cpu")


def test_ceiling_for_stochastic_measures_and_errors():
    rng = np.random.default_rng(2)
    reps = rng.standard_normal((1, 15, 3)) + 0.2 * rng.standard_normal((4, 15, 3))
    c = S.split_half_ceiling(reps, method="stochastic-gaussian", n_splits=2, device="cpu")
    assert c.ceiling <= 0 and np.isfinite(c.ceiling)
    with pytest.raises(ValueError, match="at least 4 repeats"):
        S.split_half_ceiling(reps[:3], method="stochastic-energy", device="cpu")
    with pytest.raises(ValueError, match="single repeat"):
        S.split_half_ceiling(reps[:1], method="cka", device="cpu")
    with pytest.raises(ValueError, match="stimulus_ids has 5 labels but data has 15 samples"):
        S.split_half_ceiling(reps[0], np.arange(5), method="cka", device="cpu")
    with pytest.raises(ValueError, match="n_resamples must be an integer >= 2"):
        S.bootstrap(reps[0], reps[1], method="cka", n_resamples=1, device="cpu")
    with pytest.raises(ValueError, match="n_permutations must be a positive integer"):
        S.permutation_test(reps[0], reps[1], method="cka", n_permutations=0, device="cpu")
    with pytest.raises(ValueError, match="one method at a time"):
        S.bootstrap(reps[0], reps[1], method=["cka", "rsa"], device="cpu")


@pytest.mark.parametrize("method,kw", [("cka-hsic_song", {}), ("cka-hsic_lange", {})])
def test_debiased_cka_bootstrap_excludes_pairs_of_copies(method, kw):
    """With the copies of a stimulus left out like the diagonal, the bootstrap distribution of
    the unbiased estimator is centred on the estimate (it sits well above it otherwise)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 10)) @ rng.standard_normal((10, 150)) + rng.standard_normal((120, 150))
    Y = X[:, :20] @ rng.standard_normal((20, 20)) + 3 * rng.standard_normal((120, 20))
    res = S.bootstrap(X, Y, method=method, n_resamples=60, random_state=0, device="cpu", **kw)
    assert abs(np.median(res.samples) - res.score) < 0.5 * res.se + 0.005
    # the feature-space formula equals the definition with the pairs of copies zeroed in both kernels
    from brainalign.similarity import _kernel
    from brainalign.similarity._prepare import as_reps

    rows = rng.integers(0, 120, 120)
    (a,), _, _ = as_reps(X[rows], name="X", device="cpu")
    (b,), _, _ = as_reps(Y[rows], name="Y", device="cpu")
    feat = _kernel.grid([a], [b], same=False, hsic="song", groups=rows)
    K, L = X[rows] @ X[rows].T, Y[rows] @ Y[rows].T
    H = np.eye(120) - 1 / 120
    K, L = H @ K @ H, H @ L @ H
    excl = rows[:, None] == rows[None, :]

    def song(K, L):
        K, L = np.where(excl, 0, K), np.where(excl, 0, L)
        n = 120
        return (np.sum(K * L) + K.sum() * L.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * K.sum(1) @ L.sum(1)) / (n * (n - 3))

    assert feat[0, 0] == pytest.approx(song(K, L) / np.sqrt(song(K, K) * song(L, L)), abs=1e-10)
