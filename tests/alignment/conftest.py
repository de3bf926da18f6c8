"""Simulated features with a known generating layer per ROI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign import BrainData, Features


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


def story_dataset(*, n_stories=4, n_trs=110, tr=2.0, n_layers=4, dim=10, rois=(("early", "l0"), ("late", "l3")),
                  n_voxels=12, n_noise=6, snr=1.5, repeat=None, random_state=0, delays=(1, 2, 3)):
    """Words at ~2.5/s in ``n_stories`` stories (one run each), word features of a chain of layers,
    and BOLD-like responses of each ROI from its layer (Lanczos to the TR grid, FIR delays).

    ``repeat="s3"`` adds a second run of story ``s3`` (the same words and signal, new noise), with
    a ``story`` samples column. Returns ``(features, brain, truth)``.
    """
    from brainalign.features import align_to

    rng = np.random.default_rng(random_state)
    stories = [f"s{k}" for k in range(n_stories)]
    words = []
    for s in stories:
        t = 0.3 + np.cumsum(rng.exponential(0.4, size=int(n_trs * tr * 3)))
        t = t[t < n_trs * tr - 4.0]
        words.append(pd.DataFrame({"run": s, "onset": t, "duration": 0.25}))
    table = pd.concat(words, ignore_index=True)
    table["stimulus_id"] = [f"{r}_w{i}" for r, i in zip(table["run"], table.groupby("run").cumcount())]
    n = len(table)
    layers = [rng.standard_normal((n, dim))]
    for _ in range(n_layers - 1):
        w = rng.standard_normal((dim, dim)) / np.sqrt(dim) * 1.5
        layers.append(np.tanh(layers[-1] @ w) + 0.7 * rng.standard_normal((n, dim)))
    feats = Features({f"l{k}": a for k, a in enumerate(layers)}, items=table["stimulus_id"].tolist(),
                     item_table=table, provenance={"model_id": "toy"})
    grid = BrainData(np.zeros((n_stories * n_trs, 1)), tr=tr,
                     samples={"run": np.repeat(stories, n_trs), "onset": np.tile(np.arange(n_trs) * tr, n_stories)})
    roi_of, signal = [], []
    for roi, layer in rois:
        X = align_to(feats, grid, layer=layer, delays=list(delays)).X
        s = X @ rng.standard_normal((X.shape[1], n_voxels))
        signal.append((s - s.mean(0)) / s.std(0))
        roi_of += [roi] * n_voxels
    signal.append(np.zeros((grid.n_samples, n_noise)))
    roi_of += ["noise"] * n_noise
    signal = np.concatenate(signal, axis=1)
    snr_of = np.where(np.array(roi_of) == "noise", 0.0, snr)
    sd = np.where(snr_of > 0, 1 / np.sqrt(np.where(snr_of > 0, snr_of, 1)), 1.0)
    runs, story = list(grid.samples["run"]), list(grid.samples["run"])
    onsets = list(grid.samples["onset"])
    data = signal + rng.standard_normal(signal.shape) * sd
    if repeat is not None:
        rows = np.asarray(runs) == repeat
        data = np.concatenate([data, signal[rows] + rng.standard_normal((rows.sum(), signal.shape[1])) * sd])
        runs += [f"{repeat}b"] * int(rows.sum())
        story += [repeat] * int(rows.sum())
        onsets += list(np.asarray(onsets)[rows])
        rep = table[table["run"] == repeat].assign(run=f"{repeat}b")
        rep["stimulus_id"] = [f"{repeat}b_w{i}" for i in range(len(rep))]
        table = pd.concat([table, rep], ignore_index=True)
        arrays = {name: np.concatenate([feats[name], feats[name][(feats.item_table["run"] == repeat).to_numpy()]])
                  for name in feats.layer_names}
        feats = Features(arrays, items=table["stimulus_id"].tolist(), item_table=table, provenance={"model_id": "toy"})
    samples = {"run": runs, "onset": onsets}
    if repeat is not None:
        samples["story"] = story
    brain = BrainData(data.astype(np.float32), tr=tr, samples=samples,
                      channels={"roi": roi_of, "name": [f"v{i}" for i in range(len(roi_of))]}, subject="sub-01")
    truth = {"rois": dict(rois), "snr": snr_of, "ceiling": np.sqrt(snr_of / (1 + snr_of))}
    return feats, brain, truth


@pytest.fixture(scope="session")
def make_story():
    """The simulated story-listening dataset maker (``story_dataset``)."""
    return story_dataset


@pytest.fixture(scope="session")
def story():
    """4 stories, ROIs early (layer l0) and late (l3) and noise: (features, brain, truth)."""
    return story_dataset()
