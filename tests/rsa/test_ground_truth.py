"""With simulated responses, the generating layer ranks first under RSA."""

import numpy as np

from brainalign import Features
from brainalign.datasets import simulate_responses
from brainalign.rsa import calc_rdm, compare


def _layers(rng, n_items=40):
    base = rng.standard_normal((n_items, 30))
    layers = {"l0": base}
    for k in range(1, 4):  # each layer a new nonlinear mix of the previous one
        layers[f"l{k}"] = np.tanh(layers[f"l{k - 1}"] @ rng.standard_normal((30, 30)) / np.sqrt(30))
    return Features(layers, items=[f"s{i:03d}" for i in range(n_items)])


def test_generating_layer_ranks_first(rng):
    feats = _layers(rng)
    model_rdms = calc_rdm(feats)
    for gen in ["l0", "l2"]:
        sim = simulate_responses(feats, layer=gen, n_channels=200, snr=0.5, n_repeats=4, random_state=1)
        brain, truth = sim.brain, sim
        data = calc_rdm(brain, descriptor="stimulus_id")
        # data conditions come sorted by id; zero-padded ids keep the features order
        assert list(data.pattern_descriptors["stimulus_id"]) == sorted(feats.items)
        scores = compare(model_rdms, data, method="spearman")[:, 0]
        assert feats.layer_names[int(np.argmax(scores))] == gen == truth.layer
