"Chapter 5's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."
import math

import torch

from conftest import solutions
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
