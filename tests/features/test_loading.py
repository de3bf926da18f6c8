"""Models load as transformers users expect: offline mode from the environment, weights dtype, device map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainalign.features import FeatureExtractor
from brainalign.features import _models


@pytest.mark.parametrize("env, expected", [
    ({}, False), ({"HF_HUB_OFFLINE": "1"}, True), ({"TRANSFORMERS_OFFLINE": "yes"}, True),
    ({"HF_HUB_OFFLINE": "true"}, True), ({"HF_HUB_OFFLINE": "0"}, False), ({"HF_HUB_OFFLINE": ""}, False),
    ({"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "ON"}, True),
])
def test_local_files_only_follows_the_environment(monkeypatch, env, expected):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert _models.resolve_local_files_only(None) is expected
    assert _models.resolve_local_files_only(True) is True and _models.resolve_local_files_only(False) is False


def test_the_test_suite_runs_offline():
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.fixture
def recorded(monkeypatch):
    """``AutoConfig.from_pretrained`` replaced by a recorder that fails like a missing model."""
    import transformers

    calls = []

    def fake(name, **kwargs):
        calls.append(kwargs)
        raise OSError(f"{name} is not here (the test replaced from_pretrained)")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", fake)
    return calls


def test_loading_by_id_passes_the_decision_to_transformers(monkeypatch, recorded):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(OSError, match=r"(?s)local_files_only=False, trust_remote_code=False\).*check the id, your "
                                      r"internet access"):
        FeatureExtractor("gpt2")
    assert recorded[-1] == {"local_files_only": False, "trust_remote_code": False}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match=r"(?s)local_files_only=True.*unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE"):
        FeatureExtractor("gpt2")
    assert recorded[-1]["local_files_only"] is True
    with pytest.raises(OSError):
        FeatureExtractor("gpt2", local_files_only=False, trust_remote_code=True)
    assert recorded[-1] == {"local_files_only": False, "trust_remote_code": True}


def test_weight_kwargs_follow_transformers_and_accelerate(monkeypatch):
    import importlib.util

    import transformers

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name))
    assert _models._weight_kwargs(None, torch.device("cpu")) == {}
    kw = _models._weight_kwargs(torch.bfloat16, torch.device("cpu"))
    assert kw == {"dtype": torch.bfloat16}  # transformers >= 4.56 calls it dtype
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "accelerate" else real(name))
    monkeypatch.setattr(transformers, "__version__", "4.45.2")
    kw = _models._weight_kwargs(torch.float16, torch.device("cuda", 0))
    assert kw == {"torch_dtype": torch.float16, "device_map": {"": "cuda:0"}, "low_cpu_mem_usage": True}
    monkeypatch.setattr(transformers, "__version__", "5.1.0")
    assert _models._weight_kwargs(None, torch.device("cuda")) == {"device_map": {"": "cuda"}}


def test_bfloat16_weights(bert_dir, sentences):
    fx = FeatureExtractor(bert_dir, torch_dtype="bfloat16", cache_dir=False)
    assert next(fx.model.parameters()).dtype == torch.bfloat16
    feats = fx.extract(sentences)
    ref = FeatureExtractor(bert_dir, torch_dtype=torch.float32, cache_dir=False).extract(sentences)
    assert feats.provenance["compute"] == "cpu-bfloat16" and ref.provenance["compute"] == "cpu-float32"
    assert feats["layer.1"].dtype == np.float32
    err = np.linalg.norm(feats["layer.1"] - ref["layer.1"]) / np.linalg.norm(ref["layer.1"])
    assert 0 < err < 0.05
    with pytest.raises(ValueError, match="Invalid value for the 'torch_dtype' parameter"):
        FeatureExtractor(bert_dir, torch_dtype="int8")
    with pytest.raises(ValueError, match=r"torch_dtype= and model_kwargs= apply when the model is loaded .*already "
                                         r"loaded: convert it yourself"):
        FeatureExtractor(fx.model, processor=fx.processor, torch_dtype="bfloat16")


def test_model_kwargs_reach_from_pretrained(bert_dir):
    fx = FeatureExtractor(bert_dir, model_kwargs={"attn_implementation": "eager"})
    assert fx.model.config._attn_implementation == "eager"
    with pytest.raises(OSError, match="Could not load the model"):
        FeatureExtractor(bert_dir, model_kwargs={"revision": "no-such-branch", "subfolder": "nowhere"})


def test_half_precision_weights_keep_the_fast_path(gpt2_dir, monkeypatch):
    """bf16 GPT-2, early stop and 8-token cache chunks: checked with the half-precision tolerance."""
    from brainalign.features import _forward

    monkeypatch.setattr(_forward, "KV_CHUNK", 8)
    from brainalign import Stimuli

    words = Stimuli.from_words("the cat sat on the mat and then it ran under the big red house".split() * 8,
                               np.arange(120) * 0.3)
    fx = FeatureExtractor(gpt2_dir, torch_dtype="bfloat16", layers="layer.0", context=8, cache_dir=False)
    calls = []
    fx.model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw["input_ids"].shape[1]), with_kwargs=True)
    feats = fx.extract(words)
    assert sorted(set(calls)) == [4, 8, 64] and calls.count(64) == 1  # probe, 8-token chunks, one check
    assert fx.is_causal and fx._fast.checked and fx._fast.ok
    ref = FeatureExtractor(gpt2_dir, layers="layer.0", context=8, cache_dir=False).extract(words)
    err = np.linalg.norm(feats["layer.0"] - ref["layer.0"]) / np.linalg.norm(ref["layer.0"])
    assert err < 0.05
