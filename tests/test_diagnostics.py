"Training diagnostics of llm_course.learner: activation statistics, dead units, gradient statistics, update-to-weight ratios."
import math

import pytest
import torch
import torch.nn as nn

from llm_course.core import ConfigError
from llm_course.learner import ActivationStats, GradientStats, Learner, TrainConfig, plot_diagnostics

V, D = 11, 8

@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1); yield; torch.set_num_threads(n)

class Net(nn.Module):
    "Embedding -> Linear -> ReLU -> Linear -> GELU -> head: two activation layers to watch."
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.fc1, self.act1 = nn.Embedding(V, D), nn.Linear(D, 16), nn.ReLU()
        self.fc2, self.act2, self.head = nn.Linear(16, 16), nn.GELU(), nn.Linear(16, V)
    def forward(self, x): return self.head(self.act2(self.fc2(self.act1(self.fc1(self.emb(x))))))

X = torch.randint(0, V, (4, 6), generator=torch.Generator().manual_seed(1))
Y = torch.randint(0, V, (4, 6), generator=torch.Generator().manual_seed(2))
fixed = lambda batch_size, generator: (X, Y)  # the same batch every step: stats can be recomputed by hand

def learner(model, steps=3, callbacks=(), optimizer=None, **kw):
    cfg = TrainConfig(steps=steps, batch_size=4, block_size=6, progress=False, grad_clip=None, **kw)
    return Learner(model, fixed, fixed, config=cfg, callbacks=list(callbacks), optimizer=optimizer)

def test_activation_stats_match_a_manual_forward():
    net, ref = Net(), Net()
    acts = ActivationStats(every=1)
    learner(net, steps=1, callbacks=[acts]).fit()
    a1 = ref.act1(ref.fc1(ref.emb(X))); a2 = ref.act2(ref.fc2(a1))  # the weights before the step: what step 0 saw
    assert list(acts.stats) == ["act1", "act2"] and acts.steps == [0]
    for name, a in (("act1", a1), ("act2", a2)):
        assert acts.stats[name]["mean"][0] == pytest.approx(a.mean().item(), rel=1e-5)
        assert acts.stats[name]["std"][0] == pytest.approx(a.std().item(), rel=1e-5)

def test_dead_units_are_counted():
    net = Net()
    with torch.no_grad(): net.fc1.bias[:8] = -1e3  # half of act1's 16 units can never fire
    a1 = net.act1(net.fc1(net.emb(X))).detach()
    expected = (a1.abs() <= 1e-6).flatten(0, -2).all(0).float().mean().item()  # the 8 forced ones, and any dead by chance
    acts = ActivationStats()
    learner(net, steps=2, callbacks=[acts], lr=1e-4).fit()
    assert acts.stats["act1"]["dead"][0] == pytest.approx(expected) and expected >= 0.5
    assert all(d >= 0.5 for d in acts.stats["act1"]["dead"])  # dead units stay dead: no gradient reaches them
    assert all(d < 0.5 for d in acts.stats["act2"]["dead"])

def test_every_evaluation_and_hooks_removed():
    net, acts = Net(), ActivationStats(every=2)
    learn = learner(net, steps=5, callbacks=[acts], eval_every=1, eval_batches=1); learn.fit()
    assert acts.steps == [0, 2, 4]  # evaluations in between recorded nothing
    assert all(len(s["std"]) == 3 for s in acts.stats.values())
    assert not net.act1._forward_hooks and not net.act2._forward_hooks  # removed after fit

def test_explicit_modules_and_linear_default():
    net = Net()
    acts = ActivationStats(modules={"first": net.fc1})
    learner(net, steps=1, callbacks=[acts]).fit()
    assert list(acts.stats) == ["first"]
    mlp = nn.Sequential(nn.Embedding(V, D), nn.Linear(D, V))  # no activation module: every Linear is watched
    acts = ActivationStats(); learner(mlp, steps=1, callbacks=[acts]).fit()
    assert list(acts.stats) == ["1"]

def test_gradient_stats_and_update_ratio_with_sgd():
    "With plain SGD, Δw = −lr·g exactly: the recorded ratio must be log10(lr·‖g‖/‖w‖)."
    lr = 0.1
    net, ref = Net(), Net()
    grads = GradientStats()
    learner(net, steps=1, callbacks=[grads], optimizer=lambda m, c: torch.optim.SGD(m.parameters(), lr=lr)).fit()
    nn.functional.cross_entropy(ref(X).flatten(0, 1), Y.flatten()).backward()
    watched = [n for n, p in ref.named_parameters() if p.dim() >= 2]
    assert list(grads.update_ratio) == watched and grads.steps == [0]
    for n, p in ref.named_parameters():
        if p.dim() < 2: continue
        assert grads.grads[n]["mean"][0] == pytest.approx(p.grad.mean().item(), rel=1e-4, abs=1e-9)
        assert grads.grads[n]["std"][0] == pytest.approx(p.grad.std().item(), rel=1e-4)
        expected = math.log10(lr * p.grad.norm().item() / p.detach().norm().item())
        assert grads.update_ratio[n][0] == pytest.approx(expected, abs=1e-4)

def test_too_high_lr_shows_in_the_ratios():
    ratios = {}
    for lr in (1e-3, 1.0):
        g = GradientStats(); learner(Net(), steps=3, callbacks=[g], lr=lr, diverge_factor=None).fit()
        ratios[lr] = max(v[-1] for v in g.update_ratio.values())
    assert ratios[1.0] > -1 > -2 > ratios[1e-3]

def test_plot_diagnostics():
    import matplotlib; matplotlib.use("Agg")
    learn = learner(Net(), steps=3, callbacks=[ActivationStats(), GradientStats()]); learn.fit()
    fig = plot_diagnostics({"run": learn, "again": learn}, smooth=2)
    assert len(fig.axes) == 6
    with pytest.raises(ConfigError, match="ActivationStats"): plot_diagnostics({"bare": learner(Net(), steps=1)})
