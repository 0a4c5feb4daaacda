"""Corpus preparation: llm_course.train.prepare vs datasets.Dataset.map(batched=True, num_proc=N), same fast tokenizer, same run.

Run: python benchmarks/bench_prepare.py [--mb 8] [--workers 2] [--vocab 4096] [--repeats 2]
Builds a JSON-lines corpus of about --mb MB from the embedded default corpus (its paragraphs as documents, repeated),
a byte-level BPE tokenizer.json (ours, trained on 1 MB, exported with bpe_to_tokenizers: HF `tokenizers` in Rust encodes
in both pipelines), then times, from the same .jsonl file on disk to a flat uint16 token file:
  ours: prepare(jsonl, out, tokenizer=tokenizer.json, workers=N)  (reading, encoding in N processes, shards, checksums, manifest)
  ref:  read the file, Dataset.from_dict, .map(encode_batch + end-of-text id, batched, num_proc=N), ids written to one memmap
        the nanoGPT way (sharded iteration over the Arrow table).
Both streams of ids are checked identical; prints tokens/s of each and ours / reference (target >= 1x).
"""
from __future__ import annotations
import argparse, json, os, platform, shutil, statistics, sys, tempfile, time
from pathlib import Path

import numpy as np


def make_corpus(folder: Path, mb: float) -> tuple[Path, list[str]]:
    from llm_course.data import load_default_corpus
    paras = [p for p in load_default_corpus().split("\n\n\n") if p.strip()]
    docs, size, i = [], 0, 0
    while size < mb * 1e6:
        d = paras[i % len(paras)]
        docs.append(d); size += len(d.encode()); i += 1
    path = folder/"corpus.jsonl"
    path.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path, docs


def make_tokenizer(folder: Path, vocab: int) -> Path:
    from llm_course.data import load_default_corpus
    from llm_course.tokenizer import BPETokenizer, bpe_to_tokenizers
    tok = BPETokenizer.train(load_default_corpus()[:1_000_000], vocab, special_tokens=["<|endoftext|>"])
    bpe_to_tokenizers(tok).save(str(folder/"tokenizer.json"))
    return folder/"tokenizer.json"


def run_ours(jsonl: Path, tok_path: Path, out: Path, workers: int) -> tuple[float, np.ndarray]:
    from llm_course.train import prepare
    from llm_course.data import open_shards
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    prepare(jsonl, out, tokenizer=str(tok_path), workers=workers, progress=False)
    dt = time.perf_counter() - t0
    return dt, open_shards(out, verify=False)[:]


def run_datasets(jsonl: Path, tok_path: Path, out: Path, workers: int) -> tuple[float, np.ndarray]:
    import datasets
    from tokenizers import Tokenizer
    datasets.disable_progress_bars(); datasets.disable_caching()
    tok = Tokenizer.from_file(str(tok_path))
    eot = tok.token_to_id("<|endoftext|>")

    def encode(batch):
        ids = [e.ids + [eot] for e in tok.encode_batch(batch["text"], add_special_tokens=False)]
        return {"ids": ids, "len": [len(x) for x in ids]}

    t0 = time.perf_counter()
    with open(jsonl, encoding="utf-8") as f: texts = [json.loads(line)["text"] for line in f]
    ds = datasets.Dataset.from_dict({"text": texts})
    ds = ds.map(encode, batched=True, num_proc=workers, remove_columns=["text"])
    n = int(np.sum(ds["len"], dtype=np.int64))
    arr = np.memmap(out, dtype=np.uint16, mode="w+", shape=(n,))
    pos, parts = 0, min(64, len(ds))
    for k in range(parts):  # nanoGPT's prepare.py: write the ids in contiguous shards of the dataset
        batch = np.concatenate(ds.shard(num_shards=parts, index=k, contiguous=True).with_format("numpy")["ids"])
        arr[pos:pos + len(batch)] = batch; pos += len(batch)
    arr.flush()
    dt = time.perf_counter() - t0
    return dt, np.asarray(arr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        jsonl, docs = make_corpus(tmp, args.mb)
        tok_path = make_tokenizer(tmp, args.vocab)
        print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
              f"workers/num_proc={args.workers}, RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}")
        print(f"corpus: {len(docs):,} documents, {jsonl.stat().st_size / 1e6:.1f} MB of JSON lines; tokenizer: byte-level BPE, "
              f"vocab {args.vocab} (HF tokenizers in both)")
        t_ours, t_ref = [], []
        for r in range(args.repeats):  # alternate, so both see the same machine load
            dt, ours = run_ours(jsonl, tok_path, tmp/"shards", args.workers); t_ours.append(dt)
            dt, ref = run_datasets(jsonl, tok_path, tmp/"ref.bin", args.workers); t_ref.append(dt)
            assert np.array_equal(ours, ref), "the two pipelines wrote different ids"
        n = len(ours)
        a, b = statistics.median(t_ours), statistics.median(t_ref)
        print(f"tokens: {n:,} (identical in both)")
        print(f"ours  prepare(workers={args.workers}):          {a:6.2f} s  {n / a:12,.0f} tokens/s   (runs: {', '.join(f'{t:.2f}' for t in t_ours)})")
        print(f"ref   datasets.map(num_proc={args.workers}) + memmap: {b:6.2f} s  {n / b:12,.0f} tokens/s   (runs: {', '.join(f'{t:.2f}' for t in t_ref)})")
        print(f"ours / reference: {b / a:.2f}x (target >= 1x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
