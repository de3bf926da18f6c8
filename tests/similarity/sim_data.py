"""Small random representations of the same stimuli, shared by the similarity tests."""

import numpy as np


def make_pair(seed: int = 0, n: int = 51, px: int = 12, py: int = 9, noise: float = 0.5):
    """Two related representations: Y is a noisy nonlinear read-out of X."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, px))
    Y = np.tanh(X @ rng.standard_normal((px, py))) + noise * rng.standard_normal((n, py))
    return X, Y
