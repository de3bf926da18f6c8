"""Extraction from tiny random HF models equals the models' own output_hidden_states."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from tiny_models import images

from brainalign import Stimuli
from brainalign.features import FeatureExtractor, extract_features


def _own_hidden(model, enc):
    with torch.no_grad():
        return [h[0].numpy() for h in model(**enc, output_hidden_states=True).hidden_states]


@pytest.mark.parametrize("pooling", ["mean", "first", "last", "none"])
def test_bert_matches_hidden_states(bert_dir, sentences, pooling):
    fx = FeatureExtractor(bert_dir, pooling=pooling, verbose=False, batch_size=3, cache_dir=False)
    feats = fx.extract(sentences)
    assert feats.layer_names == ["embeddings", "layer.0", "layer.1"]
    assert feats.items == ["s0", "s1", "s2", "s3"]
    n_tok = max(len(fx.processor(s)["input_ids"]) for s in sentences)
    for i, s in enumerate(sentences):
        hs = _own_hidden(fx.model, fx.processor(s, return_tensors="pt"))
        for k, name in enumerate(feats.layer_names):
            ref = {"mean": hs[k].mean(0), "first": hs[k][0], "last": hs[k][-1], "none": hs[k]}[pooling]
            got = feats[name][i]
            if pooling == "none":
                assert got.shape == (n_tok, 32)
                np.testing.assert_array_equal(got[len(hs[k]):], 0)
                got = got[:len(hs[k])]
            np.testing.assert_allclose(got, ref, atol=2e-5, rtol=1e-5)
    assert feats.provenance["pooling"] == pooling
    assert set(feats.provenance["versions"]) == {"brainalign", "torch", "transformers"}
    assert len(feats.provenance["weights_hash"]) == 64


def test_gpt2_last_token_matches(gpt2_dir, sentences):
    feats = extract_features(gpt2_dir, sentences, pooling="last", layers=[-1, 0], verbose=False)
    assert feats.layer_names == ["embeddings", "layer.1"]
    from transformers import AutoModel, AutoTokenizer

    model, tok = AutoModel.from_pretrained(gpt2_dir).eval(), AutoTokenizer.from_pretrained(gpt2_dir)
    for i, s in enumerate(sentences):
        hs = _own_hidden(model, tok(s, return_tensors="pt"))
        np.testing.assert_allclose(feats["layer.1"][i], hs[2][-1], atol=2e-5)
        np.testing.assert_allclose(feats["embeddings"][i], hs[0][-1], atol=2e-5)


def test_vit_images(vit_dir, rng, tmp_path):
    from PIL import Image

    imgs = images(rng, 3)
    path = tmp_path / "img.png"
    Image.fromarray(imgs[0]).save(path)
    stim = Stimuli.from_images([path, Image.fromarray(imgs[1]), imgs[2]])
    fx = FeatureExtractor(vit_dir, pooling="cls", verbose=False, cache_dir=False)
    feats = fx.extract(stim)
    for i, img in enumerate(imgs):
        hs = _own_hidden(fx.model, fx.processor(images=[img], return_tensors="pt"))
        for k, name in enumerate(feats.layer_names):
            np.testing.assert_allclose(feats[name][i], hs[k][0], atol=2e-5)
    none = FeatureExtractor(vit_dir, pooling="none", layers="layer.1", verbose=False).extract(imgs)
    assert none["layer.1"].shape == (3, 17, 32)  # 16 patches + CLS


def test_wav2vec2_variable_lengths_and_resampling(w2v_dir, rng):
    waves = [rng.standard_normal(n).astype(np.float32) for n in (1600, 2400, 1600)]
    fx = FeatureExtractor(w2v_dir, verbose=False, batch_size=4)
    feats = fx.extract(Stimuli.from_audio(waves, 16000))
    for i, w in enumerate(waves):
        enc = fx.processor([w], sampling_rate=16000, return_tensors="pt")
        hs = _own_hidden(fx.model, enc)
        for k, name in enumerate(feats.layer_names):
            np.testing.assert_allclose(feats[name][i], hs[k].mean(0), atol=3e-5, rtol=1e-4)
    # 8 kHz audio is resampled to the processor's 16 kHz with resample_poly, with a warning
    from scipy.signal import resample_poly

    with pytest.warns(UserWarning, match=r"resampled to the processor's 16000 Hz"):
        low = fx.extract([w[::2] for w in waves], sfreq=8000)
    ref = fx.extract([resample_poly(w[::2], 2, 1).astype(np.float32) for w in waves], sfreq=16000)
    np.testing.assert_allclose(low["layer.1"], ref["layer.1"], atol=1e-5)


def test_layer_selection(bert_dir):
    fx = FeatureExtractor(bert_dir, layers=r"layer\.\d+", verbose=False)
    assert [r.name for r in fx._refs] == ["layer.0", "layer.1"]
    fx = FeatureExtractor(bert_dir, layers=["hidden_states.0", 2], verbose=False)
    assert [r.name for r in fx._refs] == ["embeddings", "layer.1"]
    # any named module through a hook: the attention output of block 0
    fx = FeatureExtractor(bert_dir, layers=["encoder.layer.0.output", "layer.0"], verbose=False, cache_dir=False)
    feats = fx.extract(["the cat sat"])
    np.testing.assert_allclose(feats["encoder.layer.0.output"], feats["layer.0"], atol=1e-6)


def test_unknown_layer_lists_close_matches(bert_dir):
    with pytest.raises(KeyError, match=r"Unknown layer 'layer\.7'.*Close matches.*layer\.0"):
        FeatureExtractor(bert_dir, layers="layer.7", verbose=False)
    with pytest.raises(KeyError, match="matches no layer"):
        FeatureExtractor(bert_dir, layers=r"block\.\d+", verbose=False)
    with pytest.raises(IndexError, match="out of range for 3 layers"):
        FeatureExtractor(bert_dir, layers=[5], verbose=False)


def test_bad_inputs(bert_dir, vit_dir, rng):
    fx = FeatureExtractor(bert_dir, verbose=False)
    with pytest.raises(ValueError, match="empty list"):
        fx.extract([])
    with pytest.raises(ValueError, match="empty table"):
        Stimuli.from_texts([])
    long_text = " ".join(["cat"] * 100)
    with pytest.raises(ValueError, match=r"102 tokens but the model takes at most 64.*context="):
        fx.extract([long_text])
    with pytest.raises(ValueError, match="Invalid value for the 'pooling'"):
        FeatureExtractor(bert_dir, pooling="max")
    with pytest.raises(ValueError, match="batch_size must be"):
        FeatureExtractor(bert_dir, batch_size=0)
    with pytest.raises(OSError, match="local_files_only=True"):
        FeatureExtractor("no-such-org/no-such-model")
    # a processor that does not resize cannot batch images of different sizes
    from transformers import ViTImageProcessor

    proc = ViTImageProcessor(do_resize=False)
    vx = FeatureExtractor(vit_dir, processor=proc, verbose=False)
    mixed = images(rng, 1, (32, 32)) + images(rng, 1, (48, 40))
    with pytest.raises(ValueError, match=r"could not batch these images \(sizes \[\(32, 32\), \(48, 40\)\]"):
        vx.extract(mixed)


def test_long_text_with_context_equals_windows_by_hand(bert_dir):
    """A 30-word text with context=8, stride=4: each body token pooled from its window."""
    fx = FeatureExtractor(bert_dir, context=8, stride=4, verbose=False, cache_dir=False)
    text = " ".join(["the cat sat on the mat and then it ran"] * 3)
    feats = fx.extract([text])
    tok = fx.processor
    body = tok(text, add_special_tokens=False)["input_ids"]
    assert len(body) == 30
    cls, sep = tok.cls_token_id, tok.sep_token_id
    # windows of 12 tokens advancing by 4: [0,12) all new, then [4,16) new [12,16), ... [18,30) new [28,30)
    bounds = [(0, 12, 0), (4, 16, 12), (8, 20, 16), (12, 24, 20), (16, 28, 24), (18, 30, 28)]
    vecs = []
    for s, e, new in bounds:
        ids = torch.tensor([[cls] + body[s:e] + [sep]])
        with torch.no_grad():
            h = fx.model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
        vecs.append(h[1 + new - s:1 + e - s].numpy())
    ref = np.concatenate(vecs)
    assert ref.shape[0] == 30
    np.testing.assert_allclose(feats["layer.1"][0], ref.mean(0), atol=2e-5)


def test_layer_name_regex_object(bert_dir):
    fx = FeatureExtractor(bert_dir, layers=re.compile(r"encoder\.layer\.\d+"), verbose=False)
    assert [r.source for r in fx._refs] == ["hook", "hook"]


def test_hooked_module_without_token_axis_is_refused(bert_dir):
    fx = FeatureExtractor(bert_dir, layers="encoder.layer.0.attention.self.query", verbose=False)
    assert fx.extract(["the cat"])["encoder.layer.0.attention.self.query"].shape == (1, 32)
    fx = FeatureExtractor(bert_dir, layers="embeddings.word_embeddings", verbose=False)
    assert fx.extract(["the cat"]).n_items == 1
    from transformers import BertModel

    model = BertModel.from_pretrained(bert_dir, add_pooling_layer=True)
    fx = FeatureExtractor(model, processor=fx.processor, layers="pooler", verbose=False)
    with pytest.raises(ValueError, match=r"Layer 'pooler' gave an output of shape \(1, 32\) .*one vector per token"):
        fx.extract(["the cat"])


def test_video_frames_keep_their_onsets(vit_dir, rng):
    frames = images(rng, 4)
    stim = Stimuli({"modality": "video", "image": frames, "onset": [0.0, 0.5, 1.0, 1.5], "run": 1})
    feats = FeatureExtractor(vit_dir, layers="layer.1", verbose=False).extract(stim)
    assert feats["layer.1"].shape == (4, 32)
    assert feats.item_table["onset"].tolist() == [0.0, 0.5, 1.0, 1.5]
    mixed = Stimuli({"modality": ["text", "image"], "text": ["a", None], "image": [None, frames[0]]})
    with pytest.raises(ValueError, match=r"Stimuli mix modalities \['image', 'text'\]"):
        FeatureExtractor(vit_dir, verbose=False).extract(mixed)


def test_word_without_tokens_gets_zeros_and_a_warning(bert_dir):
    stim = Stimuli.from_words(["the", "\u200b", "cat"], [0.0, 0.3, 0.6])
    with pytest.warns(UserWarning, match=r"1 words gave no token \(e\.g\. row 1\)"):
        feats = FeatureExtractor(bert_dir, verbose=False, cache_dir=False).extract(stim)
    np.testing.assert_array_equal(feats["layer.1"][1], 0)
    assert (np.abs(feats["layer.1"][[0, 2]]).sum(1) > 0).all()


def test_audio_without_attention_mask_is_batched_by_length(w2v_dir, rng):
    from transformers import Wav2Vec2FeatureExtractor

    proc = Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=False)
    fx = FeatureExtractor(w2v_dir, processor=proc, layers="layer.1", verbose=False, cache_dir=False)
    batches = []
    fx.model.register_forward_pre_hook(lambda m, a, kw: batches.append(tuple(kw["input_values"].shape)),
                                       with_kwargs=True)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (1600, 2000, 1600, 2000, 2400)]
    feats = fx.extract(waves, sfreq=16000)
    assert sorted(batches) == [(1, 2400), (2, 1600), (2, 2000)]  # no padding inside a batch
    for i, w in enumerate(waves):
        hs = _own_hidden(fx.model, proc([w], sampling_rate=16000, return_tensors="pt"))
        np.testing.assert_allclose(feats["layer.1"][i], hs[2].mean(0), atol=3e-5, rtol=1e-4)


def test_audio_rate_without_rational_ratio_is_refused(w2v_dir):
    fx = FeatureExtractor(w2v_dir, verbose=False)
    with pytest.raises(ValueError, match=r"Cannot resample audio from 16000.3 Hz to the processor's 16000 Hz"):
        fx.extract([np.zeros(1600, np.float32)], sfreq=16000.3)


def test_modality_mismatch_is_refused(vit_dir):
    fx = FeatureExtractor(vit_dir, verbose=False)
    with pytest.raises(ValueError, match="ViTModel takes image inputs but the stimuli are text items"):
        fx.extract(["a sentence"])
    with pytest.raises(ValueError, match="Invalid value for the 'dtype'"):
        FeatureExtractor(vit_dir, dtype="bfloat16")


@pytest.mark.parametrize("model", ["bert", "gpt2"])
def test_empty_texts_get_zeros_and_one_warning(bert_dir, gpt2_dir, model):
    """One rule for sentences and words: no token -> zeros and a warning; nothing at all -> an error."""
    fx = FeatureExtractor({"bert": bert_dir, "gpt2": gpt2_dir}[model], cache_dir=False, batch_size=2)
    ref = fx.extract(["the cat", "a dog"])
    with pytest.warns(UserWarning, match=r"2 items gave no token \(e\.g\. row 1\); their features are zeros "
                                         r"\(row 1 is ''\)") as rec:
        feats = fx.extract(["the cat", "", "a dog", "   "])
    assert len(rec) == 1
    for name in feats.layer_names:
        np.testing.assert_array_equal(feats[name][[1, 3]], 0)
        np.testing.assert_allclose(feats[name][[0, 2]], ref[name], atol=1e-5)
    with pytest.warns(UserWarning, match=r"1 items gave no token \(e\.g\. row 1\).*\(row 1 is nan\)"):
        missing = fx.extract(Stimuli({"text": ["the cat", None, "a dog"], "modality": "text"}))  # a missing text
    np.testing.assert_array_equal(missing["layer.1"][1], 0)
    with pytest.raises(ValueError, match=r"None of the 1 items gives a token \(row 0: ''\): there is nothing"):
        fx.extract([""])
    with pytest.raises(ValueError, match=r"None of the 2 words gives a token"):
        fx.extract(Stimuli.from_words(["", " "], [0.0, 0.5]))


def test_empty_texts_warn_again_when_read_from_the_cache(bert_dir, tmp_path):
    fx = FeatureExtractor(bert_dir, cache_dir=tmp_path)
    with pytest.warns(UserWarning, match="1 items gave no token"):
        fx.extract(["the cat", ""])
    with pytest.warns(UserWarning, match="1 items gave no token"):
        again = fx.extract(["the cat", ""])
    assert again.provenance["from_cache"]
    with pytest.raises(ValueError, match="nothing to extract"):
        fx.extract(["", ""])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]  # nothing left behind


def test_stimuli_of_the_wrong_type_are_refused_with_what_is_allowed(bert_dir):
    fx = FeatureExtractor(bert_dir)
    with pytest.raises(TypeError, match=r"stimuli must be texts \(str\), images .* or waveforms .*got int values "
                                        r"such as 1"):
        fx.extract([1, 2, 3])
    with pytest.raises(TypeError, match=r"stimuli mix strings and int \(item 1: 2\)"):
        fx.extract(["a cat", 2])
    with pytest.raises(TypeError, match="got dict values"):
        fx.extract([{"text": "a"}])


def test_missing_layer_lists_the_available_layers(bert_dir):
    from torch import nn

    model = nn.Sequential()
    for i in range(1, 6):
        model.add_module(f"conv{i}", nn.Conv2d(3, 3, 1))
    with pytest.raises(KeyError, match=r"Unknown layer 'conv9'\..*Available layers \(what layers='all' gives\): "
                                       r"\['conv1', 'conv2', 'conv3', 'conv4', 'conv5'\]"):
        FeatureExtractor(model, layers=["conv1", "conv9"])
    with pytest.raises(KeyError, match=r"Unknown layer 'layer\.9'.*Available layers .*\['embeddings', 'layer\.0', "
                                       r"'layer\.1'\]\. Any of the model's \d+ other module names works too"):
        FeatureExtractor(bert_dir, layers=["layer.0", "layer.9"])
