"""Quality per CPU-minute: validation loss of a character-level Transformer after fixed time budgets,
Llama-style (`tiny` preset: RMSNorm, SwiGLU, RoPE, untied) vs GPT-2-style (`tiny-gpt2`: LayerNorm, GELU,
learned positions, tied), both at 4 layers, 4 heads, width 128, context 64, batch 12, on the first 1 MB of
the default corpus.

    python benchmarks/bench_quality.py                 # marks at 1, 2, 3 minutes per variant (~6.5 min in all)
    python benchmarks/bench_quality.py --minutes 0.2   # the same marks scaled by 0.2 (12, 24, 36 s): a smoke run

The clock counts training steps only: it is paused while the validation loss is measured at each mark. By default it
is process CPU time (`--clock cpu`, `time.process_time()`): with one thread, other jobs on a shared machine slow the run
down without changing what it measures. `--clock wall` counts wall time instead (the results recorded in
benchmarks/results/quality.md on 2026-11-23 used wall time). Chapter 15's crossover race uses the same CPU clock.
The learning rate warms up for 50 steps, then follows a cosine over the *time* of the whole budget (to 10%),
so that each variant gets a complete schedule in the same wall time.
"""
from __future__ import annotations
import argparse, math, platform, time

import torch
import torch.nn.functional as F

from llm_course.core import eval_mode, seed_everything
from llm_course.data import get_batch, load_default_corpus, split_text
from llm_course.model import ModelConfig, Transformer
from llm_course.tokenizer import CharTokenizer

SIZES = dict(n_layer=4, n_head=4, d_model=128, block_size=64)
VARIANTS = {"llama": "tiny", "gpt2": "tiny-gpt2"}  # the default preset, and the GPT-2-style one


@torch.no_grad()
def val_loss(model, val_ids, n_batches: int, batch_size: int, block: int) -> float:
    "Mean loss over the same `n_batches` validation windows every time."
    g = torch.Generator().manual_seed(1234)
    with eval_mode(model):
        tot = sum(F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
                  for x, y in (get_batch(val_ids, batch_size, block, generator=g) for _ in range(n_batches)))
    return tot / n_batches


def run_variant(preset: str, vocab: int, train_ids, val_ids, marks_s: list[float], args, peak_lr: float) -> dict:
    seed_everything(args.seed)
    cfg = ModelConfig.preset(preset, vocab_size=vocab, **SIZES)
    model = Transformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(args.seed)
    total, elapsed, step, out, todo = marks_s[-1], 0.0, 0, {}, list(marks_s)
    while todo:
        frac = min(elapsed / total, 1.0)
        lr = peak_lr * (min(1.0, (step + 1) / 50)) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups: group["lr"] = lr
        t = args.clock_fn()
        x, y = get_batch(train_ids, args.batch_size, SIZES["block_size"], generator=g)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        elapsed += args.clock_fn() - t
        step += 1
        if elapsed >= todo[0]:
            out[todo.pop(0)] = (step, val_loss(model, val_ids, args.eval_batches, args.batch_size, SIZES["block_size"]))
    return dict(params=model.n_params(), marks=out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=1.0, help="scale of the marks (1.0: 1, 2 and 3 minutes)")
    p.add_argument("--marks", default="1,2,3", help="marks in (scaled) minutes")
    p.add_argument("--chars", type=int, default=1_000_000, help="characters of the default corpus to use")
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--lr", default="3e-3", help="peak learning rate(s), comma-separated (3e-3 is TrainRun's default)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="which of " + ", ".join(VARIANTS))
    p.add_argument("--eval-batches", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="process CPU time (default) or wall time")
    args = p.parse_args(argv)
    args.clock_fn = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    marks_s = [float(m) * 60 * args.minutes for m in args.marks.split(",")]
    text = load_default_corpus()[:args.chars]
    tok = CharTokenizer.train(text)
    ids = torch.tensor(tok.encode(text), dtype=torch.long)
    train_ids, val_ids = split_text(ids, (0.9, 0.1))
    print(f"{len(text):,} chars, vocab {tok.vocab_size}, train {len(train_ids):,} / val {len(val_ids):,}; "
          f"{SIZES}, batch {args.batch_size}, {args.threads} thread(s), torch {torch.__version__}, "
          f"{platform.machine()}")
    res = {}
    for name in args.variants.split(","):
        for lr in map(float, args.lr.split(",")):
            t, key = time.perf_counter(), f"{name}, lr {lr:g}"
            res[key] = run_variant(VARIANTS[name], tok.vocab_size, train_ids, val_ids, marks_s, args, lr)
            print(f"  {key}: {res[key]['params']:,} params, done in {time.perf_counter() - t:.0f} s wall", flush=True)
    head = " | ".join(f"{m / 60:.2g} min: step, val" for m in marks_s)
    print(f"\n| variant | params | {head} |\n|---|---:|" + "---:|" * len(marks_s))
    for name, r in res.items():
        cells = " | ".join(f"{r['marks'][m][0]:,}, {r['marks'][m][1]:.4f}" for m in marks_s)
        print(f"| {name} | {r['params']:,} | {cells} |")
    for m in marks_s:
        best = min(res, key=lambda k: res[k]["marks"][m][1])
        print(f"at {m / 60:.2g} min the lowest val loss is {best}: {res[best]['marks'][m][1]:.4f} nats/char")
    return res


if __name__ == "__main__":
    main()
