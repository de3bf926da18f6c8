"""Folds: every scikit-learn splitter and hand-made lists give scikit-learn's per-fold scores."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score as sk_r2
from sklearn.model_selection import (GroupKFold, KFold, LeaveOneGroupOut, PredefinedSplit, ShuffleSplit,
                                     TimeSeriesSplit)

from brainalign import BrainData
from brainalign.encoding import BandedRidgeCV, RidgeCV, check_cv, cross_validate_encoding, solve_ridge_cv
from brainalign.stats import r2_score

ALPHAS = np.logspace(-1, 4, 6)
N = 120
GROUPS = np.repeat(np.arange(4), N // 4)


def _data(seed=0, n=N, p=8, t=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 2
    # a drift over samples makes non-complement folds (TimeSeriesSplit) differ from complements
    Y = X @ rng.standard_normal((p, t)) + 3 * rng.standard_normal((n, t)) + np.linspace(0, 4, n)[:, None]
    return X, Y


def _splitters():
    test_fold = np.repeat([0, 1, -1, 2], N // 4)  # -1: always in training
    custom = [(np.arange(0, 60), np.arange(80, 120)), (np.arange(40, 120), np.arange(0, 30)),
              (np.r_[0:20, 50:90], np.r_[25:45])]
    return {
        "KFold": (KFold(4), None),
        "KFold-shuffled": (KFold(3, shuffle=True, random_state=0), None),
        "GroupKFold": (GroupKFold(2), GROUPS),
        "LeaveOneGroupOut": (LeaveOneGroupOut(), GROUPS),
        "TimeSeriesSplit": (TimeSeriesSplit(3), None),
        "PredefinedSplit": (PredefinedSplit(test_fold), None),
        "ShuffleSplit": (ShuffleSplit(3, test_size=0.25, train_size=0.5, random_state=0), None),
        "custom-list": (custom, None),
    }


def _sklearn_cv(X, Y, splits, alphas, penalty_scale=1.0):
    """Per-fold scikit-learn Ridge, R² per target averaged over folds: (n_alphas, n_targets)."""
    ref = np.zeros((len(alphas), Y.shape[1]))
    for tr, va in splits:
        for i, a in enumerate(alphas):
            pred = Ridge(alpha=a * penalty_scale).fit(X[tr], Y[tr]).predict(X[va])
            ref[i] += sk_r2(Y[va], pred, multioutput="raw_values") / len(splits)
    return ref


@pytest.mark.parametrize("name", list(_splitters()))
@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_solve_ridge_cv_every_splitter_equals_sklearn_per_fold(name, solver):
    X, Y = _data()
    cv, groups = _splitters()[name]
    splits = check_cv(cv, N, groups)
    out = solve_ridge_cv(X, Y, ALPHAS, splits=splits, solver=solver)
    np.testing.assert_allclose(out.cv_scores.numpy(), _sklearn_cv(X, Y, splits, ALPHAS), atol=1e-9)


def test_time_series_split_issue_case():
    """The issue's case: TimeSeriesSplit fold scores were computed as if training were the complement."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 10))
    Y = X @ rng.standard_normal((10, 1)) + 3 * rng.standard_normal((120, 1))
    splits = list(TimeSeriesSplit(3).split(X))
    per_fold = [solve_ridge_cv(X, Y, [10.0], splits=[s]).cv_scores.item() for s in splits]
    ref = [sk_r2(Y[va], Ridge(alpha=10.0).fit(X[tr], Y[tr]).predict(X[va])) for tr, va in splits]
    np.testing.assert_allclose(per_fold, ref, atol=1e-10)


@pytest.mark.parametrize("name", list(_splitters()))
def test_ridgecv_every_splitter_selects_sklearn_alpha_and_refits(name):
    X, Y = _data(1)
    cv, groups = _splitters()[name]
    model = RidgeCV(alphas=ALPHAS, cv=cv).fit(X, Y, groups=groups)
    ref = _sklearn_cv(X, Y, check_cv(cv, N, groups), ALPHAS)
    np.testing.assert_allclose(model.cv_scores_, ref, atol=1e-9)
    np.testing.assert_array_equal(model.best_alphas_, ALPHAS[ref.argmax(0)])
    np.testing.assert_allclose(model.best_score_, ref.max(0), atol=1e-9)
    for j, a in enumerate(model.best_alphas_):
        np.testing.assert_allclose(model.coef_[j], Ridge(alpha=a).fit(X, Y[:, j]).coef_, atol=1e-9)


@pytest.mark.parametrize("name", list(_splitters()))
def test_banded_every_splitter_equals_sklearn_with_scaled_penalty(name):
    """Equal band weights (0.5, 0.5) are ridge with alpha / 0.5 on every column."""
    X, Y = _data(2)
    cv, groups = _splitters()[name]
    model = BandedRidgeCV(bands={"a": slice(0, 4), "b": slice(4, 8)}, alphas=ALPHAS, n_iter=np.array([[0.5, 0.5]]),
                          cv=cv).fit(X, Y, groups=groups)
    ref = _sklearn_cv(X, Y, check_cv(cv, N, groups), ALPHAS, penalty_scale=2.0)
    np.testing.assert_allclose(model.cv_scores_, ref, atol=1e-9)
    np.testing.assert_allclose(model.best_alphas_, np.repeat(2 * ALPHAS[ref.argmax(0)][:, None], 2, 1))


@pytest.mark.filterwarnings("ignore:The groups parameter is ignored")
@pytest.mark.parametrize("inner", ["KFold", "TimeSeriesSplit", "GroupKFold", "LeaveOneGroupOut", "ShuffleSplit"])
def test_cross_validate_encoding_inner_cv_equals_sklearn_selection(inner):
    X, Y = _data(3, n=160)
    groups = np.repeat(np.arange(8), 20)
    inner_cv = {"KFold": KFold(3), "TimeSeriesSplit": TimeSeriesSplit(3), "GroupKFold": GroupKFold(3),
                "LeaveOneGroupOut": LeaveOneGroupOut(),
                "ShuffleSplit": ShuffleSplit(3, test_size=0.2, train_size=0.6, random_state=0)}[inner]
    res = cross_validate_encoding(X, Y, groups=groups, outer_cv=GroupKFold(2), inner_cv=inner_cv, alphas=ALPHAS,
                                  return_predictions=True)
    for k, (tr, te) in enumerate(res.splits):
        inner_splits = list(inner_cv.split(X[tr], Y[tr], groups=groups[tr]))
        ref = _sklearn_cv(X[tr], Y[tr], inner_splits, ALPHAS)
        np.testing.assert_array_equal(res.best_alphas[k], ALPHAS[ref.argmax(0)])
        for j, a in enumerate(res.best_alphas[k]):
            pred = Ridge(alpha=a).fit(X[tr], Y[tr, j]).predict(X[te])
            np.testing.assert_allclose(res.predictions[te, j], pred, atol=1e-9)


def test_outer_time_series_split_leaves_untested_samples_nan():
    X, Y = _data(4)
    res = cross_validate_encoding(X, Y, outer_cv=TimeSeriesSplit(3), inner_cv=3, alphas=ALPHAS,
                                  return_predictions=True)
    tested = np.unique(np.concatenate([te for _, te in res.splits]))
    assert np.isnan(res.predictions[: tested.min()]).all() and np.isfinite(res.predictions[tested]).all()
    np.testing.assert_allclose(res.r2, r2_score(Y[tested], res.predictions[tested]))


# ------------------------------------------------------------------------------- bad folds
def test_overlapping_and_out_of_range_folds_raise():
    X, Y = _data()
    overlap = [(np.arange(0, 80), np.arange(70, 120))]
    for call in (lambda cv: RidgeCV(alphas=ALPHAS, cv=cv).fit(X, Y),
                 lambda cv: solve_ridge_cv(X, Y, ALPHAS, splits=cv),
                 lambda cv: BandedRidgeCV(alphas=ALPHAS, n_iter=1, cv=cv).fit(X, Y)):
        with pytest.raises(ValueError, match=r"Fold 0: 10 samples are in both the training and the validation "
                                             r"set \(first: \[70, 71, 72, 73, 74\]\)"):
            call(overlap)
        with pytest.raises(ValueError, match=r"Fold 1: 10 validation indices are outside 0\.\.119 .*"
                                             r"\[120, 121, 122, 123, 124\]"):
            call([(np.arange(0, 60), np.arange(60, 120)), (np.arange(0, 60), np.arange(60, 130))])
    with pytest.raises(ValueError, match=r"3 training indices are outside 0\.\.119.*\[-3, -2, -1\].*negative"):
        check_cv([(np.arange(-3, 60), np.arange(60, 120))], N)
    with pytest.raises(ValueError, match="boolean mask.*np.flatnonzero"):
        check_cv([(np.arange(N) < 60, np.arange(N) >= 60)], N)
    with pytest.raises(ValueError, match="integer sample indices; got dtype float64"):
        check_cv([(np.arange(60.0), np.arange(60.0, 120.0))], N)
    with pytest.raises(ValueError, match="Fold 0 of cv is not a \\(train, validation\\) pair"):
        check_cv([np.arange(10)], N)
    with pytest.raises(ValueError, match="gave no folds"):
        check_cv([], N)


def test_fold_counts_advice_never_suggests_fewer_than_two_folds():
    X, Y = _data()
    for n in (1, 3):
        with pytest.raises(ValueError, match=f"{n} samples are too few to cross-validate: .*at least 4 samples") as e:
            RidgeCV(cv=2).fit(X[:n], Y[:n])
        assert "cv<=1" not in str(e.value) and "cv<=0" not in str(e.value)
    with pytest.raises(ValueError, match=r"5 samples are too few for cv=5 folds.*Use 2 <= cv <= 2"):
        check_cv(5, 5)
    with pytest.raises(ValueError, match="cv must be at least 2 folds"):
        check_cv(1, N)
    with pytest.raises(ValueError, match="The 'cv' parameter of RidgeCV must be"):
        RidgeCV(cv=1).fit(X, Y)
    with pytest.raises(ValueError, match="single distinct value"):
        check_cv(3, N, np.zeros(N))
    with pytest.raises(ValueError, match="Fewer groups than folds: 4 distinct groups.*cv=5.*cv<=4"):
        check_cv(5, N, GROUPS)


def test_cross_validate_encoding_refuses_overlapping_outer_test_sets():
    X, Y = _data()
    with pytest.raises(ValueError, match=r"test sets of outer_cv overlap: \d+ samples are tested more than once"):
        cross_validate_encoding(X, Y, outer_cv=ShuffleSplit(4, test_size=0.5, random_state=0), inner_cv=3)


# ------------------------------------------------------------------ cross_validate_encoding
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
    (tr, te) = res.splits[0]
    for j in (0, 4):
        sk = Ridge(alpha=res.best_alphas[0, j]).fit(X[tr], Y[tr, j])
        np.testing.assert_allclose(res.predictions[te, j], sk.predict(X[te]), atol=1e-9)


def test_cross_validate_encoding_float32_keeps_float32(rng):
    X = rng.standard_normal((80, 4)).astype(np.float32)
    Y = (X @ rng.standard_normal((4, 2)) + rng.standard_normal((80, 2))).astype(np.float32)
    res = cross_validate_encoding(X, Y, groups=np.repeat([0, 1, 2, 3], 20), inner_cv=3, return_predictions=True)
    assert res.predictions.dtype == np.float32


def test_cross_validate_encoding_errors(rng):
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    with pytest.raises(ValueError, match="needs run labels"):
        cross_validate_encoding(X, Y)
    with pytest.raises(ValueError, match="X has 40, Y has 39"):
        cross_validate_encoding(X, Y[:39], groups=np.repeat([0, 1], 20))
    Ybad = Y.copy()
    Ybad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"Y \(the brain data\) contains 1 NaN and 0 inf values \(first at index "
                                         r"\(3, 1\)"):
        cross_validate_encoding(X, Ybad, groups=np.repeat([0, 1], 20))
    with pytest.raises(ValueError, match="Fewer groups than folds"):
        cross_validate_encoding(X, Y, outer_cv=3, groups=np.repeat([0, 1], 20))
    with pytest.raises(ValueError, match="1 training and 39 validation samples"):
        cross_validate_encoding(X, Y, outer_cv="run", groups=np.r_[np.zeros(39), 1])


def test_cross_validate_encoding_with_two_runs_uses_blocks_within_the_training_run():
    import warnings as _w

    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 4))
    Y = X @ rng.standard_normal((4, 3)) + 0.5 * rng.standard_normal((120, 3))
    groups = np.repeat([0, 1], 60)
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        res = cross_validate_encoding(X, Y, groups=groups, outer_cv="run", inner_cv=5, verbose=False)
    assert sum("single run" in str(w.message) for w in caught) == 1
    assert res.r.shape == (3,) and (res.r > 0.8).all()
