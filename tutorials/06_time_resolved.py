# %% [markdown]
# # Time-resolved RSA on simulated MEG
#
# We simulate MEG epochs in which the sensors carry the geometry of one "layer" of a toy
# network, with a response peaking 150 ms after stimulus onset, and recover when and which
# layer the sensors represent: one RDM per 20-ms window, compared with every layer RDM.

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from brainalign import Features
from brainalign.datasets import simulate_responses
from brainalign.rsa import calc_rdm, time_resolved

out = Path("results/tutorials")
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
n_items = 24
layers = {"layer0": rng.standard_normal((n_items, 20))}
for k in range(1, 4):
    layers[f"layer{k}"] = np.tanh(layers[f"layer{k - 1}"] @ rng.standard_normal((20, 20)) / np.sqrt(20) * 2)
feats = Features(layers, items=[f"img{i:02d}" for i in range(n_items)])
sim = simulate_responses(feats, layer="layer2", kind="meg", n_channels=60, snr=0.5, n_repeats=4,
                         sfreq=200.0, latency=0.15, random_state=1)
meg = sim.brain  # sim also holds the truth: weights, generating layer, noise ceilings
print(meg)

# %% [markdown]
# One correlation-distance RDM per 20 ms window (4 samples at 200 Hz, hop 10 ms), averaged
# over the repetitions of each image, compared with each layer's RDM by Spearman correlation.
# The repetitions are averaged once for all time points and every window's RDM comes from one
# batched product. The layer RDMs carry the image ids (`stimulus_id`): `time_resolved`
# matches them to the data's conditions by id (sorted), so a model RDM in another order
# (e.g. the order of an `event_id` dict) is reordered, never compared position by position.

# %%
res = time_resolved(meg, calc_rdm(feats), descriptor="stimulus_id", window=4, step=2)
fig, ax = plt.subplots(figsize=(7, 4))
for name, row in zip(feats.layer_names, res.scores):
    ax.plot(res.times * 1000, row, label=name)
ax.axvline(150, color="k", ls=":")
ax.set_xlabel("time (ms)")
ax.set_ylabel("Spearman rho")
ax.legend()
fig.savefig(out / "06_time_resolved.png", dpi=120)
peak = res.times[np.argmax(res.scores.max(0))]
print(f"generating layer: {sim.layer}; best layer at the peak: "
      f"{feats.layer_names[int(np.argmax(res.scores[:, np.argmax(res.scores.max(0))]))]}; peak at {peak * 1000:.0f} ms")

# %% [markdown]
# Checks: before stimulus onset no layer explains the sensors; after it, the generating layer
# is the best one, and the fit peaks in the response window around its latency.

# %%
best_t = np.argmax(res.scores.max(0))
assert feats.layer_names[int(np.argmax(res.scores[:, best_t]))] == sim.layer
shuffled = calc_rdm(feats.select(items=list(reversed(feats.items))))  # the same RDMs, images reversed
np.testing.assert_allclose(time_resolved(meg, shuffled, descriptor="stimulus_id", window=4, step=2).scores,
                           res.scores, atol=1e-12)
assert res.scores[:, res.times < 0].mean() < 0.15
assert 0.05 <= peak <= 0.35
