"""Per-word features at story length: lazy tokenization, causal windows, key/value cache, early stop."""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pytest
import torch
from tiny_models import WORDS, bpe_tokenizer, tiny_gpt2, word_tokenizer

from brainalign import Stimuli
from brainalign.features import FeatureExtractor
from brainalign.features import _forward, _text

ODD = ["The", "naïve", "co-op", "don't", "U.S.", "3.5", "unbelievableness", "\u200b", "cat's", "", "(quickly)",
       "and", "then", "--", "it", "ran", "extraordinarily", "far", "!", "a"]


def _story(n, random_state=0):
    rng = np.random.default_rng(random_state)
    return [str(w) for w in rng.choice(WORDS + ODD, n)]


def _whole(words, tok):
    enc = tok(" ".join(words), add_special_tokens=False, return_offsets_mapping=True,
              return_special_tokens_mask=True)
    word = _text._word_of_token(words, enc["offset_mapping"], enc["special_tokens_mask"])
    return np.asarray(enc["input_ids"]), word


@pytest.mark.parametrize("which", ["wordpiece", "bpe", "wordlevel"])
def test_block_tokenization_equals_the_whole_text(which, minilm_path):
    from transformers import AutoTokenizer

    words = _story(400)
    tok = {"wordpiece": lambda: AutoTokenizer.from_pretrained(minilm_path),
           "bpe": lambda: bpe_tokenizer([" ".join(_story(300, 1))]), "wordlevel": word_tokenizer}[which]()
    ids, word = _whole(words, tok)
    blocks = list(_text.word_token_blocks(words, tok, block=7, overlap=2))
    assert len(blocks) == 58
    np.testing.assert_array_equal(np.concatenate([b[0] for b in blocks]), ids)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), word)
    empty = np.concatenate([b[2] for b in blocks])
    np.testing.assert_array_equal(empty, np.setdiff1d(np.arange(len(words)), word[word >= 0]))
    if which == "wordpiece":
        assert len(empty) and len(ids) > len(words)  # zero-token words and multi-token words occur
    if which == "bpe":
        assert len(ids) > len(words) and word[ids == tok.convert_tokens_to_ids("Ġ")].size  # "" gets a space


def test_narrative_features_do_not_depend_on_the_block_size(bert_dir, monkeypatch):
    words = _story(120)
    stim = Stimuli.from_words(words, np.arange(120) * 0.3, run=[1] * 70 + [2] * 50)
    fx = FeatureExtractor(bert_dir, context=6, stride=3, cache_dir=False, batch_size=5)
    with pytest.warns(UserWarning, match="words gave no token"):
        ref = fx.extract(stim)
    monkeypatch.setattr(_text, "WORD_BLOCK", 5)
    monkeypatch.setattr(_text, "WORD_OVERLAP", 1)
    with pytest.warns(UserWarning, match="words gave no token"):
        small = fx.extract(stim)
    for name in ref.layer_names:
        np.testing.assert_allclose(small[name], ref[name], atol=1e-6)


def test_texts_are_tokenized_in_blocks(bert_dir, sentences, monkeypatch):
    fx = FeatureExtractor(bert_dir, cache_dir=False, batch_size=3)
    ref = fx.extract(sentences * 3)
    monkeypatch.setattr(_text, "TEXT_BLOCK", 2)
    got = fx.extract(sentences * 3)
    for name in ref.layer_names:
        np.testing.assert_allclose(got[name], ref[name], atol=1e-6)


def _by_hand(model, tok, words, context, stride, pooling="mean", layer=-1):
    """Each word pooled from the window where its last token is new, run by hand (no special tokens)."""
    ids, word = _whole(words, tok)
    out = np.zeros((len(words), model.config.n_embd), np.float32)
    for s, e, new in _text.window_bounds(len(ids), context, stride):
        with torch.no_grad():
            h = model(input_ids=torch.from_numpy(ids[None, s:e]), output_hidden_states=True).hidden_states[layer][0].numpy()
        seg = word[s:e]
        for w in np.unique(seg[new - s:][seg[new - s:] >= 0]):
            pos = np.flatnonzero(seg == w)
            if pos[-1] + s < new:
                continue
            assert pos[0] > 0 or s == 0 or word[s - 1] != w
            tokens = h[pos]
            out[w] = {"mean": tokens.mean(0), "first": tokens[0], "last": tokens[-1]}[pooling]
    return out


def test_causal_models_get_long_windows_by_default(bert_dir):
    """GPT-2 with context=20 and a 64-token model: windows of 64 tokens advancing by 44."""
    words = _story(300)
    tok = bpe_tokenizer([" ".join(_story(300, 1))])
    model = tiny_gpt2(len(tok), n_positions=64)
    fx = FeatureExtractor(model, processor=tok, layers="layer.1", context=20, cache_dir=False, batch_size=3)
    assert fx.is_causal and not FeatureExtractor(bert_dir).is_causal
    feats = fx.extract(Stimuli.from_words(words, np.arange(300.0)))
    assert feats.provenance["causal"] is True
    assert _text.context_params(10, None, 64, 0, causal=True) == (10, 54)
    assert _text.context_params(10, None, 64, 0, causal=False) == (10, 10)
    assert _text.context_params(300, None, 2048, 1, causal=True) == (300, 724)
    np.testing.assert_allclose(feats["layer.1"], _by_hand(model, tok, words, 20, 44), atol=3e-5)


@pytest.mark.parametrize("pooling", ["mean", "first", "last"])
def test_kv_cache_chunks_equal_one_pass(pooling, monkeypatch):
    """Windows of 64 tokens read 8 tokens at a time: words straddle chunks, batches are padded."""
    words = _story(250, 2)
    tok = bpe_tokenizer([" ".join(_story(300, 1))])
    model = tiny_gpt2(len(tok), n_positions=64, n_layer=3)
    lengths = []
    model.register_forward_pre_hook(lambda m, a, kw: lengths.append(kw["input_ids"].shape[1]), with_kwargs=True)
    stim = Stimuli.from_words(words, np.arange(250.0))
    fx = FeatureExtractor(model, processor=tok, layers=["layer.1", "layer.2"], context=20, pooling=pooling,
                          cache_dir=False, batch_size=4)
    one_pass = fx.extract(stim)
    assert max(lengths) == 64
    monkeypatch.setattr(_forward, "KV_CHUNK", 8)
    lengths.clear()
    fx = FeatureExtractor(model, processor=tok, layers=["layer.1", "layer.2"], context=20, pooling=pooling,
                          cache_dir=False, batch_size=4)
    chunked = fx.extract(stim)
    assert fx._fast.checked and fx._fast.ok
    # one plain pass (the first batch's check), all others in chunks (and the 4-token causality probe)
    assert lengths.count(64) == 1 and sorted(set(lengths))[-2:] == [8, 64]
    for name in one_pass.layer_names:
        np.testing.assert_allclose(chunked[name], one_pass[name], atol=2e-5)
    np.testing.assert_allclose(chunked["layer.2"], _by_hand(model, tok, words, 20, 44, pooling, layer=3), atol=3e-5)


def _count_blocks(blocks):
    calls = [0] * len(blocks)
    for i, b in enumerate(blocks):
        b.register_forward_pre_hook(lambda *a, i=i: calls.__setitem__(i, calls[i] + 1))
    return calls


def test_forward_stops_after_the_deepest_requested_layer(bert_dir, sentences):
    tok = word_tokenizer()
    model = tiny_gpt2(len(WORDS) + 2, n_layer=3)
    fx = FeatureExtractor(model, processor=tok, layers=["embeddings", "layer.0"], cache_dir=False, batch_size=1)
    assert fx.is_causal  # the probe has run (two 4-token passes)
    calls = _count_blocks(model.h)
    feats = fx.extract(sentences)
    assert calls == [len(sentences) + 1, 1, 1]  # blocks 1 and 2 ran once, in the first batch's check
    for i, s in enumerate(sentences):
        with torch.no_grad():
            hs = model(**tok(s, return_tensors="pt"), output_hidden_states=True).hidden_states
        np.testing.assert_allclose(feats["layer.0"][i], hs[1][0].mean(0).numpy(), atol=1e-5)
        np.testing.assert_allclose(feats["embeddings"][i], hs[0][0].mean(0).numpy(), atol=1e-6)
    # a bidirectional model, with specials: the same
    bx = FeatureExtractor(bert_dir, layers="layer.0", cache_dir=False, batch_size=2)
    assert not bx.is_causal
    calls = _count_blocks(bx.model.encoder.layer)
    got = bx.extract(sentences)["layer.0"]
    assert calls == [3, 1]
    ref = FeatureExtractor(bert_dir, layers=["layer.0", "layer.1"], cache_dir=False).extract(sentences)["layer.0"]
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_fast_path_is_checked_and_abandoned_when_it_disagrees(bert_dir, sentences, caplog):
    ref = FeatureExtractor(bert_dir, layers="layer.0", cache_dir=False).extract(sentences)["layer.0"]
    fx = FeatureExtractor(bert_dir, layers="layer.0", cache_dir=False, batch_size=1)
    fast = fx._fast_path()
    # blocks in the wrong order: what the hooks capture is not the model's hidden state
    fast.blocks = torch.nn.ModuleList(list(fx.model.encoder.layer)[::-1])
    with caplog.at_level(logging.INFO, logger="brainalign"):
        got = fx.extract(sentences)["layer.0"]
    assert fast.checked and not fast.ok
    assert "NOT used" in caplog.text
    np.testing.assert_allclose(got, ref, atol=1e-6)


def _plan_peak(n_words, tok):
    words = list(np.resize(WORDS, n_words))
    rows = np.arange(n_words)
    empty: list = []
    tracemalloc.start()
    n = 0
    for unit in _text.iter_narrative_units(words, rows, tok, max_length=None, context=32, stride=32, empty=empty):
        n += len(unit.rows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == n_words and not empty
    return peak


def test_plan_memory_is_flat_in_story_length():
    """The plan of a 80,000-word story needs no more memory than that of a 10,000-word one."""
    tok = word_tokenizer()
    small, large = _plan_peak(10_000, tok), _plan_peak(80_000, tok)
    assert large < 1.3 * small + 200_000, (small, large)


def test_fast_path_that_fails_on_the_first_batch_is_dropped(monkeypatch, caplog):
    """A cache the model cannot use (say, another transformers version): the plain pass takes over."""
    tok = word_tokenizer()
    model = tiny_gpt2(len(WORDS) + 2, n_positions=64)
    stim = Stimuli.from_words(_story(120, 3), np.arange(120.0))
    ref = FeatureExtractor(model, processor=tok, layers="layer.0", context=8, cache_dir=False)
    with pytest.warns(UserWarning, match="words gave no token"):
        want = ref.extract(stim)["layer.0"]
    monkeypatch.setattr(_forward, "KV_CHUNK", 8)
    monkeypatch.setattr(_forward, "_new_cache", lambda module: "not a cache")
    fx = FeatureExtractor(model, processor=tok, layers="layer.0", context=8, cache_dir=False)
    with caplog.at_level(logging.INFO, logger="brainalign"), pytest.warns(UserWarning, match="words gave no token"):
        got = fx.extract(stim)["layer.0"]
    assert "Fast forward path failed on the first batch" in caplog.text and not fx._fast.ok
    np.testing.assert_allclose(got, want, atol=1e-6)
