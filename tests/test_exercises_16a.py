"""Chapter 16a's exercise checks reject the usual wrong answers, each with a message naming the mistake, accept the solution, and cannot be passed by calling datasketch."""
import numpy as np

from conftest import rejected, solutions
from llm_course.curate import check_lsh_candidates, check_minhash_signature, check_word_shingles

S = solutions("16a_data_quality")


def test_solutions_pass():
    assert check_word_shingles(S["word_shingles"])
    assert check_minhash_signature(S["minhash_signature"])
    assert check_lsh_candidates(S["lsh_candidates"])


def test_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check in (check_word_shingles, check_minhash_signature, check_lsh_candidates):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


# word_shingles -------------------------------------------------------------------------------------------------------

def test_shingles_list():  # duplicates kept
    ws = lambda t, n: [tuple(t.lower().split()[i:i + n]) for i in range(max(len(t.split()) - n + 1, 1))] if t.split() else []
    rejected(check_word_shingles(ws), "return a set")


def test_shingles_strings():  # "the cat" instead of ("the", "cat")
    rejected(check_word_shingles(lambda t, n: {" ".join(g) for g in S["word_shingles"](t, n)}), "tuple of n words")


def test_shingles_case():
    def wrong(t, n):
        ws = t.split()
        return {tuple(ws[i:i + n]) for i in range(max(len(ws) - n + 1, 1))} if ws else set()
    rejected(check_word_shingles(wrong), "lower-case")


def test_shingles_off_by_one():
    def wrong(t, n):
        ws = t.lower().split()
        return {tuple(ws[i:i + n]) for i in range(len(ws) - n)}
    rejected(check_word_shingles(wrong), "off by one")


def test_shingles_short_text():  # a text shorter than n gives nothing
    def wrong(t, n):
        ws = t.lower().split()
        return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}
    rejected(check_word_shingles(wrong), "shorter than n words is one shingle")


# minhash_signature ---------------------------------------------------------------------------------------------------

def _v(x, a, b): return (a[:, None] * x[None, :] + b[:, None])


def test_minhash_max():
    rejected(check_minhash_signature(lambda x, a, b: (_v(x, a, b) >> np.uint64(32)).max(1).astype(np.uint32) if len(x) else np.full(len(a), 0xFFFFFFFF, np.uint32)), "maximum")


def test_minhash_low_bits():
    rejected(check_minhash_signature(lambda x, a, b: _v(x, a, b).astype(np.uint32).min(1) if len(x) else np.full(len(a), 0xFFFFFFFF, np.uint32)), "low 32 bits")


def test_minhash_wrong_axis():  # the minimum over the hash functions: one value per key
    rejected(check_minhash_signature(lambda x, a, b: (_v(x, a, b) >> np.uint64(32)).min(0).astype(np.uint32)), "minimum over the keys")


def test_minhash_no_b():
    rejected(check_minhash_signature(lambda x, a, b: ((a[:, None] * x[None, :]) >> np.uint64(32)).min(1).astype(np.uint32) if len(x) else np.full(len(a), 0xFFFFFFFF, np.uint32)), "values differ")


def test_minhash_datasketch_shortcut():  # the library's MinHash is switched off while the learner's code runs
    def shortcut(x, a, b):
        import datasketch
        m = datasketch.MinHash(len(a))
        m.update_batch([int(v).to_bytes(8, "little") for v in x])
        return m.hashvalues.astype(np.uint32)
    rejected(check_minhash_signature(shortcut), "datasketch is switched off")
    import datasketch  # and it is back afterwards
    assert datasketch.MinHash(16).hashvalues.shape == (16,)


# lsh_candidates ------------------------------------------------------------------------------------------------------

def test_lsh_whole_signature():
    def wrong(sig, bands, rows):
        out = set()
        for i in range(len(sig)):
            for j in range(i + 1, len(sig)):
                if np.array_equal(sig[i, :bands * rows], sig[j, :bands * rows]): out.add((i, j))
        return out
    rejected(check_lsh_candidates(wrong), "whole signatures")


def test_lsh_both_orders():
    rejected(check_lsh_candidates(lambda sig, b, r: S["lsh_candidates"](sig, b, r) | {(j, i) for i, j in S["lsh_candidates"](sig, b, r)}), "i < j")


def test_lsh_strided_bands():
    def wrong(sig, bands, rows):
        out = set()
        for k in range(bands):
            buckets = {}
            for i in range(len(sig)): buckets.setdefault(sig[i, k:bands * rows:bands].tobytes(), []).append(i)
            out |= {(x, y) for ids in buckets.values() for q, x in enumerate(ids) for y in ids[q + 1:]}
        return out
    rejected(check_lsh_candidates(wrong), "contiguous columns")


def test_lsh_datasketch_shortcut():
    def shortcut(sig, bands, rows):
        from datasketch import MinHashLSH
        MinHashLSH(num_perm=sig.shape[1], params=(bands, rows))
        return set()
    rejected(check_lsh_candidates(shortcut), "datasketch is switched off")
