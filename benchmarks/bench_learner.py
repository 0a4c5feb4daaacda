"""The Learner's speed: a bare PyTorch loop vs the Learner with PyTorch's pieces (BEFORE) vs the course's own (AFTER).

Run: python benchmarks/bench_learner.py [--quick] [--threads N] [--steps N] [--repeats N]
Same models, same batches (get_batch with the same seeded generator), same settings; evaluation and checkpoints off.
  bare     the loop every script writes: F.cross_entropy, clip_grad_norm_, torch.optim.AdamW
  torch    Learner(kernels="torch"): the same PyTorch pieces, behind the callbacks (what the Learner ran before)
  course   Learner(kernels="course"): chapter 4's cross_entropy, chapter 8's clip_grad_norm and AdamW (foreach)
Prints tokens/s (medians over interleaved repeats) and two ratios: Learner(torch) / bare (the Learner's own
overhead, target >= 0.95) and course / torch (the price of running the course's code, target >= 0.9). Each ratio is
the median over repeats of one run divided by the run just before it (so a load spike hits both alike), and the
ratio of the best runs (best-of, the least disturbed).
"""
from __future__ import annotations
import argparse, platform, statistics, time

import torch
import torch.nn.functional as F

from llm_course.core import seed_everything
from llm_course.data import get_batch, load_default_corpus
from llm_course.learner import Learner, TrainConfig
from llm_course.model import ModelConfig, Transformer
from llm_course.rnn import LSTMLM

def corpus_ids() -> tuple[torch.Tensor, int]:
    text = load_default_corpus()
    stoi = {c: i for i, c in enumerate(sorted(set(text)))}
    return torch.tensor([stoi[c] for c in text], dtype=torch.long), len(stoi)

MODELS = {  # name: (builder(V), batch, block)
    "LSTM h128": (lambda V: LSTMLM(V, emb_dim=32, hidden_size=128), 32, 64),
    "LSTM h64 (tiny step)": (lambda V: LSTMLM(V, emb_dim=16, hidden_size=64), 8, 32),
    "Transformer tiny": (lambda V: Transformer(ModelConfig.preset("tiny", vocab_size=V, block_size=64)), 16, 64),
}

def make(name, V):
    seed_everything(0); return MODELS[name][0](V)

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

def learner_loop(model, ids, steps, B, T, lr, clip, kernels):
    cfg = TrainConfig(steps=steps, batch_size=B, block_size=T, lr=lr, grad_clip=clip, progress=False, seed=0, kernels=kernels)
    learn = Learner(model, ids, config=cfg)
    t0 = time.perf_counter(); learn.fit()
    return steps * B * T / (time.perf_counter() - t0), learn

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps, repeats = (8, 3) if args.quick else (args.steps, args.repeats)
    ids, V = corpus_ids()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads={torch.get_num_threads()}, "
          f"{steps} steps x {repeats} interleaved repeats, medians")
    print(f"{'model':<22} {'B':>3} {'T':>3} | {'bare tok/s':>10} {'torch':>10} {'course':>10} | "
          f"{'torch/bare':>10} {'course/torch':>12} {'best-of':>7} | loss torch vs course")
    for name, (_, B, T) in MODELS.items():
        bare, tor, cou = [], [], []
        for _ in range(repeats):  # interleaved, so a load spike on the shared machine hits all three alike
            bare.append(bare_loop(make(name, V), ids, steps, B, T, 3e-3, 1.0))
            t, lt = learner_loop(make(name, V), ids, steps, B, T, 3e-3, 1.0, "torch"); tor.append(t)
            c, lc = learner_loop(make(name, V), ids, steps, B, T, 3e-3, 1.0, "course"); cou.append(c)
        med = statistics.median
        gap = max(abs(a["loss"] - b["loss"]) for a, b in zip(lt.history, lc.history))
        print(f"{name:<22} {B:>3} {T:>3} | {med(bare):>10,.0f} {med(tor):>10,.0f} {med(cou):>10,.0f} | "
              f"{med([t / b for t, b in zip(tor, bare)]):>10.3f} {med([c / t for c, t in zip(cou, tor)]):>12.3f} "
              f"{max(cou) / max(tor):>7.3f} | max |Δloss| {gap:.1e} over {steps} steps")
    print(f"kernels: torch = {lt.kernels}\n         course = {lc.kernels}")

if __name__ == "__main__":
    main()
