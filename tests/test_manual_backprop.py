"The hand-written backward passes of llm_course.autograd against torch.autograd: random shapes, float64, one tight tolerance."
import math

import pytest
import torch
import torch.nn.functional as F

from llm_course.core import ConfigError
from llm_course.autograd import (attention_backward, depth_stds, init_std, layer_norm_backward, linear_backward,
                                 residual_stream_stds, rms_norm_backward, softmax_cross_entropy_backward)

TOL = 1e-10


def _autograd(fn, *inputs, grad_out):
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    return torch.autograd.grad(fn(*leaves), leaves, grad_out)


def _close(ours, ref):
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and a.dtype == torch.float64
        torch.testing.assert_close(a, b, rtol=0, atol=TOL)


def _shapes(seed):
    "A few random leading shapes: none, batch, batch × time."
    g = torch.Generator().manual_seed(seed)
    r = lambda hi: int(torch.randint(1, hi, (1,), generator=g))
    return g, [(r(7),), (r(4), r(6)), (1,), (r(3), r(3), r(4))]


def _rnd(g, *shape, scale=1.0): return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(3))
def test_linear(seed):
    g, shapes = _shapes(seed)
    for lead in shapes:
        d_in, d_out = int(torch.randint(1, 9, (1,), generator=g)), int(torch.randint(1, 9, (1,), generator=g))
        x, W, b, gy = _rnd(g, *lead, d_in), _rnd(g, d_out, d_in), _rnd(g, d_out), _rnd(g, *lead, d_out)
        _close(linear_backward(x, W, gy), _autograd(F.linear, x, W, b, grad_out=gy))


@pytest.mark.parametrize("seed", range(3))
def test_softmax_cross_entropy(seed):
    g, shapes = _shapes(seed)
    for lead in shapes:
        V = int(torch.randint(2, 20, (1,), generator=g))
        z, t = _rnd(g, *lead, V, scale=5.0), torch.randint(0, V, lead, generator=g)
        ref = _autograd(lambda z: F.cross_entropy(z.reshape(-1, V), t.reshape(-1)), z, grad_out=torch.tensor(1.0, dtype=torch.float64))
        _close([softmax_cross_entropy_backward(z, t)], ref)
    z = torch.tensor([[1000.0, -1000.0, 0.0]], dtype=torch.float64)  # extreme logits stay finite
    assert torch.isfinite(softmax_cross_entropy_backward(z, torch.tensor([1]))).all()


@pytest.mark.parametrize("seed", range(3))
def test_layer_norm_and_rms_norm(seed):
    g, shapes = _shapes(seed)
    for lead in shapes:
        D = int(torch.randint(2, 33, (1,), generator=g))
        x, w, b, gy = _rnd(g, *lead, D, scale=3.0) + 2, _rnd(g, D), _rnd(g, D), _rnd(g, *lead, D)
        _close(layer_norm_backward(x, w, gy, eps=1e-5), _autograd(lambda x, w, b: F.layer_norm(x, (D,), w, b, eps=1e-5), x, w, b, grad_out=gy))
        _close(rms_norm_backward(x, w, gy, eps=1e-6), _autograd(lambda x, w: F.rms_norm(x, (D,), w, eps=1e-6), x, w, grad_out=gy))
        _close(layer_norm_backward(x, w, gy, eps=0.5), _autograd(lambda x, w, b: F.layer_norm(x, (D,), w, b, eps=0.5), x, w, b, grad_out=gy))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("causal", [True, False])
def test_attention(seed, causal):
    g, shapes = _shapes(seed)
    for lead in shapes[:-1] + [()]:
        T, d, dv = (int(torch.randint(1, 10, (1,), generator=g)) for _ in range(3))
        S = T if causal else int(torch.randint(1, 10, (1,), generator=g))
        q, k, v, gy = _rnd(g, *lead, T, d), _rnd(g, *lead, S, d), _rnd(g, *lead, S, dv), _rnd(g, *lead, T, dv)
        ref = _autograd(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal), q, k, v, grad_out=gy)
        _close(attention_backward(q, k, v, gy, causal=causal), ref)


def test_bad_inputs_say_how_to_fix():
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ConfigError, match="not its transpose"): linear_backward(x, torch.randn(3, 5), torch.randn(4, 5))
    with pytest.raises(ConfigError, match="output's shape"): linear_backward(x, torch.randn(5, 3), torch.randn(4, 3))
    with pytest.raises(ConfigError, match="last dimension"): softmax_cross_entropy_backward(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"\[0, 3\)"): softmax_cross_entropy_backward(x, torch.full((4,), 3))
    with pytest.raises(ConfigError, match="weight must have shape"): layer_norm_backward(x, torch.ones(4), x)
    with pytest.raises(ConfigError, match="weight must have shape"): rms_norm_backward(x, torch.ones(2), x)
    with pytest.raises(ConfigError, match="one head"): attention_backward(x, x[:, :2], x, x)
    with pytest.raises(ConfigError, match="unknown init scheme"): init_std("glorot", 4)
    with pytest.raises(ConfigError): init_std("xavier", 4)  # fan_out missing


def test_init_keeps_variance():
    relu = lambda y: y.clamp_min(0)
    assert init_std("kaiming", 256) == pytest.approx(math.sqrt(2 / 256)) and init_std("xavier", 100, 300) == pytest.approx(math.sqrt(2 / 400))
    fwd, bwd = depth_stds(relu, init_std("kaiming", 64), depth=20, width=64, batch=64)
    assert 0.3 < fwd[-1] / fwd[0] < 3 and 0.3 < bwd[0] / bwd[-1] < 3
    fwd, bwd = depth_stds(relu, init_std("lecun", 64), depth=20, width=64, batch=64)  # σ² = 1/n loses √2 per ReLU layer
    assert fwd[-1] / fwd[0] < 2 ** -7 and bwd[0] / bwd[-1] < 2 ** -7


def test_residual_scaling_keeps_the_stream_flat():
    unscaled = residual_stream_stds(8, d_model=32, scaled=False, tokens=64)
    scaled = residual_stream_stds(8, d_model=32, scaled=True, tokens=64)
    branch2 = unscaled[1] ** 2 - unscaled[0] ** 2  # the variance one branch adds
    assert len(unscaled) == 17 and unscaled[-1] == pytest.approx(math.sqrt(unscaled[0] ** 2 + 16 * branch2), rel=0.15)
    assert unscaled[-1] > 2.5 * unscaled[0]
    assert scaled[-1] < 1.5 * residual_stream_stds(1, d_model=32, scaled=True, tokens=64)[-1]
