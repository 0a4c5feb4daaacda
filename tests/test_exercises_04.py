"Chapter 4's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."
import pytest
import torch
import torch.nn.functional as F

from conftest import rejected, solutions
from llm_course.losses import AUTOGRAD_TOOLS, check_ce_grad, check_masked_cross_entropy, check_stable_log_softmax

S = solutions("04_cross_entropy")


def test_stable_log_softmax():
    assert check_stable_log_softmax(S["stable_log_softmax"])
    no_max = lambda x, dim=-1: (x.exp() / x.exp().sum(dim, keepdim=True)).log()
    r = check_stable_log_softmax(no_max); assert not r and "subtract the max" in r.message and "±1000" in r.message
    global_max = lambda x, dim=-1: (x - x.max()) - (x - x.max()).exp().sum(dim, keepdim=True).log()
    r = check_stable_log_softmax(global_max); assert not r and "subtract the max along `dim`" in r.message
    last_axis = lambda x, dim=-1: x - x.amax(-1, keepdim=True) - (x - x.amax(-1, keepdim=True)).exp().sum(-1, keepdim=True).log()
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


def _state():
    "Every function the checks replace while they run, and whether autograd is on: what must be the same afterwards."
    owners = [torch, torch.Tensor, torch.special, F, torch.autograd, torch.autograd.functional, torch.func]
    names = ["log_softmax", "softmax", "logsumexp"] + [name for _, name, _ in AUTOGRAD_TOOLS]
    return {(o.__name__, n): vars(o).get(n, "inherited") for o in owners for n in names}, torch.is_grad_enabled()


def _sneaky_log_softmax(x, dim=-1):
    "Calls torch.log_softmax and, when that raises, falls back to the right answer: the call alone must fail the check."
    try: return torch.log_softmax(x, dim)
    except Exception:
        m = x.amax(dim, keepdim=True); return x - m - (x - m).exp().sum(dim, keepdim=True).log()


@pytest.mark.parametrize("shortcut, name", [
    (lambda x, dim=-1: torch.log_softmax(x, dim), "torch.log_softmax"),
    (lambda x, dim=-1: F.log_softmax(x, dim), "F.log_softmax"),
    (lambda x, dim=-1: x.log_softmax(dim), "Tensor.log_softmax"),
    (lambda x, dim=-1: torch.special.log_softmax(x, dim), "torch.special.log_softmax"),
    (lambda x, dim=-1: torch.softmax(x, dim).log(), "torch.softmax"),
    (lambda x, dim=-1: F.softmax(x, dim).log(), "F.softmax"),
    (lambda x, dim=-1: x.softmax(dim).log(), "Tensor.softmax"),
    (lambda x, dim=-1: x - torch.logsumexp(x, dim, keepdim=True), "torch.logsumexp"),
    (lambda x, dim=-1: x - x.logsumexp(dim, keepdim=True), "Tensor.logsumexp"),
    (lambda x, dim=-1: torch.nn.LogSoftmax(dim)(x), "F.log_softmax"),
    (_sneaky_log_softmax, "torch.log_softmax")])
def test_stable_log_softmax_rejects_torchs_own(shortcut, name):
    before = _state()
    rejected(check_stable_log_softmax(shortcut), f"called {name}", "rules out")
    assert _state() == before, "the check left torch patched"
    assert check_stable_log_softmax(S["stable_log_softmax"]), "the solution fails after a shortcut was rejected"


def _backward(z, t):
    with torch.enable_grad():
        z = z.clone().requires_grad_(); F.cross_entropy(z, t).backward(); return z.grad


def _autograd_grad(z, t):
    with torch.enable_grad():
        z = z.clone().requires_grad_(); return torch.autograd.grad(F.cross_entropy(z, t), z)[0]


@pytest.mark.parametrize("shortcut, name", [
    (_backward, "Tensor.backward"), (_autograd_grad, "torch.autograd.grad"),
    (lambda z, t: torch.func.grad(lambda w: F.cross_entropy(w, t))(z), "torch.func.grad"),
    (lambda z, t: torch.autograd.functional.jacobian(lambda w: F.cross_entropy(w, t), z), "torch.autograd.functional.jacobian")])
def test_ce_grad_rejects_autograd(shortcut, name):
    before = _state()
    rejected(check_ce_grad(shortcut), f"called {name}", "rules out")
    assert _state() == before, "the check left torch patched or autograd off"
    assert check_ce_grad(S["ce_grad"])


def test_ce_grad_runs_without_autograd():
    "Inside the check autograd is off and the logits do not require grad; torch.softmax stays allowed."
    seen = []
    def spy(z, t):
        seen.append((torch.is_grad_enabled(), z.requires_grad))
        return S["ce_grad"](z, t)
    assert check_ce_grad(spy)
    assert seen and all(s == (False, False) for s in seen), seen
    assert torch.is_grad_enabled()


def test_patches_are_undone_when_the_learners_code_fails():
    before = _state()
    def broken(x, dim=-1): raise ValueError("boom")
    rejected(check_stable_log_softmax(broken), "ValueError", "boom")
    def broken_grad(z, t): raise KeyError("boom")
    rejected(check_ce_grad(broken_grad), "KeyError")
    assert _state() == before
