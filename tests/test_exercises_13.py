"""Chapter 13's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solutions."""
import torch

from conftest import solutions
from llm_course.model import ModelConfig, check_count_params, check_prenorm_block, check_rms_norm

SOL = solutions("13_transformer")


def stub(*args): raise NotImplementedError


def test_stubs_are_not_done():
    for check in (check_rms_norm, check_prenorm_block, check_count_params):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


def test_rms_norm():
    assert check_rms_norm(SOL["rms_norm"])
    ms = lambda x: x.pow(2).mean(-1, keepdim=True)
    wrongs = {"no eps": lambda x, w, eps=1e-5: w * x / ms(x).sqrt(),
              "eps outside the square root": lambda x, w, eps=1e-5: w * x / (ms(x).sqrt() + eps),
              "the mean of x, not of x²": lambda x, w, eps=1e-5: w * x / (x.mean(-1, keepdim=True) + eps).sqrt(),
              "does not subtract the mean": lambda x, w, eps=1e-5: torch.nn.functional.layer_norm(x, x.shape[-1:], w, None, eps),
              "divide by d": lambda x, w, eps=1e-5: w * x / (x.pow(2).sum(-1, keepdim=True) + eps).sqrt(),
              "multiply by `weight`": lambda x, w, eps=1e-5: x / (ms(x) + eps).sqrt()}
    for words, wrong in wrongs.items():
        r = check_rms_norm(wrong)
        assert not r and r.done and words in r.message, (words, r)


def test_prenorm_block():
    assert check_prenorm_block(SOL["prenorm_block"])
    def post_norm(x, n1, attn, n2, mlp):
        x = n1(x + attn(x))
        return n2(x + mlp(x))
    def parallel(x, n1, attn, n2, mlp): return x + attn(n1(x)) + mlp(n2(x))
    def residual_of_norm(x, n1, attn, n2, mlp):
        h = n1(x); h = h + attn(h)
        return h + mlp(n2(h))
    def no_residual(x, n1, attn, n2, mlp): return mlp(n2(attn(n1(x))))
    def norm1_twice(x, n1, attn, n2, mlp):
        x = x + attn(n1(x))
        return x + mlp(n1(x))
    for wrong, words in ((post_norm, "post-norm"), (parallel, "parallel branches"), (residual_of_norm, "adds to norm1(x)"),
                         (no_residual, "no residual"), (norm1_twice, "goes through norm2")):
        r = check_prenorm_block(wrong)
        assert not r and r.done and words in r.message, r


def test_count_params():
    count = SOL["count_params"]
    assert check_count_params(count)
    full_kv = lambda c: count(ModelConfig.from_dict({**c.to_dict(), "n_kv_head": c.n_head}))
    head_always = lambda c: count(c) + (c.vocab_size * c.d_model if c.tie_weights else 0)
    two_matrix_mlp = lambda c: count(c) - (c.n_layer * c.d_ff * (c.d_model + int(c.bias)) if c.mlp == "swiglu" else 0)
    no_learned_pos = lambda c: count(c) - (c.block_size * c.d_model if c.pos == "learned" else 0)
    no_norms = lambda c: count(c) - (2 * c.n_layer + 1) * c.d_model * (2 if c.norm == "layernorm" and c.bias else 1)
    as_float = lambda c: float(count(c)) + 0.5
    for wrong, words in ((full_kv, "grouped-query"), (head_always, "output head"), (two_matrix_mlp, "SwiGLU has three"),
                         (no_learned_pos, "learned positions"), (no_norms, "the norms"), (as_float, "expected")):
        r = check_count_params(wrong)
        assert not r and r.done and words in r.message, r
