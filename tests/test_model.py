"Tests for llm_course.model: the Transformer contract, parameter counts, KV cache, save/load and Hugging Face conversion."
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_course.model import (PRESETS, KVCache, ModelConfig, RMSNorm, Transformer, from_hf, hf_architecture,
                              load_pretrained, save_pretrained, to_hf)

SMALL = dict(vocab_size=64, block_size=32, n_layer=2, n_head=4, d_model=32)
FLAVOURS = {
    "llama": ModelConfig(**SMALL, d_ff=48),
    "gpt2": ModelConfig(**SMALL, style="gpt2"),
    "gqa-sinusoidal": ModelConfig(**SMALL, n_kv_head=2, pos="sinusoidal"),
    "mqa-layernorm-gelu": ModelConfig(**SMALL, n_kv_head=1, norm="layernorm", mlp="gelu", bias=True, tie_weights=True),
}


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    return Transformer(cfg).eval()


@pytest.mark.parametrize("name", list(FLAVOURS))
def test_shapes_and_contract(name):
    cfg = FLAVOURS[name]
    m = _model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, 10))
    logits = m(idx)
    assert logits.shape == (3, 10, cfg.vocab_size)
    h = m.features(idx)
    assert h.shape == (3, 10, cfg.d_model) and torch.equal(m.lm_head(h), logits)
    logits2, attn = m(idx, return_attention=True)
    assert attn.shape == (cfg.n_layer, 3, cfg.n_head, 10, 10)
    assert torch.allclose(logits2, logits, atol=1e-5)
    assert torch.allclose(attn.sum(-1), torch.ones(())) and attn.triu(1).eq(0).all()


@pytest.mark.parametrize("name", list(FLAVOURS))
def test_param_formula(name):
    cfg = FLAVOURS[name]
    assert Transformer(cfg).n_params() == cfg.n_params() == sum(p.numel() for p in Transformer(cfg).parameters())


@pytest.mark.parametrize("name", ["tiny", "tiny-gpt2", "gpt2-small", "llama-100m", "llama2-7b"])
def test_presets_param_formula_on_meta(name):
    cfg = ModelConfig.preset(name)
    with torch.device("meta"): m = Transformer(cfg)
    assert m.n_params() == cfg.n_params()


def test_llama2_7b_count():
    assert ModelConfig.preset("llama2-7b").n_params() == 6_738_415_616
    assert ModelConfig.preset("gpt2-small").n_params() == 124_439_808


def test_causality():
    m = _model(FLAVOURS["llama"])
    idx = torch.randint(0, 64, (2, 12))
    a = m(idx)
    idx[:, 7] = (idx[:, 7] + 1) % 64
    b = m(idx)
    assert torch.equal(a[:, :7], b[:, :7]) and not torch.equal(a[:, 7:], b[:, 7:])


def test_non_causal_sees_future():
    m = _model(FLAVOURS["llama"])
    idx = torch.randint(0, 64, (1, 8))
    a = m(idx, causal=False)
    idx[:, -1] = (idx[:, -1] + 1) % 64
    assert not torch.allclose(m(idx, causal=False)[:, 0], a[:, 0])


@pytest.mark.parametrize("name", list(FLAVOURS))
def test_kv_cache_matches_full_forward(name):
    cfg = FLAVOURS[name]
    m = _model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 20))
    with torch.no_grad():
        full = m(idx)
        cache = KVCache(cfg, 2)
        parts = [m(idx[:, :5], cache=cache), m(idx[:, 5:6], cache=cache), m(idx[:, 6:13], cache=cache)]
        parts += [m(idx[:, t:t + 1], cache=cache) for t in range(13, 20)]
    assert cache.pos == 20
    assert (torch.cat(parts, 1) - full).abs().max() <= 1e-5
    cache.reset()
    assert cache.pos == 0 and (m(idx[:, :4], cache=cache) - full[:, :4]).abs().max() <= 1e-5


def test_kv_cache_preallocated_and_crop():
    cfg = FLAVOURS["llama"]
    m = _model(cfg)
    cache = KVCache(cfg, 1, "cpu", torch.float32)
    assert cache.k.shape == (cfg.n_layer, 1, cfg.n_kv_head, cfg.block_size, cfg.head_dim)
    idx = torch.randint(0, 64, (1, 10))
    full = m(idx)
    m(idx[:, :8], cache=cache)
    cache.crop(6)
    assert (m(idx[:, 6:], cache=cache) - full[:, 6:]).abs().max() <= 1e-5


def test_kv_cache_with_attention_weights():
    cfg = FLAVOURS["gpt2"]
    m = _model(cfg)
    idx = torch.randint(0, 64, (1, 9))
    _, full_attn = m(idx, return_attention=True)
    cache = KVCache(cfg, 1)
    m(idx[:, :6], cache=cache)
    _, attn = m(idx[:, 6:], cache=cache, return_attention=True)
    assert attn.shape == (cfg.n_layer, 1, cfg.n_head, 3, 9)
    assert torch.allclose(attn, full_attn[..., 6:, :], atol=1e-6)


def _left_padded(pad: int, n: int = 9):
    "A Llama-style model, a random sequence, the same sequence after `pad` pad tokens, and its attention mask."
    m = _model(FLAVOURS["llama"])  # seeds the generator, so the sequence is the same every run
    seq = torch.randint(1, 64, (1, n))
    padded = torch.cat([torch.zeros(1, pad, dtype=torch.long), seq], 1)
    return m, seq, padded, torch.tensor([[0] * pad + [1] * n])


def test_left_padding_with_rope_is_invariant():
    m, seq, padded, am = _left_padded(pad=4)
    out = m(padded, attention_mask=am)
    assert torch.isfinite(out).all() and (out[:, 4:] - m(seq)).abs().max() <= 1e-5
    batch = torch.cat([padded, torch.randint(1, 64, (1, 13))])
    out_b = m(batch, attention_mask=torch.cat([am, torch.ones(1, 13, dtype=torch.long)]))
    assert (out_b[:1, 4:] - m(seq)).abs().max() <= 1e-5


def test_padding_mask_with_cache():
    m, seq, padded, am = _left_padded(pad=3)
    full = m(padded, attention_mask=am)
    cache = KVCache(m.config, 1)
    a = m(padded[:, :8], cache=cache, attention_mask=am[:, :8])
    b = m(padded[:, 8:], cache=cache, attention_mask=am)
    assert (torch.cat([a, b], 1)[:, 3:] - full[:, 3:]).abs().max() <= 1e-5


def test_init_scaling():
    cfg = ModelConfig(**{**SMALL, "n_layer": 8}, init_std=0.02)
    m = Transformer(cfg)
    proj = torch.cat([b.attn.proj.weight.flatten() for b in m.blocks])
    other = torch.cat([b.attn.qkv.weight.flatten() for b in m.blocks])
    assert abs(proj.std().item() - 0.02 / 4) < 0.001 and abs(other.std().item() - 0.02) < 0.002
    assert all(torch.equal(b.norm1.weight, torch.ones(32)) for b in m.blocks)


def test_weight_tying():
    m = Transformer(FLAVOURS["gpt2"])
    assert m.lm_head.weight is m.tok_emb.weight
    untied = Transformer(FLAVOURS["llama"])
    assert untied.lm_head.weight is not untied.tok_emb.weight


def test_rmsnorm_matches_torch():
    x = torch.randn(4, 16) * 3
    ours, ref = RMSNorm(16, 1e-6), nn.RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        w = torch.randn(16); ours.weight.copy_(w); ref.weight.copy_(w)
    assert (ours(x) - ref(x)).abs().max() <= 1e-5


def test_gradients_flow_everywhere():
    m = Transformer(FLAVOURS["gqa-sinusoidal"]).train()
    idx = torch.randint(0, 64, (2, 12))
    F.cross_entropy(m(idx).flatten(0, 1), idx.roll(-1, 1).flatten()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_dropout_only_in_training():
    m = Transformer(ModelConfig(**SMALL, dropout=0.5))
    idx = torch.randint(0, 64, (1, 8))
    m.eval(); assert torch.equal(m(idx), m(idx))
    m.train(); assert not torch.equal(m(idx), m(idx))


def test_save_load_roundtrip(tmp_path):
    for name, cfg in FLAVOURS.items():
        m = _model(cfg)
        save_pretrained(m, tmp_path / name)
        m2 = load_pretrained(tmp_path / name)
        assert m2.config == cfg
        idx = torch.randint(0, 64, (2, 7))
        assert torch.equal(m(idx), m2.eval()(idx))
        assert (m2.lm_head.weight is m2.tok_emb.weight) == cfg.tie_weights
    assert sorted(p.name for p in (tmp_path / "llama").iterdir()) == ["checksums.json", "config.json", "model.safetensors"]


def test_load_with_dtype(tmp_path):
    m = _model(FLAVOURS["llama"])
    save_pretrained(m, tmp_path)
    assert load_pretrained(tmp_path, dtype=torch.bfloat16).tok_emb.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("cfg", [ModelConfig(**SMALL, d_ff=48, n_kv_head=2, rope_theta=500000.0),
                                 ModelConfig(**SMALL, style="gpt2"),
                                 ModelConfig(**SMALL, style="gpt2", tie_weights=False),
                                 ModelConfig(**SMALL, d_ff=40, bias=True, tie_weights=True)])
def test_hf_logits_match_and_roundtrip(cfg):
    m = _model(cfg)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 1: p.add_(torch.randn_like(p) * 0.1)
    hf = to_hf(m)
    assert type(hf).__name__ == ("LlamaForCausalLM" if cfg.style == "llama" else "GPT2LMHeadModel")
    idx = torch.randint(0, 64, (2, 16))
    with torch.no_grad():
        assert (hf(idx).logits - m(idx)).abs().max() <= 1e-4
        assert torch.equal(from_hf(hf)(idx), m(idx))


@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_hf_save_pretrained_generate(tmp_path, style):
    from transformers import AutoModelForCausalLM
    m = _model(FLAVOURS[style])
    to_hf(m).save_pretrained(tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)
    prompt = torch.randint(0, 64, (1, 5))
    out = hf.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
    ids, cache = prompt, KVCache(m.config, 1)
    with torch.no_grad():
        nxt = m(ids, cache=cache)[:, -1:].argmax(-1)
        for _ in range(6):
            ids = torch.cat([ids, nxt], 1)
            nxt = m(nxt, cache=cache)[:, -1:].argmax(-1)
    assert torch.equal(out, ids)
    assert torch.equal(from_hf(tmp_path)(prompt), m(prompt))


def test_hf_architecture_names():
    assert hf_architecture(FLAVOURS["llama"]) == "llama" and hf_architecture(FLAVOURS["gpt2"]) == "gpt2"


def test_presets_exist():
    assert {"tiny", "gpt2-small", "llama-100m", "llama2-7b"} <= set(PRESETS)
    assert ModelConfig.preset("tiny", n_layer=2).n_layer == 2


@pytest.mark.parametrize("name", ["llama", "mqa-layernorm-gelu"])
def test_meta_build_then_materialise(name):
    cfg = FLAVOURS[name]
    with torch.device("meta"): m = Transformer(cfg)
    m = m.to_empty(device="cpu")
    m.init_weights()
    assert (m.lm_head.weight is m.tok_emb.weight) == cfg.tie_weights
    assert torch.isfinite(m(torch.randint(0, 64, (1, 5)))).all()
    assert m.to(torch.float64).n_params() == cfg.n_params()
