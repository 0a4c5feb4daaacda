"""Overhead of the Learner: tokens/s of training steps through `Learner.fit()` vs a bare PyTorch loop.

Run: python benchmarks/bench_learner.py [--quick] [--threads N]
Same model (LSTMLM on the default corpus, character level), same batches (get_batch with the same seeded
generator), same AdamW and global-norm clipping; evaluation and checkpoints off. Prints tokens/s of both and
the ratio Learner / bare loop (target ≥ 0.95): the median over interleaved repeats of each Learner run divided by
the bare run just before it, and the ratio of the best runs (best-of, the least disturbed by other processes).
"""
from __future__ import annotations
import argparse, platform, statistics, time

import torch
import torch.nn.functional as F

from llm_course.core import seed_everything
from llm_course.data import get_batch, load_default_corpus
from llm_course.learner import Learner, TrainConfig
from llm_course.rnn import LSTMLM

def corpus_ids() -> tuple[torch.Tensor, int]:
    text = load_default_corpus()
    stoi = {c: i for i, c in enumerate(sorted(set(text)))}
    return torch.tensor([stoi[c] for c in text], dtype=torch.long), len(stoi)

def make_model(V, emb, hidden):
    seed_everything(0); return LSTMLM(V, emb_dim=emb, hidden_size=hidden)

def bare_loop(model, ids, steps, B, T, lr, clip):
    "The loop every script writes: batch, forward, loss, backward, clip, step, log the loss."
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    g = seed_everything(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        x, y = get_batch(ids, B, T, generator=g)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step(); opt.zero_grad(set_to_none=True)
        loss.item()
    return steps * B * T / (time.perf_counter() - t0)

def learner_loop(model, ids, steps, B, T, lr, clip, progress):
    cfg = TrainConfig(steps=steps, batch_size=B, block_size=T, lr=lr, grad_clip=clip, progress=progress, seed=0)
    learn = Learner(model, ids, config=cfg)
    t0 = time.perf_counter(); learn.fit()
    return steps * B * T / (time.perf_counter() - t0)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps, repeats = (10, 3) if args.quick else (args.steps, args.repeats)
    ids, V = corpus_ids()
    shapes = [(32, 64, 32, 128), (8, 32, 16, 64)]  # (batch, block, emb, hidden): a realistic step and a tiny one (worst case)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads={torch.get_num_threads()}, "
          f"{steps} steps x {repeats} interleaved repeats, medians")
    print(f"{'B':>3} {'T':>3} {'H':>4} | {'bare tok/s':>10} {'Learner':>10} {'+progress':>10} | {'ratio':>6} {'ratio+bar':>9} {'best-of':>7}")
    for B, T, E, H in shapes:
        bare, lrn, bar = [], [], []
        for _ in range(repeats):  # interleaved, so a load spike on the shared machine hits all three alike
            bare.append(bare_loop(make_model(V, E, H), ids, steps, B, T, 3e-3, 1.0))
            lrn.append(learner_loop(make_model(V, E, H), ids, steps, B, T, 3e-3, 1.0, progress=False))
            bar.append(learner_loop(make_model(V, E, H), ids, steps, B, T, 3e-3, 1.0, progress=True))
        med = statistics.median
        paired = med([l / b for l, b in zip(lrn, bare)])  # each Learner run against the bare run just before it
        paired_bar = med([p / b for p, b in zip(bar, bare)])
        print(f"{B:>3} {T:>3} {H:>4} | {med(bare):>10,.0f} {med(lrn):>10,.0f} {med(bar):>10,.0f} | "
              f"{paired:>6.3f} {paired_bar:>9.3f} {max(lrn) / max(bare):>7.3f}")

if __name__ == "__main__":
    main()
