"""Plain nn.Modules: forward hooks, preprocess, OOM halving, conv outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from brainalign import Stimuli
from brainalign.features import FeatureExtractor


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        h = self.pool(self.act(self.conv(x)))
        return self.fc(h.flatten(1))


def _pre(images):
    return torch.from_numpy(np.stack([np.asarray(i, np.float32).transpose(2, 0, 1) for i in images]))


def test_hooks_equal_manual_forward(rng):
    torch.manual_seed(0)
    model = TinyCNN().eval()
    imgs = [rng.random((8, 8, 3)).astype(np.float32) for _ in range(5)]
    fx = FeatureExtractor(model, preprocess=_pre, verbose=False, cache_dir=False, batch_size=2)
    assert fx.layer_names == ["conv", "act", "pool", "fc"]
    feats = fx.extract(Stimuli.from_images(imgs))
    assert feats.layer_names == ["conv", "act", "pool", "fc"]
    x = _pre(imgs)
    with torch.no_grad():
        conv = model.conv(x)
        act = model.act(conv)
        pool = model.pool(act)
        fc = model.fc(pool.flatten(1))
    np.testing.assert_allclose(feats["conv"], conv.mean((2, 3)).numpy(), atol=1e-6)
    np.testing.assert_allclose(feats["act"], act.mean((2, 3)).numpy(), atol=1e-6)
    np.testing.assert_allclose(feats["fc"], fc.numpy(), atol=1e-6)
    flat = FeatureExtractor(model, layers=["pool"], pooling="none", preprocess=_pre, verbose=False).extract(imgs)
    np.testing.assert_allclose(flat["pool"], pool.flatten(1).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"pooling='last' has no meaning for the output of layer 'conv'"):
        FeatureExtractor(model, layers="conv", pooling="last", preprocess=_pre, verbose=False).extract(imgs)


def test_layers_by_regex_and_execution_order(rng):
    model = nn.Sequential()
    model.add_module("b_second", nn.Linear(4, 3))
    model.add_module("a_first", nn.Linear(3, 2))
    fx = FeatureExtractor(model, layers=["a_first", "b_second"], verbose=False, cache_dir=False)
    feats = fx.extract([rng.random((4,)).astype(np.float32)[None].repeat(2, 0) for _ in range(3)])
    assert feats.layer_names == ["b_second", "a_first"]  # the order they run in
    fx = FeatureExtractor(model, layers=r".*_first", verbose=False)
    assert [r.name for r in fx._refs] == ["a_first"]
    with pytest.raises(KeyError, match=r"Unknown layer 'a_frist'.*Close matches: \['a_first'\]"):
        FeatureExtractor(model, layers="a_frist", verbose=False)


class OOMAbove(nn.Module):
    """Raises CUDA-style out-of-memory errors for batches larger than ``limit``."""

    def __init__(self, limit):
        super().__init__()
        self.limit, self.sizes = limit, []
        self.lin = nn.Linear(6, 3)

    def forward(self, x):
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.lin(x.flatten(1))


def test_auto_batch_size_halves_on_oom(rng):
    torch.manual_seed(0)
    model = OOMAbove(10)
    imgs = [rng.random((2, 3)).astype(np.float32) for _ in range(30)]
    fx = FeatureExtractor(model, layers="lin", verbose=False, cache_dir=False)
    feats = fx.extract(imgs)
    assert model.sizes[:3] == [30, 15, 7] and fx.batch_size_ == 7  # all 30 items, halved twice
    assert sum(model.sizes[2:]) == 30
    with torch.no_grad():
        ref = model.lin(torch.from_numpy(np.stack(imgs)).flatten(1)).numpy()
    np.testing.assert_allclose(feats["lin"], ref, atol=1e-6)
    fixed = FeatureExtractor(OOMAbove(10), layers="lin", batch_size=16, verbose=False)
    with pytest.raises(MemoryError, match=r"Out of memory with a batch of 16 .*batch_size='auto'"):
        fixed.extract(imgs)


def test_mixed_sizes_without_processor_are_refused(rng):
    fx = FeatureExtractor(TinyCNN(), verbose=False)
    imgs = [rng.random((8, 8, 3)), rng.random((6, 8, 3))]
    with pytest.raises(ValueError, match=r"different shapes \[\(6, 8, 3\), \(8, 8, 3\)\]"):
        fx.extract(imgs)
    with pytest.raises(ValueError, match="need their sampling rate"):
        fx.extract([np.zeros(100)])
    with pytest.raises(TypeError, match="model must be"):
        FeatureExtractor(42)


class CharModel(nn.Module):
    """A character-level text model: embedding then a linear layer (no tokenizer)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(128, 6)
        self.proj = nn.Linear(6, 3)

    def forward(self, codes):
        return self.proj(self.embed(codes))


def _chars(texts):
    width = max(len(t) for t in texts)
    codes = torch.zeros((len(texts), width), dtype=torch.long)
    for i, t in enumerate(texts):
        codes[i, : len(t)] = torch.tensor([min(ord(c), 127) for c in t])
    return codes


def test_plain_module_reads_text_through_its_preprocess():
    torch.manual_seed(0)
    model = CharModel().eval()
    texts = ["a cat", "the dog ran", "hi"]
    fx = FeatureExtractor(model, preprocess=_chars, verbose=False, cache_dir=False, batch_size=2)
    feats = fx.extract(Stimuli.from_texts(texts))
    assert feats.layer_names == ["embed", "proj"]
    # each text runs alone (no padding can leak into the mean over its characters)
    with torch.no_grad():
        for i, t in enumerate(texts):
            want = model.proj(model.embed(_chars([t]))).mean(1)[0].numpy()
            np.testing.assert_allclose(feats["proj"][i], want, atol=1e-6)
    assert feats["proj"].shape == (3, 3)


def test_plain_module_text_follows_the_empty_text_rule():
    torch.manual_seed(0)
    model = CharModel().eval()
    fx = FeatureExtractor(model, preprocess=_chars, verbose=False, cache_dir=False)
    with pytest.warns(UserWarning, match=r"1 items gave no token \(e\.g\. row 1\)"):
        feats = fx.extract(Stimuli.from_texts(["a cat", " ", "hi"]))
    np.testing.assert_array_equal(feats["proj"][1], 0)
    assert np.abs(feats["proj"][[0, 2]]).sum() > 0
