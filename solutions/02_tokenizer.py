"""Solutions to chapter 2's exercises — try first, then compare."""
from collections import defaultdict


def pair_counts(words: dict[tuple[int, ...], int]) -> dict[tuple[int, int], int]:
    "Frequency-weighted counts of adjacent id pairs."
    counts = defaultdict(int)
    for word, freq in words.items():
        for pair in zip(word, word[1:]):  # every position: (a, a, a) holds (a, a) twice
            counts[pair] += freq
    return dict(counts)


def _merge(word: tuple[int, ...], a: int, b: int, new_id: int) -> tuple[int, ...]:
    "Replace each (a, b) in `word` by `new_id`, left to right, without overlaps."
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b: out.append(new_id); i += 2
        else: out.append(word[i]); i += 1
    return tuple(out)


def merge_step(words: dict[tuple[int, ...], int], new_id: int):
    "The most frequent pair and the words with it merged into `new_id`."
    counts = pair_counts(words)
    if not counts: return None, dict(words)
    a, b = min(counts, key=lambda p: (-counts[p], p))  # highest count; ties to the smaller (left, right)
    return (a, b), {_merge(w, a, b, new_id): f for w, f in words.items()}


def bpe_decode(ids: list[int], merges: list[tuple[int, int]]) -> str:
    "The text spelled by `ids`."
    vocab = [bytes([i]) for i in range(256)]
    for a, b in merges: vocab.append(vocab[a] + vocab[b])  # token 256 + k
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")  # decode once: characters span tokens


def bpe_encode(text: str, merges: list[tuple[int, int]]) -> list[int]:
    "Token ids of one pre-token: its bytes, merged in the order the merges were learnt."
    rank = {pair: k for k, pair in enumerate(merges)}
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        present = [p for p in zip(ids, ids[1:]) if p in rank]
        if not present: break
        a, b = min(present, key=rank.__getitem__)  # the merge learnt first
        ids = list(_merge(tuple(ids), a, b, 256 + rank[(a, b)]))
    return ids
