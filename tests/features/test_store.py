"""Feature store: hit, miss, resume after a kill, corruption, keys."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from brainalign.features import FeatureExtractor, FeatureStore


def _fx(bert_dir, tmp_path, **kw):
    kw.setdefault("batch_size", 2)
    return FeatureExtractor(bert_dir, cache_dir=tmp_path / "cache", verbose=False, **kw)


def _count_forward(fx):
    calls = []
    fx.model.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls


def test_hit_loads_without_running_the_model(bert_dir, sentences, tmp_path):
    fx = _fx(bert_dir, tmp_path)
    first = fx.extract(sentences)
    assert first.provenance["from_cache"] is False
    calls = _count_forward(fx)
    second = fx.extract(sentences)
    assert calls == [] and second.provenance["from_cache"] is True
    assert isinstance(second["layer.1"], np.memmap)
    for n in first.layer_names:
        np.testing.assert_array_equal(first[n], second[n])
    # a fresh extractor on the same model finds the same entry
    assert _fx(bert_dir, tmp_path).extract(sentences).provenance["from_cache"] is True
    assert len(FeatureStore(tmp_path / "cache").entries()) == 1


def test_different_settings_give_different_keys(bert_dir, sentences, tmp_path):
    keys = {
        _fx(bert_dir, tmp_path).extract(sentences).provenance["cache_key"],
        _fx(bert_dir, tmp_path, pooling="first").extract(sentences).provenance["cache_key"],
        _fx(bert_dir, tmp_path, layers=["layer.1"]).extract(sentences).provenance["cache_key"],
        _fx(bert_dir, tmp_path, context=8).extract(sentences).provenance["cache_key"],
        _fx(bert_dir, tmp_path).extract(sentences[:3]).provenance["cache_key"],
        _fx(bert_dir, tmp_path, dtype="float16").extract(sentences).provenance["cache_key"],
    }
    assert len(keys) == 6
    # changed weights -> new weights hash -> new key
    fx = _fx(bert_dir, tmp_path)
    import torch

    with torch.no_grad():
        fx.model.embeddings.word_embeddings.weight[0, 0] += 1.0
    assert fx.extract(sentences).provenance["cache_key"] not in keys


def test_resume_after_a_kill(bert_dir, sentences, tmp_path):
    ref = FeatureExtractor(bert_dir, cache_dir=False, verbose=False).extract(sentences)
    fx = _fx(bert_dir, tmp_path, batch_size=1)
    calls = []

    def killer(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")

    handle = fx.model.register_forward_pre_hook(killer)
    with pytest.raises(KeyboardInterrupt):
        fx.extract(sentences)
    handle.remove()
    cache = tmp_path / "cache"
    assert FeatureStore(cache).entries() == []  # nothing complete
    partial = [p for p in cache.iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 1 and np.load(partial[0] / "done.npy").sum() == 2
    calls2 = _count_forward(fx)
    feats = fx.extract(sentences)
    assert len(calls2) == 2  # only the two missing batches ran
    for n in ref.layer_names:
        np.testing.assert_allclose(feats[n], ref[n], atol=1e-6)
    assert not any(p.name.endswith(".partial") for p in cache.iterdir())


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest"])
def test_corruption_is_detected_and_recomputed(bert_dir, sentences, tmp_path, damage):
    fx = _fx(bert_dir, tmp_path)
    good = np.array(fx.extract(sentences)["layer.1"])
    entry = tmp_path / "cache" / FeatureStore(tmp_path / "cache").entries()[0]
    manifest = json.loads((entry / "manifest.json").read_text())
    path = entry / manifest["layers"][-1]["file"]
    if damage == "flip":
        with open(path, "r+b") as fh:
            fh.seek(os.path.getsize(path) - 3)
            fh.write(b"\x7f")
    elif damage == "truncate":
        os.truncate(path, os.path.getsize(path) - 4)
    else:
        manifest["layers"][0]["shape"] = [99, 32]
        (entry / "manifest.json").write_text(json.dumps(manifest))
    calls = _count_forward(fx)
    with pytest.warns(UserWarning, match="unusable .*recomputing"):
        again = fx.extract(sentences)
    assert calls and again.provenance["from_cache"] is False
    np.testing.assert_allclose(again["layer.1"], good, atol=1e-6)
    assert fx.extract(sentences).provenance["from_cache"] is True


def test_env_cache_and_no_cache(bert_dir, sentences, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path / "env"))
    fx = FeatureExtractor(bert_dir, verbose=False)
    assert fx.extract(sentences).provenance["cache_key"] is not None
    assert len(FeatureStore(tmp_path / "env").entries()) == 1
    nofx = FeatureExtractor(bert_dir, verbose=False, cache_dir=False)
    feats = nofx.extract(sentences)
    assert feats.provenance["cache_key"] is None and not isinstance(feats["layer.0"], np.memmap)


def test_float16_output(bert_dir, sentences, tmp_path):
    f16 = _fx(bert_dir, tmp_path, dtype="float16").extract(sentences)
    f32 = _fx(bert_dir, tmp_path).extract(sentences)
    assert f16["layer.1"].dtype == np.float16
    np.testing.assert_allclose(f16["layer.1"].astype(np.float32), f32["layer.1"], atol=5e-3)
