"""Chapter 12a's kernels: the tiled FlashAttention (PyTorch) against SDPA and autograd, the Triton kernels under the CPU
interpreter (in a subprocess: TRITON_INTERPRET must be set before triton is imported), the fused cross-entropy against
chapter 04's, measured memory growth, and the model's `attn_impl`."""
import importlib.util, json, math, os, subprocess, sys, textwrap

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, raises
from llm_course.attention import attention, repeat_kv
from llm_course.core import ConfigError
from llm_course import kernels as K
from llm_course.kernels import (attention_bytes, attention_flops, flash_attention, flash_attention_forward, peak_memory,
                                roofline, use_triton_interpreter)
from llm_course.model import KVCache, ModelConfig, Transformer

HAS_TRITON = importlib.util.find_spec("triton") is not None


def sdpa(q, k, v, causal):
    "PyTorch's F.scaled_dot_product_attention, through chapter 12's `attention` (bottom-right causal alignment, GQA)."
    return attention(q, k, v, causal=causal)[0]


def with_grads(fn, q, k, v, do):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    o = fn(q, k, v)
    return (o, *torch.autograd.grad(o, (q, k, v), do))


CASES = {  # B, H, H_kv, T, S, d, causal, block_q, block_k
    "causal d=32": (2, 4, 4, 64, 64, 32, True, 16, 16),
    "non-causal d=64, T not a multiple of the blocks": (2, 2, 2, 45, 45, 64, False, 16, 32),
    "causal d=128, T not a multiple of the blocks": (1, 2, 2, 70, 70, 128, True, 32, 16),
    "batch of one, GQA 8/2, causal": (1, 8, 2, 40, 40, 32, True, 16, 16),
    "MQA 4/1, non-causal": (2, 4, 1, 33, 33, 64, False, 32, 32),
    "KV-cache shape: 5 queries after 30 keys, causal": (1, 4, 2, 5, 35, 32, True, 16, 16),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_tiled_forward_and_backward_equal_sdpa_fp32(case):
    B, H, Hkv, T, S, d, causal, bq, bk = CASES[case]
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(B, H, T, d, generator=g), torch.randn(B, Hkv, S, d, generator=g), torch.randn(B, Hkv, S, d, generator=g)
    do = torch.randn(B, H, T, d, generator=g)
    ours = with_grads(lambda q, k, v: flash_attention(q, k, v, causal, block_q=bq, block_k=bk), q, k, v, do)
    ref = with_grads(lambda q, k, v: sdpa(q, k, v, causal), q, k, v, do)
    for name, a, b in zip(("o", "dq", "dk", "dv"), ours, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=lambda m: f"{case}, {name}: {m}")
    _, lse = flash_attention_forward(q, k, v, causal, block_q=bq, block_k=bk)   # the saved log-sum-exp is the real one
    s = (q @ repeat_kv(k, H // Hkv).transpose(-2, -1)) * d ** -0.5
    if causal: s = s.masked_fill(torch.ones(T, S, dtype=torch.bool).tril(S - T).logical_not(), -math.inf)
    torch.testing.assert_close(lse, s.logsumexp(-1), atol=1e-5, rtol=1e-5)


def test_tiled_bf16_within_stated_tolerance():
    "bf16: both ours and SDPA's bf16 results against float64; ours may be at most 1.5× SDPA's error + 0.02."
    g = torch.Generator().manual_seed(2)
    q, k, v, do = (torch.randn(2, 4, 96, 64, generator=g) for _ in range(4))
    exact = with_grads(lambda q, k, v: sdpa(q, k, v, True), *(t.double() for t in (q, k, v, do)))
    half = [t.bfloat16() for t in (q, k, v, do)]
    theirs = with_grads(lambda q, k, v: sdpa(q, k, v, True), *half)
    ours = with_grads(lambda q, k, v: flash_attention(q, k, v, True, block_q=32, block_k=32), *half)
    for name, a, b, e in zip(("o", "dq", "dk", "dv"), ours, theirs, exact):
        assert a.dtype == torch.bfloat16
        err, ref_err = (a.double() - e).abs().max().item(), (b.double() - e).abs().max().item()
        assert err <= 1.5 * ref_err + 0.02, f"{name}: bf16 error {err:.4f} vs SDPA's {ref_err:.4f}"


def test_tiles_reject_bad_inputs():
    q, k = torch.randn(1, 4, 8, 16), torch.randn(1, 3, 8, 16)
    raises(ConfigError, flash_attention, q, k, k, hint="n_kv_head must divide n_head")
    raises(ConfigError, flash_attention, torch.randn(1, 2, 8, 16), torch.randn(1, 2, 4, 16), torch.randn(1, 2, 4, 16), hint="pass S ≥ T")
    raises(ConfigError, flash_attention, q, q, q, impl="cuda", hint="use 'course' or 'triton'")


def test_roofline_counts():
    assert attention_flops(1024, 64, causal=False) == 4 * 1024**2 * 64 == 2 * attention_flops(1024, 64)
    assert attention_flops(1024, 64, backward=True) == 2.5 * attention_flops(1024, 64)
    n1, n2 = attention_bytes(4096, 128), attention_bytes(8192, 128)
    f1, f2 = attention_bytes(4096, 128, kind="flash-ideal"), attention_bytes(8192, 128, kind="flash-ideal")
    assert 3.9 < n2 / n1 < 4.0 and f2 / f1 == 2.0   # naive: T²; ideal flash: T
    assert roofline(1.0) == 3.35 and roofline(1e6) == 989.0
    raises(ConfigError, attention_bytes, 10, 8, kind="tiled", hint="use 'naive'")


def test_peak_memory_tiled_linear_naive_quadratic():
    "Measured at T = 1k, 2k, 4k, forward and forward+backward: a + bT has second/first step ratio 2, cT² ratio 4."
    naive_fwd = lambda q, k, v: attention(q, k, v, causal=True, need_weights=True)[0]
    tiled_fwd = lambda q, k, v: flash_attention(q, k, v, True, block_q=128, block_k=128)
    step = lambda fn, q, k, v, do: torch.autograd.grad(fn(q, k, v), (q, k, v), do)
    peaks = {"naive": [], "tiled": [], "naive fwd+bwd": [], "tiled fwd+bwd": []}
    for T in (1024, 2048, 4096):
        q, k, v, do = (torch.randn(1, 1, T, 64) for _ in range(4))
        with torch.no_grad():
            peaks["naive"].append(peak_memory(naive_fwd, q, k, v)[1])
            peaks["tiled"].append(peak_memory(tiled_fwd, q, k, v)[1])
        q, k, v = (t.requires_grad_() for t in (q, k, v))
        peaks["naive fwd+bwd"].append(peak_memory(step, naive_fwd, q, k, v, do)[1])
        peaks["tiled fwd+bwd"].append(peak_memory(step, tiled_fwd, q, k, v, do)[1])
        assert peaks["naive"][-1] >= 4 * T * T, "the naive peak holds at least one float32 T×T matrix"
    ratio = {n: (p[2] - p[1]) / (p[1] - p[0]) for n, p in peaks.items()}
    for n in ("tiled", "tiled fwd+bwd"): assert 1.8 < ratio[n] < 2.2, (n, ratio, peaks)
    for n in ("naive", "naive fwd+bwd"): assert 3.6 < ratio[n] < 4.4, (n, ratio, peaks)
    assert peaks["tiled"][2] < peaks["naive"][2] / 50 and peaks["tiled fwd+bwd"][2] < peaks["naive fwd+bwd"][2] / 20


def test_peak_memory_counts_only_what_lives_at_once():
    def two_buffers():
        a = torch.empty(1000, dtype=torch.float32)   # 4,000 bytes
        b = torch.empty(500, dtype=torch.float32)    # 2,000 bytes, both alive
        del a, b
        return torch.empty(250, dtype=torch.float32)  # 1,000 bytes after the others were freed
    _, peak = peak_memory(two_buffers)
    assert peak == 6000


# --- the model -------------------------------------------------------------------------------------------------------

def _twins(impl, **overrides):
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", n_layer=2, block_size=64, **overrides)
    ref, other = Transformer(cfg), Transformer(ModelConfig.from_dict({**cfg.to_dict(), "attn_impl": impl}))
    other.load_state_dict(ref.state_dict())
    return ref, other


@pytest.mark.parametrize("overrides", [{}, {"n_kv_head": 2}, {"style": "gpt2"}], ids=["llama", "llama-gqa", "gpt2"])
def test_model_course_attention_same_logits_and_grads_as_sdpa(overrides):
    ref, tiled = _twins("course", **overrides)
    idx = torch.randint(0, 256, (2, 50), generator=torch.Generator().manual_seed(1))
    results = []
    for m in (ref, tiled):
        logits = m(idx)
        F.cross_entropy(logits[:, :-1].flatten(0, 1), idx[:, 1:].flatten()).backward()
        results.append((logits, {n: p.grad for n, p in m.named_parameters()}))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-5, rtol=1e-5)
    for n, g in results[0][1].items(): torch.testing.assert_close(results[1][1][n], g, atol=1e-5, rtol=1e-5, msg=lambda m: f"{n}: {m}")


def test_model_course_attention_with_cache_and_padding():
    ref, tiled = _twins("course", n_kv_head=2)
    idx = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(2))
    cache = KVCache(tiled.config, 1)
    steps = [tiled(idx[:, :7], cache=cache), tiled(idx[:, 7:8], cache=cache), tiled(idx[:, 8:], cache=cache)]
    torch.testing.assert_close(torch.cat(steps, 1), ref(idx), atol=1e-5, rtol=1e-5)
    am = torch.ones(1, 12, dtype=torch.long); am[0, :3] = 0   # padding goes through chapter 12's path
    torch.testing.assert_close(tiled(idx, attention_mask=am), ref(idx, attention_mask=am), atol=1e-5, rtol=1e-5)


def test_config_records_and_checks_attn_impl(tmp_path):
    from llm_course.model import load_pretrained, save_pretrained
    _, tiled = _twins("course")
    assert tiled.config.to_dict()["attn_impl"] == "course"
    save_pretrained(tiled, tmp_path/"m")
    assert load_pretrained(tmp_path/"m").config.attn_impl == "course"
    assert ModelConfig.preset("tiny").attn_impl == "sdpa"
    raises(ConfigError, ModelConfig.preset, "tiny", attn_impl="flash", hint="use one of ['sdpa', 'course', 'triton']")
    raises(ConfigError, ModelConfig.preset, "tiny", attn_impl="course", dropout=0.1, hint="use dropout=0.0 or attn_impl='sdpa'")
    raises(ConfigError, ModelConfig.preset, "tiny", attn_impl="triton", d_model=96, hint="power of two ≥ 16")


def test_model_triton_on_cpu_refused_without_interpreter(monkeypatch):
    if K.triton_interpreter_on() and "triton.language" in sys.modules:
        pytest.skip("triton was imported in interpreter mode in this process: the refusal cannot be observed here")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    _, model = _twins("triton")
    err = raises(ConfigError, model, torch.zeros(1, 4, dtype=torch.long), hint="TRITON_INTERPRET=1")
    assert "\n" not in str(err)


def test_without_triton_the_module_imports_and_refuses_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)            # `import triton` now raises ImportError
    monkeypatch.setitem(sys.modules, "triton.language", None)
    monkeypatch.setattr(K, "_JITTED", {})
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    q = torch.randn(1, 1, 16, 16)
    raises(ConfigError, flash_attention, q, q, q, impl="triton", hint="pip install 'llm_course[kernels]'")


# --- Triton, under the interpreter, in a fresh process ---------------------------------------------------------------

TRITON_SCRIPT = textwrap.dedent('''
    import json, os, sys, time
    assert "triton" not in sys.modules
    from llm_course.kernels import use_triton_interpreter
    use_triton_interpreter()                                  # before anything imports triton
    import torch, torch.nn.functional as F
    from llm_course.attention import attention
    from llm_course.kernels import flash_attention, fused_cross_entropy, triton_interpreter_on
    from llm_course.losses import chunked_cross_entropy
    from llm_course.model import ModelConfig, Transformer
    out = {"interpreter": triton_interpreter_on(), "attention": {}, "ce": {}}
    g = torch.Generator().manual_seed(0)
    def grads(fn, q, k, v, do):
        q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
        o = fn(q, k, v)
        return (o, *torch.autograd.grad(o, (q, k, v), do))
    for name, (B, H, Hkv, T, S, d, causal, bq, bk) in {
            "causal, GQA 2/1, T=40 (not a multiple of the blocks)": (1, 2, 1, 40, 40, 32, True, 16, 32),
            "non-causal, batch 2, T=33": (2, 2, 2, 33, 33, 16, False, 16, 16),
            "causal, d=64, GQA 4/2, T=24": (1, 4, 2, 24, 24, 64, True, 16, 16),
            "KV-cache shape, 3 queries after 17 keys": (1, 2, 1, 3, 20, 32, True, 16, 16)}.items():
        q, k, v = torch.randn(B, H, T, d, generator=g), torch.randn(B, Hkv, S, d, generator=g), torch.randn(B, Hkv, S, d, generator=g)
        do = torch.randn(B, H, T, d, generator=g)
        ours = grads(lambda q, k, v: flash_attention(q, k, v, causal, impl="triton", block_q=bq, block_k=bk), q, k, v, do)
        ref = grads(lambda q, k, v: attention(q, k, v, causal=causal)[0], q, k, v, do)
        out["attention"][name] = [(a - b).abs().max().item() for a, b in zip(ours, ref)]
    N, dm, V = 37, 16, 100
    h, W = torch.randn(N, dm, generator=g), torch.randn(V, dm, generator=g)
    t = torch.randint(0, V, (N,), generator=g); t[[3, 10, 20]] = -100
    for red in ("mean", "sum"):
        res = []
        for fn in (lambda h, W: chunked_cross_entropy(h, W, t, chunk_size=16, reduction=red),
                   lambda h, W: fused_cross_entropy(h, W, t, chunk_size=16, reduction=red, block_v=32)):
            hh, WW = h.clone().requires_grad_(), W.clone().requires_grad_()
            loss = fn(hh, WW)
            res.append((loss, *torch.autograd.grad(loss, (hh, WW))))
        out["ce"][red] = [(a - b).abs().max().item() for a, b in zip(*res)]
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", n_layer=1, block_size=32, n_kv_head=2)
    a, b = Transformer(cfg), Transformer(ModelConfig.from_dict({**cfg.to_dict(), "attn_impl": "triton"}))
    b.load_state_dict(a.state_dict())
    idx = torch.randint(0, 256, (1, 20), generator=g)
    out["model"] = (a(idx) - b(idx)).abs().max().item()
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def triton_run():
    if not HAS_TRITON: pytest.skip("the `triton` package is not installed (pip install -e '.[kernels]'): no interpreter to test")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TRITON_INTERPRET", None)   # the script sets it itself, through use_triton_interpreter()
    r = subprocess.run([sys.executable, "-c", TRITON_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_triton_runs_in_the_interpreter(triton_run):
    assert triton_run["interpreter"] is True


def test_triton_attention_forward_and_backward_equal_sdpa(triton_run):
    assert len(triton_run["attention"]) == 4
    for name, errs in triton_run["attention"].items():
        assert max(errs) < 1e-5, f"{name}: max |Δ| (o, dq, dk, dv) = {errs}"


def test_fused_cross_entropy_equals_chapter_04(triton_run):
    for red, errs in triton_run["ce"].items():
        assert max(errs) < 1e-5, f"reduction={red}: max |Δ| (loss, dh, dW) = {errs}"


def test_model_with_triton_attention_equals_sdpa(triton_run):
    assert triton_run["model"] < 1e-5


def test_importing_the_kernels_does_not_import_triton_and_a_late_switch_is_refused():
    "Importing llm_course.kernels (or the model) leaves triton alone; once triton is imported, the switch is refused with a fix."
    code = ("import sys, llm_course.kernels, llm_course.model\nprint('imported triton:', 'triton' in sys.modules)\n"
            "try: import triton\nexcept ImportError: sys.exit(0)\n"
            "from llm_course.core import ConfigError\n"
            "try: llm_course.kernels.use_triton_interpreter()\nexcept ConfigError as e: print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "imported triton: False" in r.stdout, r.stdout + r.stderr[-2000:]
    if HAS_TRITON: assert "refused: triton was already imported without TRITON_INTERPRET=1" in r.stdout, r.stdout + r.stderr[-2000:]


def test_tiles_keep_float32_sums_under_autocast():
    "Under autocast (chapter 11's mixed precision) the tiles still sum in float32: same result as without it."
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 2, 40, 32, generator=g).bfloat16() for _ in range(3))
    plain = flash_attention(q, k, v, True, block_q=16, block_k=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = flash_attention(q, k, v, True, block_q=16, block_k=16)
    assert torch.equal(plain, auto)
