"Tests for llm_course.attention: parity with PyTorch's SDPA and Hugging Face's Llama RoPE, masks, heads, GQA."
import math

import pytest
import torch
import torch.nn.functional as F

from llm_course.attention import (MultiHeadAttention, apply_rope, attention, attention_weights, causal_mask, check_heads,
                                  merge_heads, padding_mask, repeat_kv, rope_cos_sin, sinusoidal_positions, split_heads)
from llm_course.core import ConfigError

f64 = torch.float64


def _qkv(B=2, H=4, T=6, S=None, d=8, Hkv=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    S = T if S is None else S
    Hkv = H if Hkv is None else Hkv
    return (torch.randn(B, H, T, d, generator=g, dtype=f64), torch.randn(B, Hkv, S, d, generator=g, dtype=f64),
            torch.randn(B, Hkv, S, d, generator=g, dtype=f64))


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_sdpa(causal, need_weights):
    q, k, v = _qkv()
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    out, w = attention(q, k, v, causal=causal, need_weights=need_weights)
    assert (out - ref).abs().max() <= 1e-10
    assert (w is not None) == need_weights


@pytest.mark.parametrize("need_weights", [False, True])
def test_padding_and_causal_mask(need_weights):
    q, k, v = _qkv(T=5)
    keep = padding_mask(torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])) | torch.eye(5, dtype=torch.bool)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=keep & causal_mask(5))
    out, _ = attention(q, k, v, causal=True, mask=keep, need_weights=need_weights)
    assert (out - ref).abs().max() <= 1e-10


def test_cache_causal_is_bottom_right():
    q, k, v = _qkv(T=3, S=7)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(3, 7))
    for nw in (False, True):
        assert (attention(q, k, v, causal=True, need_weights=nw)[0] - ref).abs().max() <= 1e-10
    w = attention_weights(q, k, causal=True)
    assert w[..., 0, 5:].eq(0).all() and w[..., 2, :].gt(0).all()


def test_causal_mask_shapes():
    assert causal_mask(4).equal(torch.ones(4, 4, dtype=torch.bool).tril())
    assert causal_mask(1, 9).all()
    with pytest.raises(ConfigError): causal_mask(4, 2)


def test_weights_rows_sum_to_one():
    q, k, _ = _qkv()
    w = attention_weights(q, k, causal=True)
    assert torch.allclose(w.sum(-1), torch.ones_like(w[..., 0])) and w.triu(1).eq(0).all()


def test_gqa_matches_repeated_heads():
    q, k, v = _qkv(H=6, Hkv=2)
    ref = F.scaled_dot_product_attention(q, repeat_kv(k, 3), repeat_kv(v, 3), is_causal=True)
    for nw in (False, True):
        assert (attention(q, k, v, causal=True, need_weights=nw)[0] - ref).abs().max() <= 1e-10


def test_repeat_kv_matches_hf():
    from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv
    x = torch.randn(2, 3, 5, 4)
    for n in (1, 2, 4): assert repeat_kv(x, n).equal(hf_repeat_kv(x, n))


def test_split_merge_roundtrip():
    x = torch.randn(3, 7, 24)
    assert merge_heads(split_heads(x, 6)).equal(x)
    assert split_heads(x, 6)[:, 2].equal(x[..., 8:12])


def test_rope_matches_hf_llama():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
    hf = LlamaRotaryEmbedding(LlamaConfig(hidden_size=128, num_attention_heads=2, rope_theta=10000.0))
    hc, hs = hf(torch.zeros(1), torch.arange(50)[None])
    cos, sin = rope_cos_sin(50, 64)
    assert torch.equal(torch.cat([cos, cos], -1), hc[0]) and torch.equal(torch.cat([sin, sin], -1), hs[0])
    q, k = torch.randn(1, 2, 50, 64, dtype=f64), torch.randn(1, 2, 50, 64, dtype=f64)
    hq, hk = apply_rotary_pos_emb(q, k, hc.double(), hs.double())
    assert (apply_rope(q, cos.double(), sin.double()) - hq).abs().max() <= 1e-12
    assert (apply_rope(k, cos.double(), sin.double()) - hk).abs().max() <= 1e-12


def test_rope_relative_position():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(32, generator=g, dtype=f64), torch.randn(32, generator=g, dtype=f64)
    cos, sin = rope_cos_sin(600, 32, dtype=f64)
    rot = lambda x, p: apply_rope(x, cos[p], sin[p])
    for off in (0, 2, 9):
        s = [float(rot(q, m) @ rot(k, m + off)) for m in (0, 11, 500)]
        assert max(s) - min(s) < 1e-9


def test_sinusoidal_positions():
    pe = sinusoidal_positions(10, 8)
    assert pe.shape == (10, 8)
    assert math.isclose(pe[3, 2].item(), math.sin(3 / 10000 ** (2 / 8)), rel_tol=1e-6)
    assert math.isclose(pe[3, 3].item(), math.cos(3 / 10000 ** (2 / 8)), rel_tol=1e-6)


def test_multihead_attention_paths_agree_and_are_causal():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, n_head=4, n_kv_head=2).double().eval()
    x = torch.randn(2, 9, 32, dtype=f64)
    cos, sin = rope_cos_sin(9, 8, dtype=f64)
    rope = (cos[:, None], sin[:, None])
    y, _ = mha(x, rope=rope)
    y2, w = mha(x, rope=rope, need_weights=True)
    assert (y - y2).abs().max() <= 1e-10 and w.shape == (2, 4, 9, 9)
    x2 = x.clone(); x2[:, -1] += 1
    assert torch.allclose(mha(x2, rope=rope)[0][:, :-1], y[:, :-1], atol=1e-12)


def test_head_errors_have_hints():
    with pytest.raises(ConfigError, match="pick n_head"): check_heads(30, 4)
    with pytest.raises(ConfigError, match="pick n_kv_head"): check_heads(32, 4, 3)
    with pytest.raises(ConfigError, match="must be an int ≥ 1"): check_heads(32, 0)
    with pytest.raises(ConfigError): MultiHeadAttention(30, 4)
    with pytest.raises(ConfigError, match="n_kv_head must divide"):
        q, k, v = _qkv(H=4, Hkv=3)
        attention(q, k, v)
    with pytest.raises(ConfigError, match="even"): rope_cos_sin(4, 7)
    with pytest.raises(ConfigError, match="attention_mask"): padding_mask(torch.ones(3))
