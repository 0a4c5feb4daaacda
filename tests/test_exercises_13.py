"""Chapter 13's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solutions."""
import torch

from conftest import solutions
from llm_course.model import ModelConfig, Transformer, _hf_reference, check_prenorm_block, check_rms_norm, check_to_hf_state_dict, to_hf

SOL = solutions("13_transformer")


def stub(*args): raise NotImplementedError


def test_stubs_are_not_done():
    for check in (check_rms_norm, check_prenorm_block, check_to_hf_state_dict):
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


def _to_hf(split_equal=False, transpose_llama=False, transpose_gpt2=True, tied_head=True, swap_qk=False):
    "The solution with one mapping changed."
    right = SOL["to_hf_state_dict"]
    def f(model):
        c, ours, sd = model.config, model.state_dict(), right(model)
        if c.style == "llama":
            for i in range(c.n_layer):
                h, qkv = f"model.layers.{i}.self_attn.", ours[f"blocks.{i}.attn.qkv.weight"]
                if split_equal: sd[h + "q_proj.weight"], sd[h + "k_proj.weight"], sd[h + "v_proj.weight"] = qkv.chunk(3)
                if swap_qk: sd[h + "q_proj.weight"], sd[h + "k_proj.weight"] = sd[h + "k_proj.weight"], sd[h + "q_proj.weight"]
            if transpose_llama: sd = {k: v.T if v.dim() == 2 and "embed" not in k and "lm_head" not in k else v for k, v in sd.items()}
        elif not transpose_gpt2: sd = {k: v.T if k.endswith("weight") and (".attn.c_" in k or ".mlp.c_" in k) else v for k, v in sd.items()}
        if not tied_head and c.tie_weights: sd.pop("lm_head.weight")
        return sd
    return f


def test_to_hf_state_dict():
    assert check_to_hf_state_dict(SOL["to_hf_state_dict"])
    for wrong, words in ((_to_hf(split_equal=True), ("with GQA the three parts are not equal",)),
                         (_to_hf(transpose_gpt2=False), ("Conv1D", "[in, out]")),
                         (_to_hf(transpose_llama=True), ("without transposing",)),
                         (_to_hf(tied_head=False), ("lm_head.weight even when it is tied",)),
                         (_to_hf(swap_qk=True), ("queries, keys, values",))):
        r = check_to_hf_state_dict(wrong)
        assert not r and r.done and all(w in r.message for w in words), (words, r)


def test_to_hf_is_switched_off():
    r = check_to_hf_state_dict(lambda model: to_hf(model).state_dict())
    assert not r and r.done and "called the chapter's to_hf" in r.message, r


def test_the_reference_is_hugging_faces():
    "The check's reference (the chapter's conversion table) is what `to_hf` loads into the Hugging Face model, tensor for tensor."
    for c in (ModelConfig.preset("tiny", n_layer=1, n_kv_head=2), ModelConfig.preset("tiny-gpt2", n_layer=1)):
        model = Transformer(c)
        ref, hf = _hf_reference(model), to_hf(model).state_dict()
        assert set(ref) == set(hf)
        assert all(torch.equal(ref[k], hf[k]) for k in ref)
