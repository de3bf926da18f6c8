from sklearn.utils.estimator_checks import parametrize_with_checks

from brainalign.encoding import TRF, BandedRidgeCV, RidgeCV

_EST = [
    RidgeCV(alphas=[0.1, 1.0, 10.0], cv=2),
    RidgeCV(alphas=[0.1, 1.0, 10.0], cv=2, scoring="pearson_r", alpha_per_target=False),
    BandedRidgeCV(alphas=[0.1, 10.0], n_iter=2, cv=2),
    TRF(tmin=0.0, tmax=0.02, sfreq=100.0, alphas=[0.1, 10.0], cv=2),
]

_TIME_SERIES = "a TRF predicts from delayed samples: rows are time points, so order and subsets change predictions"


def _expected_failures(estimator):
    if isinstance(estimator, TRF):
        return {"check_methods_sample_order_invariance": _TIME_SERIES,
                "check_methods_subset_invariance": _TIME_SERIES}
    return {}


@parametrize_with_checks(_EST, expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
