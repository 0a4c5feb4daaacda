"""Solutions to chapter 16a's exercises — try first, then compare."""
import numpy as np


def word_shingles(text: str, n: int) -> set:
    "The set of lower-cased word n-grams of `text`, as tuples."
    ws = text.lower().split()                        # any whitespace: spaces, runs of spaces, newlines
    if not ws: return set()                          # an empty text has no shingle
    return {tuple(ws[i:i + n]) for i in range(max(len(ws) - n + 1, 1))}   # m - n + 1 of them; a short text is one


def minhash_signature(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    "min over x of ((a·x + b) mod 2^64) >> 32, per hash function: uint32 [k]."
    if len(x) == 0: return np.full(len(a), 0xFFFFFFFF, dtype=np.uint32)
    v = (a[:, None] * x[None, :].astype(np.uint64) + b[:, None]) >> np.uint64(32)   # [k, n]; uint64 wraps mod 2^64
    return v.min(axis=1).astype(np.uint32)


def lsh_candidates(signatures: np.ndarray, bands: int, rows: int) -> set:
    "Pairs (i, j), i < j, of signatures equal on at least one band."
    pairs = set()
    for band in range(bands):
        buckets = {}
        for i, row in enumerate(signatures[:, band * rows:(band + 1) * rows]):
            buckets.setdefault(row.tobytes(), []).append(i)          # equal bands -> the same bucket
        for ids in buckets.values():                                 # ids are increasing, so i < j
            pairs.update((ids[p], ids[q]) for p in range(len(ids)) for q in range(p + 1, len(ids)))
    return pairs
