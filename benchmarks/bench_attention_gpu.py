"""Chapter 12a's compiled Triton FlashAttention against SDPA's FlashAttention backend and naive attention, on a CUDA GPU.

For T = 1k … 16k, head size 128, bf16, causal: forward and forward+backward times (median of CUDA-event timings after
warm-up, which also compiles the Triton kernels), TFLOP/s from `llm_course.kernels.attention_flops` (the causal half
of 4·T²·d per head; the backward counts 2.5× the forward), and the share of the GPU's dense bf16 peak. The batch
shrinks as T grows so each row is ~16k tokens × 16 heads. Naive attention (chapter 12's explicit path, which builds
the T×T weights) is skipped where it runs out of memory. Every row also checks the Triton output against SDPA's.
Target from issue 24: the Triton forward within 1.5× of SDPA's flash forward time.

Writes benchmarks/results/attention_gpu.md with the device named.
Run: python benchmarks/bench_attention_gpu.py [--seqs 1024 2048 4096 8192 16384] [--block-q 64 --block-k 64]
Without a CUDA GPU it says so and exits 0. Not yet run: no GPU was available when it was written.
"""
from __future__ import annotations
import argparse, platform, statistics, sys
from pathlib import Path

import torch
import torch.nn.functional as F

from llm_course.attention import attention
from llm_course.kernels import attention_flops, flash_attention

OUT = Path(__file__).parent/"results"/"attention_gpu.md"
PEAK_BF16_TFLOPS = {"H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.0,
                    "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0}   # dense, from the vendors' data sheets


def peak_for(name: str) -> float | None:
    hits = [v for k, v in PEAK_BF16_TFLOPS.items() if all(w in name for w in k.split())]
    return max(hits) if hits else None


def timed(fn, reps: int) -> float:
    "Median seconds of `fn()` over `reps` runs, after two warm-up runs (compilation, autotuning, allocator)."
    for _ in range(2): fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(); fn(); end.record(); torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def impls(block_q, block_k):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    def sdpa_flash(q, k, v):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION): return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return {"triton (course)": lambda q, k, v: flash_attention(q, k, v, True, impl="triton", block_q=block_q, block_k=block_k),
            "sdpa flash": sdpa_flash,
            "naive": lambda q, k, v: attention(q, k, v, causal=True, need_weights=True)[0]}


def measure(T, d, heads, tokens, reps, block_q, block_k):
    B = max(1, tokens // T)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(B, heads, T, d, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_() for _ in range(3))
    do = torch.randn_like(q)
    rows, outs = [], {}
    for name, fn in impls(block_q, block_k).items():
        try:
            with torch.no_grad(): outs[name] = fn(q, k, v).float()
            fwd = timed(lambda: fn(q, k, v), reps)
            def step():
                o = fn(q, k, v)
                torch.autograd.grad(o, (q, k, v), do)
            both = timed(step, reps)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache(); rows.append((name, None, None)); continue
        rows.append((name, fwd, both))
        torch.cuda.empty_cache()
    err = (outs["triton (course)"] - outs["sdpa flash"]).abs().max().item() if len(outs) >= 2 else float("nan")
    return B, rows, err


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seqs", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--tokens", type=int, default=16384, help="batch × T per measurement")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--block-q", type=int, default=64)
    p.add_argument("--block-k", type=int, default=64)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_attention_gpu needs a CUDA GPU (the Triton kernels are compiled for it); none is visible here, "
              "so nothing was measured. The kernels' correctness on the CPU is tested in tests/test_kernels.py.")
        return 0
    import triton
    dev = torch.cuda.get_device_name(0)
    peak = peak_for(dev)
    lines = [f"# Attention kernels on a GPU: Triton (chapter 12a) vs SDPA flash vs naive", "",
             f"`python benchmarks/bench_attention_gpu.py {' '.join(argv if argv is not None else sys.argv[1:])}` — causal, bf16, "
             f"head size {a.head_dim}, {a.heads} heads, batch × T = {a.tokens} tokens, tiles {a.block_q}×{a.block_k}; "
             f"median of {a.reps} after 2 warm-ups.", "",
             f"Device: **{dev}** (dense bf16 peak {peak if peak else 'unknown'} TFLOP/s); torch {torch.__version__}, "
             f"triton {triton.__version__}, Python {platform.python_version()}.", "",
             "| T | batch | kernel | fwd ms | fwd TFLOP/s | fwd % peak | fwd+bwd ms | fwd+bwd TFLOP/s | fwd+bwd % peak |",
             "|--:|--:|---|--:|--:|--:|--:|--:|--:|"]
    ratios = []
    for T in a.seqs:
        B, rows, err = measure(T, a.head_dim, a.heads, a.tokens, a.reps, a.block_q, a.block_k)
        f_fwd = attention_flops(T, a.head_dim, B * a.heads, causal=True)
        f_all = f_fwd + attention_flops(T, a.head_dim, B * a.heads, causal=True, backward=True)
        times = {}
        for name, fwd, both in rows:
            if fwd is None:
                lines.append(f"| {T} | {B} | {name} | out of memory | | | | | |"); continue
            times[name] = fwd
            tf, tb = f_fwd / fwd / 1e12, f_all / both / 1e12
            pct = lambda t: f"{100 * t / peak:.0f}%" if peak else "—"
            lines.append(f"| {T} | {B} | {name} | {fwd * 1e3:.2f} | {tf:.0f} | {pct(tf)} | {both * 1e3:.2f} | {tb:.0f} | {pct(tb)} |")
        if "triton (course)" in times and "sdpa flash" in times:
            ratios.append((T, times["triton (course)"] / times["sdpa flash"], err))
        print("\n".join(lines[-len(rows):]), flush=True)
    lines += ["", "Triton forward time ÷ SDPA flash forward time (target ≤ 1.5), and max |Triton − SDPA| of the output:", ""]
    lines += [f"- T={T}: {r:.2f}× ({'meets' if r <= 1.5 else 'misses'} the target); max |Δ| = {e:.3g}" for T, r, e in ratios]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines)); print(f"written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
