import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from brainalign.encoding import RidgeCV

_EST = [RidgeCV(alphas=[0.1, 1.0, 10.0], cv=2, progress=False)]


@parametrize_with_checks(_EST)
def test_sklearn_compatible(estimator, check):
    check(estimator)
