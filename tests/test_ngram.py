"NGramLM: normalisation, agreement with direct formulas and with nltk.lm, sampling determinism."
import math
from collections import Counter

import numpy as np
import pytest
import torch

from llm_course.ngram import NGramCounts, NGramLM, SMOOTHINGS

TEXT = "the cat sat on the mat. the dog sat on the log. the cat saw the dog on the mat."
CHARS = sorted(set(TEXT))
SID = {c: i for i, c in enumerate(CHARS)}
IDS = [SID[c] for c in TEXT]


def make(n, V, smoothing, ids=IDS):
    kw = dict(k=0.5) if smoothing == "add_k" else {}
    return NGramLM(n, V, smoothing, **kw).fit(ids)


def naive_kn(ids, n, V, D, ctx, w):
    cnt = {m: Counter(tuple(ids[i:i + m]) for i in range(len(ids) - m + 1)) for m in range(1, n + 2)}
    def rec(h):
        lower = rec(h[1:]) if h else 1 / V
        m = len(h) + 1
        c = cnt[m] if m == n else Counter(g[1:] for g in cnt[m + 1])
        row = {g[-1]: v for g, v in c.items() if g[:-1] == h and v > 0}
        T = sum(row.values())
        return lower if T == 0 else max(row.get(w, 0) - D, 0) / T + D * len(row) / T * lower
    return rec(tuple(ctx)[max(0, len(ctx) - (n - 1)):])


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_distributions_sum_to_one(n, smoothing):
    V = len(CHARS) + 3  # ids never seen in training
    lm = make(n, V, smoothing)
    rng = np.random.default_rng(n)
    contexts = [[], IDS[:1], IDS[:n - 1], IDS[10:10 + n + 2], [V - 1] * (n - 1), [V - 1, V - 2] + IDS[:3]]
    contexts += [list(rng.integers(0, V, size=rng.integers(0, n + 2))) for _ in range(20)]
    for ctx in contexts:
        p = lm.distribution(ctx)
        assert p.shape == (V,) and p.dtype == np.float64
        assert abs(p.sum() - 1) < 1e-9 and (p >= 0).all()
        if smoothing != "mle": assert (p > 0).all()  # unseen tokens keep some probability


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_kn_matches_recursion(n):
    V = len(CHARS) + 1
    lm = make(n, V, "kn")
    for ctx in ([], IDS[:3], [V - 1, SID["t"], SID["h"]], [SID["."], SID["."], SID["."]]):
        ref = [naive_kn(IDS, n, V, 0.75, ctx, w) for w in range(V)]
        np.testing.assert_allclose(lm.distribution(ctx), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_token_log_probs_match_distribution(smoothing):
    V = len(CHARS) + 2
    lm = make(3, V, smoothing)
    probe = [SID[c] for c in "the dog sat on the cat."] + [V - 1, V - 2, SID["t"]]
    ref = [lm.prob(probe[max(0, t - 2):t], probe[t]) for t in range(len(probe))]
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(lm.token_log_probs(probe), np.log(ref), rtol=0, atol=1e-12)
    ce = lm.cross_entropy(probe)
    assert ce == pytest.approx(-lm.log_prob(probe) / len(probe))
    if smoothing == "mle": assert math.isinf(ce) and math.isinf(lm.perplexity(probe))
    else: assert lm.perplexity(probe) == pytest.approx(math.exp(ce))


def test_counts_match_counter():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, size=3000)
    c = NGramCounts(ids, 5, 7)
    for m in range(1, 6):
        ref = Counter(tuple(ids[i:i + m]) for i in range(len(ids) - m + 1))
        assert len(c.keys[m]) == len(ref) and sum(c.counts[m]) == len(ids) - m + 1
        for g, v in list(ref.items())[:200]: assert c.count(g) == v


def test_large_vocab_no_overflow():
    "Keys are context-rank * V + token, so big vocabularies and long n-grams don't overflow int64."
    V = 2**31
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, size=500)
    ids[250:300] = ids[:50]  # a repeated stretch: long n-grams seen twice
    lm = NGramLM(8, V, "kn").fit(ids)
    assert lm.counts.count(ids[:8]) == 2
    assert np.isfinite(lm.cross_entropy(ids))


def test_inputs_as_tensor_list_array():
    lm = make(3, len(CHARS), "kn")
    for ids in (IDS, np.array(IDS, dtype=np.uint16), torch.tensor(IDS)):
        assert lm.cross_entropy(ids) == pytest.approx(lm.cross_entropy(IDS))
    assert lm.prob(torch.tensor(IDS[:2]), IDS[2]) == pytest.approx(lm.prob(IDS[:2], IDS[2]))


def test_context_longer_is_cut_shorter_backs_off():
    lm = make(3, len(CHARS), "kn")
    np.testing.assert_array_equal(lm.distribution(IDS[:7]), lm.distribution(IDS[5:7]))
    uni = lm.distribution([])
    assert not np.allclose(uni, lm.distribution(IDS[5:7]))
    assert abs(lm.distribution(IDS[6:7]).sum() - 1) < 1e-12


def test_kn_beats_add_k_on_held_out():
    rng = np.random.default_rng(0)
    # a first-order Markov chain: a bigram model should get close to its entropy
    P = rng.dirichlet(np.full(20, 0.3), size=20)
    ids = [0]
    for _ in range(20000): ids.append(int(rng.choice(20, p=P[ids[-1]])))
    train, valid = ids[:18000], ids[18000:]
    kn = NGramLM(4, 20, "kn").fit(train).cross_entropy(valid)
    add1 = NGramLM(4, 20, "add_k", k=1.0).fit(train).cross_entropy(valid)
    H = -np.sum(np.bincount(train, minlength=20)[:, None] / len(train) * P * np.log(P))
    assert kn < add1 and kn == pytest.approx(H, rel=0.08)


def test_sampling_is_seeded():
    lm = make(4, len(CHARS), "kn")
    a = lm.sample(200, context=IDS[:3], seed=0)
    assert a == lm.sample(200, context=IDS[:3], seed=0)
    assert a != lm.sample(200, context=IDS[:3], seed=1)
    assert len(a) == 200 and all(isinstance(t, int) and 0 <= t < len(CHARS) for t in a)
    assert lm.sample(0) == []
    # MLE samples only continuations seen in training
    mle = make(3, len(CHARS), "mle")
    s = IDS[:2] + mle.sample(300, context=IDS[:2], seed=3)
    seen = {tuple(IDS[i:i + 3]) for i in range(len(IDS) - 2)}
    assert all(tuple(s[i:i + 3]) in seen for i in range(len(s) - 2))


def test_sampling_matches_distribution():
    "Unigram samples follow the model's distribution (chi-square-ish check)."
    lm = NGramLM(1, 4, "mle").fit([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    s = np.bincount(lm.sample(20000, seed=0), minlength=4) / 20000
    np.testing.assert_allclose(s, [0.6, 0.3, 0.1, 0.0], atol=0.015)


# ---- parity with nltk.lm -------------------------------------------------------------------------

nltk_lm = pytest.importorskip("nltk.lm")
from nltk.lm.smoothing import KneserNey  # noqa: E402
from nltk.util import everygrams, ngrams  # noqa: E402


class _KNFloor(KneserNey):
    "NLTK's Kneser-Ney with the unigram interpolated with 1/V, as NGramLM does."
    def unigram_score(self, word):
        cc, total = self._continuation_counts(word)
        types = len({w for fd in self.counts[2].values() for w, c in fd.items() if c > 0})
        return (max(cc - self.discount, 0) + self.discount * types / len(self.vocab)) / total


class _KNInterpolatedFloor(nltk_lm.KneserNeyInterpolated):
    def __init__(self, order, discount=0.1, **kw):
        super().__init__(order, discount=discount, **kw)
        self.estimator = _KNFloor(self.vocab, self.counts, order=order, discount=discount)


def _nltk(cls, n, train, **kw):
    lm = cls(n, **kw)
    lm.fit([list(everygrams(list(train), max_len=n))], vocabulary_text=list(train))
    return lm


@pytest.mark.parametrize("n", [2, 3, 4])
def test_perplexity_matches_nltk(n):
    train = TEXT
    unk = len(SID)
    enc = lambda s: [SID.get(c, unk) for c in s]
    seen_test = "the cat sat on the log. the dog saw the mat."
    kn_test = "the dog sat on the hat. a cat ate the mat!"
    assert train[:n - 1] in train[1:]
    cases = [(nltk_lm.MLE, {}, NGramLM(n, unk + 1, "mle"), seen_test),
             (nltk_lm.Laplace, {}, NGramLM(n, unk + 1, "add_k", k=1.0), seen_test),
             (nltk_lm.Lidstone, dict(gamma=0.3), NGramLM(n, unk + 1, "add_k", k=0.3), seen_test),
             (_KNInterpolatedFloor, dict(discount=0.6), NGramLM(n, unk + 1, "kn", discount=0.6), kn_test)]
    for cls, kw, mine, test in cases:
        ref = _nltk_lidstone(n, train, kw["gamma"]) if cls is nltk_lm.Lidstone else _nltk(cls, n, train, **kw)
        ref_ppl = ref.perplexity(list(ngrams(list(test), n)))
        ours = math.exp(-mine.fit(enc(train)).token_log_probs(enc(test))[n - 1:].mean())
        assert ours == pytest.approx(ref_ppl, rel=1e-9), cls.__name__


def _nltk_lidstone(n, train, gamma):
    lm = nltk_lm.Lidstone(gamma, n)
    lm.fit([list(everygrams(list(train), max_len=n))], vocabulary_text=list(train))
    return lm


def test_sampling_accepts_generators():
    lm = make(3, len(CHARS), "kn")
    t1, t2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert lm.sample(40, seed=t1) == lm.sample(40, seed=t2)
    assert lm.sample(40, seed=np.random.default_rng(2)) == lm.sample(40, seed=np.random.default_rng(2))


def test_floors_ngram_needs_no_later_chapter():
    "Chapter 03's module stands on core alone: importing it loads neither losses (chapter 04) nor anything above."
    import subprocess, sys
    code = "import sys, llm_course.ngram; print(sorted(m for m in sys.modules if m.startswith('llm_course.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["llm_course.core", "llm_course.ngram"], out
    from llm_course.core import perplexity
    from llm_course.losses import perplexity as from_losses
    assert from_losses is perplexity  # defined once, in core; losses re-exports it
