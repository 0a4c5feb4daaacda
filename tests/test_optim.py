"Optimizers from scratch vs torch.optim, parameter groups, clipping, gradient accumulation."
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_course.optim import (SGD, Adagrad, Adam, AdamW, accumulate_lm_gradients, clip_grad_norm, count_tokens,
                              decay_split, micro_batch_weights, param_groups)


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.LayerNorm(16), nn.Linear(16, 3))


def gap_after(ours_cls, ref_cls, steps=100, **hp):
    a, b = net(), net()
    oa, ob = ours_cls(a.parameters(), **hp), ref_cls(b.parameters(), **hp)
    g = torch.Generator().manual_seed(3)
    for _ in range(steps):
        x, y = torch.randn(8, 6, generator=g), torch.randn(8, 3, generator=g)
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad(); F.mse_loss(m(x), y).backward(); o.step()
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("ours,ref,hp", [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=1e-2)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.5, dampening=0.3)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.05, eps=1e-6, weight_decay=1e-2, initial_accumulator_value=0.5)),
    (Adam, torch.optim.Adam, dict(lr=1e-2)),
    (Adam, torch.optim.Adam, dict(lr=3e-3, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.05)),
    (AdamW, torch.optim.AdamW, dict(lr=1e-2)),
    (AdamW, torch.optim.AdamW, dict(lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)),
])
def test_parity_100_steps(ours, ref, hp):
    assert gap_after(ours, ref, **hp) <= 1e-6


def test_float64_and_param_groups_and_state_dict():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(5, dtype=torch.float64)); b = nn.Parameter(torch.randn(5, dtype=torch.float64))
    w2, b2 = nn.Parameter(w.detach().clone()), nn.Parameter(b.detach().clone())
    groups = lambda p, q: [{"params": [p], "lr": 1e-2}, {"params": [q], "lr": 1e-3, "weight_decay": 0.0}]
    o1, o2 = AdamW(groups(w, b), weight_decay=0.1), torch.optim.AdamW(groups(w2, b2), weight_decay=0.1)
    for _ in range(50):
        for p, q, o in ((w, b, o1), (w2, b2, o2)):
            o.zero_grad(); ((p ** 2).sum() + (q ** 3).sum()).backward(); o.step()
    assert torch.allclose(w, w2, atol=1e-12, rtol=0) and torch.allclose(b, b2, atol=1e-12, rtol=0)
    sd = o1.state_dict()
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"} and float(sd["state"][0]["step"]) == 50
    o3 = AdamW(groups(nn.Parameter(w.detach().clone()), nn.Parameter(b.detach().clone())))
    o3.load_state_dict(o2.state_dict())  # torch's state loads into ours
    assert torch.equal(o3.state_dict()["state"][0]["exp_avg"], o2.state_dict()["state"][0]["exp_avg"])


def test_lr_scheduler_changes_lr():
    p = nn.Parameter(torch.zeros(1))
    opt = SGD([p], lr=1.0)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** s)
    for _ in range(3):
        p.grad = torch.ones(1); opt.step(); sch.step()
    assert p.item() == pytest.approx(-(1 + 0.5 + 0.25))


def test_closure_and_skip_params_without_grad():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    opt = Adam([a, b], lr=0.1)
    def closure():
        opt.zero_grad(); loss = (a ** 2).sum(); loss.backward(); return loss
    loss = opt.step(closure)
    assert loss.item() == pytest.approx(2.0) and torch.equal(b, torch.ones(2)) and not torch.equal(a, torch.ones(2))


class LM(nn.Module):
    def __init__(self, V=20, d=8):
        super().__init__()
        self.emb, self.norm, self.proj = nn.Embedding(V, d), nn.LayerNorm(d), nn.Linear(d, d)
        self.head = nn.Linear(d, V, bias=False)
    def forward(self, idx): return self.head(torch.relu(self.proj(self.norm(self.emb(idx)))))


def test_decay_split_and_groups():
    m = LM()
    decay, keep = decay_split(m)
    assert decay == ["proj.weight", "head.weight"]
    assert set(keep) == {"emb.weight", "norm.weight", "norm.bias", "proj.bias"}
    groups = param_groups(m, weight_decay=0.2, lr=1e-3)
    assert [g["weight_decay"] for g in groups] == [0.2, 0.0] and all(g["lr"] == 1e-3 for g in groups)
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in m.parameters())
    m.head.weight = m.emb.weight  # tied: listed once, not decayed (first name is the embedding)
    decay, keep = decay_split(m)
    assert "head.weight" not in decay + keep and "emb.weight" in keep
    m.proj.weight.requires_grad_(False)
    assert "proj.weight" not in sum(decay_split(m), [])


def test_rmsnorm_like_modules_are_not_decayed():
    class RMSNorm(nn.Module):
        def __init__(self, d):
            super().__init__(); self.weight = nn.Parameter(torch.ones(d, 1))  # even a 2-D gain is caught by type
    m = nn.Sequential(nn.Linear(4, 4), RMSNorm(4))
    assert decay_split(m) == (["0.weight"], ["0.bias", "1.weight"])


@pytest.mark.parametrize("scale,max_norm,norm_type", [(100.0, 1.0, 2.0), (1e-4, 1.0, 2.0), (50.0, 0.5, math.inf), (1.0, 3.0, 2.0)])
def test_clip_matches_torch(scale, max_norm, norm_type):
    a, b = net(), net()
    x = torch.randn(4, 6)
    for m in (a, b): (m(x).pow(2).sum() * scale).backward()
    na = clip_grad_norm(a.parameters(), max_norm, norm_type)
    nb = torch.nn.utils.clip_grad_norm_(b.parameters(), max_norm, norm_type)
    assert torch.allclose(na, nb, rtol=1e-6)
    for p, q in zip(a.parameters(), b.parameters()): assert torch.allclose(p.grad, q.grad, atol=1e-7, rtol=1e-6)


def test_clip_single_tensor_and_no_grads():
    t = nn.Parameter(torch.zeros(3)); t.grad = torch.tensor([3.0, 4.0, 0.0])
    assert clip_grad_norm(t, 1.0).item() == pytest.approx(5.0)
    assert t.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    assert clip_grad_norm([nn.Parameter(torch.zeros(2))], 1.0).item() == 0.0


def _padded(g, B, T, n_real, V=20):
    x, y = torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)
    y[:, n_real:] = -100
    return x, y


def _grads(m): return torch.cat([p.grad.flatten() for p in m.parameters()])


def test_accumulation_equals_big_batch_with_padding():
    g = torch.Generator().manual_seed(0)
    micro = [_padded(g, 3, 10, n) for n in (10, 4, 1)] + [_padded(g, 2, 10, 0)]  # one micro-batch is all padding
    m = LM()
    X, Y = torch.cat([x for x, _ in micro]), torch.cat([y for _, y in micro])
    big = F.cross_entropy(m(X).flatten(0, 1), Y.flatten()); big.backward(); ref = _grads(m).clone()
    m.zero_grad(); loss = accumulate_lm_gradients(m, micro)
    assert loss == pytest.approx(big.item(), abs=1e-6)
    assert torch.allclose(_grads(m), ref, atol=1e-6, rtol=0)
    m.zero_grad()
    ws = micro_batch_weights([y for _, y in micro])
    assert sum(ws) == pytest.approx(1.0) and ws[-1] == 0.0
    for (x, y), w in zip(micro, ws):
        if w: (w * F.cross_entropy(m(x).flatten(0, 1), y.flatten())).backward()
    assert torch.allclose(_grads(m), ref, atol=1e-6, rtol=0)
    m.zero_grad()
    for x, y in micro[:3]: (F.cross_entropy(m(x).flatten(0, 1), y.flatten()) / 3).backward()
    assert not torch.allclose(_grads(m), ref, atol=1e-4)  # naive mean of means is wrong


def test_accumulation_total_tokens_for_data_parallel():
    "Two 'ranks' each pass the global count; the sum of their gradients is the global big-batch gradient."
    g = torch.Generator().manual_seed(1)
    r0, r1 = [_padded(g, 2, 8, 8)], [_padded(g, 2, 8, 3)]
    N = count_tokens(r0[0][1]) + count_tokens(r1[0][1])
    assert N == 16 + 6
    m = LM()
    accumulate_lm_gradients(m, r0, total_tokens=N); accumulate_lm_gradients(m, r1, total_tokens=N)
    summed = _grads(m).clone()
    m.zero_grad(); accumulate_lm_gradients(m, r0 + r1)
    assert torch.allclose(summed, _grads(m), atol=1e-6, rtol=0)
