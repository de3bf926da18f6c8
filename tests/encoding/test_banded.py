"""BandedRidgeCV: named bands, band-weight search, split scores; against closed forms and himalaya."""

import numpy as np
import pytest
from sklearn.model_selection import KFold

from brainalign.encoding import BandedRidgeCV, RidgeCV
from brainalign.encoding._banded import band_weight_candidates
from brainalign.stats import r2_score

ALPHAS = np.logspace(-1, 3, 5)


def _two_band_data(rng, n=300):
    X = rng.standard_normal((n, 10))
    W = np.zeros((10, 6))
    W[:5, :3] = rng.standard_normal((5, 3))  # targets 0-2 driven by band "a"
    W[5:, 3:] = rng.standard_normal((5, 3))  # targets 3-5 by band "b"
    return X, X @ W + 0.5 * rng.standard_normal((n, 6)), W


@pytest.mark.slow
def test_banded_selects_informative_band_and_split_sums(rng):
    X, Y, W = _two_band_data(rng)
    bands = {"a": slice(0, 5), "b": slice(5, 10)}
    m = BandedRidgeCV(bands=bands, alphas=ALPHAS, n_iter=5).fit(X, Y)  # the former 4-step grid
    np.testing.assert_allclose(m.candidate_weights_[:, 0], [0, 0.25, 0.5, 0.75, 1])
    assert m.best_alphas_.shape == (6, 2) and list(m.bands_) == ["a", "b"]
    assert (m.best_alphas_[:3, 0] <= m.best_alphas_[:3, 1]).all() and np.isinf(m.best_alphas_[:3, 1]).sum() >= 1
    assert (m.best_alphas_[3:, 1] <= m.best_alphas_[3:, 0]).all()
    Xte = rng.standard_normal((100, 10))
    Yte = Xte @ W + 0.5 * rng.standard_normal((100, 6))
    split = m.score_split(Xte, Yte)
    assert list(split) == ["a", "b"] and split["a"].shape == (6,)
    pred = sum(m.predict_split(Xte).values())
    np.testing.assert_allclose(pred + m.intercept_, m.predict(Xte), atol=1e-12)
    pred = pred - pred.mean(0) + Yte.mean(0)
    np.testing.assert_allclose(split["a"] + split["b"], r2_score(Yte, pred), atol=1e-6)
    assert (split["a"][:3] > split["b"][:3]).all() and (split["b"][3:] > split["a"][3:]).all()


def test_banded_equals_ridge_with_scaled_penalty(rng):
    X = rng.standard_normal((120, 6))
    Y = X @ rng.standard_normal((6, 2)) + rng.standard_normal((120, 2))
    m = BandedRidgeCV(bands={"a": slice(0, 3), "b": [3, 4, 5]}, alphas=[1.0, 10.0], n_iter=5).fit(X, Y)
    for j in range(2):  # closed form with a diagonal penalty
        a = np.repeat(m.best_alphas_[j], 3)
        if np.isinf(a).any():
            continue
        Xc, yc = X - X.mean(0), Y[:, j] - Y[:, j].mean()
        w = np.linalg.solve(Xc.T @ Xc + np.diag(a), Xc.T @ yc)
        np.testing.assert_allclose(m.coef_[j], w, atol=1e-8)


def test_one_band_is_ridgecv(rng):
    X = rng.standard_normal((100, 5))
    Y = X @ rng.standard_normal((5, 3)) + rng.standard_normal((100, 3))
    banded = BandedRidgeCV(alphas=ALPHAS).fit(X, Y)
    ridge = RidgeCV(alphas=ALPHAS).fit(X, Y)
    assert list(banded.bands_) == ["all"]
    assert banded.cv_scores_.shape == ridge.cv_scores_.shape == (5, 3)
    np.testing.assert_allclose(banded.cv_scores_, ridge.cv_scores_, atol=1e-12)
    np.testing.assert_allclose(banded.best_score_, ridge.best_score_, atol=1e-12)
    np.testing.assert_allclose(banded.best_alphas_[:, 0], ridge.best_alphas_)
    np.testing.assert_allclose(banded.coef_, ridge.coef_, atol=1e-10)
    y1 = BandedRidgeCV(alphas=ALPHAS).fit(X, Y[:, 0])
    assert y1.coef_.shape == (5,) and y1.cv_scores_.shape == (5,) and np.ndim(y1.intercept_) == 0
    assert isinstance(y1.score_split(X, Y[:, 0])["all"], float)


def test_band_weight_candidates():
    np.testing.assert_allclose(band_weight_candidates(2, 3), [[0, 1], [0.5, 0.5], [1, 0]])
    c = band_weight_candidates(4, 12, random_state=0)
    assert c.shape == (12, 4)
    np.testing.assert_allclose(c.sum(1), 1)
    np.testing.assert_allclose(c[0], 0.25)
    np.testing.assert_allclose(c[1:5], np.eye(4))
    np.testing.assert_array_equal(c, band_weight_candidates(4, 12, random_state=0))
    assert not np.allclose(c, band_weight_candidates(4, 12, random_state=1))
    assert band_weight_candidates(4, 3, random_state=0).shape == (3, 4)  # fewer than the corners: draws
    np.testing.assert_allclose(band_weight_candidates(2, np.array([[1.0, 3.0]])), [[0.25, 0.75]])
    with pytest.raises(ValueError, match="shape \\(n_candidates, n_bands=3\\); got \\(1, 2\\)"):
        band_weight_candidates(3, np.array([[1.0, 3.0]]))
    with pytest.raises(ValueError, match="non-negative.*\\[\\[-1.0, 2.0\\]\\]"):
        band_weight_candidates(2, np.array([[-1.0, 2.0]]))


def test_random_search_three_bands_finds_the_driving_band(rng):
    n = 240
    X = rng.standard_normal((n, 9))
    W = np.zeros((9, 3))
    for b in range(3):
        W[3 * b:3 * b + 3, b] = rng.standard_normal(3)  # target b driven by band b alone
    Y = X @ W + 0.3 * rng.standard_normal((n, 3))
    bands = {"audio": slice(0, 3), "gpt2_l6": slice(3, 6), "motion": slice(6, 9)}
    m = BandedRidgeCV(bands=bands, alphas=ALPHAS, n_iter=12, random_state=0).fit(X, Y)
    assert m.candidate_weights_.shape == (12, 3) and m.candidate_scores_.shape == (12, 3)
    np.testing.assert_array_equal(m.best_weights_.argmax(1), [0, 1, 2])
    np.testing.assert_allclose(m.best_score_, m.candidate_scores_.max(0))
    again = BandedRidgeCV(bands=bands, alphas=ALPHAS, n_iter=12, random_state=0).fit(X, Y)
    np.testing.assert_array_equal(again.coef_, m.coef_)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_equals_himalaya_banded_ridge_same_candidates(rng, fit_intercept):
    himalaya_ridge = pytest.importorskip("himalaya.ridge")
    from himalaya.backend import set_backend
    from himalaya.scoring import r2_score as h_r2

    set_backend("numpy")
    n = 200
    X = rng.standard_normal((n, 9)) + (3.0 if fit_intercept else 0.0)
    Y = X[:, :4] @ rng.standard_normal((4, 5)) + X[:, 6:] @ rng.standard_normal((3, 5)) + rng.standard_normal((n, 5))
    if not fit_intercept:
        X, Y = X - X.mean(0), Y - Y.mean(0)
    weights = np.random.default_rng(1).dirichlet(np.ones(3), 10)  # himalaya cannot take a weight of 0
    bands = {"a": slice(0, 3), "b": slice(3, 6), "c": slice(6, 9)}
    ours = BandedRidgeCV(bands=bands, alphas=ALPHAS, n_iter=weights, cv=KFold(4),
                         fit_intercept=fit_intercept).fit(X, Y)
    theirs = himalaya_ridge.GroupRidgeCV(
        groups=np.repeat([0, 1, 2], 3), fit_intercept=fit_intercept, cv=KFold(4),
        solver_params=dict(n_iter=weights, alphas=ALPHAS, score_func=h_r2, progress_bar=False)).fit(X, Y)
    np.testing.assert_allclose(ours.candidate_scores_, np.asarray(theirs.cv_scores_), atol=1e-8)
    # himalaya's deltas are log(weight / alpha) = -log(per-band alpha)
    np.testing.assert_allclose(-np.log(ours.best_alphas_), np.asarray(theirs.deltas_).T, atol=1e-8)
    np.testing.assert_allclose(ours.coef_, np.asarray(theirs.coef_).T, atol=1e-8)
    np.testing.assert_allclose(ours.predict(X), np.asarray(theirs.predict(X)), atol=1e-8)


def test_bad_bands(rng):
    X, Y = rng.standard_normal((40, 4)), rng.standard_normal((40, 2))
    cases = [
        ({"a": slice(0, 2), "b": slice(1, 4)}, r"disjoint bands covering all of them; 0 columns are in no band "
                                                r"\(first: \[\]\) and 1 in several \(first: \[1\]\)"),
        ({"a": slice(0, 3)}, r"1 columns are in no band \(first: \[3\]\)"),
        ({"a": [0, 1], "b": [2, 7]}, r"Band 'b' is empty or has columns outside 0\.\.3"),
        ({"a": np.array([True, True, False, False]), "b": [2, 3]}, "Band 'a' must be a slice or a 1-D array of int"),
        ({0: slice(0, 2), "b": slice(2, 4)}, "Band names must be strings; got 0"),
        ({}, "bands is empty"),
    ]
    for bands, msg in cases:
        with pytest.raises(ValueError, match=msg):
            BandedRidgeCV(bands=bands, n_iter=2).fit(X, Y)
    with pytest.raises(ValueError, match="The 'bands' parameter of BandedRidgeCV must be an instance of 'dict'"):
        BandedRidgeCV(bands=[slice(0, 2), slice(2, 4)]).fit(X, Y)
    with pytest.raises(ValueError, match="The 'n_iter' parameter of BandedRidgeCV must be"):
        BandedRidgeCV(n_iter=0).fit(X, Y)
    with pytest.raises(ValueError, match="The 'random_state' parameter of BandedRidgeCV must be"):
        BandedRidgeCV(random_state=-1).fit(X, Y)
