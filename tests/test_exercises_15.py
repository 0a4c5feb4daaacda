"Chapter 15's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solutions."
import math

import torch

from conftest import rejected, solutions
from llm_course.pretrain import check_bert_mask, check_bits_per_byte, check_markov_entropy_rate

SOL = solutions("15_pretraining")



# --- bits per byte -------------------------------------------------------------------------------------------------

def test_bits_per_byte_accepts_the_solution():
    assert check_bits_per_byte(SOL["bits_per_byte"])


def test_bits_per_byte_rejects_nats():
    rejected(check_bits_per_byte(lambda loss, n, text: loss * n / len(text.encode("utf-8"))), "divide by ln 2")


def test_bits_per_byte_rejects_log10():
    rejected(check_bits_per_byte(lambda loss, n, text: loss * n / (len(text.encode("utf-8")) * math.log(10))), "log base 10")


def test_bits_per_byte_rejects_characters_for_bytes():
    rejected(check_bits_per_byte(lambda loss, n, text: loss * n / (len(text) * math.log(2))), "not bytes")


def test_bits_per_byte_rejects_bits_per_token():
    rejected(check_bits_per_byte(lambda loss, n, text: loss / math.log(2)), "bits per *token*")


def test_bits_per_byte_rejects_non_numbers_and_crashes():
    rejected(check_bits_per_byte(lambda loss, n, text: str(loss)), "expected a number")
    rejected(check_bits_per_byte(lambda loss, n, text: loss * n / (len(text.encode()) - len(text.encode())) / math.log(2)), "ZeroDivisionError")


def test_bits_per_byte_stub_is_not_done():
    def bits_per_byte(loss, n_tokens, text): raise NotImplementedError
    r = check_bits_per_byte(bits_per_byte)
    assert not r and not r.done and "not done yet" in repr(r)


# --- BERT masking ---------------------------------------------------------------------------------------------------

def _bert(ids, pick, kind, rnd, mask_id, prob=0.15, *, labels_everywhere=False, corrupt_all=False, labels_from_inputs=False,
          in_place=False, swap_shares=False):
    picked = pick < prob
    where = torch.ones_like(picked) if corrupt_all else picked
    lo, hi = (0.1, 0.2) if swap_shares else (0.8, 0.9)
    masked = (kind >= 0.2) if swap_shares else (kind < 0.8)
    target = ids if in_place else ids.clone()
    inputs = torch.where(where & masked, torch.full_like(ids, mask_id), target)
    inputs = torch.where(where & (kind >= lo) & (kind < hi), rnd, inputs)
    if in_place: ids.copy_(inputs)
    labels = ids.clone() if labels_everywhere else torch.where(picked, inputs if labels_from_inputs else ids, torch.full_like(ids, -100))
    return inputs, labels


def test_bert_mask_accepts_the_solution():
    assert check_bert_mask(SOL["bert_mask"])


def test_bert_mask_rejects_labels_everywhere():
    rejected(check_bert_mask(lambda *a, **k: _bert(*a, labels_everywhere=True)), "labels must be -100")


def test_bert_mask_rejects_corrupted_labels():
    rejected(check_bert_mask(lambda *a, **k: _bert(*a, labels_from_inputs=True)), "ORIGINAL ids")


def test_bert_mask_rejects_corrupting_unpicked_tokens():
    rejected(check_bert_mask(lambda *a, **k: _bert(*a, corrupt_all=True)), "not picked changed")


def test_bert_mask_rejects_the_wrong_shares():
    rejected(check_bert_mask(lambda *a, **k: _bert(*a, swap_shares=True)), "must become mask_id")


def test_bert_mask_rejects_in_place_edits():
    rejected(check_bert_mask(lambda *a, **k: _bert(*a, in_place=True)), "in place")


def test_bert_mask_rejects_a_single_tensor():
    rejected(check_bert_mask(lambda ids, *a, **k: ids.clone()), "tuple (inputs, labels)")


# --- entropy rate ---------------------------------------------------------------------------------------------------

def _rows(P):
    return -torch.xlogy(P.double(), P.double()).sum(1)


def test_entropy_rate_accepts_the_solution():
    assert check_markov_entropy_rate(SOL["markov_entropy_rate"])


def test_entropy_rate_rejects_a_uniform_average():
    rejected(check_markov_entropy_rate(lambda P: float(_rows(P).mean())), "stationary distribution")


def test_entropy_rate_rejects_bits():
    rejected(check_markov_entropy_rate(lambda P: SOL["markov_entropy_rate"](P) / math.log(2)), "natural log")


def test_entropy_rate_rejects_nan_from_zero_probabilities():
    def naive(P):
        P = P.double()
        w, v = torch.linalg.eig(P.T)
        pi = v[:, int((w.real - 1).abs().argmin())].real
        return float((pi / pi.sum()) @ -(P * P.log()).sum(1))
    rejected(check_markov_entropy_rate(naive), "0·log 0")


def test_entropy_rate_rejects_the_wrong_axis():
    def columns(P):   # the stationary weights, but the entropy of each column instead of each row
        P = P.double(); n = len(P)
        A = torch.cat([P.T - torch.eye(n, dtype=P.dtype), torch.ones(1, n, dtype=P.dtype)])
        pi = torch.linalg.lstsq(A, torch.cat([torch.zeros(n, dtype=P.dtype), torch.ones(1, dtype=P.dtype)])[:, None]).solution[:, 0]
        return float(pi @ -torch.xlogy(P, P).sum(0))
    rejected(check_markov_entropy_rate(columns), "along dim 1")
