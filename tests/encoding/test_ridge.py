import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score as sk_r2
from sklearn.model_selection import GridSearchCV, KFold, TimeSeriesSplit

from brainalign.encoding import BandedRidgeCV, RidgeCV, solve_ridge, solve_ridge_cv

ALPHAS = np.logspace(-2, 4, 7)


def _data(rng, n=160, p=20, t=12, offset=5.0):
    X = rng.standard_normal((n, p)) + offset
    Y = X @ rng.standard_normal((p, t)) + 4 * rng.standard_normal((n, t)) + 10
    return X, Y


def _sk_cv_scores(X, Y, splits, alphas):
    ref = np.zeros((len(alphas), Y.shape[1]))
    for tr, va in splits:
        for i, a in enumerate(alphas):
            pred = Ridge(alpha=a).fit(X[tr], Y[tr]).predict(X[va])
            ref[i] += sk_r2(Y[va], pred, multioutput="raw_values") / len(splits)
    return ref


@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_cv_scores_alphas_and_refit_equal_sklearn_float64(rng, solver):
    X, Y = _data(rng)
    splits = list(KFold(4).split(X))
    out = solve_ridge_cv(X, Y, ALPHAS, splits=splits, dtype="float64", solver=solver)
    ref = _sk_cv_scores(X, Y, splits, ALPHAS)
    np.testing.assert_allclose(out.cv_scores.numpy(), ref, atol=1e-9)
    best = ALPHAS[ref.argmax(0)]
    np.testing.assert_array_equal(out.best_alphas.numpy(), best)
    for j, a in enumerate(best):
        sk = Ridge(alpha=a).fit(X, Y[:, j])
        np.testing.assert_allclose(out.coef[j].numpy(), sk.coef_, atol=1e-9)
        np.testing.assert_allclose(out.intercept[j].numpy(), sk.intercept_, atol=1e-8)


def test_float32_predictions_equal_sklearn_per_target(rng):
    X, Y = _data(rng, n=300, p=30, t=20)
    model = RidgeCV(alphas=ALPHAS, cv=5).fit(X.astype(np.float32), Y.astype(np.float32))
    assert model.coef_.shape == (20, 30) and model.coef_.dtype == np.float32
    Xte = rng.standard_normal((50, 30)).astype(np.float32) + 5
    pred = model.predict(Xte)
    for j, a in enumerate(model.best_alphas_):
        sk = Ridge(alpha=float(a)).fit(X, Y[:, j])
        np.testing.assert_allclose(pred[:, j], sk.predict(Xte), rtol=2e-4, atol=2e-3 * np.abs(Y[:, j]).std())


def test_single_alpha_equals_sklearn(rng):
    X, Y = _data(rng)
    model = RidgeCV(alphas=[3.0], dtype="float64").fit(X, Y)
    sk = Ridge(alpha=3.0).fit(X, Y)
    np.testing.assert_allclose(model.coef_, sk.coef_, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, sk.intercept_, atol=1e-8)
    fixed = solve_ridge(X, Y, 3.0, dtype="float64")
    np.testing.assert_allclose(fixed.coef.numpy(), sk.coef_, atol=1e-9)


def test_cv_scores_agree_with_himalaya_same_folds(rng):
    himalaya = pytest.importorskip("himalaya.ridge")
    X, Y = _data(rng, offset=0.0)
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    splits = list(KFold(4).split(X))
    ours = RidgeCV(alphas=ALPHAS, cv=splits, fit_intercept=False, dtype="float64").fit(X, Y)
    from himalaya.scoring import r2_score as h_r2

    theirs = himalaya.RidgeCV(alphas=ALPHAS, cv=KFold(4), fit_intercept=False,
                              solver_params=dict(score_func=h_r2)).fit(X, Y)
    # himalaya keeps the best mean score per target
    np.testing.assert_allclose(ours.cv_scores_.max(0), np.asarray(theirs.cv_scores_).ravel(), atol=1e-6)
    np.testing.assert_allclose(ours.best_alphas_, np.asarray(theirs.best_alphas_))


def test_pearson_scoring_matches_direct(rng):
    X, Y = _data(rng)
    splits = list(KFold(3).split(X))
    out = solve_ridge_cv(X, Y, ALPHAS, splits=splits, scoring="pearson_r", dtype="float64")
    ref = np.zeros_like(out.cv_scores.numpy())
    for tr, va in splits:
        for i, a in enumerate(ALPHAS):
            pred = Ridge(alpha=a).fit(X[tr], Y[tr]).predict(X[va])
            ref[i] += [np.corrcoef(pred[:, j], Y[va, j])[0, 1] / 3 for j in range(Y.shape[1])]
    np.testing.assert_allclose(out.cv_scores.numpy(), ref, atol=1e-9)


def test_ill_conditioned_float32_close_to_sklearn_float64(rng):
    n, p = 400, 40
    U, _ = np.linalg.qr(rng.standard_normal((n, p)))
    V, _ = np.linalg.qr(rng.standard_normal((p, p)))
    X = (U * np.logspace(0, -8, p)) @ V.T * 1e3  # condition number 1e8
    assert np.linalg.cond(X) > 1e7
    Y = X @ rng.standard_normal((p, 5)) + 0.01 * rng.standard_normal((n, 5))
    for alpha in (1e-2, 1.0):
        ours = solve_ridge(X.astype(np.float32), Y.astype(np.float32), alpha).coef.numpy()
        sk = Ridge(alpha=alpha).fit(X, Y)
        pred_ours = X @ ours.T.astype(np.float64)
        pred_sk = X @ sk.coef_.T
        rel = np.linalg.norm(pred_ours - pred_sk) / np.linalg.norm(pred_sk)
        sk32 = Ridge(alpha=alpha).fit(X.astype(np.float32), Y.astype(np.float32))
        rel_sk32 = np.linalg.norm(X @ sk32.coef_.T.astype(np.float64) - pred_sk) / np.linalg.norm(pred_sk)
        assert rel < 1e-3, rel
        assert rel < max(3 * rel_sk32, 1e-5), (rel, rel_sk32)  # no worse than sklearn in float32


def test_ill_conditioned_cv_scores_equal_sklearn(rng):
    """cond(X) = 1e6 with an offset: float64 CV scores exact, float32 close even at tiny alphas."""
    n, p = 400, 40
    U, _ = np.linalg.qr(rng.standard_normal((n, p)))
    V, _ = np.linalg.qr(rng.standard_normal((p, p)))
    X = (U * np.logspace(0, -6, p)) @ V.T * 1e3 + 5
    Y = X @ rng.standard_normal((p, 5)) + 0.01 * rng.standard_normal((n, 5))
    alphas = np.logspace(-6, 2, 9)
    splits = list(KFold(4).split(X))
    ref = _sk_cv_scores(X, Y, splits, alphas)
    out64 = solve_ridge_cv(X, Y, alphas, splits=splits)
    np.testing.assert_allclose(out64.cv_scores.numpy(), ref, atol=1e-8)
    out32 = solve_ridge_cv(X.astype(np.float32), Y.astype(np.float32), alphas, splits=splits)
    err = np.abs(out32.cv_scores.numpy() - ref).max(1)
    assert err[0] < 1e-2 and err[2:].max() < 1e-4, err


def test_float32_cv_scores_close_to_float64_with_a_decaying_spectrum(rng):
    n, p = 600, 128
    basis, _ = np.linalg.qr(rng.standard_normal((p, p)))
    X = (rng.standard_normal((n, p)) * np.arange(1, p + 1) ** -0.5) @ basis
    Y = X @ rng.standard_normal((p, 30)) * 0.1 + rng.standard_normal((n, 30))
    alphas = np.logspace(-2, 6, 20)
    splits = list(KFold(5).split(X))
    for scoring in ("r2", "pearson_r"):
        o64 = solve_ridge_cv(X, Y, alphas, splits=splits, scoring=scoring)
        o32 = solve_ridge_cv(X.astype(np.float32), Y.astype(np.float32), alphas, splits=splits, scoring=scoring)
        assert np.abs(o32.cv_scores.numpy() - o64.cv_scores.numpy()).max() < 2e-4


def test_small_memory_limit_gives_more_chunks_same_result(rng, monkeypatch):
    X, Y = _data(rng, t=40)
    splits = list(KFold(3).split(X))
    big = solve_ridge_cv(X, Y, ALPHAS, splits=splits)
    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "60K")
    small = solve_ridge_cv(X, Y, ALPHAS, splits=splits)
    assert big.n_batches == 1 and small.n_batches > 4
    np.testing.assert_allclose(small.cv_scores.numpy(), big.cv_scores.numpy(), atol=1e-6)
    np.testing.assert_allclose(small.coef.numpy(), big.coef.numpy(), atol=1e-5)
    fixed = solve_ridge_cv(X, Y, ALPHAS, splits=splits, n_targets_batch=7)
    assert fixed.n_batches == 6


def test_torch_input_stays_torch(rng):
    X, Y = _data(rng)
    Xt, Yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float32)
    model = RidgeCV(alphas=ALPHAS).fit(Xt, Yt)
    assert isinstance(model.coef_, torch.Tensor) and model.coef_.shape == (12, 20)
    pred = model.predict(Xt)
    assert isinstance(pred, torch.Tensor)
    ref = RidgeCV(alphas=ALPHAS).fit(X.astype(np.float32), Y.astype(np.float32))
    np.testing.assert_allclose(pred.numpy(), ref.predict(X.astype(np.float32)), rtol=1e-4, atol=1e-3)


def test_alpha_per_target_false_selects_one_alpha(rng):
    X, Y = _data(rng)
    model = RidgeCV(alphas=ALPHAS, alpha_per_target=False, dtype="float64").fit(X, Y)
    assert len(np.unique(model.best_alphas_)) == 1
    a = model.best_alphas_[0]
    assert a == ALPHAS[model.cv_scores_.mean(1).argmax()]
    np.testing.assert_allclose(model.coef_, Ridge(alpha=a).fit(X, Y).coef_, atol=1e-8)


def test_groups_leave_runs_out(rng):
    X, Y = _data(rng)
    groups = np.repeat(np.arange(4), 40)
    model = RidgeCV(alphas=ALPHAS, cv=4).fit(X, Y, groups=groups)
    assert model.cv_scores_.shape == (7, 12)


def test_score_is_r2_and_grid_search_uses_it(rng):
    X, Y = _data(rng)
    model = RidgeCV(alphas=ALPHAS).fit(X[:120], Y[:120])
    assert model.score(X[120:], Y[120:]) == pytest.approx(sk_r2(Y[120:], model.predict(X[120:])), rel=1e-12)
    w = rng.uniform(size=40)
    assert model.score(X[120:], Y[120:], sample_weight=w) == pytest.approx(
        sk_r2(Y[120:], model.predict(X[120:]), sample_weight=w), rel=1e-12)
    # GridSearchCV ranks candidates by score(): fitting without intercept on offset data is worse
    search = GridSearchCV(RidgeCV(alphas=ALPHAS), {"fit_intercept": [False, True]}, cv=3).fit(X, Y)
    assert search.best_params_ == {"fit_intercept": True}
    banded = BandedRidgeCV(alphas=ALPHAS, n_iter=1).fit(X[:120], Y[:120])
    assert banded.score(X[120:], Y[120:]) == pytest.approx(sk_r2(Y[120:], banded.predict(X[120:])), rel=1e-12)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("scoring", ["r2", "pearson_r"])
def test_non_complement_folds_all_options(rng, fit_intercept, scoring):
    X, Y = _data(rng, n=150, t=4)
    splits = list(TimeSeriesSplit(3).split(X))
    out = solve_ridge_cv(X, Y, ALPHAS, splits=splits, fit_intercept=fit_intercept, scoring=scoring)
    ref = np.zeros((len(ALPHAS), 4))
    for tr, va in splits:
        for i, a in enumerate(ALPHAS):
            pred = Ridge(alpha=a, fit_intercept=fit_intercept).fit(X[tr], Y[tr]).predict(X[va])
            if scoring == "r2":
                ref[i] += sk_r2(Y[va], pred, multioutput="raw_values") / 3
            else:
                ref[i] += [np.corrcoef(pred[:, j], Y[va, j])[0, 1] / 3 for j in range(4)]
    np.testing.assert_allclose(out.cv_scores.numpy(), ref, atol=1e-9)
    one = RidgeCV(alphas=ALPHAS, cv=TimeSeriesSplit(3), alpha_per_target=False, fit_intercept=fit_intercept,
                  scoring=scoring).fit(X, Y)
    a = ALPHAS[ref.mean(1).argmax()]
    np.testing.assert_array_equal(one.best_alphas_, np.full(4, a))
    np.testing.assert_allclose(one.coef_, Ridge(alpha=a, fit_intercept=fit_intercept).fit(X, Y).coef_, atol=1e-9)


# ----------------------------------------------------------------------- dtype and device
@pytest.mark.parametrize("n", [30, 200])
def test_one_dtype_policy_for_both_estimators(rng, n):
    X, Y = _data(rng, n=n, p=6, t=3)
    for est in (RidgeCV(alphas=ALPHAS, cv=3), BandedRidgeCV(bands={"a": slice(0, 3), "b": slice(3, 6)},
                                                            alphas=ALPHAS, n_iter=3, cv=3)):
        m64 = est.fit(X, Y)
        assert m64.coef_.dtype == m64.intercept_.dtype == m64.cv_scores_.dtype == np.float64
        assert m64.predict(X).dtype == np.float64
        m32 = est.fit(X.astype(np.float32), Y.astype(np.float32))
        assert m32.coef_.dtype == m32.intercept_.dtype == m32.cv_scores_.dtype == np.float32
        assert m32.best_alphas_.dtype == np.float64  # the values of alphas, exactly
        m_int = est.fit(np.round(X * 10).astype(np.int64), Y)
        assert m_int.coef_.dtype == np.float64
        forced = est.set_params(dtype="float32").fit(X, Y)
        assert forced.coef_.dtype == np.float32
        est.set_params(dtype=None)


def test_torch_in_torch_out_for_both_estimators(rng):
    X, Y = _data(rng, p=6)
    Xt, Yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float32)
    for est in (RidgeCV(alphas=ALPHAS), BandedRidgeCV(bands={"a": [0, 1, 2], "b": [3, 4, 5]}, alphas=ALPHAS,
                                                      n_iter=3)):
        model = est.fit(Xt, Yt)
        for name in ("coef_", "intercept_", "cv_scores_", "best_score_", "best_alphas_"):
            assert isinstance(getattr(model, name), torch.Tensor), name
        assert model.coef_.dtype == torch.float32
        pred = model.predict(Xt)
        assert isinstance(pred, torch.Tensor) and pred.dtype == torch.float32
        ref = est.fit(X.astype(np.float32), Y.astype(np.float32))
        np.testing.assert_allclose(pred.numpy(), ref.predict(X.astype(np.float32)), rtol=1e-5, atol=1e-4)
        bf16 = est.fit(Xt.to(torch.bfloat16), Yt.to(torch.bfloat16))  # half precision: computed in float32
        assert bf16.coef_.dtype == torch.float32


def test_half_precision_dtype_is_refused(rng):
    X, Y = _data(rng, n=40)
    with pytest.raises(ValueError, match="The 'dtype' parameter of solve_ridge_cv must be None, a str among"):
        solve_ridge_cv(X, Y, ALPHAS, splits=list(KFold(2).split(X)), dtype="bfloat16")
    with pytest.raises(ValueError, match="float32 or float64, got dtype=torch.bfloat16.*dtype='float32'"):
        RidgeCV(dtype=torch.bfloat16).fit(X, Y)


def test_auto_device_never_picks_a_device_without_float64(monkeypatch):
    from brainalign._backend import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"  # feature extraction may use it
    assert resolve_device("auto", need_float64=True).type == "cpu"
    with pytest.raises(ValueError, match="needs float64, which Apple's MPS devices do not support"):
        resolve_device("mps", need_float64=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu(rng):
    X, Y = _data(rng, n=300, p=30, t=50)
    for dtype in (np.float32, np.float64):
        cpu = RidgeCV(alphas=ALPHAS, device="cpu").fit(X.astype(dtype), Y.astype(dtype))
        gpu = RidgeCV(alphas=ALPHAS, device="cuda").fit(X.astype(dtype), Y.astype(dtype))
        assert isinstance(gpu.coef_, np.ndarray) and gpu.coef_.dtype == dtype
        tol = 1e-4 if dtype == np.float32 else 1e-9
        np.testing.assert_allclose(gpu.cv_scores_, cpu.cv_scores_, atol=tol)
        np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=tol, atol=tol * np.abs(Y).max())
    Xt = torch.as_tensor(X, dtype=torch.bfloat16, device="cuda")
    model = RidgeCV(alphas=ALPHAS).fit(Xt, torch.as_tensor(Y, device="cuda"))
    assert model.coef_.device.type == "cuda" and model.coef_.dtype == torch.float32


# ------------------------------------------------------------------------- extreme scale
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_features_give_sklearn_weights_and_a_warning(rng, dtype):
    """X * 1e20 with alpha=1: unregularized in effect (sklearn agrees); no longer all-zero weights."""
    X, Y = _data(rng, n=100, p=5, t=2)
    Xb = (X * 1e20).astype(dtype)
    with pytest.warns(UserWarning, match=r"alpha=1 is negligible.*mean eigenvalue of XᵀX is .*e\+4\d.*standardize X"):
        model = RidgeCV(alphas=[1.0]).fit(Xb, Y.astype(dtype))
    sk = Ridge(alpha=1.0).fit(X * 1e20, Y)
    assert np.abs(model.coef_).min() > 0
    np.testing.assert_allclose(model.coef_, sk.coef_, rtol=1e-3 if dtype == np.float32 else 1e-7)
    np.testing.assert_allclose(model.predict(Xb), sk.predict(X * 1e20), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_alphas_on_the_data_scale_give_the_unscaled_answer_silently(rng, scale, recwarn):
    X, Y = _data(rng, n=120, p=6, t=3)
    ref = RidgeCV(alphas=ALPHAS).fit(X, Y)
    for dtype in (np.float64, np.float32):
        y_scale = scale**0.75  # weights scale as y_scale / scale: within float32's range
        big = RidgeCV(alphas=ALPHAS * scale**2).fit((X * scale).astype(dtype), (Y * y_scale).astype(dtype))
        rtol = 1e-7 if dtype == np.float64 else 2e-3
        np.testing.assert_allclose(big.cv_scores_, ref.cv_scores_, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(big.coef_ * scale / y_scale, ref.coef_, rtol=rtol,
                                   atol=rtol * np.abs(ref.coef_).max())
        np.testing.assert_allclose(big.intercept_ / y_scale, ref.intercept_, rtol=rtol, atol=rtol)
    if scale < 1:  # weights of 1e40 do not fit in float32
        with pytest.raises(ValueError, match="weights exceed the range of float32.*dtype='float64'"):
            RidgeCV(alphas=ALPHAS * scale**2).fit((X * scale).astype(np.float32), (Y / scale).astype(np.float32))
    assert not [w for w in recwarn if "alpha" in str(w.message)]


def test_overwhelming_alphas_warn(rng):
    X, Y = _data(rng, n=60, p=4, t=2)
    with pytest.warns(UserWarning, match="overwhelming: the weights are shrunk to almost 0"):
        solve_ridge(X * 1e-8, Y, 1e3)


# ------------------------------------------------------------------------------- bad input
def test_errors(rng):
    X, Y = _data(rng, n=40)
    with pytest.raises(ValueError, match="inconsistent numbers of samples: \\[40, 39\\]"):
        RidgeCV().fit(X, Y[:39])
    Ynan = Y.copy()
    Ynan[3, 2] = np.nan
    Ynan[5, 1] = np.inf
    with pytest.raises(ValueError, match=r"Y contains 1 NaN and 1 inf values \(first at index \(3, 2\)"):
        solve_ridge_cv(X, Ynan, ALPHAS, splits=list(KFold(2).split(X)))
    Xnan = X.copy()
    Xnan[7, 0] = np.nan
    for call in (lambda: RidgeCV().fit(Xnan, Y), lambda: BandedRidgeCV(n_iter=1).fit(Xnan, Y),
                 lambda: solve_ridge(Xnan, Y), lambda: RidgeCV().fit(torch.as_tensor(Xnan), Y)):
        with pytest.raises(ValueError, match=r"X contains 1 NaN and 0 inf values \(first at index \(7, 0\)"):
            call()
    with pytest.raises(ValueError, match=r"y contains 1 NaN and 1 inf values \(first at index \(3, 2\)"):
        RidgeCV().fit(X, Ynan)
    with pytest.raises(ValueError, match="beyond the range of float32.*1e\\+300.*dtype='float64'"):
        solve_ridge(np.c_[X[:, :-1], np.full(40, 1e300)], Y, dtype="float32")
    with pytest.raises(ValueError, match="strictly positive.*-1.0"):
        RidgeCV(alphas=[1.0, -1.0]).fit(X, Y)
    with pytest.raises(ValueError, match="The 'alphas' parameter of RidgeCV must be"):
        RidgeCV(alphas=-1.0).fit(X, Y)
    with pytest.raises(ValueError, match="Fewer groups than folds: 2 distinct groups.*cv=5"):
        RidgeCV(cv=5).fit(X, Y, groups=np.repeat([0, 1], 20))
    with pytest.raises(ValueError, match="every fold needs at least 2"):
        RidgeCV(cv=[(np.arange(1, 40), np.array([0]))]).fit(X, Y)
    with pytest.raises(ValueError, match="8 samples are too few for cv=5.*Use 2 <= cv <= 4"):
        RidgeCV(cv=5).fit(X[:8], Y[:8])
    with pytest.raises(ValueError, match="The 'n_targets_batch' parameter of solve_ridge_cv must be"):
        solve_ridge_cv(X, Y, ALPHAS, splits=list(KFold(2).split(X)), n_targets_batch=0)
    with pytest.raises(ValueError, match="The 'scoring' parameter of solve_ridge_cv must be a str among"):
        solve_ridge_cv(X, Y, ALPHAS, splits=list(KFold(2).split(X)), scoring="mse")
    with pytest.raises(ValueError, match="The 'scoring' parameter of RidgeCV must be a str among"):
        RidgeCV(scoring="pearson").fit(X, Y)
    with pytest.raises(ValueError, match="alpha must be a scalar or have one value per target \\(12\\); got 2"):
        solve_ridge(X, Y, [1.0, 2.0])
    with pytest.raises(TypeError):
        RidgeCV([1.0, 10.0])  # keyword-only parameters
