"""Solutions to chapter 3's exercises — try first, then compare."""
import math

import numpy as np


def perplexity_from_log_probs(log_probs: np.ndarray) -> float:
    "exp(−mean log p): the effective number of equally likely next tokens."
    nll = -float(np.mean(log_probs))  # a -inf log-prob makes this inf
    return math.exp(nll) if nll < 709 else math.inf  # math.exp overflows beyond ~709


def _pair_counts(ids: np.ndarray, V: int) -> np.ndarray:
    "C[a, b] = how often b follows a."
    C = np.zeros((V, V))
    np.add.at(C, (ids[:-1], ids[1:]), 1)
    return C


def bigram_mle(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    "P[a, b] = P(b | a) by maximum likelihood; unseen contexts get the unigram distribution."
    C = _pair_counts(ids, vocab_size)
    row = C.sum(1, keepdims=True)  # times a is followed by a token (the last token has no successor)
    unigram = np.bincount(ids, minlength=vocab_size) / len(ids)
    return np.where(row > 0, C / np.maximum(row, 1), unigram)


def continuation_counts(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    "N[w] = how many distinct tokens were seen directly before w."
    seen = _pair_counts(ids, vocab_size) > 0  # each pair type once
    return seen.sum(0)


def kn_bigram(ids: np.ndarray, vocab_size: int, discount: float = 0.75) -> np.ndarray:
    "P[a, b] = P_KN(b | a), interpolated Kneser–Ney with a uniform floor."
    V, D = vocab_size, discount
    N = continuation_counts(ids, V).astype(float)
    T = N.sum()
    p1 = np.maximum(N - D, 0) / T + D * (N > 0).sum() / T / V  # continuation unigram, interpolated with 1/V
    C = _pair_counts(ids, V)
    row = C.sum(1, keepdims=True)
    types = (C > 0).sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p2 = (np.maximum(C - D, 0) + D * types * p1) / row
    return np.where(row > 0, p2, p1)  # a context with no counts passes the lower order through
