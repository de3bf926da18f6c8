"""Delayer: make_delays as a scikit-learn transformer that composes with the encoding estimators."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from brainalign.encoding import BandedRidgeCV, RidgeCV
from brainalign.features import Delayer
from brainalign.features.timing import make_delays


_TIME_SERIES = "a Delayer copies earlier rows: rows are time points, so order and subsets change the output"


@parametrize_with_checks(
    [Delayer(delays=[0, 1]), Delayer(lags=[0.0, 0.02], sfreq=100.0)],
    expected_failed_checks=lambda est: {"check_methods_sample_order_invariance": _TIME_SERIES,
                                        "check_methods_subset_invariance": _TIME_SERIES},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_delayer_equals_make_delays(rng):
    X = rng.standard_normal((30, 3))
    runs = np.repeat([0, 1, 2], 10)
    d = Delayer(delays=[-1, 0, 2])
    np.testing.assert_array_equal(d.fit_transform(X, groups=runs), make_delays(X, [-1, 0, 2], groups=runs))
    np.testing.assert_array_equal(d.transform(X), make_delays(X, [-1, 0, 2]))
    # the run labels as a column of X: dropped from the output, same design
    with_col = Delayer(delays=[-1, 0, 2], groups_column=1)
    Xg = np.c_[X[:, :1], runs, X[:, 1:]]
    np.testing.assert_array_equal(with_col.fit_transform(Xg), make_delays(X, [-1, 0, 2], groups=runs))
    lagged = Delayer(lags=[0.0, 0.01], sfreq=100.0).fit(X)
    np.testing.assert_array_equal(lagged.delays_, [0, 1])
    names = with_col.get_feature_names_out(["a", "run", "b", "c"])
    assert list(names[:4]) == ["a@-1", "b@-1", "c@-1", "a@0"] and len(names) == 9


def test_delayed_bands_follow_the_delays(rng):
    d = Delayer(delays=[1, 2, 3]).fit(rng.standard_normal((20, 5)))
    bands = d.delayed_bands({"audio": slice(0, 2), "text": [2, 3, 4]})
    np.testing.assert_array_equal(bands["audio"], [0, 1, 5, 6, 10, 11])
    np.testing.assert_array_equal(bands["text"], [2, 3, 4, 7, 8, 9, 12, 13, 14])
    names = d.get_feature_names_out()
    assert {n.split("@")[0] for n in names[bands["audio"]]} == {"x0", "x1"}
    with pytest.raises(ValueError, match="outside the 5 features"):
        d.delayed_bands({"bad": [4, 5]})
    with pytest.raises(ValueError, match="needs n_features= before the Delayer is fitted"):
        Delayer().delayed_bands({"a": [0]})


def test_pipeline_with_runs_recovers_a_delayed_response(rng):
    runs = np.repeat(np.arange(4), 50)
    X = rng.standard_normal((200, 2))
    truth = make_delays(X, [2], groups=runs) @ np.array([1.0, -0.5])
    y = truth + 0.05 * rng.standard_normal(200)
    pipe = make_pipeline(Delayer(delays=[0, 1, 2, 3]), RidgeCV(alphas=[1e-3, 1e-1], cv=2, verbose=False))
    pipe.fit(X, y, delayer__groups=runs, ridgecv__groups=runs)
    w = pipe[-1].coef_.reshape(4, 2)  # delay-major
    np.testing.assert_allclose(w[2], [1.0, -0.5], atol=0.05)
    np.testing.assert_allclose(w[[0, 1, 3]], 0, atol=0.05)
    # the run column variant predicts without groups= at predict time
    col = make_pipeline(Delayer(delays=[0, 1, 2, 3], groups_column=-1), RidgeCV(alphas=[1e-3, 1e-1], cv=2, verbose=False))
    col.fit(np.c_[X, runs], y)
    np.testing.assert_allclose(col.predict(np.c_[X, runs]), truth, atol=0.2)


def test_pipeline_with_banded_ridge(rng):
    """Delayed bands feed BandedRidgeCV: the band that drives the response keeps the small alpha."""
    runs = np.repeat(np.arange(3), 80)
    X = rng.standard_normal((240, 4))
    y = make_delays(X[:, :2], [1], groups=runs) @ np.array([1.0, 1.0]) + 0.1 * rng.standard_normal(240)
    delayer = Delayer(delays=[1, 2])
    bands = delayer.delayed_bands({"signal": slice(0, 2), "noise": slice(2, 4)}, n_features=4)
    if "bands" in inspect.signature(BandedRidgeCV).parameters:  # named bands (issue 12)
        banded = BandedRidgeCV(bands=bands, alphas=[0.1, 10.0, 1000.0], cv=3, verbose=False)
    else:  # the API before named bands: a list of column sets
        banded = BandedRidgeCV(list(bands.values()), alphas=[0.1, 10.0, 1000.0], cv=3, verbose=False)
    pipe = make_pipeline(delayer, banded).fit(X, y, delayer__groups=runs)
    alphas = np.atleast_1d(pipe[-1].best_alphas_).ravel()
    assert alphas[0] < alphas[1]
    assert pipe.score(X[:120], y[:120]) > 0.5


def test_delayer_bad_input(rng):
    X = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match="not both"):
        Delayer(groups_column=1).fit(X, groups=np.zeros(10))
    with pytest.raises(ValueError, match="groups_column=5 is out of range for X with 2 columns"):
        Delayer(groups_column=5).fit(X)
    with pytest.raises(ValueError, match="need sfreq="):
        Delayer(lags=[0.1]).fit(X)
    with pytest.raises(ValueError, match="at least as long as every run"):
        Delayer(delays=[20]).fit_transform(X)
