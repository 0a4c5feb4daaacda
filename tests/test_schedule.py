"Learning-rate schedules: parity with transformers/torch, by-name access, LambdaLR wrapping, the LR finder."
import math
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers.optimization as tfo
from torch.optim.lr_scheduler import OneCycleLR, StepLR

from llm_course.schedule import (SCHEDULES, as_scheduler, constant_schedule, cosine_schedule, get_schedule,
                                 inverse_sqrt_schedule, linear_schedule, lr_find, one_cycle_schedule,
                                 step_schedule, wsd_schedule, LRFinderResult)


def library_lrs(make, steps):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched, out = make(opt), []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        opt.step(); sched.step()
    return out


@pytest.mark.parametrize("T,W", [(1, 0), (1, 1), (10, 0), (10, 3), (10, 10), (257, 31)])
def test_transformers_parity(T, W):
    cases = [
        (partial(constant_schedule, warmup_steps=W), lambda o: tfo.get_constant_schedule_with_warmup(o, W)),
        (partial(linear_schedule, total_steps=T, warmup_steps=W), lambda o: tfo.get_linear_schedule_with_warmup(o, W, T)),
        (partial(cosine_schedule, total_steps=T, warmup_steps=W), lambda o: tfo.get_cosine_schedule_with_warmup(o, W, T)),
        (partial(cosine_schedule, total_steps=T, warmup_steps=W, min_ratio=0.25),
         lambda o: tfo.get_cosine_with_min_lr_schedule_with_warmup(o, W, T, min_lr_rate=0.25)),
        (partial(inverse_sqrt_schedule, warmup_steps=W), lambda o: tfo.get_inverse_sqrt_schedule(o, W)),
        (partial(inverse_sqrt_schedule, warmup_steps=W, timescale=7), lambda o: tfo.get_inverse_sqrt_schedule(o, W, timescale=7)),
    ]
    for wt in ("linear", "cosine", "1-sqrt"):
        for dt in ("linear", "cosine", "1-sqrt"):
            d = (T - W) // 2
            cases.append((partial(wsd_schedule, total_steps=T, warmup_steps=W, decay_steps=d, min_ratio=0.1,
                                  warmup_type=wt, decay_type=dt),
                          lambda o, wt=wt, dt=dt, d=d: tfo.get_wsd_schedule(o, W, d, num_training_steps=T, min_lr_ratio=0.1,
                                                                            warmup_type=wt, decay_type=dt)))
    for ours, make in cases:
        ref = library_lrs(make, T + 1)
        assert max(abs(ours(s) - r) for s, r in enumerate(ref)) <= 1e-12


def test_step_lr_parity():
    ref = library_lrs(lambda o: StepLR(o, step_size=7, gamma=0.5), 50)
    assert max(abs(step_schedule(s, step_size=7, gamma=0.5) - r) for s, r in enumerate(ref)) <= 1e-12


@pytest.mark.parametrize("T,pct,anneal,peak", [(100, 0.3, "cos", 1.0), (37, 0.5, "linear", 2e-3), (1000, 0.05, "cos", 3e-4)])
def test_one_cycle_parity(T, pct, anneal, peak):
    ref = library_lrs(lambda o: OneCycleLR(o, max_lr=peak, total_steps=T, pct_start=pct, anneal_strategy=anneal,
                                           cycle_momentum=False), T)
    ours = partial(one_cycle_schedule, total_steps=T, pct_start=pct, anneal=anneal)
    assert max(abs(ours(s) * peak - r) for s, r in enumerate(ref)) <= 1e-12


def test_cosine_stays_on_floor_after_run():
    assert cosine_schedule(10_000, total_steps=100, min_ratio=0.1) == pytest.approx(0.1, abs=1e-15)
    assert linear_schedule(10_000, total_steps=100) == 0.0
    assert wsd_schedule(10_000, total_steps=100, min_ratio=0.2) == 0.2


def test_shapes():
    f = get_schedule("cosine", total_steps=100, warmup_steps=10, min_ratio=0.1)
    vals = [f(s) for s in range(101)]
    assert vals[0] == 0.0 and vals[10] == 1.0 and max(vals) == 1.0
    assert all(a <= b for a, b in zip(vals[:10], vals[1:11]))  # warmup rises
    assert all(a >= b for a, b in zip(vals[10:], vals[11:]))  # decay falls
    w = get_schedule("wsd", total_steps=100, warmup_steps=10)  # default: last 20 % decays
    assert w(79) == 1.0 and w(80) == 1.0 and w(81) < 1.0


def test_get_schedule_names_and_aliases():
    for name in SCHEDULES:
        kw = dict(total_steps=50, warmup_steps=5)
        if name == "step": kw["step_size"] = 10
        f = get_schedule(name, **kw)
        assert all(0.0 <= f(s) <= 1.0 for s in range(51))
    assert get_schedule("one-cycle", total_steps=50)(0) == pytest.approx(1 / 25)  # one-cycle starts at peak / div_factor
    assert get_schedule("Inverse-Sqrt", warmup_steps=4)(8) == inverse_sqrt_schedule(8, warmup_steps=4)


def test_as_scheduler_groups_and_resume():
    p1, p2 = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 1e-3}, {"params": [p2], "lr": 1e-2}])
    sch = as_scheduler(opt, "cosine", total_steps=20, warmup_steps=5)
    for _ in range(8): opt.step(); sch.step()
    expect = cosine_schedule(8, total_steps=20, warmup_steps=5)
    assert sch.get_last_lr() == pytest.approx([1e-3 * expect, 1e-2 * expect], rel=1e-12)
    state = sch.state_dict()
    # resume: a fresh optimizer + scheduler restored from the state dict continues the same curve
    opt2 = torch.optim.SGD([{"params": [p1], "lr": 1e-3}, {"params": [p2], "lr": 1e-2}])
    sch2 = as_scheduler(opt2, get_schedule("cosine", total_steps=20, warmup_steps=5))
    sch2.load_state_dict(state)
    opt.step(); sch.step(); opt2.step(); sch2.step()
    assert sch2.get_last_lr() == pytest.approx(sch.get_last_lr(), rel=1e-12)


def _tiny_lm():
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(11, 16), nn.Linear(16, 11))


def _batches(n=8):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        x = torch.randint(0, 10, (8, 12), generator=g)
        out.append((x, (x + 1) % 11))  # a learnable rule: next token = this one + 1
    return out


def _ce(logits, y): return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def test_lr_find_restores_model_and_suggests():
    model = _tiny_lm()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    res = lr_find(model, _ce, _batches(), start_lr=1e-5, end_lr=100.0, steps=60)
    assert isinstance(res, LRFinderResult)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training  # the mode is restored too
    assert all(p.grad is None for p in model.parameters())
    assert len(res.lrs) == len(res.losses) == len(res.smoothed) >= 3
    assert all(b > a for a, b in zip(res.lrs, res.lrs[1:]))  # exponential sweep, increasing
    assert res.lrs[0] == pytest.approx(1e-5)
    assert 1e-5 <= res.suggested_lr <= res.min_loss_lr <= 100.0
    assert min(res.smoothed) < res.smoothed[0]


def test_lr_find_callable_batches_and_plot():
    import matplotlib
    matplotlib.use("Agg")
    data = _batches(1)
    res = lr_find(_tiny_lm(), _ce, lambda: data[0], start_lr=1e-4, end_lr=1.0, steps=20, stop_div=None)
    assert len(res.lrs) == 20 and res.lrs[-1] == pytest.approx(1.0)
    ax = res.plot()
    assert ax.get_xscale() == "log"
