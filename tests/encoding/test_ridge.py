import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score as sk_r2
from sklearn.model_selection import KFold

from brainalign.encoding import RidgeCV, solve_ridge, solve_ridge_cv

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
    model = RidgeCV(alphas=ALPHAS, cv=5, verbose=False).fit(X.astype(np.float32), Y.astype(np.float32))
    assert model.coef_.shape == (20, 30) and model.coef_.dtype == np.float32
    Xte = rng.standard_normal((50, 30)).astype(np.float32) + 5
    pred = model.predict(Xte)
    for j, a in enumerate(model.best_alphas_):
        sk = Ridge(alpha=float(a)).fit(X, Y[:, j])
        np.testing.assert_allclose(pred[:, j], sk.predict(Xte), rtol=2e-4, atol=2e-3 * np.abs(Y[:, j]).std())


def test_single_alpha_equals_sklearn(rng):
    X, Y = _data(rng)
    model = RidgeCV(alphas=[3.0], verbose=False, dtype="float64").fit(X, Y)
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
    ours = RidgeCV(alphas=ALPHAS, cv=splits, fit_intercept=False, verbose=False, dtype="float64").fit(X, Y)
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
    model = RidgeCV(alphas=ALPHAS, verbose=False).fit(Xt, Yt)
    assert isinstance(model.coef_, torch.Tensor) and model.coef_.shape == (12, 20)
    pred = model.predict(Xt)
    assert isinstance(pred, torch.Tensor)
    ref = RidgeCV(alphas=ALPHAS, verbose=False).fit(X.astype(np.float32), Y.astype(np.float32))
    np.testing.assert_allclose(pred.numpy(), ref.predict(X.astype(np.float32)), rtol=1e-4, atol=1e-3)


def test_alpha_per_target_false_selects_one_alpha(rng):
    X, Y = _data(rng)
    model = RidgeCV(alphas=ALPHAS, alpha_per_target=False, verbose=False, dtype="float64").fit(X, Y)
    assert len(np.unique(model.best_alphas_)) == 1
    a = model.best_alphas_[0]
    assert a == ALPHAS[model.cv_scores_.mean(1).argmax()]
    np.testing.assert_allclose(model.coef_, Ridge(alpha=a).fit(X, Y).coef_, atol=1e-8)


def test_groups_leave_runs_out(rng):
    X, Y = _data(rng)
    groups = np.repeat(np.arange(4), 40)
    model = RidgeCV(alphas=ALPHAS, cv=4, verbose=False).fit(X, Y, groups=groups)
    assert model.cv_scores_.shape == (7, 12)


def test_score_is_mean_pearson_r(rng):
    from brainalign.stats import pearson_r

    X, Y = _data(rng)
    model = RidgeCV(alphas=ALPHAS, verbose=False).fit(X, Y)
    assert model.score(X, Y) == pytest.approx(np.mean(pearson_r(Y, model.predict(X))), rel=1e-6)


# ------------------------------------------------------------------------------- bad input
def test_errors(rng):
    X, Y = _data(rng, n=40)
    with pytest.raises(ValueError, match="inconsistent numbers of samples: \\[40, 39\\]"):
        RidgeCV(verbose=False).fit(X, Y[:39])
    Ynan = Y.copy()
    Ynan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        solve_ridge_cv(X, Ynan, ALPHAS, splits=list(KFold(2).split(X)))
    with pytest.raises(ValueError, match="strictly positive.*-1.0"):
        RidgeCV(alphas=[1.0, -1.0], verbose=False).fit(X, Y)
    with pytest.raises(ValueError, match="Fewer groups than folds: 2 distinct groups.*cv=5"):
        RidgeCV(cv=5, verbose=False).fit(X, Y, groups=np.repeat([0, 1], 20))
    with pytest.raises(ValueError, match="every fold needs at least 2"):
        RidgeCV(cv=[(np.arange(1, 40), np.array([0]))], verbose=False).fit(X, Y)
    with pytest.raises(ValueError, match="too few for cv=5"):
        RidgeCV(cv=5, verbose=False).fit(X[:8], Y[:8])
    with pytest.raises(ValueError, match="n_targets_batch"):
        solve_ridge_cv(X, Y, ALPHAS, splits=list(KFold(2).split(X)), n_targets_batch=0)
    with pytest.raises(ValueError, match="'scoring'"):
        solve_ridge_cv(X, Y, ALPHAS, splits=list(KFold(2).split(X)), scoring="mse")
