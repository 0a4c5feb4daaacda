"""Chunked vs full cross-entropy (llm_course.losses.chunked_cross_entropy vs F.cross_entropy(h @ W.T)):
peak memory of forward+backward and the loss, at vocab 32k and 128k.

Run: python benchmarks/bench_chunked_ce.py [--tokens 2048] [--dim 256] [--chunk 256]
Each variant runs in a fresh subprocess; peak memory is the growth of the resident-set high-water mark
(VmHWM, reset through /proc/self/clear_refs) over the process's baseline, so it counts every temporary.
glibc's malloc runs with MALLOC_MMAP_THRESHOLD_=65536 and MALLOC_TRIM_THRESHOLD_=0, so every large tensor
is its own mapping and leaves the resident set when freed (by default malloc keeps freed blocks of up to
32 MB, and the high-water mark would count memory already free).
Prints peak MB for both next to the chapter's formulas (full: 3·4·N·V bytes; chunked: 4·V·d + 8·chunk·V
bytes, the V×d float32 weight gradient included), the ratio full / chunked (target ≥ 4×), and |Δloss|.
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, textwrap

import torch

PROBE = textwrap.dedent("""
    import json, re, sys, torch, torch.nn.functional as F
    from llm_course.losses import chunked_cross_entropy
    variant, N, d, V, chunk = sys.argv[1], *map(int, sys.argv[2:6])
    torch.manual_seed(0); torch.set_num_threads(1)
    h = torch.randn(N, d, requires_grad=True)
    w = (torch.randn(V, d) / d**0.5).requires_grad_()
    t = torch.randint(0, V, (N,))
    rss = lambda key: int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
    def run(h, w, t):
        loss = F.cross_entropy(h @ w.T, t) if variant == "full" else chunked_cross_entropy(h, w, t, chunk_size=chunk)
        loss.backward()
        return loss.item()
    run(h[:2*chunk], w[:64].detach().requires_grad_(), t[:2*chunk] % 64)  # warm-up: kernels, autograd thread
    h.grad = None
    base = rss("VmRSS"); open("/proc/self/clear_refs", "w").write("5")
    loss = run(h, w, t)
    print(json.dumps(dict(loss=loss, peak_mb=rss("VmHWM") - base)))
""")


def measure(variant: str, tokens: int, dim: int, vocab: int, chunk: int) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    out = subprocess.run([sys.executable, "-c", PROBE, variant, str(tokens), str(dim), str(vocab), str(chunk)],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--vocabs", type=int, nargs="+", default=[32_000, 128_000])
    a = p.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"N={a.tokens} tokens, d={a.dim}, chunk={a.chunk}")
    mb = 4 / 2**20
    print(f"{'vocab':>8} {'full MB':>9} {'(formula)':>9} {'chunked MB':>11} {'(formula)':>9} {'ratio':>7} {'|Δloss|':>9}")
    for V in a.vocabs:
        full, chunked = (measure(v, a.tokens, a.dim, V, a.chunk) for v in ("full", "chunked"))
        ratio = full["peak_mb"] / max(chunked["peak_mb"], 1e-9)
        print(f"{V:>8} {full['peak_mb']:>9.1f} {3 * a.tokens * V * mb:>9.1f} {chunked['peak_mb']:>11.1f} "
              f"{(V * a.dim + 2 * a.chunk * V) * mb:>9.1f} {ratio:>6.1f}× {abs(full['loss'] - chunked['loss']):>9.2e}")


if __name__ == "__main__": main()
