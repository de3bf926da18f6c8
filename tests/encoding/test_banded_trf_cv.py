import numpy as np
import pytest

from brainalign.encoding import TRF


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
