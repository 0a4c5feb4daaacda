"Tests of llm_course.autograd: the scalar engine, the activation derivatives and the gradient checker."
import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.gradcheck import GradcheckError as TorchGradcheckError

from llm_course.core import ConfigError, LLMCourseError
from llm_course.autograd import (ACTIVATIONS, MLP, GradcheckError, Value, gelu, gelu_grad, gradcheck,
                                 layer_grad_norms, numerical_grads, sigmoid, sigmoid_grad, silu_grad,
                                 topological_order)


def _torch_grads(fn, *vals):
    ts = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in vals]
    out = fn(*ts); out.backward()
    return out.item(), [t.grad.item() for t in ts]


@pytest.mark.parametrize("name,fv,ft", [
    ("add", lambda a, b: a + b, lambda a, b: a + b),
    ("mul", lambda a, b: a * b, lambda a, b: a * b),
    ("sub", lambda a, b: a - b, lambda a, b: a - b),
    ("rsub", lambda a, b: 3 - a * b, lambda a, b: 3 - a * b),
    ("div", lambda a, b: a / b, lambda a, b: a / b),
    ("rdiv", lambda a, b: 2 / (a + b), lambda a, b: 2 / (a + b)),
    ("pow_const", lambda a, b: a**3 + b**-2, lambda a, b: a**3 + b**-2),
    ("pow_value", lambda a, b: a**b, lambda a, b: a**b),
    ("rpow", lambda a, b: 2.0**b * a, lambda a, b: 2.0**b * a),
    ("exp_log", lambda a, b: (a * b).exp() + (a + 2).log(), lambda a, b: torch.exp(a * b) + torch.log(a + 2)),
    ("tanh", lambda a, b: (a - b).tanh(), lambda a, b: torch.tanh(a - b)),
    ("relu", lambda a, b: (a - b).relu() * b, lambda a, b: torch.relu(a - b) * b),
    ("sigmoid", lambda a, b: (a * b).sigmoid(), lambda a, b: torch.sigmoid(a * b)),
    ("reuse", lambda a, b: a * a * a + a * b, lambda a, b: a * a * a + a * b),
])
def test_value_ops_match_torch(name, fv, ft):
    a, b = Value(1.3), Value(-0.6) if name not in ("pow_value",) else Value(0.7)
    out = fv(a, b); out.backward()
    ref, (ga, gb) = _torch_grads(ft, a.data, b.data)
    assert out.data == pytest.approx(ref, abs=1e-12)
    assert a.grad == pytest.approx(ga, abs=1e-12) and b.grad == pytest.approx(gb, abs=1e-12)


def test_sigmoid_is_stable_for_large_inputs():
    for x in (-800.0, 800.0):
        v = Value(x); s = v.sigmoid(); s.backward()
        assert 0.0 <= s.data <= 1.0 and v.grad == pytest.approx(0.0, abs=1e-300)


def test_backward_is_repeatable_and_deep_graphs_work():
    x = Value(2.0); total = Value(0.0)
    for _ in range(5000): total = total + x * 1.0  # deeper than Python's recursion limit
    total.backward(); assert x.grad == 5000.0
    total.backward(); assert x.grad == 5000.0  # reset, not accumulated
    order = topological_order(total)
    pos = {id(n): i for i, n in enumerate(order)}
    assert all(pos[id(p)] < pos[id(n)] for n in order for p in n._prev)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_derivatives_match_autograd(name):
    fn, dfn = ACTIVATIONS[name]
    x = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    x = x[x.abs() > 1e-6].requires_grad_()
    (g,) = torch.autograd.grad(fn(x).sum(), x)
    assert torch.allclose(dfn(x.detach()), g, atol=1e-12, rtol=0)


def test_activation_forward_matches_torch():
    x = torch.randn(1000, dtype=torch.float64)
    assert torch.allclose(gelu(x), F.gelu(x), atol=1e-12)
    assert torch.allclose(sigmoid_grad(x), torch.sigmoid(x) * (1 - torch.sigmoid(x)), atol=0)
    assert torch.allclose(silu_grad(x), torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))), atol=1e-15)
    assert float(sigmoid_grad(x).max()) <= 0.25 and float(gelu_grad(torch.tensor([0.0]))) == 0.5


def test_gradcheck_passes_on_correct_and_agrees_with_torch():
    x = torch.randn(3, 4, dtype=torch.float64); w = torch.randn(4, 5, dtype=torch.float64)
    f = lambda x, w: torch.tanh(x @ w) * x.sum()
    assert gradcheck(f, (x, w)) < 1e-7
    assert torch.autograd.gradcheck(f, (x.clone().requires_grad_(), w.clone().requires_grad_()))
    # float32 inputs are promoted: the check still runs in float64
    assert gradcheck(lambda a: (a**2).sum(), torch.randn(5)) < 1e-7


class _WrongGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x): ctx.save_for_backward(x); return x**3
    @staticmethod
    def backward(ctx, g): (x,) = ctx.saved_tensors; return g * 3 * x**2 * 1.01  # 1% off


def test_gradcheck_catches_a_small_error_like_torch():
    x = torch.rand(6, dtype=torch.float64) + 0.5
    with pytest.raises(GradcheckError, match="input 0"): gradcheck(_WrongGrad.apply, x)
    assert isinstance(GradcheckError("x"), LLMCourseError) and isinstance(GradcheckError("x"), AssertionError)
    err = gradcheck(_WrongGrad.apply, x, raise_on_mismatch=False)
    assert err > 1e-3
    with pytest.raises(TorchGradcheckError):
        torch.autograd.gradcheck(_WrongGrad.apply, (x.clone().requires_grad_(),))


def test_gradcheck_non_float_inputs_unused_inputs_and_noncontiguous():
    X = torch.randn(5, 3, dtype=torch.float64); t = torch.randint(0, 3, (5,))
    assert gradcheck(lambda X, t: F.cross_entropy(X, t), (X, t)) < 1e-7
    y = torch.randn(4, dtype=torch.float64)
    assert gradcheck(lambda a, b: a.sum() * 2, (torch.randn(3, dtype=torch.float64), y)) < 1e-7
    nc = torch.randn(4, 6, dtype=torch.float64).T  # not contiguous
    assert gradcheck(lambda a: a.exp() * a, nc) < 1e-7


def test_numerical_grads_central_differences():
    x = torch.tensor([0.3, -1.2], dtype=torch.float64)
    v = torch.tensor([1.0, 1.0], dtype=torch.float64)
    (g,) = numerical_grads(lambda a: torch.sin(a), [x], v, eps=1e-5)
    assert torch.allclose(g, torch.cos(x), atol=1e-9)


def test_gradcheck_bad_arguments():
    x = torch.randn(3, dtype=torch.float64)
    with pytest.raises(ConfigError, match="eps"): gradcheck(torch.sin, x, eps=0)
    with pytest.raises(ConfigError, match="atol"): gradcheck(torch.sin, x, atol=-1)
    with pytest.raises(ConfigError, match="no floating-point"): gradcheck(lambda t: t.double(), torch.arange(3))
    with pytest.raises(ConfigError, match="float64"): gradcheck(lambda t: t.float(), x)


def test_vanishing_gradients_through_sigmoids():
    sig = layer_grad_norms(torch.sigmoid, depth=20, width=32, batch=16)
    relu = layer_grad_norms(torch.relu, depth=20, width=32, batch=16, init_gain=math.sqrt(2))
    assert len(sig) == 20 and 0 < sig[0] / sig[-1] < 1e-6
    assert relu[0] / relu[-1] > 1e-2
    with pytest.raises(ConfigError): layer_grad_norms(torch.sigmoid, depth=0)


def test_engine_mlp_trains_and_matches_torch():
    mlp = MLP([2, 4, 1], act="tanh", seed=1)
    X = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    Y = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    net = mlp.to_torch()
    loss = sum(((-y * mlp(list(map(float, x)))[0]).exp() + 1).log() for x, y in zip(X, Y.tolist())) / 4
    loss.backward()
    loss_t = F.softplus(-Y * net(X).squeeze(1)).mean(); loss_t.backward()
    assert loss.data == pytest.approx(loss_t.item(), abs=1e-12)
    assert mlp.layers[0].neurons[0].w[1].grad == pytest.approx(net[0].weight.grad[0, 1].item(), abs=1e-12)
    with pytest.raises(ConfigError): MLP([2])
    with pytest.raises(ConfigError, match="activation"): MLP([2, 3, 1], act="swish")


def test_layer_grad_norms_rejects_fractional_depth():
    with pytest.raises(ConfigError, match="depth must be an int ≥ 1, got 2.5"): layer_grad_norms(torch.sigmoid, depth=2.5)
