"""Chapter 12a's exercise checks reject the usual wrong answers and the forbidden shortcuts, each with a message naming the
mistake, accept the solutions, and leave torch as they found it."""
import math

import torch
import torch.nn.functional as F

from conftest import rejected, solutions
from llm_course.kernels import check_merge_attention, check_online_logsumexp, check_softmax_backward

SOL = solutions("12a_kernels")
CHECKS = (check_online_logsumexp, check_merge_attention, check_softmax_backward)


def stub(*args): raise NotImplementedError


def test_stubs_are_not_done():
    for check in CHECKS:
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


def test_solutions_pass():
    for check, name in zip(CHECKS, ("online_logsumexp", "merge_attention", "softmax_backward")):
        assert check(SOL[name]), check(SOL[name])


def _running(blocks, rescale=True, safe=True, stable=True):
    m = l = None
    for b in blocks:
        if m is None: m, l = torch.full(b.shape[:-1], -math.inf, dtype=b.dtype), torch.zeros(b.shape[:-1], dtype=b.dtype)
        if not stable:
            l = l + b.exp().sum(-1); continue
        m_new = torch.maximum(m, b.amax(-1))
        ms = m_new.masked_fill(m_new == -math.inf, 0.0) if safe else m_new
        l = (l * torch.exp(m - ms) if rescale else l) + torch.exp(b - ms[:, None]).sum(-1)
        m = m_new
    return l.log() if not stable else m + l.log()


def test_online_logsumexp_rejects():
    rejected(check_online_logsumexp(lambda blocks: _running(blocks, rescale=False)), "rescale what you summed so far")
    rejected(check_online_logsumexp(lambda blocks: _running(blocks, safe=False)), "exp(-inf − (-inf)) is nan")
    rejected(check_online_logsumexp(lambda blocks: _running(blocks, stable=False)), "exp overflows")
    # the forbidden shortcuts: the library's logsumexp/softmax, and collecting the whole row first
    rejected(check_online_logsumexp(lambda blocks: torch.logsumexp(torch.cat(list(blocks), -1), -1)), "you called torch.logsumexp")
    rejected(check_online_logsumexp(lambda blocks: torch.cat(list(blocks), -1).logsumexp(-1)), "you called Tensor.logsumexp")
    def via_softmax(blocks):
        x = torch.cat(list(blocks), -1)
        return (x.exp() / F.softmax(x, -1)).log().mean(-1)
    rejected(check_online_logsumexp(via_softmax), "you called F.softmax")
    def two_pass(blocks):                     # correct numbers, but holds the whole row: not online
        x = torch.cat(list(blocks), -1)
        m = x.amax(-1)
        return m + (x - m[:, None]).exp().sum(-1).log()
    rejected(check_online_logsumexp(two_pass), "was still kept", "don't collect the blocks")


def test_merge_attention_rejects():
    ref = SOL["merge_attention"]
    rejected(check_merge_attention(lambda o1, l1, o2, l2: ((o1 + o2) / 2, torch.logaddexp(l1, l2))), "not a plain average")
    def unstable(o1, l1, o2, l2):
        e1, e2 = l1.exp(), l2.exp()
        return (e1[..., None] * o1 + e2[..., None] * o2) / (e1 + e2)[..., None], (e1 + e2).log()
    rejected(check_merge_attention(unstable), "overflows")
    rejected(check_merge_attention(lambda o1, l1, o2, l2: (ref(o1, l1, o2, l2)[0], torch.maximum(l1, l2))), "not the max")
    rejected(check_merge_attention(lambda o1, l1, o2, l2: ref(o1, l1, o2, l2)[0]), "return a pair (o, lse)")


def test_softmax_backward_rejects():
    rejected(check_softmax_backward(lambda p, dp: p * dp), "missing the −D term")
    rejected(check_softmax_backward(lambda p, dp: dp - (p * dp).sum(-1, keepdim=True)), "multiply by P")
    rejected(check_softmax_backward(lambda p, dp: p * (dp - dp.sum(-1, keepdim=True))), "P-weighted sum")
    rejected(check_softmax_backward(lambda p, dp: p * (dp - (p * dp).sum(-2, keepdim=True))), "the last axis")
    def via_grad(p, dp):                      # the forbidden shortcut: ask autograd
        s = p.log().requires_grad_()
        return torch.autograd.grad(s.softmax(-1), s, dp)[0]
    rejected(check_softmax_backward(via_grad), "you called torch.autograd.grad")
    def via_backward(p, dp):
        s = p.log().requires_grad_()
        s.softmax(-1).backward(dp)
        return s.grad
    rejected(check_softmax_backward(via_backward), "you called Tensor.backward")


def test_checks_restore_what_they_block():
    check_online_logsumexp(lambda blocks: torch.logsumexp(torch.cat(list(blocks), -1), -1))
    check_softmax_backward(lambda p, dp: torch.autograd.grad(p, p, dp))
    assert "softmax" not in vars(torch.Tensor) and "logsumexp" not in vars(torch.Tensor)   # inherited methods are not shadowed
    x = torch.randn(3, 5, requires_grad=True)
    torch.testing.assert_close(torch.softmax(x, -1), x.softmax(-1))
    torch.testing.assert_close(F.log_softmax(x, -1), x - torch.logsumexp(x, -1, keepdim=True))
    g, = torch.autograd.grad(x.logsumexp(-1).sum(), x)
    torch.testing.assert_close(g, x.softmax(-1))
