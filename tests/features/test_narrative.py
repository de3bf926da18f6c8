"""Per-word features of narratives with sliding context windows."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from tiny_models import WORDS

from brainalign import Stimuli
from brainalign.features import FeatureExtractor

STORY = ["the", "big", "cat", "sat", "on", "the", "unbelievableness", "mat", "and", "then", "it", "ran", "quickly", "under", "the", "red", "house", "a", "small", "bird", "saw", "the", "dog", "of", "the", "tree"]


def _windows_by_hand(n, context, stride):
    """End of window k is min(L + k * stride, n); its new part starts at the previous end."""
    L, out, prev = context + stride, [], 0
    k = 0
    while prev < n:
        e = min(L + k * stride, n)
        out.append((max(0, e - L), e, prev))
        prev, k = e, k + 1
    return out


@pytest.mark.parametrize("pooling", ["mean", "first", "last"])
def test_words_equal_windows_run_by_hand(bert_dir, pooling):
    onsets = np.arange(len(STORY)) * 0.4
    stim = Stimuli.from_words(STORY, onsets)
    fx = FeatureExtractor(bert_dir, context=6, stride=3, pooling=pooling, verbose=False, cache_dir=False)
    feats = fx.extract(stim)
    tok = fx.processor
    per_word = [tok(w, add_special_tokens=False)["input_ids"] for w in STORY]
    assert max(map(len, per_word)) > 1  # some words have several sub-word tokens
    body = [t for ids in per_word for t in ids]
    starts = np.cumsum([0] + [len(p) for p in per_word])
    cls, sep = tok.cls_token_id, tok.sep_token_id
    expected = np.zeros((len(STORY), 3, 32), np.float32)
    seen = set()
    for s, e, new in _windows_by_hand(len(body), 6, 3):
        ids = torch.tensor([[cls] + body[s:e] + [sep]])
        with torch.no_grad():
            hs = [h[0].numpy() for h in fx.model(input_ids=ids, output_hidden_states=True).hidden_states]
        for w in range(len(STORY)):
            a, b = starts[w], starts[w + 1]
            if new <= b - 1 < e:
                assert a - s >= min(6, a) - 0  # at least `context` tokens of left context
                sl = slice(1 + a - s, 1 + b - s)
                for k in range(3):
                    tokens = hs[k][sl]
                    expected[w, k] = {"mean": tokens.mean(0), "first": tokens[0], "last": tokens[-1]}[pooling]
                seen.add(w)
    assert seen == set(range(len(STORY)))
    for k, name in enumerate(feats.layer_names):
        np.testing.assert_allclose(feats[name], expected[:, k], atol=2e-5)
    assert feats.item_table["onset"].tolist() == onsets.tolist()
    assert (feats.item_table["run"] == 0).all()


def test_runs_are_separate_texts(gpt2_dir):
    words = ["the", "cat", "sat", "on", "the", "mat", "a", "dog", "ran"]
    stim = Stimuli.from_words(words, np.arange(9.0), run=[1] * 6 + [2] * 3)
    fx = FeatureExtractor(gpt2_dir, layers="layer.1", verbose=False, cache_dir=False)
    both = fx.extract(stim)["layer.1"]
    alone = fx.extract(Stimuli.from_words(words[6:], np.arange(3.0), run=2))["layer.1"]
    np.testing.assert_allclose(both[6:], alone, atol=1e-5)
    # without run boundaries the second part would see the first as context
    joined = fx.extract(Stimuli.from_words(words, np.arange(9.0)))["layer.1"]
    assert np.abs(joined[6:] - alone).max() > 1e-3


def test_long_narrative_needs_context(gpt2_dir):
    words = list(np.resize(WORDS, 100))
    stim = Stimuli.from_words(words, np.arange(100.0))
    fx = FeatureExtractor(gpt2_dir, verbose=False)
    with pytest.raises(ValueError, match=r"100 tokens but the model takes at most 64\. Pass context="):
        fx.extract(stim)
    with pytest.raises(ValueError, match=r"context=60 with stride=5 needs windows of 65 tokens.*at most 64"):
        FeatureExtractor(gpt2_dir, context=60, stride=5, verbose=False).extract(stim)
    with pytest.raises(ValueError, match="pooling='none' is not available for narratives"):
        FeatureExtractor(gpt2_dir, context=16, pooling="none", verbose=False).extract(stim)


def test_causal_model_windows_with_stride_one_give_exact_context(gpt2_dir):
    """GPT-2 with stride=1: each word is computed from exactly its `context` previous words."""
    words = list(np.random.default_rng(0).choice(WORDS, 40))
    fx = FeatureExtractor(gpt2_dir, layers="layer.1", context=5, stride=1, verbose=False, cache_dir=False)
    feats = fx.extract(Stimuli.from_words(words, np.arange(40.0)))
    ids = fx.processor(" ".join(words))["input_ids"]
    for w in (0, 3, 5, 17, 39):
        window = ids[max(0, w - 5):w + 1]
        with torch.no_grad():
            h = fx.model(input_ids=torch.tensor([window]), output_hidden_states=True).hidden_states[2][0, -1]
        np.testing.assert_allclose(feats["layer.1"][w], h.numpy(), atol=2e-5)


@pytest.mark.slow
def test_long_story_memory_is_bounded_by_the_batch(tmp_path):
    """20,000 words x 9 layers x 64 features (46 MB): the store never holds all of it in RAM."""
    from tiny_models import word_tokenizer
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(vocab_size=len(WORDS) + 2, n_embd=64, n_layer=8, n_head=2, n_positions=64,
                                 bos_token_id=0, eos_token_id=0)).eval()
    words = list(np.resize(WORDS, 20_000))
    stim = Stimuli.from_words(words, np.arange(20_000) * 0.3)
    total = 20_000 * 9 * 64 * 4
    fx = FeatureExtractor(model, processor=word_tokenizer(), context=32, stride=32, cache_dir=tmp_path,
                          verbose=False, batch_size=32)
    tracemalloc.start()
    feats = fx.extract(stim)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # numpy buffers are traced: holding every layer in RAM would need >= total bytes; the store
    # needs the batch plus the O(n_words) plan (token ids, word spans), a small part of it
    assert peak < 0.35 * total, (peak, total)
    assert isinstance(feats["layer.7"], np.memmap)
    assert feats["layer.7"].shape == (20_000, 64)
    assert np.isfinite(feats["layer.7"][::997]).all() and np.abs(feats["layer.7"][-1]).sum() > 0
    # spot check against a window run by hand: the last word (the last window is tokens [19968, 20000))
    ids = torch.tensor([fx.processor(" ".join(words[-64:]))["input_ids"]])
    with torch.no_grad():
        h = model(input_ids=ids, output_hidden_states=True).hidden_states[8][0, -1]
    np.testing.assert_allclose(feats["layer.7"][-1], h.numpy(), atol=2e-5)
