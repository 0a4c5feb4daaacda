"""Chapter 03's exercise checks reject the usual wrong answers, each with a message that names the mistake."""
import math

import numpy as np

from conftest import rejected, solutions
from llm_course.ngram import check_bigram_mle, check_continuation_counts, check_kn_bigram, check_perplexity_from_log_probs

S = solutions("03_ngram")



def test_perplexity_from_log_probs():
    assert check_perplexity_from_log_probs(S["perplexity_from_log_probs"])
    def no_minus(lp): return math.exp(float(np.mean(lp)))
    def summed(lp): return min(math.exp(-float(np.sum(lp))), math.inf) if -np.sum(lp) < 709 else math.inf
    def base_two(lp): return 2 ** (-float(np.mean(lp)))
    def overflows(lp): return math.exp(-float(np.mean(lp)))  # math.exp raises OverflowError past ~709
    rejected(check_perplexity_from_log_probs(no_minus), "MINUS the mean")
    rejected(check_perplexity_from_log_probs(summed), "the mean, not the sum")
    rejected(check_perplexity_from_log_probs(base_two), "use exp, not 2**")
    rejected(check_perplexity_from_log_probs(overflows), "raised OverflowError on log-probs of -800")


def test_bigram_mle():
    assert check_bigram_mle(S["bigram_mle"])
    pairs = S["_pair_counts"]
    def by_token_count(ids, V):  # divides by count(a), which includes the stream's last token
        C = pairs(ids, V); n = np.bincount(ids, minlength=V)[:, None]
        P = C / np.maximum(n, 1)
        return np.where(C.sum(1, keepdims=True) > 0, P, np.bincount(ids, minlength=V) / len(ids))
    def transposed(ids, V): return S["bigram_mle"](ids, V).T
    def zero_rows(ids, V):  # unseen contexts left at 0
        C = pairs(ids, V); return C / np.maximum(C.sum(1, keepdims=True), 1)
    rejected(check_bigram_mle(by_token_count), "FOLLOWED by a token")
    rejected(check_bigram_mle(transposed), "rows are contexts")
    rejected(check_bigram_mle(zero_rows), "give it the unigram distribution")


def test_continuation_counts():
    assert check_continuation_counts(S["continuation_counts"])
    def occurrences(ids, V): return np.bincount(ids, minlength=V)
    def all_left_pairs(ids, V): return np.bincount(ids[1:], minlength=V)  # every pair, not every pair type
    def right_neighbours(ids, V): return (S["_pair_counts"](ids, V) > 0).sum(1)
    rejected(check_continuation_counts(occurrences), "not occurrences")
    rejected(check_continuation_counts(all_left_pairs), "DISTINCT left neighbours")
    rejected(check_continuation_counts(right_neighbours), "BEFORE w")


def test_kn_bigram():
    assert check_kn_bigram(S["kn_bigram"])
    pairs = S["_pair_counts"]
    def kn(ids, V, D, unigram_counts, floor=True, pass_through=True):
        N = unigram_counts.astype(float); T = N.sum()
        p1 = np.maximum(N - D, 0) / T + (D * (N > 0).sum() / T / V if floor else 0)
        C = pairs(ids, V); row = C.sum(1, keepdims=True); types = (C > 0).sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"): p2 = (np.maximum(C - D, 0) + D * types * p1) / row
        return np.where(row > 0, p2, p1) if pass_through else p2
    def raw_unigram(ids, V, D=0.75): return kn(ids, V, D, np.bincount(ids, minlength=V))
    def no_floor(ids, V, D=0.75): return kn(ids, V, D, S["continuation_counts"](ids, V), floor=False)
    def nan_rows(ids, V, D=0.75): return kn(ids, V, D, S["continuation_counts"](ids, V), pass_through=False)
    rejected(check_kn_bigram(raw_unigram), "continuation counts")
    rejected(check_kn_bigram(no_floor), "uniform 1/V")
    rejected(check_kn_bigram(nan_rows), "passes the lower order through")
