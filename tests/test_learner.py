"Behaviour of llm_course.learner: the loop, its callbacks, checkpoints and metrics."
import json, math

import pytest
import torch
import torch.nn.functional as F

from conftest import needs_cpu_bf16_lstm
from llm_course.core import seed_everything
from llm_course.data import get_batch
from llm_course.learner import (HISTORY_LOG, EVENTS, Callback, EarlyStoppingCallback, Learner, LossPlotCallback, ProgressCallback,
                                TrainConfig, latest_checkpoint, list_checkpoints, load_checkpoint, make_schedule,
                                rng_state, save_checkpoint, set_rng_state)
from llm_course.core import ConfigError
from llm_course.learner import CHUNKED_VOCAB
from llm_course.losses import cross_entropy
from llm_course.optim import AdamW
from llm_course.rnn import LSTMLM
from llm_course.schedule import get_schedule

V = 23

@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1); yield; torch.set_num_threads(n)

@pytest.fixture(scope="module")
def ids():
    g = torch.Generator().manual_seed(0)  # a learnable stream: a fixed cycle with 20 % random tokens
    cycle = (torch.arange(4000) * 7) % V
    noise = torch.randint(0, V, (4000,), generator=g)
    return torch.where(torch.rand(4000, generator=g) < 0.2, noise, cycle)

def lm(seed=0, **kw):
    seed_everything(seed); return LSTMLM(V, emb_dim=8, hidden_size=16, **kw)

def cfg(**kw):
    base = dict(steps=4, batch_size=8, block_size=12, lr=1e-2, progress=False)
    return TrainConfig(**{**base, **kw})

def flat(m): return torch.cat([p.detach().flatten() for p in m.parameters()])

def test_fit_returns_metrics_and_learns(ids):
    learn = Learner(lm(), ids, ids[:800], config=cfg(steps=30, eval_every=10, eval_batches=2))
    m = learn.fit()
    assert m["step"] == 30 and m["stop_reason"] == "steps"
    assert set(m) >= {"train_loss", "val_loss", "val_perplexity", "tokens_seen", "tokens_per_s", "train_time_s"}
    assert m["tokens_seen"] == 30 * 8 * 12 and m["tokens_per_s"] > 0
    assert math.isclose(m["val_perplexity"], math.exp(m["val_loss"]))
    assert learn.history[0]["loss"] > learn.history[-1]["loss"]
    assert [h["step"] for h in learn.history if "val_loss" in h] == [10, 20, 30]

def bare_loop(ids, opt_cls, loss_fn, seed=3, steps=4):
    "The loop every script writes, with the given optimizer class and loss, fed the Learner's batches."
    ref = lm(); opt = opt_cls(ref.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.0)
    g = seed_everything(seed)
    for _ in range(steps):
        x, y = get_batch(ids, 8, 12, generator=g)
        loss_fn(ref(x), y).backward()  # the plain mean loss
        opt.step(); opt.zero_grad()
    return flat(ref)

torch_ce = lambda logits, y: F.cross_entropy(logits.flatten(0, 1), y.flatten())

@pytest.mark.parametrize("kernels, opt_cls, loss_fn", [("course", AdamW, cross_entropy), ("auto", AdamW, cross_entropy),
                                                        ("torch", torch.optim.AdamW, torch_ce)])
def test_same_as_bare_loop_bitwise(ids, kernels, opt_cls, loss_fn):
    "The Learner adds nothing: with its own kernels it is bit-identical to a bare loop over the same pieces."
    learn = Learner(lm(), ids, config=cfg(grad_clip=None, seed=3, kernels=kernels)); learn.fit()
    assert torch.equal(flat(learn.model), bare_loop(ids, opt_cls, loss_fn))

def test_course_kernels_match_torch(ids):
    "The course's pieces are PyTorch's up to float rounding: AdamW bit for bit, cross-entropy to ~1e-7 per step."
    learn = Learner(lm(), ids, config=cfg(grad_clip=None, seed=3)); learn.fit()
    assert learn.kernels["optimizer"] == "llm_course.optim.AdamW (foreach)" and learn.kernels["loss"] == "course"
    assert torch.equal(bare_loop(ids, AdamW, torch_ce), bare_loop(ids, torch.optim.AdamW, torch_ce))  # the optimizers: bitwise
    ours, ref = flat(learn.model), bare_loop(ids, torch.optim.AdamW, torch_ce)
    assert torch.allclose(ours, ref, atol=1e-5) and not torch.equal(ours, ref)  # the losses round differently

def test_kernels_option_and_chunked_loss():
    "kernels='torch' swaps in PyTorch's pieces; a large vocabulary on a plain Transformer trains through chunked CE."
    from llm_course.model import ModelConfig, Transformer
    with pytest.raises(ConfigError, match="kernels"): cfg(kernels="fast")
    ids = torch.randint(0, CHUNKED_VOCAB + 8, (2000,), generator=torch.Generator().manual_seed(0))
    runs = {}
    for k in ("auto", "torch"):
        torch.manual_seed(0); m = Transformer(ModelConfig.preset("tiny", vocab_size=CHUNKED_VOCAB + 8, n_layer=1, block_size=16))
        learn = Learner(m, ids, ids, config=cfg(steps=2, batch_size=4, block_size=8, kernels=k)); learn.fit()
        runs[k] = learn
    assert runs["auto"].kernels["loss"] == "chunked" and runs["torch"].kernels["loss"] == "torch"
    assert runs["torch"].kernels["clip"] == "torch.nn.utils.clip_grad.clip_grad_norm_"
    assert runs["torch"].kernels["optimizer"].startswith("torch.optim")
    for a, b in zip(runs["auto"].history, runs["torch"].history): assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    assert runs["auto"].val_loss == pytest.approx(runs["torch"].val_loss, abs=1e-5)

def test_old_torch_optimizer_state_resumes_into_course_adamw(ids, tmp_path):
    "A checkpoint written with torch.optim.AdamW (before the Learner used the course's) resumes, and continues the same run."
    full = Learner(lm(), ids, config=cfg(steps=6, grad_clip=None, kernels="torch")); full.fit()
    Learner(lm(), ids, config=cfg(steps=6, grad_clip=None, kernels="torch", out_dir=tmp_path)).fit(until=3)
    resumed = Learner(lm(), ids, config=cfg(steps=6, grad_clip=None, kernels="course", out_dir=tmp_path, resume=True))
    resumed.fit()
    assert type(resumed.opt) is AdamW and resumed.opt.state[next(resumed.model.parameters())]["step"].item() == 6
    assert torch.allclose(flat(resumed.model), flat(full.model), atol=1e-5)

@pytest.mark.parametrize("k", [2, 4, 8])
def test_accumulation_matches_full_batch(ids, k):
    a = Learner(lm(), ids, config=cfg(grad_accum=1)); a.fit()
    b = Learner(lm(), ids, config=cfg(grad_accum=k)); b.fit()
    assert torch.allclose(flat(a.model), flat(b.model), atol=1e-6)
    assert all(math.isclose(x["loss"], y["loss"], rel_tol=1e-5) for x, y in zip(a.history, b.history))

def test_accumulation_scales_by_counted_tokens(ids):
    "Micro-batches with different numbers of ignored targets: the step equals one full-batch mean."
    def data(bs, g):
        x, y = get_batch(ids, bs, 12, generator=g)
        y = y.clone(); y[: bs // 2, :9] = -100  # the first half of the batch is mostly padding
        return x, y
    seed_everything(0); model = lm().double()
    learn = Learner(model, data, config=cfg(steps=1, grad_accum=2, grad_clip=None))
    learn.prepare()
    x, y = data(8, seed_everything(0))
    ref = lm().double()
    F.cross_entropy(ref(x).flatten(0, 1), y.flatten(), ignore_index=-100).backward()
    learn.opt.step = lambda: None  # keep the gradients for inspection
    learn.opt.zero_grad = lambda **kw: None
    learn.train_step()
    for p, q in zip(learn.model.parameters(), ref.parameters()): assert torch.allclose(p.grad, q.grad, atol=1e-12)
    assert math.isclose(learn.loss, F.cross_entropy(ref(x).flatten(0, 1), y.flatten(), ignore_index=-100).item(), rel_tol=1e-9)

def test_class_weights_scale_each_target(ids):
    "Weighted loss = mean over targets of w[y]·CE (not divided by Σw); unit weights change nothing."
    x, y = get_batch(ids, 8, 12, generator=torch.Generator().manual_seed(5))
    w = torch.rand(V, generator=torch.Generator().manual_seed(6)) * 3
    for weights, k in ((None, 1), (w, 1), (w, 2)):
        seed_everything(0); model = lm().double()
        learn = Learner(model, lambda bs, g: (x, y), config=cfg(steps=1, grad_accum=k, grad_clip=None), class_weights=weights)
        learn.prepare(); learn.opt.step = lambda: None; learn.opt.zero_grad = lambda **kw: None
        learn.train_step()
        ref = lm().double()
        ce = F.cross_entropy(ref(x).flatten(0, 1), y.flatten(), reduction="none")
        loss = (ce * (1.0 if weights is None else w.double()[y.flatten()])).mean()
        loss.backward()
        assert math.isclose(learn.loss, loss.item(), rel_tol=1e-9)
        for p, q in zip(learn.model.parameters(), ref.parameters()): assert torch.allclose(p.grad, q.grad, atol=1e-12)
    a = Learner(lm(), ids, config=cfg()); a.fit()
    b = Learner(lm(), ids, config=cfg(), class_weights=torch.ones(V)); b.fit()
    assert torch.allclose(flat(a.model), flat(b.model), atol=1e-6)

def test_evaluation_ignores_class_weights(ids):
    plain = Learner(lm(), ids, ids[:800], config=cfg()).evaluate()
    weighted = Learner(lm(), ids, ids[:800], config=cfg(), class_weights=torch.rand(V) + 0.5).evaluate()
    assert plain == weighted


def test_one_cycle_by_name_rises_then_falls():
    f = make_schedule(TrainConfig(schedule="one_cycle", steps=100))  # warmup_steps=0: one-cycle's own 30% rise
    assert f(0) == pytest.approx(1 / 25) and f(30) > 0.99 and f(99) < 1e-3


def test_schedule_by_name_and_callable(ids):
    c = cfg(steps=10, schedule="cosine", warmup_steps=2, min_lr_ratio=0.1)
    learn = Learner(lm(), ids, config=c); learn.fit()
    f = get_schedule("cosine", warmup_steps=2, total_steps=10, min_ratio=0.1)
    assert [h["lr"] for h in learn.history] == [1e-2 * f(s) for s in range(10)]
    assert make_schedule(cfg(schedule="constant"))(5) == 1.0
    learn = Learner(lm(), ids, config=cfg(), schedule=lambda s: 0.5 ** s); learn.fit()
    assert [h["lr"] for h in learn.history] == [1e-2 * 0.5 ** s for s in range(4)]

def test_clipping_records_norm_and_caps_it(ids):
    learn = Learner(lm(), ids, config=cfg(grad_clip=1e-3)); learn.fit()
    assert all(h["grad_norm"] > 1e-3 for h in learn.history)  # the pre-clip norm is recorded
    learn = Learner(lm(), ids, config=cfg(grad_clip=None)); learn.fit()
    assert all(h["grad_norm"] is None for h in learn.history)

@needs_cpu_bf16_lstm
def test_bf16_autocast_cpu(ids):
    a = Learner(lm(), ids, config=cfg(precision="fp32")); a.fit()
    b = Learner(lm(), ids, config=cfg(precision="bf16")); b.fit()
    assert all(p.dtype == torch.float32 for p in b.model.parameters())
    assert not torch.equal(flat(a.model), flat(b.model))
    assert all(abs(x["loss"] - y["loss"]) < 0.05 for x, y in zip(a.history, b.history))

def test_callbacks_events_order_and_replacement(ids):
    seen = []
    class Spy(Callback):
        order = 99
    for e in EVENTS: setattr(Spy, e, lambda self, learn, e=e: seen.append(e))
    learn = Learner(lm(), ids, ids[:500], config=cfg(steps=2, eval_batches=1), callbacks=[Spy()])
    learn.fit()
    assert seen == ["before_fit", "before_step", "after_backward", "after_step",
                      "before_step", "after_backward", "before_eval", "after_eval", "after_step", "after_fit"]  # eval runs inside after_step (order 10 < 99)
    assert [cb.order for cb in learn.callbacks] == sorted(cb.order for cb in learn.callbacks)
    mine = EarlyStoppingCallback(patience=7)
    learn = Learner(lm(), ids, config=cfg(patience=2), callbacks=[mine])
    assert [cb for cb in learn.callbacks if isinstance(cb, EarlyStoppingCallback)] == [mine]

def test_early_stopping(ids):
    learn = Learner(lm(), ids, ids[:500], config=cfg(steps=300, lr=0.5, eval_every=3, eval_batches=1, patience=2))
    m = learn.fit()
    assert m["step"] < 300 and m["stop_reason"].startswith("early stop")

def test_outputs_checkpoints_and_pruning(ids, tmp_path):
    c = cfg(steps=12, checkpoint_every=3, keep_checkpoints=2, out_dir=tmp_path, plot=True, eval_batches=1)
    learn = Learner(lm(), ids, ids[:500], config=c, callbacks=[LossPlotCallback(live=False)])
    learn.fit()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000009", "step-000012"]
    assert (tmp_path/"loss.png").stat().st_size > 1000
    metrics = json.loads((tmp_path/"metrics.json").read_text())
    assert metrics["step"] == 12 and len(metrics["history"]) == 12 and metrics["config"]["steps"] == 12
    ck = latest_checkpoint(tmp_path)
    assert sorted(p.name for p in ck.iterdir()) == ["checksums.json", "model.safetensors", "optimizer.safetensors", "state.json"]
    state = json.loads((ck/"state.json").read_text())
    assert state["step"] == 12 and state["data"]["tokens_seen"] == 12 * 8 * 12
    assert isinstance(state["rng"]["torch"], list) and isinstance(state["rng"]["data"], list)
    m2 = lm(seed=5); load_checkpoint(ck, m2)
    assert torch.equal(flat(m2), flat(learn.model))
    assert [p.name for p in (tmp_path/"checkpoints").iterdir() if p.name.startswith(".")] == [HISTORY_LOG]  # no temporaries left

def test_progress_bar_runs(ids, capsys):
    learn = Learner(lm(), ids, config=cfg(progress=True))
    assert any(isinstance(cb, ProgressCallback) for cb in learn.callbacks)
    learn.fit()
    assert "loss" in capsys.readouterr().err

def test_resave_same_step_replaces(ids, tmp_path):
    m = lm()
    save_checkpoint(tmp_path/"checkpoints"/"step-000001", m, state=dict(step=1, tag="a"))
    save_checkpoint(tmp_path/"checkpoints"/"step-000001", m, state=dict(step=1, tag="b"))
    assert load_checkpoint(latest_checkpoint(tmp_path), lm())["tag"] == "b"
    assert len([p for p in (tmp_path/"checkpoints").iterdir() if not p.name.startswith(".")]) == 1

def test_rng_state_roundtrip_json():
    g = torch.Generator().manual_seed(1)
    s = json.loads(json.dumps(rng_state(g)))
    a = torch.rand(3), torch.rand(3, generator=g)
    set_rng_state(s, g)
    b = torch.rand(3), torch.rand(3, generator=g)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])

def test_mlp_lm_trains_through_learner(ids):
    from llm_course.nnlm import MLPLM
    seed_everything(0)
    learn = Learner(MLPLM(vocab_size=V, context=4, emb_dim=8, hidden_size=32), ids, ids[:500], config=cfg(steps=20, eval_batches=2))
    m = learn.fit()
    assert m["val_loss"] < math.log(V) + 0.5 and learn.history[-1]["loss"] < learn.history[0]["loss"]


def test_failed_resave_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    import os
    folder = tmp_path/"step-000001"
    save_checkpoint(folder, lm(), state=dict(step=1))
    first = (folder/"model.safetensors").read_bytes()
    real_replace = os.replace
    def replace(src, dst):  # the final rename of the new checkpoint fails (e.g. a full disk)
        if ".tmp-" in str(src) and str(dst) == str(folder): raise OSError("disk full")
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"): save_checkpoint(folder, lm(seed=1), state=dict(step=1))
    assert (folder/"model.safetensors").read_bytes() == first and [p.name for p in tmp_path.iterdir()] == [folder.name]


@pytest.mark.parametrize("precision, advised", [("fp32", False), pytest.param("bf16", True, marks=needs_cpu_bf16_lstm)])
def test_nan_guard_advises_fp32_only_on_a_bf16_run(ids, precision, advised):
    "The divergence message suggests precision='fp32' only where the run is not already in fp32."
    from llm_course.learner import TrainingError
    with pytest.raises(TrainingError) as err:
        Learner(lm(), ids, config=cfg(steps=6, lr=1e6, precision=precision)).fit()
    assert ("precision='fp32'" in str(err.value)) is advised and "Lower the learning rate" in str(err.value)


@pytest.mark.skipif(__import__("conftest").cpu_bf16_lstm(), reason="this CPU runs bf16 LSTMs: nothing to refuse")
def test_bf16_lstm_on_a_cpu_without_bf16_is_one_clear_error(ids):
    from conftest import raises
    raises(ConfigError, Learner(lm(), ids, config=cfg(precision="bf16")).fit, hint="precision='fp32'")
