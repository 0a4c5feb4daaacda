"""Byte-level BPE training: llm_course.tokenizer.BPETokenizer.train vs HF tokenizers' BpeTrainer (Rust), same input.

Run: python benchmarks/bench_bpe.py [--chars 1000000] [--vocab 2000] [--repeats 3]
Trains both on the first --chars characters of the default corpus to --vocab tokens (with <|endoftext|>),
prints the median wall time of each, the ratio ours / HF, and the fraction of merges that are identical.
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, time

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from llm_course.data import load_default_corpus
from llm_course.tokenizer import BPETokenizer, bytes_to_unicode

SPECIAL = "<|endoftext|>"
BUDGET_S = 10.0  # the course's target for 1 MB -> vocab 2000 on a 2-core CPU


def train_ours(text, vocab):
    return BPETokenizer.train(text, vocab, special_tokens=[SPECIAL])


def train_hf(text, vocab):
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.train_from_iterator([text], trainers.BpeTrainer(
        vocab_size=vocab, min_frequency=0, special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    return hf


def median_time(fn, *args, repeats=3):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter(); out = fn(*args); times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    text = load_default_corpus()[:args.chars]
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}")
    print(f"input: {len(text):,} chars ({len(text.encode()):,} UTF-8 bytes) of the default corpus, vocab_size={args.vocab}")
    t_ours, best_ours, ours = median_time(train_ours, text, args.vocab, repeats=args.repeats)
    t_hf, best_hf, hf = median_time(train_hf, text, args.vocab, repeats=args.repeats)
    b2u = bytes_to_unicode(); spell = lambda b: "".join(b2u[x] for x in b)
    mine = [(spell(ours.vocab[a]), spell(ours.vocab[b])) for a, b in ours.merges]
    theirs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(hf.to_str())["model"]["merges"]]
    same = sum(x == y for x, y in zip(mine, theirs)) / max(len(mine), len(theirs))
    print(f"ours (Python, incremental counts): median {t_ours:.2f} s (best {best_ours:.2f} s) over {args.repeats} runs")
    print(f"HF tokenizers (Rust BpeTrainer):   median {t_hf:.2f} s (best {best_hf:.2f} s) over {args.repeats} runs")
    print(f"ratio ours / HF: {t_ours / t_hf:.2f}x (median), {best_ours / best_hf:.2f}x (best)")
    print(f"merges: {len(mine)} ours, {len(theirs)} HF, identical in order: {same:.1%}")
    print(f"budget {BUDGET_S:.0f} s for ours: {'OK' if t_ours <= BUDGET_S else 'OVER'}")


if __name__ == "__main__":
    main()
