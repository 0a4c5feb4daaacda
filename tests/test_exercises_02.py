"""Chapter 02's exercise checks reject the usual wrong answers, each with a message that names the mistake."""
from collections import defaultdict

from conftest import rejected, solutions
from llm_course.tokenizer import check_bpe_decode, check_bpe_encode, check_merge_step, check_pair_counts

S = solutions("02_tokenizer")



def test_pair_counts():
    assert check_pair_counts(S["pair_counts"])
    def unweighted(words):
        c = defaultdict(int)
        for w in words:
            for p in zip(w, w[1:]): c[p] += 1
        return dict(c)
    def once_per_word(words):
        c = defaultdict(int)
        for w, f in words.items():
            for p in set(zip(w, w[1:])): c[p] += f
        return dict(c)
    def wraps_around(words):
        c = defaultdict(int)
        for w, f in words.items():
            for p in zip(w, w[1:] + w[:1]): c[p] += f
        return dict(c)
    rejected(check_pair_counts(unweighted), "weight each pair by its word's frequency")
    rejected(check_pair_counts(once_per_word), "holds the pair (97, 97) twice")
    rejected(check_pair_counts(wraps_around), "does not pair with the first")


def test_merge_step():
    assert check_merge_step(S["merge_step"])
    merge, counts = S["_merge"], S["pair_counts"]
    def first_seen_tie(words, new_id):  # max() keeps the first pair it meets among the tied ones
        c = counts(words)
        if not c: return None, dict(words)
        a, b = max(c, key=c.get)
        return (a, b), {merge(w, a, b, new_id): f for w, f in words.items()}
    def right_to_left(words, new_id):
        c = counts(words)
        if not c: return None, dict(words)
        a, b = min(c, key=lambda p: (-c[p], p))
        return (a, b), {merge(w[::-1], b, a, new_id)[::-1]: f for w, f in words.items()}
    def loses_frequency(words, new_id):
        pair, new = S["merge_step"](words, new_id)
        return pair, {w: 1 for w in new}
    def unweighted(words, new_id):
        c = defaultdict(int)
        for w in words:
            for p in zip(w, w[1:]): c[p] += 1
        if not c: return None, dict(words)
        a, b = min(c, key=lambda p: (-c[p], p))
        return (a, b), {merge(w, a, b, new_id): f for w, f in words.items()}
    rejected(check_merge_step(first_seen_tie), "ties go to the smaller pair")
    rejected(check_merge_step(right_to_left), "merge left to right without overlaps")
    rejected(check_merge_step(loses_frequency), "keep each word's frequency")
    rejected(check_merge_step(unweighted), "weighted by word frequency")


def test_bpe_decode():
    assert check_bpe_decode(S["bpe_decode"])
    def per_token(ids, merges):  # decodes each token alone: a character split across tokens breaks
        vocab = [bytes([i]) for i in range(256)]
        for a, b in merges: vocab.append(vocab[a] + vocab[b])
        return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)
    def strict(ids, merges):
        vocab = [bytes([i]) for i in range(256)]
        for a, b in merges: vocab.append(vocab[a] + vocab[b])
        return b"".join(vocab[i] for i in ids).decode("utf-8")
    rejected(check_bpe_decode(per_token), "decode once")
    rejected(check_bpe_decode(strict), "raised UnicodeDecodeError on ids that stop in the middle of a character")


def test_bpe_encode():
    assert check_bpe_encode(S["bpe_encode"])
    merge = S["_merge"]
    def leftmost(text, merges):  # merges the leftmost pair that has a merge, whatever its rank
        rank, ids = {p: k for k, p in enumerate(merges)}, list(text.encode())
        while True:
            hit = next((p for p in zip(ids, ids[1:]) if p in rank), None)
            if hit is None: return ids
            ids = list(merge(tuple(ids), *hit, 256 + rank[hit]))
    def rank_as_id(text, merges):  # merge k becomes token k, colliding with the bytes
        return [i - 256 if i >= 256 else i for i in S["bpe_encode"](text, merges)]
    def one_merge(text, merges):
        rank, ids = {p: k for k, p in enumerate(merges)}, list(text.encode())
        present = [p for p in zip(ids, ids[1:]) if p in rank]
        if present:
            a, b = min(present, key=rank.__getitem__); ids = list(merge(tuple(ids), a, b, 256 + rank[(a, b)]))
        return ids
    rejected(check_bpe_encode(leftmost), "learnt FIRST (lowest rank)")
    rejected(check_bpe_encode(rank_as_id), "256 + k")
    rejected(check_bpe_encode(one_merge), "keep merging")
