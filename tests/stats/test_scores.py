import numpy as np
import pytest

from brainalign.stats import cross_validated_r, pearson_r, r2_score, r2_score_split


def test_scores_equal_references(rng):
    from scipy.stats import pearsonr
    from sklearn.metrics import r2_score as sk_r2

    y, p = rng.standard_normal((50, 4)), rng.standard_normal((50, 4))
    np.testing.assert_allclose(pearson_r(y, p), [pearsonr(y[:, j], p[:, j])[0] for j in range(4)], atol=1e-12)
    np.testing.assert_allclose(r2_score(y, p), sk_r2(y, p, multioutput="raw_values"), atol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        pearson_r(y, p[:, :3])


def test_nan_and_inf_raise_naming_the_array_and_column():
    """13.2: pearson_r([1, nan, 3], ...) returned 0.0 and r2_score with inf returned 0.0."""
    with pytest.raises(ValueError, match=r"y_true holds 1 NaN and 0 inf values in 1 column\(s\) \(first: column 0, "
                                         r"sample 1"):
        pearson_r([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"y_pred holds 0 NaN and 1 inf values .*first: column 1, sample 2"):
        r2_score(np.ones((4, 2)) + np.eye(4, 2), np.array([[0, 0], [0, 0], [0, np.inf], [0, 0]], float))
    with pytest.raises(ValueError, match="y_pred_split holds 1 NaN"):
        r2_score_split(np.arange(4.0), np.array([[0, 1, np.nan, 3.0]]))


def test_constant_column_gives_nan_and_one_warning(rng):
    """One rule for an undefined score: NaN and a RuntimeWarning that counts the columns (as scipy's pearsonr)."""
    from scipy.stats import pearsonr

    y = rng.standard_normal((30, 3))
    y[:, 1] = 2.5
    p = y + rng.standard_normal((30, 3))
    with pytest.warns(RuntimeWarning, match=r"constant in 1 column\(s\) \(first: column 1\)"):
        r = pearson_r(y, p)
    assert np.isnan(r[1]) and np.isfinite(r[[0, 2]]).all()
    with pytest.warns(Warning):
        assert np.isnan(pearsonr(y[:, 1], p[:, 1])[0])  # the reference agrees: undefined
    with pytest.warns(RuntimeWarning, match="where R² is"):
        r2 = r2_score(y, p)
    assert np.isnan(r2[1]) and np.isfinite(r2[[0, 2]]).all()
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(r2_score_split(y, p[None])[:, 1]).all()
    # a constant prediction makes r undefined but R² well defined
    with pytest.warns(RuntimeWarning, match="y_true or y_pred"):
        assert np.isnan(pearson_r(y[:, 0], np.zeros(30))[0])
    assert np.isfinite(r2_score(y[:, 0], np.zeros(30))[0])


def test_r2_split_sums_to_r2_of_centred_prediction(rng):
    y = rng.standard_normal((40, 3))
    parts = rng.standard_normal((2, 40, 3))
    pred = parts.sum(0)
    np.testing.assert_allclose(r2_score_split(y, parts).sum(0), r2_score(y, pred - pred.mean(0) + y.mean(0)),
                               atol=1e-10)


def test_cross_validated_r_matches_definitions(rng):
    from sklearn.model_selection import KFold

    y, pred = rng.standard_normal((60, 2)), rng.standard_normal((60, 2))
    labels = np.repeat(np.arange(4), 15)
    per_fold = np.mean([pearson_r(y[labels == k], pred[labels == k]) for k in range(4)], axis=0)
    np.testing.assert_allclose(cross_validated_r(y, pred, labels), per_fold, atol=1e-12)
    np.testing.assert_allclose(cross_validated_r(y, pred, labels, average="concatenated"), pearson_r(y, pred))
    splits = list(KFold(4).split(y))  # (train, test) pairs: the same folds
    np.testing.assert_allclose(cross_validated_r(y, pred, splits), per_fold, atol=1e-12)
    np.testing.assert_allclose(cross_validated_r(y, pred, [te for _, te in splits]), per_fold, atol=1e-12)
    with pytest.raises(ValueError, match="more than one test fold"):
        cross_validated_r(y, pred, [np.arange(10), np.arange(5, 20)])
    with pytest.raises(ValueError, match=r"fold\(s\) \[1\] hold fewer than 2 samples"):
        cross_validated_r(y, pred, [np.arange(10), np.array([11])])
    with pytest.raises(ValueError, match="'average'"):
        cross_validated_r(y, pred, labels, average="fisher")


def test_concatenated_r_is_biased_negative_under_the_null(rng):
    """Random features, ridge per fold: per-fold r is centred on 0, the concatenated r is not (issue 11.4)."""
    n, n_feat, n_sims = 100, 20, 400
    X = rng.standard_normal((n, n_feat))
    Y = rng.standard_normal((n, n_sims))  # every column an independent null data set
    labels = np.repeat(np.arange(5), n // 5)
    pred = np.empty_like(Y)
    for k in range(5):
        tr, te = labels != k, labels == k
        Xtr = np.c_[np.ones(tr.sum()), X[tr]]
        beta = np.linalg.solve(Xtr.T @ Xtr + 100.0 * np.eye(n_feat + 1), Xtr.T @ Y[tr])
        pred[te] = np.c_[np.ones(te.sum()), X[te]] @ beta
    folds = cross_validated_r(Y, pred, labels)
    concat = cross_validated_r(Y, pred, labels, average="concatenated")
    se = lambda v: v.std() / np.sqrt(len(v))  # noqa: E731
    assert abs(folds.mean()) < 4 * se(folds)  # centred on 0
    gap = concat - folds  # paired over the same null data sets: about -0.03 here, -0.1 with other designs
    assert gap.mean() < -0.02 and gap.mean() + 5 * se(gap) < 0
