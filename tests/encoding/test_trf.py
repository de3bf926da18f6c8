"""TRF: equal to MNE's ReceptiveField, to scikit-learn's Ridge per fold, and to the delayed design."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, KFold, TimeSeriesSplit

from brainalign.encoding import TRF, check_cv
from brainalign.encoding._trf_gram import LaggedSeries
from brainalign.features.timing import make_delays

mne_decoding = pytest.importorskip("mne.decoding")


def _data(rng, n=600, p=3, c=4):
    X = rng.standard_normal((n, p)) + 1.0
    Y = np.stack([np.convolve(X[:, j % p], [0, 1, 0.5, 0.2], "same") for j in range(c)], 1)
    return X, Y + rng.standard_normal((n, c)) + 3.0


def _design(X, tmin, tmax, sfreq, groups=None):
    d = np.arange(int(round(tmin * sfreq)), int(round(tmax * sfreq)) + 1)
    return make_delays(X - X.mean(0), d, groups=groups), d


# --------------------------------------------------------------------------- MNE
@pytest.mark.parametrize("tmin,tmax", [(-0.02, 0.05), (0.0, 0.05), (0.03, 0.07), (-0.06, -0.02), (0.0, 0.0)])
def test_trf_equals_mne_receptive_field(rng, tmin, tmax):
    X, Y = _data(rng)
    rf = mne_decoding.ReceptiveField(tmin, tmax, 100.0, estimator=10.0).fit(X, Y)
    ours = TRF(tmin=tmin, tmax=tmax, sfreq=100.0, alphas=10.0).fit(X, Y)
    assert ours.solver_ == "lagged-gram" and ours.coef_.shape == rf.coef_.shape
    np.testing.assert_allclose(ours.coef_, rf.coef_, rtol=1e-8, atol=1e-10 * np.abs(rf.coef_).max())
    np.testing.assert_allclose(ours.intercept_, rf.estimator_.intercept_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict(X), rf.predict(X), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours.times_, rf.delays_ / 100.0)
    np.testing.assert_array_equal(ours.delays_, rf.delays_)


def test_trf_epochs_and_runs_equal_mne(rng):
    """3-D epochs (BrainData layout) and runs as groups give MNE's epoched fit (lags stay in each epoch)."""
    Xe = rng.standard_normal((5, 2, 90))
    Ye = rng.standard_normal((5, 3, 90)) + np.roll(Xe[:, :1], 2, axis=2)
    rf = mne_decoding.ReceptiveField(-0.02, 0.04, 100.0, estimator=3.0).fit(Xe.transpose(2, 0, 1),
                                                                           Ye.transpose(2, 0, 1))
    ours = TRF(tmin=-0.02, tmax=0.04, sfreq=100.0, alphas=3.0).fit(Xe, Ye)
    np.testing.assert_allclose(ours.coef_, rf.coef_, rtol=1e-8, atol=1e-12)
    pred = ours.predict(Xe)
    assert pred.shape == Ye.shape
    np.testing.assert_allclose(pred, rf.predict(Xe.transpose(2, 0, 1)).transpose(1, 2, 0), atol=1e-9)
    # the same epochs as runs of a continuous recording, interleaved sample by sample
    X2 = Xe.transpose(0, 2, 1).reshape(-1, 2)
    Y2 = Ye.transpose(0, 2, 1).reshape(-1, 3)
    runs = np.repeat(np.arange(5), 90)
    order = (np.arange(5)[None, :] * 90 + np.arange(90)[:, None]).ravel()  # t0 of every run, then t1...
    by_runs = TRF(tmin=-0.02, tmax=0.04, sfreq=100.0, alphas=3.0).fit(X2[order], Y2[order], groups=runs[order])
    np.testing.assert_allclose(by_runs.coef_, rf.coef_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(by_runs.predict(X2[order], groups=runs[order]),
                               pred.transpose(0, 2, 1).reshape(-1, 3)[order], atol=1e-9)
    # one output, 2-D y per epoch
    single = TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=1.0).fit(Xe, Ye[:, 0])
    assert single.coef_.shape == (2, 3) and single.predict(Xe).shape == (5, 90)


def test_trf_patterns(rng):
    X, Y = _data(rng, n=400, c=3)
    ours = TRF(tmin=-0.01, tmax=0.02, sfreq=100.0, alphas=2.0, patterns=True).fit(X, Y)
    D, d = _design(X, -0.01, 0.02, 100.0)
    W = ours.coef_.transpose(0, 2, 1).reshape(3, -1).T  # design-column weights (delay-major)
    P = (D.T @ D / (len(X) - 1)) @ W @ np.linalg.pinv(np.cov(Y.T))  # the design from centred X, as MNE
    np.testing.assert_allclose(ours.patterns_, P.reshape(len(d), 3, 3).transpose(2, 1, 0), rtol=1e-8)
    # one output: MNE scales by 1 / (n - 1) where Haufe's formula has 1 / var(y)
    rf = mne_decoding.ReceptiveField(-0.01, 0.02, 100.0, estimator=2.0, patterns=True).fit(X, Y[:, 0])
    one = TRF(tmin=-0.01, tmax=0.02, sfreq=100.0, alphas=2.0, patterns=True).fit(X, Y[:, 0])
    np.testing.assert_allclose(one.patterns_ * np.var(Y[:, 0], ddof=1), rf.patterns_ * (len(X) - 1), rtol=1e-8)


# --------------------------------------------------------------------------- CV and alphas
def _sklearn_fold_scores(D, Yc, splits, alphas, scoring):
    scores = np.zeros((len(alphas), Yc.shape[1]))
    for tr, va in splits:
        for i, a in enumerate(alphas):
            pred = Ridge(alpha=a, fit_intercept=False).fit(D[tr], Yc[tr]).predict(D[va])
            if scoring == "r2":
                scores[i] += r2_score(Yc[va], pred, multioutput="raw_values")
            else:
                scores[i] += [np.corrcoef(Yc[va, j], pred[:, j])[0, 1] for j in range(Yc.shape[1])]
    return scores / len(splits)


@pytest.mark.parametrize("cv", ["kfold", "shuffled", "timeseries", "runs"])
@pytest.mark.parametrize("scoring", ["r2", "pearson_r"])
def test_trf_cv_scores_equal_sklearn_ridge_per_fold(rng, cv, scoring):
    X, Y = _data(rng, n=300, p=2, c=3)
    alphas = np.logspace(-1, 4, 6)
    runs = np.repeat(np.arange(4), 75) if cv == "runs" else None
    splitter = {"kfold": 4, "shuffled": KFold(4, shuffle=True, random_state=0), "timeseries": TimeSeriesSplit(3),
                "runs": GroupKFold(4)}[cv]
    trf = TRF(tmin=-0.01, tmax=0.03, sfreq=100.0, alphas=alphas, cv=splitter, scoring=scoring).fit(X, Y, groups=runs)
    D, _ = _design(X, -0.01, 0.03, 100.0, groups=runs)
    Yc = Y - Y.mean(0)
    splits = check_cv(splitter, len(X), runs)
    ref = _sklearn_fold_scores(D, Yc, splits, alphas, scoring)
    np.testing.assert_allclose(trf.cv_scores_, ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(trf.best_alphas_, alphas[ref.argmax(0)])
    for j in range(3):  # the refit uses each channel's own alpha
        w = Ridge(alpha=trf.best_alphas_[j], fit_intercept=False).fit(D, Yc[:, j]).coef_
        np.testing.assert_allclose(trf.coef_[j].T.ravel(), w, rtol=1e-7, atol=1e-10)


def test_trf_recovers_kernel_and_picks_alpha_per_channel(rng):
    x = rng.standard_normal((2000, 1))
    kernel = np.array([0.0, 1.0, 0.6, 0.3, 0.1])
    y_clean = np.convolve(x[:, 0], kernel)[:2000]
    y = np.stack([y_clean + 0.1 * rng.standard_normal(2000), rng.standard_normal(2000)], 1)
    trf = TRF(tmin=0.0, tmax=0.04, sfreq=100.0, alphas=np.logspace(-2, 5, 8)).fit(x, y)
    np.testing.assert_allclose(trf.coef_[0, 0], kernel, atol=0.02)
    assert trf.best_alphas_[1] > trf.best_alphas_[0]  # noise channel: strong shrinkage
    assert trf.cv_scores_.shape == (8, 2)
    held = np.convolve(x[:, 0], kernel)[:2000]
    assert trf.score(x, np.stack([held, held], 1)) < trf.score(x, np.stack([held, np.zeros(2000)], 1)) + 1


def test_trf_design_solver_when_lags_outnumber_samples(rng):
    """More lagged columns than training samples: the design is built and solved in kernel form."""
    X, Y = _data(rng, n=60, p=3, c=2)
    trf = TRF(tmin=0.0, tmax=0.24, sfreq=100.0, alphas=5.0, dtype="float64").fit(X, Y)
    assert trf.solver_ == "design"
    D, _ = _design(X, 0.0, 0.24, 100.0)
    assert D.shape[1] > len(X)
    w = Ridge(alpha=5.0, fit_intercept=False).fit(D, Y - Y.mean(0)).coef_
    np.testing.assert_allclose(trf.coef_.transpose(0, 2, 1).reshape(2, -1), w, rtol=1e-6, atol=1e-9)
    cv = TRF(tmin=0.0, tmax=0.24, sfreq=100.0, alphas=[1.0, 100.0], cv=3, dtype="float64").fit(X, Y)
    assert cv.solver_ == "design" and cv.cv_scores_.shape == (2, 2)


def test_trf_float32_is_close_to_float64(rng):
    X, Y = _data(rng, n=500)
    a = TRF(tmin=0.0, tmax=0.05, sfreq=100.0, alphas=[1.0, 100.0]).fit(X, Y)
    b = TRF(tmin=0.0, tmax=0.05, sfreq=100.0, alphas=[1.0, 100.0]).fit(X.astype(np.float32), Y.astype(np.float32))
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-3, atol=1e-4)


def test_trf_score_is_r2(rng):
    X, Y = _data(rng)
    trf = TRF(tmin=0.0, tmax=0.03, sfreq=100.0, alphas=1.0).fit(X[:400], Y[:400])
    assert trf.score(X[400:], Y[400:]) == pytest.approx(r2_score(Y[400:], trf.predict(X[400:])))
    Xe, Ye = rng.standard_normal((4, 2, 50)), rng.standard_normal((4, 3, 50))
    ep = TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=1.0).fit(Xe, Ye)
    pooled = r2_score(Ye.transpose(0, 2, 1).reshape(-1, 3), ep.predict(Xe).transpose(0, 2, 1).reshape(-1, 3))
    assert ep.score(Xe, Ye) == pytest.approx(pooled)


# --------------------------------------------------------------------------- the lagged Gram matrix
@pytest.mark.parametrize("steps", [np.arange(0, 5), np.arange(-3, 2), np.arange(-6, -2), np.arange(2, 9), np.r_[0]])
def test_lagged_statistics_equal_the_delayed_design(rng, steps):
    X, Y = rng.standard_normal((200, 3)), rng.standard_normal((200, 4))
    bounds = np.array([0, 50, 53, 120, 200])
    runs = np.repeat(np.arange(4), np.diff(bounds))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        D = make_delays(X, steps, groups=runs)
    lagged = LaggedSeries(X, bounds, steps)
    for idx in (np.arange(200), np.arange(10, 90), np.sort(rng.choice(200, 60, replace=False)),
                np.r_[0:5, 52:60, 119:121, 150:200]):
        st = lagged.stats(idx, Y, Y.mean(0))
        Ds, Yc = D[idx], Y[idx] - Y.mean(0)
        np.testing.assert_allclose(lagged.rows(idx), Ds)
        np.testing.assert_allclose(st.G, Ds.T @ Ds, atol=1e-10)
        np.testing.assert_allclose(st.Z, Ds.T @ Yc, atol=1e-10)
        np.testing.assert_allclose(st.colsum, Ds.sum(0), atol=1e-10)
        np.testing.assert_allclose(st.yy, (Yc**2).sum(0))


# --------------------------------------------------------------------------- bad input
def test_trf_errors(rng):
    X, Y = _data(rng, n=100, c=2)
    assert all(p.kind == p.KEYWORD_ONLY for p in inspect.signature(TRF).parameters.values())
    with pytest.raises(TypeError):
        TRF(0.0, 0.1, 100.0)
    with pytest.raises(ValueError, match=r"tmin \(0.5 s\) must not be after tmax \(0.1 s\)"):
        TRF(tmin=0.5, tmax=0.1, sfreq=100.0, alphas=1.0).fit(X, Y)
    with pytest.raises(ValueError, match=r"reach \[10, 11, 12\] samples, at least as long as every run "
                                         r"\(lengths \[10, 10"):
        TRF(tmin=0.0, tmax=0.12, sfreq=100.0, alphas=1.0).fit(X, Y, groups=np.repeat(np.arange(10), 10))
    with pytest.raises(ValueError, match="groups has shape \\(3,\\) but X has 100 samples"):
        TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=1.0).fit(X, Y, groups=[0, 1, 2])
    overlapping = [(np.arange(0, 60), np.arange(50, 100)), (np.arange(50, 100), np.arange(0, 50))]
    with pytest.raises(ValueError, match=r"Fold 0: 10 samples are in both the training and the validation set"):
        TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=[1.0, 2.0], cv=overlapping).fit(X, Y)
    with pytest.raises(ValueError, match=r"Fold 0: \d+ validation indices are outside 0..99"):
        TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=[1.0, 2.0], cv=[(np.arange(50), np.arange(50, 120))]).fit(X, Y)
    with pytest.raises(ValueError, match=r"Fold 0 repeats 1 training samples"):
        TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=[1.0, 2.0], cv=[(np.r_[0:50, 3], np.arange(50, 100))]).fit(X, Y)
    with pytest.raises(ValueError, match=r"y must be \(n_epochs, n_outputs, n_times\)"):
        TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=1.0).fit(rng.standard_normal((3, 2, 40)), np.zeros((3, 2, 39)))
    with pytest.raises(ValueError, match="Invalid value for the 'scoring' parameter"):
        TRF(scoring="corr", alphas=1.0).fit(X, Y)
    with pytest.raises(ValueError, match="alphas must be strictly positive"):
        TRF(tmin=0.0, tmax=0.02, alphas=[1.0, -1.0]).fit(X, Y)
    fitted = TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=1.0).fit(X, Y)
    with pytest.raises(ValueError, match="3 features"):
        fitted.predict(X[:, :2])
