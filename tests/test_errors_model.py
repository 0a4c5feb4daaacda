"Bad-input catalogue for llm_course.model: every error is one of the package's, with a hint."
import json

import pytest
import torch

from llm_course.core import CheckpointError, ConfigError, LLMCourseError
from llm_course.model import KVCache, ModelConfig, Transformer, from_hf, load_pretrained, save_pretrained, to_hf

SMALL = dict(vocab_size=64, block_size=16, n_layer=1, n_head=2, d_model=16)


@pytest.mark.parametrize("kwargs, match", [
    (dict(d_model=30, n_head=4), "does not divide d_model"),
    (dict(n_head=4, n_kv_head=3), "does not divide n_head"),
    (dict(style="bert"), "unknown style"),
    (dict(norm="batchnorm"), "not supported"),
    (dict(mlp="relu"), "not supported"),
    (dict(pos="alibi"), "not supported"),
    (dict(vocab_size=0), "must be an int ≥ 1"),
    (dict(block_size=-1), "must be an int ≥ 1"),
    (dict(dropout=1.0), "dropout"),
    (dict(d_model=24, n_head=8, pos="rope"), "even head size"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match): ModelConfig(**kwargs)


def test_bad_preset_and_fields():
    with pytest.raises(ConfigError, match="choose one of"): ModelConfig.preset("gpt-5")
    with pytest.raises(ConfigError, match="valid fields"): ModelConfig.preset("tiny", layers=3)
    with pytest.raises(ConfigError, match="valid fields"): ModelConfig.from_dict({"d_modle": 3})


def test_prompt_longer_than_block_size():
    m = Transformer(ModelConfig(**SMALL))
    with pytest.raises(ConfigError, match="crop the prompt"): m(torch.zeros(1, 17, dtype=torch.long))
    cache = KVCache(m.config, 1)
    m(torch.zeros(1, 10, dtype=torch.long), cache=cache)
    with pytest.raises(ConfigError, match="after 10 cached"): m(torch.zeros(1, 7, dtype=torch.long), cache=cache)
    assert cache.pos == 10   # a refused call changes nothing


def test_bad_idx():
    m = Transformer(ModelConfig(**SMALL))
    for bad in (torch.zeros(4, dtype=torch.long), torch.rand(1, 4), [[1, 2]], torch.zeros(1, 0, dtype=torch.long)):
        with pytest.raises(ConfigError): m(bad)


def test_bad_cache_use():
    m = Transformer(ModelConfig(**SMALL))
    with pytest.raises(ConfigError, match="batch_size=3"): m(torch.zeros(3, 2, dtype=torch.long), cache=KVCache(m.config, 2))
    with pytest.raises(ConfigError, match="dtype"):
        m(torch.zeros(1, 2, dtype=torch.long), cache=KVCache(m.config, 1, "cpu", torch.bfloat16))
    with pytest.raises(ConfigError, match="crop"): KVCache(m.config, 1).crop(3)


def test_bad_attention_mask_shape():
    m = Transformer(ModelConfig(**SMALL))
    with pytest.raises(ConfigError, match="attention_mask"):
        m(torch.zeros(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4))


def test_load_missing_and_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"): load_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"): load_pretrained(tmp_path / "empty")
    m = Transformer(ModelConfig(**SMALL))
    save_pretrained(m, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"): load_pretrained(tmp_path / "m")
    save_pretrained(m, tmp_path / "m2")
    (tmp_path / "m2" / "config.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="not valid JSON"): load_pretrained(tmp_path / "m2")
    save_pretrained(m, tmp_path / "m3")
    (tmp_path / "m3" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="save again"): load_pretrained(tmp_path / "m3")


def test_load_config_mismatch(tmp_path):
    save_pretrained(Transformer(ModelConfig(**SMALL)), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["d_ff"] = 99
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match"): load_pretrained(tmp_path)
    cfg["d_ff"], cfg["n_layer"] = None, 3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="missing"): load_pretrained(tmp_path)
    cfg["n_layer"], cfg["flavour"] = 1, "x"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="not a valid model config"): load_pretrained(tmp_path)


def test_hf_folder_given_to_load_pretrained(tmp_path):
    to_hf(Transformer(ModelConfig(**SMALL))).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="from_hf"): load_pretrained(tmp_path)


def test_unexportable_config():
    with pytest.raises(ConfigError, match="no Hugging Face architecture"): to_hf(Transformer(ModelConfig(**SMALL, pos="learned")))
    with pytest.raises(ConfigError, match="no Hugging Face architecture"):
        to_hf(Transformer(ModelConfig(**SMALL, style="gpt2", n_kv_head=1)))


def test_unknown_hf_architecture(tmp_path):
    from transformers import BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM
    bert = BertForMaskedLM(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    with pytest.raises(CheckpointError, match="supported architectures"): from_hf(bert)
    scaled = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, rope_scaling={"rope_type": "linear", "factor": 2.0}))
    with pytest.raises(CheckpointError, match="RoPE scaling"): from_hf(scaled)
    with pytest.raises(CheckpointError, match="does not exist"): from_hf(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="cannot load"): from_hf(tmp_path)
    with pytest.raises(CheckpointError): from_hf(object())


def test_errors_are_package_errors():
    assert issubclass(ConfigError, LLMCourseError) and issubclass(CheckpointError, LLMCourseError)


def test_full_cache_asks_for_a_reset_not_a_crop():
    m = Transformer(ModelConfig(**SMALL))
    cache = KVCache(m.config, 1)
    m(torch.zeros(1, 16, dtype=torch.long), cache=cache)
    with pytest.raises(ConfigError, match=r"1 tokens after 16 cached ones exceed .*: reset the cache \(cache.reset\(\)\)"):
        m(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_training_after_a_forward_under_inference_mode():
    m = Transformer(ModelConfig(**SMALL))
    with torch.inference_mode(): m(torch.zeros(1, 4, dtype=torch.long))  # builds the cached RoPE tables
    m(torch.zeros(1, 4, dtype=torch.long)).sum().backward()  # they must still be usable in autograd
    assert m.tok_emb.weight.grad is not None
