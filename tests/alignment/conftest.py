"""Simulated features with a known generating layer per ROI."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign import Features


def chain_features(n_items=48, n_layers=5, dim=16, random_state=0, name="toy"):
    """Layers of a random deep chain: neighbours correlate, distant layers differ."""
    rng = np.random.default_rng(random_state)
    layers = [rng.standard_normal((n_items, dim))]
    for _ in range(n_layers - 1):
        w = rng.standard_normal((dim, dim)) / np.sqrt(dim) * 1.5
        layers.append(np.tanh(layers[-1] @ w) + 0.5 * rng.standard_normal((n_items, dim)))
    return Features({f"l{k}": a for k, a in enumerate(layers)}, items=[f"s{i}" for i in range(n_items)],
                    provenance={"model_id": name})


@pytest.fixture(scope="session")
def toy_features():
    return chain_features()


@pytest.fixture(scope="session")
def toy_brains(toy_features):
    from brainalign.datasets import simulate_responses

    brains = {}
    for s in range(3):
        sim = simulate_responses(toy_features, rois={"early": "l0", "mid": "l2", "late": "l4"}, n_channels=60,
                                 snr=1.0, n_repeats=4, random_state=s)
        bd = sim.brain
        brains[f"sub-{s}"] = bd
    return brains


@pytest.fixture(scope="session")
def other_features():
    """An unrelated network of the same shape as ``toy_features`` (a control model)."""
    return chain_features(random_state=7, name="other")
