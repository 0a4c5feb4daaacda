"""KV-cache generation vs no cache (llm_course.generate.generate): tokens/s at 256 new tokens on a small Transformer.

Run: python benchmarks/bench_kvcache.py [--quick] [--threads N]
Prints the time of both loops (greedy, identical tokens asserted) and the ratio no-cache time / cache time.
"""
from __future__ import annotations
import argparse, platform, statistics, time

import torch

from llm_course.model import ModelConfig, Transformer
from llm_course.generate import generate


def time_it(fn, repeats):
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)  # GPU kernels run asynchronously
    fn(); sync()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=16, help="prompt length")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--quick", action="store_true", help="64 new tokens, 1 repeat")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--d-model", type=int, default=128, help="model width (the tiny preset's by default)")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    n_new, repeats = (64, 1) if args.quick else (args.new_tokens, args.repeats)
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", vocab_size=256, block_size=args.prompt + n_new, n_layer=args.n_layer,
                             n_head=args.n_head, d_model=args.d_model,
                             **({} if args.d_model == 128 else dict(d_ff=None)))  # other widths: the style's default MLP
    dev = torch.device(args.device)
    model = Transformer(cfg).to(dev).eval()
    prompt = torch.randint(0, 256, (args.batch, args.prompt), device=dev)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads={torch.get_num_threads()}, "
          f"device={dev}; model {model.n_params():,} params (n_layer={cfg.n_layer}, d_model={cfg.d_model}); "
          f"batch {args.batch}, prompt {args.prompt}, {n_new} new tokens, greedy")
    a = generate(model, prompt, n_new, temperature=0, use_cache=True)
    b = generate(model, prompt, n_new, temperature=0, use_cache=False)
    assert torch.equal(a, b), "cache and no-cache generations differ"
    t_cache = time_it(lambda: generate(model, prompt, n_new, temperature=0, use_cache=True), repeats)
    t_plain = time_it(lambda: generate(model, prompt, n_new, temperature=0, use_cache=False), repeats)
    tok = args.batch * n_new
    print(f"{'loop':<10} {'seconds':>8} {'tokens/s':>9}")
    print(f"{'KV cache':<10} {t_cache:>8.3f} {tok / t_cache:>9,.0f}")
    print(f"{'no cache':<10} {t_plain:>8.3f} {tok / t_plain:>9,.0f}")
    print(f"speed-up (no-cache time / cache time): {t_plain / t_cache:.2f}x")


if __name__ == "__main__":
    main()
