"Chapter 5's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import rejected, solutions
from llm_course.losses import AUTOGRAD_TOOLS
from llm_course.autograd import Value, check_numerical_gradient, check_swiglu_backward, check_value_tanh, silu, silu_grad

S = solutions("05_backprop")


def _tanh_node(deriv, assign=False, chain=True):
    "A value_tanh whose backward uses `deriv(x, t)`, optionally with `=` instead of `+=` or without out.grad."
    def value_tanh(v):
        t = math.tanh(v.data); out = Value(t, (v,), "tanh")
        def _backward():
            local = deriv(v.data, t) * (out.grad if chain else 1.0)
            if assign: v.grad = local
            else: v.grad += local
        out._backward = _backward
        return out
    return value_tanh


def test_value_tanh():
    assert check_value_tanh(S["value_tanh"])
    r = check_value_tanh(_tanh_node(lambda x, t: 1 - x * x)); assert not r and "not 1 − x²" in r.message
    r = check_value_tanh(_tanh_node(lambda x, t: 1 - t * t, assign=True)); assert not r and "a path was lost" in r.message
    r = check_value_tanh(_tanh_node(lambda x, t: 1 - t * t, chain=False)); assert not r and "out.grad" in r.message
    r = check_value_tanh(lambda v: Value(math.tanh(v.data))); assert not r and "nothing reached x" in r.message
    def stub(v): raise NotImplementedError
    r = check_value_tanh(stub); assert not r and not r.done


def _numgrad(kind):
    def numerical_gradient(f, x, eps=1e-6):
        flat = x.view(-1) if kind == "in_place_no_restore" else x.detach().clone().view(-1)
        g = torch.zeros_like(flat)
        for j in range(flat.numel()):
            orig = flat[j].item()
            if kind == "forward":
                base = float(f(flat.view_as(x))); flat[j] = orig + eps; g[j] = (float(f(flat.view_as(x))) - base) / eps
            else:
                flat[j] = orig + eps; plus = float(f(flat.view_as(x)))
                flat[j] = orig - eps; minus = float(f(flat.view_as(x)))
                g[j] = (plus - minus) / (eps if kind == "no_half" else 2 * eps)
            if kind != "in_place_no_restore": flat[j] = orig
        return g.view_as(x)
    return numerical_gradient


def test_numerical_gradient():
    assert check_numerical_gradient(S["numerical_gradient"])
    r = check_numerical_gradient(_numgrad("forward")); assert not r and "central differences" in r.message
    r = check_numerical_gradient(_numgrad("no_half")); assert not r and "divide by 2·eps" in r.message
    r = check_numerical_gradient(_numgrad("in_place_no_restore")); assert not r and "changed x" in r.message


def _swiglu(mistake):
    def swiglu_backward(x, w1, w3, gy):
        a, b = x @ w1.T, x @ w3.T
        da = {"sigmoid": gy * b * torch.sigmoid(a), "no_gate": gy * silu_grad(a)}.get(mistake, gy * b * silu_grad(a))
        db = gy * silu(a)
        dx = da @ w1 if mistake == "one_branch" else da @ w1 + db @ w3
        xs = x.reshape(-1, x.shape[-1])
        dw1 = xs.T @ da.reshape(-1, w1.shape[0]) if mistake == "transposed" else da.reshape(-1, w1.shape[0]).T @ xs
        return dx, dw1, db.reshape(-1, w3.shape[0]).T @ xs
    return swiglu_backward


def test_swiglu_backward():
    assert check_swiglu_backward(S["swiglu_backward"])
    r = check_swiglu_backward(_swiglu("sigmoid")); assert not r and "product rule, not σ(a)" in r.message
    r = check_swiglu_backward(_swiglu("no_gate")); assert not r and "other branch" in r.message
    r = check_swiglu_backward(_swiglu("one_branch")); assert not r and "x feeds both branches" in r.message
    r = check_swiglu_backward(_swiglu("transposed")); assert not r and "shape" in r.message and "grad_aᵀ @ x" in r.message


# ------------------------------------------------------------------ autograd is off while the learner's code runs

def _autograd_state():
    "Autograd's entry points the checks replace, and whether gradients are on: what must be the same after a check."
    return {(n, name): vars(o).get(name, "inherited") for o, name, n in AUTOGRAD_TOOLS}, torch.is_grad_enabled()


def _numgrad_by_backward(f, x, eps=1e-6):
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(); f(x).backward(); return x.grad


def _numgrad_by_grad(f, x, eps=1e-6):
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(); return torch.autograd.grad(f(x), x)[0]


@pytest.mark.parametrize("shortcut, name", [
    (_numgrad_by_backward, "Tensor.backward"), (_numgrad_by_grad, "torch.autograd.grad"),
    (lambda f, x, eps=1e-6: torch.func.grad(f)(x), "torch.func.grad"),
    (lambda f, x, eps=1e-6: torch.autograd.functional.jacobian(f, x), "torch.autograd.functional.jacobian")])
def test_numerical_gradient_rejects_autograd(shortcut, name):
    before = _autograd_state()
    rejected(check_numerical_gradient(shortcut), f"called {name}", "rules out")
    assert _autograd_state() == before, "the check left autograd patched or off"
    assert check_numerical_gradient(S["numerical_gradient"])


def _swiglu_autograd(x, w1, w3, gy):
    with torch.enable_grad():
        leaves = [t.detach().clone().requires_grad_() for t in (x, w1, w3)]
        y = F.silu(leaves[0] @ leaves[1].T) * (leaves[0] @ leaves[2].T)
        y.backward(gy)
        return tuple(t.grad for t in leaves)


def _swiglu_vjp(x, w1, w3, gy):
    return torch.func.vjp(lambda a, b, c: F.silu(a @ b.T) * (a @ c.T), x, w1, w3)[1](gy)


@pytest.mark.parametrize("shortcut, name", [(_swiglu_autograd, "Tensor.backward"), (_swiglu_vjp, "torch.func.vjp")])
def test_swiglu_backward_rejects_autograd(shortcut, name):
    before = _autograd_state()
    rejected(check_swiglu_backward(shortcut), f"called {name}", "rules out")
    assert _autograd_state() == before
    assert check_swiglu_backward(S["swiglu_backward"])


def test_checks_run_without_autograd():
    "The learner's function sees autograd off and inputs that do not require grad; after a failing answer all is restored."
    seen = []
    def spy_num(f, x, eps=1e-6):
        seen.append((torch.is_grad_enabled(), x.requires_grad)); return S["numerical_gradient"](f, x, eps)
    def spy_swiglu(x, w1, w3, gy):
        seen.append((torch.is_grad_enabled(), any(t.requires_grad for t in (x, w1, w3, gy)))); return S["swiglu_backward"](x, w1, w3, gy)
    assert check_numerical_gradient(spy_num) and check_swiglu_backward(spy_swiglu)
    assert len(seen) == 8 and all(s == (False, False) for s in seen), seen
    before = _autograd_state()
    def broken(*args, **kwargs): raise RuntimeError("boom")
    rejected(check_swiglu_backward(broken), "RuntimeError")
    assert _autograd_state() == before and torch.is_grad_enabled()
