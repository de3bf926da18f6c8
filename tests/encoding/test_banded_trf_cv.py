import numpy as np
import pytest
from sklearn.linear_model import Ridge

from brainalign import BrainData
from brainalign.encoding import TRF, BandedRidgeCV, cross_validate_encoding, simplex_grid
from brainalign.stats import r2_score


@pytest.mark.slow
def test_banded_selects_informative_band_and_split_sums(rng):
    n = 300
    X = rng.standard_normal((n, 10))
    W = np.zeros((10, 6))
    W[:5, :3] = rng.standard_normal((5, 3))  # targets 0-2 driven by band 0
    W[5:, 3:] = rng.standard_normal((5, 3))  # targets 3-5 by band 1
    Y = X @ W + 0.5 * rng.standard_normal((n, 6))
    m = BandedRidgeCV([slice(0, 5), slice(5, 10)], alphas=np.logspace(-1, 3, 5), verbose=False).fit(X, Y)
    assert m.best_alphas_.shape == (6, 2)
    assert (m.best_alphas_[:3, 0] <= m.best_alphas_[:3, 1]).all() and np.isinf(m.best_alphas_[:3, 1]).sum() >= 1
    assert (m.best_alphas_[3:, 1] <= m.best_alphas_[3:, 0]).all()
    Xte = rng.standard_normal((100, 10))
    Yte = Xte @ W + 0.5 * rng.standard_normal((100, 6))
    split = m.score_split(Xte, Yte)
    pred = m.predict_split(Xte).sum(0)
    pred = pred - pred.mean(0) + Yte.mean(0)
    np.testing.assert_allclose(split.sum(0), r2_score(Yte, pred), atol=1e-6)
    assert (split[0, :3] > split[1, :3]).all() and (split[1, 3:] > split[0, 3:]).all()
    np.testing.assert_allclose(m.split_r2_.shape, (2, 6))


def test_banded_equals_ridge_with_scaled_penalty(rng):
    X = rng.standard_normal((120, 6))
    Y = X @ rng.standard_normal((6, 2)) + rng.standard_normal((120, 2))
    m = BandedRidgeCV([slice(0, 3), slice(3, 6)], alphas=[1.0, 10.0], dtype="float64", verbose=False).fit(X, Y)
    for j in range(2):  # closed form with a diagonal penalty
        a = np.repeat(m.best_alphas_[j], 3)
        if np.isinf(a).any():
            continue
        Xc, yc = X - X.mean(0), Y[:, j] - Y[:, j].mean()
        w = np.linalg.solve(Xc.T @ Xc + np.diag(a), Xc.T @ yc)
        np.testing.assert_allclose(m.coef_[j], w, atol=1e-8)


def test_simplex_grid():
    g = simplex_grid(3, 4)
    assert g.shape == (15, 3)
    np.testing.assert_allclose(g.sum(1), 1)
    with pytest.raises(ValueError, match="n_bands >= 1"):
        simplex_grid(0, 4)


def test_banded_bad_bands(rng):
    X, Y = rng.standard_normal((40, 4)), rng.standard_normal((40, 2))
    with pytest.raises(ValueError, match="disjoint bands"):
        BandedRidgeCV([slice(0, 2), slice(1, 4)], verbose=False).fit(X, Y)


def test_trf_equals_mne_receptive_field(rng):
    mne_decoding = pytest.importorskip("mne.decoding")
    X = rng.standard_normal((500, 3)) + 1
    y = np.stack([np.convolve(X[:, 0], [0, 1, 0.5, 0.2], "same"), X[:, 1]], 1) + rng.standard_normal((500, 2))
    rf = mne_decoding.ReceptiveField(-0.02, 0.05, 100.0, estimator=10.0).fit(X, y)
    ours = TRF(tmin=-0.02, tmax=0.05, sfreq=100.0, alphas=10.0).fit(X, y)
    assert ours.coef_.shape == rf.coef_.shape == (2, 3, 8)
    np.testing.assert_allclose(ours.coef_, rf.coef_, atol=1e-10)
    np.testing.assert_allclose(ours.predict(X), rf.predict(X), atol=1e-10)
    np.testing.assert_allclose(ours.times_, rf.delays_ / 100.0)


def test_trf_recovers_kernel_and_picks_alpha_per_channel(rng):
    x = rng.standard_normal((2000, 1))
    kernel = np.array([0.0, 1.0, 0.6, 0.3, 0.1])
    y_clean = np.convolve(x[:, 0], kernel)[:2000]
    y = np.stack([y_clean + 0.1 * rng.standard_normal(2000), rng.standard_normal(2000)], 1)
    trf = TRF(tmin=0.0, tmax=0.04, sfreq=100.0, alphas=np.logspace(-2, 5, 8)).fit(x, y)
    np.testing.assert_allclose(trf.coef_[0, 0], kernel, atol=0.02)
    assert trf.best_alphas_[1] > trf.best_alphas_[0]  # noise channel: strong shrinkage


def test_trf_errors():
    with pytest.raises(ValueError, match="tmin .* must not be after tmax"):
        TRF(tmin=0.5, tmax=0.1, sfreq=100.0, alphas=1.0).fit(np.zeros((50, 1)), np.zeros(50))


def test_cross_validate_encoding_braindata_and_ground_truth(rng):
    n_runs, per_run = 4, 60
    X = rng.standard_normal((n_runs * per_run, 8))
    W = np.zeros((8, 6))
    W[:, :3] = rng.standard_normal((8, 3))  # voxels 0-2 driven, 3-5 pure noise
    Y = X @ W + rng.standard_normal((n_runs * per_run, 6))
    brain = BrainData(Y, samples={"run": np.repeat(np.arange(n_runs), per_run)})
    res = cross_validate_encoding(X, brain, alphas=np.logspace(-1, 4, 6), inner_cv=3, return_predictions=True)
    assert res.r.shape == (6,) and res.best_alphas.shape == (4, 6) and res.predictions.shape == Y.shape
    assert res.r[:3].min() > res.r[3:].max() + 0.3
    # equal to an explicit sklearn Ridge with the selected alpha of every outer fold
    (tr, te) = res.splits[0]
    for j in (0, 4):
        sk = Ridge(alpha=res.best_alphas[0, j]).fit(X[tr], Y[tr, j])
        np.testing.assert_allclose(res.predictions[te, j], sk.predict(X[te]), rtol=1e-3, atol=1e-3)


def test_cross_validate_encoding_errors(rng):
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    with pytest.raises(ValueError, match="needs run labels"):
        cross_validate_encoding(X, Y)
    with pytest.raises(ValueError, match="X has 40, Y has 39"):
        cross_validate_encoding(X, Y[:39], groups=np.repeat([0, 1], 20))
    Ybad = Y.copy()
    Ybad[0, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        cross_validate_encoding(X, Ybad, groups=np.repeat([0, 1], 20))
    with pytest.raises(ValueError, match="Fewer groups than folds"):
        cross_validate_encoding(X, Y, outer_cv=3, groups=np.repeat([0, 1], 20))
    with pytest.raises(ValueError, match="1 training and 39 validation samples"):
        cross_validate_encoding(X, Y, outer_cv="run", groups=np.r_[np.zeros(39), 1])


def test_cross_validate_encoding_with_two_runs_uses_blocks_within_the_training_run():
    import warnings as _w

    from brainalign.encoding import cross_validate_encoding

    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 4))
    Y = X @ rng.standard_normal((4, 3)) + 0.5 * rng.standard_normal((120, 3))
    groups = np.repeat([0, 1], 60)
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        res = cross_validate_encoding(X, Y, groups=groups, outer_cv="run", inner_cv=5, verbose=False)
    assert sum("single run" in str(w.message) for w in caught) == 1
    assert res.r.shape == (3,) and (res.r > 0.8).all()
