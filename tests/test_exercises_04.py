"Chapter 4's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."
import torch
import torch.nn.functional as F

from conftest import solutions
from llm_course.losses import check_ce_grad, check_masked_cross_entropy, check_stable_log_softmax

S = solutions("04_cross_entropy")


def test_stable_log_softmax():
    assert check_stable_log_softmax(S["stable_log_softmax"])
    no_max = lambda x, dim=-1: (x.exp() / x.exp().sum(dim, keepdim=True)).log()
    r = check_stable_log_softmax(no_max); assert not r and "subtract the max" in r.message and "±1000" in r.message
    global_max = lambda x, dim=-1: (x - x.max()) - (x - x.max()).exp().sum(dim, keepdim=True).log()
    r = check_stable_log_softmax(global_max); assert not r and "subtract the max along `dim`" in r.message
    last_axis = lambda x, dim=-1: x - x.logsumexp(-1, keepdim=True)
    r = check_stable_log_softmax(last_axis); assert not r and "normalised along dim 1" in r.message and "dim=0" in r.message
    def stub(x, dim=-1): raise NotImplementedError
    r = check_stable_log_softmax(stub); assert not r and not r.done and "not done yet" in repr(r)


def test_ce_grad():
    assert check_ce_grad(S["ce_grad"])
    no_mean = lambda z, t: torch.softmax(z, -1) - F.one_hot(t, z.shape[-1]).to(z.dtype)
    r = check_ce_grad(no_mean); assert not r and "divide by N" in r.message
    flipped = lambda z, t: (F.one_hot(t, z.shape[-1]).to(z.dtype) - torch.softmax(z, -1)) / len(t)
    r = check_ce_grad(flipped); assert not r and "softmax − one-hot, not one-hot − softmax" in r.message
    def row_onehot(z, t):  # onehot[:, t] = 1 sets whole columns, not one entry per row
        onehot = torch.zeros_like(z); onehot[:, t] = 1
        return (torch.softmax(z, -1) - onehot) / len(t)
    r = check_ce_grad(row_onehot); assert not r and "subtract exactly 1 at each row's target" in r.message
    naive = lambda z, t: (z.exp() / z.exp().sum(-1, keepdim=True) - F.one_hot(t, z.shape[-1]).to(z.dtype)) / len(t)
    r = check_ce_grad(naive); assert not r and "subtracting each row's max" in r.message and "±1000" in r.message


def test_masked_cross_entropy():
    assert check_masked_cross_entropy(S["masked_cross_entropy"])
    def all_positions(z, t, ignore_index=-100):
        counted = t != ignore_index
        nll = -torch.log_softmax(z, -1).gather(-1, t.masked_fill(~counted, 0)[..., None])[..., 0]
        return (nll * counted).sum() / t.numel()
    r = check_masked_cross_entropy(all_positions); assert not r and "number of counted positions" in r.message
    def not_masked(z, t, ignore_index=-100):
        return F.cross_entropy(z.reshape(-1, z.shape[-1]), t.masked_fill(t == ignore_index, 0).reshape(-1))
    r = check_masked_cross_entropy(not_masked); assert not r and "ignored positions still count" in r.message
    def hard_coded(z, t, ignore_index=-100):
        return F.cross_entropy(z.reshape(-1, z.shape[-1]), t.reshape(-1), ignore_index=-100)
    r = check_masked_cross_entropy(hard_coded); assert not r and "`ignore_index` argument" in r.message
    def log_of_softmax(z, t, ignore_index=-100):
        counted = t != ignore_index
        p = torch.softmax(z, -1).gather(-1, t.masked_fill(~counted, 0)[..., None])[..., 0]
        return -(p.log() * counted).sum() / counted.sum()
    r = check_masked_cross_entropy(log_of_softmax); assert not r and "log_softmax" in r.message and "±1000" in r.message
