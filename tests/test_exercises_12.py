"""Chapter 12's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solutions."""
import math

import pytest
import torch
import torch.nn.functional as F

import llm_course.attention as attention_module
from conftest import rejected, solutions
from llm_course.attention import (attention, causal_mask, check_cached_causal_mask, check_dot_product_attention, check_rope_rotate,
                                  rope_cos_sin)

SOL = solutions("12_attention")


def stub(*args): raise NotImplementedError


def test_stubs_are_not_done():
    for check in (check_cached_causal_mask, check_rope_rotate, check_dot_product_attention):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


def test_cached_causal_mask():
    assert check_cached_causal_mask(SOL["cached_causal_mask"])
    off_by_one = lambda T, offset: torch.ones(T, offset + T, dtype=torch.bool).tril(offset - 1)
    ignores_offset = lambda T, offset: torch.ones(T, T, dtype=torch.bool).tril()
    top_left = lambda T, offset: torch.ones(T, offset + T, dtype=torch.bool).tril()
    float_mask = lambda T, offset: torch.ones(T, offset + T).tril(offset)
    inverted = lambda T, offset: ~causal_mask(T, offset + T)
    for wrong, words in ((off_by_one, "off by one"), (ignores_offset, "offset is ignored"), (top_left, "aligned top-left"),
                         (float_mask, "boolean mask"), (inverted, "True means *may attend*")):
        r = check_cached_causal_mask(wrong)
        assert not r and r.done and words in r.message, r


def _rotate(x, angle):
    x1, x2 = x.chunk(2)
    return torch.cat([x1 * angle.cos() - x2 * angle.sin(), x2 * angle.cos() + x1 * angle.sin()])


def test_rope_rotate():
    assert check_rope_rotate(SOL["rope_rotate"])
    def interleaved(x, pos, theta=10000.0):   # RoFormer's pairs (0,1), (2,3), … instead of the course's (i, i + d/2)
        cos, sin = rope_cos_sin(torch.tensor([pos]), x.shape[-1], theta, dtype=torch.float64)
        a, b = x[0::2], x[1::2]
        return torch.stack([a * cos[0] - b * sin[0], b * cos[0] + a * sin[0]], -1).reshape(x.shape)
    def wrong_base(x, pos, theta=10000.0):    # always Llama 2's base
        d = x.shape[-1]
        return _rotate(x, pos * 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d))
    def wrong_exponent(x, pos, theta=10000.0):  # theta^(-i/d) instead of theta^(-2i/d)
        d = x.shape[-1]
        return _rotate(x, pos * theta ** (-torch.arange(d // 2, dtype=torch.float64) / d))
    def backwards(x, pos, theta=10000.0):
        return SOL["rope_rotate"](x, -pos, theta)
    for wrong, words in ((interleaved, "neighbouring channels"), (wrong_base, "ignored `theta`"),
                         (wrong_exponent, "wrong frequencies"), (backwards, "wrong way")):
        r = check_rope_rotate(wrong)
        assert not r and r.done and words in r.message, r


def _attn(q, k, v, causal, scale, dim=-1, exp=False, top_left=False):
    T, S = q.shape[-2], k.shape[-2]
    s = q @ k.transpose(-2, -1) * scale
    if causal:
        m = torch.ones(T, S, dtype=torch.bool).tril() if top_left else causal_mask(T, S)
        s = s.masked_fill(~m, -math.inf)
    if exp: w = s.exp() / s.exp().sum(dim, keepdim=True)
    else: w = s.softmax(dim)
    return w @ v


def test_dot_product_attention():
    assert check_dot_product_attention(SOL["dot_product_attention"])
    d = lambda q: q.shape[-1]
    no_scale = lambda q, k, v, causal=False: _attn(q, k, v, causal, 1.0)
    by_d = lambda q, k, v, causal=False: _attn(q, k, v, causal, 1 / d(q))
    naive_exp = lambda q, k, v, causal=False: _attn(q, k, v, causal, d(q) ** -0.5, exp=True)
    top_left = lambda q, k, v, causal=False: _attn(q, k, v, causal, d(q) ** -0.5, top_left=True)
    wrong_axis = lambda q, k, v, causal=False: _attn(q, k, v, causal, d(q) ** -0.5, dim=-2)
    for wrong, words in ((no_scale, "no 1/√d_k"), (by_d, "divided by d_k"), (naive_exp, "exp overflows"),
                         (top_left, "aligned top-left"), (wrong_axis, "wrong axis")):
        r = check_dot_product_attention(wrong)
        assert not r and r.done and words in r.message, r


def _forbidden_state():
    "What the dot-product check replaces while it runs: PyTorch's fused attention and this chapter's functions."
    names = ("attention", "attention_weights", "attention_scores", "causal_mask")
    return ([vars(attention_module)[n] for n in names], F.scaled_dot_product_attention,
            torch._C._nn.scaled_dot_product_attention, F.multi_head_attention_forward)


def _with_weights(q, k, v, causal=False):
    return attention_module.attention(q, k, v, causal=causal, need_weights=True)[0]


def _sdpa_then_fallback(q, k, v, causal=False):
    "Calls F.scaled_dot_product_attention and, when it raises, falls back to the right answer: the call must still fail."
    try: return F.scaled_dot_product_attention(q, k, v)
    except Exception: return SOL["dot_product_attention"](q, k, v, causal)


@pytest.mark.parametrize("shortcut, name", [
    (lambda q, k, v, causal=False: F.scaled_dot_product_attention(q, k, v, is_causal=causal), "F.scaled_dot_product_attention"),
    (lambda q, k, v, causal=False: torch.nn.functional.scaled_dot_product_attention(q, k, v), "F.scaled_dot_product_attention"),
    (lambda q, k, v, causal=False: torch._C._nn.scaled_dot_product_attention(q, k, v), "torch._C._nn.scaled_dot_product_attention"),
    # imported by name, the chapter's function is bound where the check cannot replace it: the SDPA call inside it is caught
    (lambda q, k, v, causal=False: attention(q, k, v, causal=causal)[0], "F.scaled_dot_product_attention"),
    (lambda q, k, v, causal=False: attention_module.attention(q, k, v, causal=causal)[0], "this chapter's attention"),
    (_with_weights, "this chapter's attention"),
    (_sdpa_then_fallback, "F.scaled_dot_product_attention")])
def test_dot_product_attention_rejects_shortcuts(shortcut, name):
    before = _forbidden_state()
    rejected(check_dot_product_attention(shortcut), f"called {name}", "rules out")
    assert _forbidden_state() == before, "the check left torch or this chapter's functions patched"
    assert check_dot_product_attention(SOL["dot_product_attention"])
    assert F.scaled_dot_product_attention is torch._C._nn.scaled_dot_product_attention


def test_dot_product_attention_restores_after_an_error():
    before = _forbidden_state()
    def broken(q, k, v, causal=False): raise IndexError("boom")
    rejected(check_dot_product_attention(broken), "IndexError", "boom")
    assert _forbidden_state() == before
