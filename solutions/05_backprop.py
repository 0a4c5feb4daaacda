"""Solutions to chapter 5's exercises — try first, then compare."""
import math

import torch

from llm_course.autograd import Value, silu, silu_grad


def value_tanh(v: Value) -> Value:
    "tanh(v) as a new node of the graph, with its backward closure."
    t = math.tanh(v.data)
    out = Value(t, (v,), "tanh")
    def _backward():
        v.grad += (1 - t * t) * out.grad  # += : v may feed other nodes too
    out._backward = _backward
    return out


def numerical_gradient(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    "Central-difference gradient of the scalar f(x) with respect to every element of x."
    probe = x.detach().clone()            # perturb a copy: x itself stays untouched
    flat = probe.view(-1)
    grad = torch.zeros_like(flat)
    for j in range(flat.numel()):
        orig = flat[j].item()
        flat[j] = orig + eps; plus = float(f(probe))
        flat[j] = orig - eps; minus = float(f(probe))
        flat[j] = orig
        grad[j] = (plus - minus) / (2 * eps)
    return grad.view_as(x)


def swiglu_backward(x: torch.Tensor, w1: torch.Tensor, w3: torch.Tensor, grad_out: torch.Tensor):
    "(∂L/∂x, ∂L/∂w1, ∂L/∂w3) of y = silu(x w1ᵀ) ⊙ (x w3ᵀ), given ∂L/∂y."
    a, b = x @ w1.T, x @ w3.T
    da = grad_out * b * silu_grad(a)      # through silu(a), times the other branch
    db = grad_out * silu(a)
    dx = da @ w1 + db @ w3                # x feeds both branches: the contributions add
    xs = x.reshape(-1, x.shape[-1])
    return dx, da.reshape(-1, w1.shape[0]).T @ xs, db.reshape(-1, w3.shape[0]).T @ xs
