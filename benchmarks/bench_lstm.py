"""From-scratch LSTM (llm_course.rnn.LSTM) vs torch.nn.LSTM: forward+backward throughput on the same weights.

Run: python benchmarks/bench_lstm.py [--quick]
Prints tokens/s of both and the ratio scratch / nn.LSTM (measured in the same run), per shape.
"""
from __future__ import annotations
import argparse, platform, statistics, time

import torch
import torch.nn as nn

from llm_course.rnn import LSTM

SHAPES = [  # (batch, time, input, hidden, layers)
    (32, 64, 64, 256, 1),
    (32, 64, 64, 256, 2),
    (64, 128, 128, 512, 1),
]

def fwd_bwd(module, x):
    out, (h, c) = module(x)
    (out.sum() + h.sum() + c.sum()).backward()

def time_it(module, x, repeats, warmup=2):
    "Median seconds of one forward+backward pass."
    for _ in range(warmup): fwd_bwd(module, x)
    times = []
    for _ in range(repeats):
        module.zero_grad(set_to_none=True)
        t0 = time.perf_counter(); fwd_bwd(module, x); times.append(time.perf_counter() - t0)
    return statistics.median(times)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="first shape only, fewer repeats")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    shapes, repeats = (SHAPES[:1], 3) if args.quick else (SHAPES, args.repeats)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"threads={torch.get_num_threads()}, device={dev}")
    print(f"{'B':>3} {'T':>4} {'I':>4} {'H':>4} {'L':>2} | {'scratch tok/s':>13} {'nn.LSTM tok/s':>13} | {'scratch/nn':>10}")
    for B, T, I, H, L in shapes:
        ours = LSTM(I, H, L).to(dev)
        ref = nn.LSTM(I, H, L, batch_first=True).to(dev)
        ref.load_state_dict(ours.state_dict())  # same weights, same work
        x = torch.randn(B, T, I, device=dev)
        t_ours, t_ref = time_it(ours, x, repeats), time_it(ref, x, repeats)
        tok = B * T
        print(f"{B:>3} {T:>4} {I:>4} {H:>4} {L:>2} | {tok / t_ours:>13,.0f} {tok / t_ref:>13,.0f} | "
              f"{t_ref / t_ours:>10.2f}")

if __name__ == "__main__":
    main()
