# %% [markdown]
# # Topological RSA on the 92 images, and an honest test of what it buys
#
# tRSA (Lin & Kriegeskorte, 2024) compares representations through geo-topological summaries:
# each RDM is rank-transformed and thresholded at its own `low` / `up` quantiles
# (RGTM: small distances -> 0, large -> 1, linear in between), optionally followed by graph
# geodesics (RGDM). We sweep the (low, up) grid for the AlexNet layers and the category
# models against human IT, look at the two transforms, and then ask the question the method
# is sold on: does a thresholded summary identify which layer an RDM comes from better than
# the RDM itself? (Answer below: not when compared the way the authors did, in our simulation.)

# %%
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from rsatoolbox.rdm import RDMs

from brainalign.datasets import load_kriegeskorte92
from brainalign.rsa import calc_rdm, compare
from brainalign.topology import default_grid, geodesic, geotopological, identify, trsa

out = Path("results/tutorials")
out.mkdir(parents=True, exist_ok=True)
data = load_kriegeskorte92()
hit = data.hit_rdms
names = list(data.model_rdms.rdm_descriptors["name"]) + list(data.alexnet_rdms.rdm_descriptors["layer"])
models = RDMs(np.concatenate([data.model_rdms.get_vectors(), data.alexnet_rdms.get_vectors()]),
              rdm_descriptors={"layer": names})

# %% [markdown]
# The grid: every `0 <= low <= up <= 1` in steps of 0.1 except the two corners whose RGTMs
# are constant (`default_grid`). For each point, the mean tRSA score (Spearman correlation of
# the RGTMs) of every model with the 8 hIT RDMs.

# %%
grid = default_grid()
scores = np.array([trsa(models, hit, low=lo, up=hi, method="spearman").mean(1) for lo, hi in grid])
best_model = np.array(names)[scores.argmax(1)]
heat = np.full((11, 11), np.nan)
for (lo, hi), s in zip(grid, scores[:, names.index("animacy")]):
    heat[int(round(lo * 10)), int(round(hi * 10))] = s
fig, ax = plt.subplots(figsize=(5, 4))
im = ax.imshow(heat, origin="lower", extent=(-0.05, 1.05, -0.05, 1.05))
ax.set_xlabel("up")
ax.set_ylabel("low")
ax.set_title("tRSA of the animacy model with hIT")
fig.colorbar(im)
fig.savefig(out / "05_trsa_grid.png", dpi=120)
print({g: b for g, b in list(zip(grid, best_model))[::7]})

# %% [markdown]
# An RGTM and its geodesic RGDM for one subject. The geodesic follows the authors' released
# code (doerlbh/TopologicalRSA): the graph keeps the band edges (`0 < RGTM < 1`; pairs below
# `low` are *not* edges, as a zero weight is "no edge" to networkx), and the path lengths are
# rank-transformed. The literal alternative, pairs below `low` as edges of length 0
# (`convention="contract"`), collapses: at `low = 0.1` the zero-weight graph already joins
# the 92 images into a handful of groups and most of the RGDM becomes 0 (it warns).

# %%
g = geotopological(hit[0], low=0.1, up=0.5).get_matrices()[0]
d = geodesic(hit[0], low=0.1, up=0.5).get_matrices()[0]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", RuntimeWarning)
    contracted = geodesic(hit, low=0.1, up=0.5, convention="contract", disconnected=1.0).get_vectors()
zero_share = (contracted == 0).mean(1)
print("warning:", caught[0].message)
print(f"RGDM(0.1, 0.5), 'contract' convention: {zero_share.min():.0%}-{zero_share.max():.0%} of each hIT RGDM is 0; "
      f"authors' convention: {(geodesic(hit, low=0.1, up=0.5).get_vectors() == 0).mean():.1%}")
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(g)
axes[0].set_title("RGTM (0.1, 0.5)")
axes[1].imshow(d)
axes[1].set_title("RGDM (0.1, 0.5)")
fig.savefig(out / "05_rgtm_rgdm.png", dpi=120)

# %% [markdown]
# Checks: at `low=0, up=1` the RGTM is the (scaled) rank RDM, so tRSA with Spearman is
# exactly plain Spearman RSA; over most of the grid the categorical animacy model stays the
# best model of human IT, as in plain RSA; and the contracting convention is degenerate.

# %%
full = scores[grid.index((0.0, 1.0))]
np.testing.assert_allclose(full, compare(models, hit, method="spearman").mean(1), atol=1e-12)
assert (best_model == "animacy").mean() > 0.5, (best_model == "animacy").mean()
assert zero_share.min() > 0.5

# %% [markdown]
# ## Does tRSA identify layers better than the RDM? A simulation in the paper's spirit
#
# The paper's network experiment asks from which layer an RDM comes, across independently
# trained instances of a network. We train 6 small MLPs (3 hidden ReLU layers + the logits;
# different initialisations and batch orders; 200 Adam steps) on 8 Gaussian classes in 20
# dimensions and compute the correlation-distance RDM of every layer on the same 48 test
# stimuli: 6 instances x 4 layers. Noise is added to the RDM entries (Gaussian, a multiple of
# the RDMs' standard deviation, clipped at 0, as in the authors' code). Each instance is held
# out in turn and every one of its RDMs is assigned the layer of the nearest centroid of the
# other instances (`identify`). Summaries: the raw RDM, the rank RDM, and RGTM / RGDM with the
# thresholds chosen by *nested* cross-validation (on the training instances only); beside it
# the in-sample best grid point, which is how the authors chose theirs (a 0.05 grid, the
# accuracy of the same subjects), with their Euclidean nearest centroid.

# %%
torch.manual_seed(0)
gen = np.random.default_rng(0)
n_cls, dim = 8, 20
means = gen.standard_normal((n_cls, dim))
y_test = np.repeat(np.arange(n_cls), 6)
x_test = torch.tensor(means[y_test] + gen.standard_normal((y_test.size, dim)), dtype=torch.float32)
y_train = np.repeat(np.arange(n_cls), 100)
x_train = torch.tensor(means[y_train] + gen.standard_normal((y_train.size, dim)), dtype=torch.float32)
y_train = torch.tensor(y_train)
vecs, layer, instance = [], [], []
for inst in range(6):
    torch.manual_seed(inst)
    sizes = [dim, 32, 32, 32, n_cls]
    net = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    opt = torch.optim.Adam([p for lin in net for p in lin.parameters()], lr=5e-3)

    def forward(x):
        acts = []
        for i, lin in enumerate(net):
            x = lin(x)
            x = torch.relu(x) if i < len(net) - 1 else x
            acts.append(x)
        return acts

    batches = torch.Generator().manual_seed(inst)
    for _ in range(200):
        idx = torch.randint(0, len(x_train), (64,), generator=batches)
        loss = torch.nn.functional.cross_entropy(forward(x_train[idx])[-1], y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        for k, act in enumerate(forward(x_test)):
            vecs.append(calc_rdm(act.numpy().astype(np.float64)).get_vectors()[0])
            layer.append(f"layer{k + 1}")
            instance.append(inst)
vecs, layer, instance = np.array(vecs), np.array(layer), np.array(instance)

rows = []
for level in [0.0, 0.5, 1.0]:
    for draw in range(2):
        noisy = np.clip(vecs + level * vecs.std() * np.random.default_rng(draw).standard_normal(vecs.shape), 0, None)
        r = RDMs(noisy, rdm_descriptors={"instance": instance})
        for method in ["euclidean", "corr"]:
            kw = dict(labels=layer, rdm_descriptor="instance", method=method)
            acc = {"RDM": identify(r, **kw).accuracy, "rank RDM": identify(r, low=0.0, up=1.0, **kw).accuracy}
            for name, geo in [("RGTM", False), ("RGDM", True)]:
                res = identify(r, grid=default_grid(geodesic=geo), geodesic=geo, **kw)
                acc[f"{name}, nested"] = res.accuracy
                acc[f"{name}, in-sample best"] = res.grid["accuracy"].max()
            rows += [{"noise": level, "draw": draw, "nearest centroid": method, "summary": k, "accuracy": v}
                     for k, v in acc.items()]
table = pd.DataFrame(rows).pivot_table(index="summary", columns=["nearest centroid", "noise"], values="accuracy")
print("layer identification accuracy (chance 0.25), mean of 2 noise draws\n", table.round(2).to_string())

# %% [markdown]
# What the numbers say (printed above; the asserts below keep this text true):
#
# - The simulation is powered: without noise the raw RDM identifies the layer of a held-out
#   instance far above chance (0.25).
# - With the authors' Euclidean nearest centroid, the raw RDM is the best summary at every
#   noise level, well above the rank RDM and the nested RGTM / RGDM: the magnitudes of the
#   distances, which ranks and thresholds discard, are what tell these layers apart.
# - With a scale-free comparison (correlation nearest centroid) the nested RGTM does beat
#   the raw and the rank RDM without noise, but the advantage shrinks as noise grows, and
#   it stays below the Euclidean raw RDM.
# - Choosing the thresholds on the same instances (in-sample best, the authors' procedure)
#   reports a higher accuracy than the nested choice: that selection is optimistic.
#
# So we do not reproduce an identification advantage of tRSA over the RDM compared the
# authors' way; tRSA's exact invariance to monotone distortions (tested in
# `tests/topology`) is real, and a different task, network or noise model may show a gain —
# this script is the place to try.

# %%
euc, cor = table["euclidean"], table["corr"]
print(f"Euclidean: RDM {euc.loc['RDM'].round(2).tolist()} vs nested RGTM {euc.loc['RGTM, nested'].round(2).tolist()}, "
      f"nested RGDM {euc.loc['RGDM, nested'].round(2).tolist()}; correlation: RDM {cor.loc['RDM'].round(2).tolist()} "
      f"vs nested RGTM {cor.loc['RGTM, nested'].round(2).tolist()} (noise 0, 0.5, 1)")
assert euc.loc["RDM", 0.0] >= 0.75
for level in [0.0, 0.5, 1.0]:
    assert euc.loc["RDM", level] >= max(euc.loc["rank RDM", level], euc.loc["RGTM, nested", level],
                                        euc.loc["RGDM, nested", level]), level
    assert euc.loc["RDM", level] > cor.loc["RGTM, nested", level]
assert cor.loc["RGTM, nested", 0.0] > max(cor.loc["RDM", 0.0], cor.loc["rank RDM", 0.0])
assert (cor.loc["RGTM, nested", 0.0] - cor.loc["RDM", 0.0]) > (cor.loc["RGTM, nested", 1.0] - cor.loc["RDM", 1.0])
for name in ["RGTM", "RGDM"]:
    assert (table.loc[f"{name}, in-sample best"] >= table.loc[f"{name}, nested"]).all(), name
