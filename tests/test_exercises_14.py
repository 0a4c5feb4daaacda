"""Chapter 14's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solutions."""
import torch

from conftest import solutions
from llm_course.generate import check_keep_top_k, check_keep_top_p, check_penalize_repeats, top_k_filter

SOL = solutions("14_generation")
NEG = float("-inf")


def stub(*args): raise NotImplementedError


def test_stubs_are_not_done():
    for check in (check_keep_top_k, check_keep_top_p, check_penalize_repeats):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


def test_keep_top_k():
    assert check_keep_top_k(SOL["keep_top_k"])
    def exactly_k(z, k):   # drops the tokens tied with the k-th
        idx = z.topk(min(k, z.shape[-1]), -1).indices
        return torch.full_like(z, NEG).scatter(-1, idx, z.gather(-1, idx))
    k_plus_one = lambda z, k: top_k_filter(z, k + 1)
    k_minus_one = lambda z, k: top_k_filter(z, max(k - 1, 1)) if k > 1 else top_k_filter(z, 1)
    zeros = lambda z, k: top_k_filter(z, k).nan_to_num(neginf=0.0)
    smallest = lambda z, k: z.masked_fill(z > z.topk(min(k, z.shape[-1]), -1, largest=False).values[..., -1:], NEG)
    for wrong, words in ((exactly_k, "tied with the k-th"), (k_plus_one, "not k + 1"), (k_minus_one, "not k - 1"),
                         (zeros, "-inf"), (smallest, "not the smallest")):
        r = check_keep_top_k(wrong)
        assert not r and r.done and words in r.message, r


def test_keep_top_p():
    assert check_keep_top_p(SOL["keep_top_p"])
    def drops_crossing(z, p):   # keeps i only while the mass *including* it is below p
        sp, order = z.softmax(-1).sort(-1, descending=True)
        drop = sp.cumsum(-1) >= p
        return z.masked_fill(drop.scatter(-1, order, drop), NEG)
    def unsorted(z, p):
        probs = z.softmax(-1)
        return z.masked_fill((probs.cumsum(-1) - probs) >= p, NEG)
    def ascending(z, p):
        sp, order = z.softmax(-1).sort(-1)
        drop = (sp.cumsum(-1) - sp) >= p
        return z.masked_fill(drop.scatter(-1, order, drop), NEG)
    for wrong, words in ((drops_crossing, "makes the mass reach p"), (unsorted, "sort the tokens"), (ascending, "most likely token down")):
        r = check_keep_top_p(wrong)
        assert not r and r.done and words in r.message, r


def test_penalize_repeats():
    assert check_penalize_repeats(SOL["penalize_repeats"])
    def divide_all(z, seen, pen): return z.scatter(-1, seen, z.gather(-1, seen) / pen)
    def per_occurrence(z, seen, pen):
        out = z.clone()
        for b in range(z.shape[0]):
            for t in seen[b].tolist(): out[b, t] = out[b, t] * pen if out[b, t] < 0 else out[b, t] / pen
        return out
    def all_rows(z, seen, pen): return SOL["penalize_repeats"](z, seen.flatten()[None].expand(z.shape[0], -1), pen)
    def swapped(z, seen, pen):
        s = z.gather(-1, seen)
        return z.scatter(-1, seen, torch.where(s < 0, s / pen, s * pen))
    for wrong, words in ((divide_all, "moves *up*"), (per_occurrence, "once, however often"), (all_rows, "its own tokens"),
                         (swapped, "not the other way round")):
        r = check_penalize_repeats(wrong)
        assert not r and r.done and words in r.message, r
