"""The scaling chapter's predictions against PyTorch's own measurements, on this CPU: FLOPs per training step
(torch.utils.flop_counter.FlopCounterMode) and activation bytes (the distinct tensors autograd saves, through
torch.autograd.graph.saved_tensors_hooks), for several small models, fp32 and bf16, with and without activation
checkpointing. Prints predicted, measured and the ratio for each row; the reference is measured in the same run.

Run: python benchmarks/bench_scaling.py
"""
from __future__ import annotations
import platform

import torch

from llm_course.model import ModelConfig, Transformer
from llm_course.scaling import activation_memory, flops_breakdown, flops_per_token, logits_memory, measure_step

SHAPES = [("tiny", {}, 2, 64), ("tiny", dict(n_kv_head=2), 1, 128), ("tiny-gpt2", {}, 4, 32),
          ("tiny", dict(n_layer=2, d_model=192, n_head=6, n_kv_head=3, d_ff=512), 2, 96)]


def label(name, c, B, T): return f"{name}{' GQA' if c.n_kv_head < c.n_head else ''} d={c.d_model} B={B} T={T}"


def main():
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    print("\nFLOPs per training step (forward + cross-entropy + backward)")
    print(f"{'model and shape':<28}{'attention':<24}{'counted':>15}{'predicted':>15}{'ratio':>8}")
    for name, kw, B, T in SHAPES:
        c = ModelConfig.preset(name, **kw)
        m, n = Transformer(c), B * T
        fb = flops_breakdown(c, T, causal=False)
        for how, opts, pred in (("fused SDPA", {}, fb["matmul"]),
                                ("explicit matmuls", dict(explicit_attention=True), fb["matmul"] + fb["attention"]),
                                ("fused + checkpointing", dict(checkpointing=True),
                                 flops_per_token(c, T, True, causal=False) - fb["attention"] * 4 / 3)):
            meas = measure_step(m, B, T, **opts)["flops"]
            print(f"{label(name, c, B, T):<28}{how:<24}{meas:>15,}{pred * n:>15,.0f}{pred * n / meas:>8.4f}")
    print("\nactivation bytes saved for backward (distinct storages, parameters excluded; + fp32 log-probs of the loss)")
    print(f"{'model and shape':<28}{'dtype':<10}{'ckpt':<6}{'measured':>12}{'predicted':>12}{'ratio':>8}")
    for name, kw, B, T in SHAPES:
        c = ModelConfig.preset(name, **kw)
        for dtype in (torch.float32, torch.bfloat16):
            m, a = Transformer(c).to(dtype), torch.finfo(dtype).bits // 8
            for ck in (False, True):
                meas = measure_step(m, B, T, checkpointing=ck)["saved_bytes"]
                act = activation_memory(c, B, T, a, ck)
                pred = sum(act.values()) - act.get("recompute", 0) + logits_memory(c, B, T, a)["log_probs"]
                print(f"{label(name, c, B, T):<28}{str(dtype)[6:]:<10}{'yes' if ck else 'no':<6}{meas:>12,}{pred:>12,}"
                      f"{pred / meas:>8.4f}")


if __name__ == "__main__": main()
