"Exact resume and crash safety of llm_course.learner: stop/resume is bit-identical; SIGKILL never leaves a broken checkpoint."
import os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import pytest
import torch

from conftest import needs_cpu_bf16_lstm
from llm_course.core import ConfigError, seed_everything
from llm_course.learner import (HISTORY_LOG, Learner, TrainConfig, default_optimizer, latest_checkpoint, list_checkpoints,
                                load_checkpoint)
from llm_course.rnn import LSTMLM

V = 19

@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1); yield; torch.set_num_threads(n)

def data():
    g = torch.Generator().manual_seed(0)
    cycle = (torch.arange(5000) * 5) % V
    return torch.where(torch.rand(5000, generator=g) < 0.3, torch.randint(0, V, (5000,), generator=g), cycle)

def lm(seed=0):
    seed_everything(seed); return LSTMLM(V, emb_dim=8, hidden_size=16, dropout=0.2)  # dropout: the model RNG matters

def flat(m): return torch.cat([p.detach().flatten() for p in m.parameters()])

VARIANTS = {
    "plain": dict(),
    "accum+cosine+warmup": dict(grad_accum=2, schedule="cosine", warmup_steps=4, min_lr_ratio=0.1),
    "eval+early-stop-state": dict(eval_every=3, eval_batches=2, patience=50),
    "bf16": dict(precision="bf16"),
    "no-clip+wd": dict(grad_clip=None, weight_decay=0.1, schedule="wsd", warmup_steps=2),
}

@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_cpu_bf16_lstm) if n == "bf16" else n for n in VARIANTS])
@pytest.mark.parametrize("k", [1, 7])
def test_stop_and_resume_is_bit_identical(tmp_path, name, k):
    ids = data(); val = ids[:600]
    def config(out, steps, resume=False):
        return TrainConfig(steps=steps, batch_size=8, block_size=12, lr=5e-3, checkpoint_every=k, out_dir=str(out),
                           resume=resume, progress=False, seed=4, **VARIANTS[name])
    whole = Learner(lm(), ids, val, config=config(tmp_path/"whole", 16)); whole.fit()
    first = Learner(lm(), ids, val, config=config(tmp_path/"split", 16)).fit(until=k)  # pauses at step k
    assert first["step"] == k and first["stop_reason"] == f"paused at step {k}"
    torch.manual_seed(999); torch.rand(7)  # disturb the global RNG: the checkpoint must restore it
    resumed = Learner(lm(seed=123), ids, val, config=config(tmp_path/"split", 16, resume=True))
    resumed.fit()
    assert resumed.history[k]["step"] == k + 1  # the history continues where it stopped
    assert torch.equal(flat(whole.model), flat(resumed.model))
    assert [h["loss"] for h in whole.history] == [h["loss"] for h in resumed.history]
    vw = {h["step"]: h["val_loss"] for h in whole.history if "val_loss" in h}
    vr = {h["step"]: h["val_loss"] for h in resumed.history if "val_loss" in h}
    assert vw and all(vr[s] == v for s, v in vw.items())  # (the first leg also evaluated at its own last step)
    assert [h["lr"] for h in whole.history] == [h["lr"] for h in resumed.history]
    # the optimizer state is identical too
    a, b = whole.opt.state_dict()["state"], resumed.opt.state_dict()["state"]
    assert all(torch.equal(a[i][key], b[i][key]) for i in a for key in a[i])

def test_resume_twice_and_extend(tmp_path):
    "Three legs (5 + 5 + 6 steps, the last one a fresh fit to the end) equal one run of 16."
    ids = data()
    cfg = lambda out, steps, resume: TrainConfig(steps=steps, batch_size=8, block_size=12, checkpoint_every=5, out_dir=str(out),
                                                 resume=resume, progress=False)
    whole = Learner(lm(), ids, config=cfg(tmp_path/"w", 16, False)); whole.fit()
    Learner(lm(), ids, config=cfg(tmp_path/"s", 16, False)).fit(until=5)
    Learner(lm(), ids, config=cfg(tmp_path/"s", 16, True)).fit(until=10)
    last = Learner(lm(), ids, config=cfg(tmp_path/"s", 16, True)); last.fit()
    assert torch.equal(flat(whole.model), flat(last.model))

# --- crash safety: a real process, killed with SIGKILL -------------------------------------------------

SCRIPT = textwrap.dedent('''
    import sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_learner_resume import data, lm
    from llm_course.learner import Learner, TrainConfig
    out, steps, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    cfg = TrainConfig(steps=steps, batch_size=8, block_size=12, lr=5e-3, checkpoint_every=2, keep_checkpoints=2,
                      out_dir=out, resume=resume, progress=False, seed=4)
    Learner(lm(), data(), config=cfg).fit()
''').format(tests=str(Path(__file__).parent))

def launch(out, steps, resume=False, sleep=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LLM_COURSE_TEST_CHECKPOINT_SLEEP", None)
    if sleep is not None: env["LLM_COURSE_TEST_CHECKPOINT_SLEEP"] = str(sleep)
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), str(steps), "1" if resume else "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

def wait_for(cond, proc, timeout=240):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None: pytest.fail(f"training process ended early: {proc.stderr.read().decode()[-2000:]}")
        if time.time() - t0 > timeout: proc.kill(); pytest.fail("timed out waiting for the training process")
        time.sleep(0.02)

def kill(proc):
    proc.send_signal(signal.SIGKILL); proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

def temporaries(out): return [p for p in (Path(out)/"checkpoints").iterdir() if p.name.startswith(".") and p.name != HISTORY_LOG]

def assert_loadable(out):
    ck = latest_checkpoint(out)
    assert ck is not None
    model = lm(seed=9)
    state = load_checkpoint(ck, model, default_optimizer(model, TrainConfig()))  # the optimizer the Learner builds
    assert state["step"] == int(ck.name.split("-")[1])
    return state["step"]

def test_sigkill_during_training_leaves_a_loadable_checkpoint(tmp_path):
    out = tmp_path/"run"
    proc = launch(out, 100_000)
    wait_for(lambda: len(list_checkpoints(out)) >= 2, proc)
    time.sleep(0.3)  # somewhere in the middle of training, maybe mid-write
    kill(proc)
    step = assert_loadable(out)
    assert step >= 2

def test_sigkill_during_checkpoint_write_keeps_last_good(tmp_path):
    out = tmp_path/"run"
    proc = launch(out, 100_000, sleep=1.5)  # every write sleeps between the weights and state.json
    wait_for(lambda: len(list_checkpoints(out)) >= 1 and len(temporaries(out)) >= 1, proc)
    kill(proc)  # killed inside the second write
    assert temporaries(out), "the half-written checkpoint should still be there, hidden"
    assert [p.name for p in list_checkpoints(out)] == ["step-000002"]
    assert assert_loadable(out) == 2

def test_killed_then_resumed_equals_uninterrupted(tmp_path):
    "A run SIGKILLed mid-write and resumed in a new process ends bit-identical to one that ran through."
    out, ref = tmp_path/"run", tmp_path/"ref"
    proc = launch(out, 100_000, sleep=1.0)
    wait_for(lambda: len(list_checkpoints(out)) >= 1 and len(temporaries(out)) >= 1, proc)
    kill(proc)
    for args in ((out, 8, True), (ref, 8, False)):
        p = launch(*args); _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    assert not temporaries(out)  # the resumed run cleared the half-written folder
    a, b = lm(seed=1), lm(seed=2)
    load_checkpoint(latest_checkpoint(out), a); load_checkpoint(latest_checkpoint(ref), b)
    assert latest_checkpoint(out).name == latest_checkpoint(ref).name == "step-000008"
    assert torch.equal(flat(a), flat(b))


def test_a_checkpoint_carries_a_bounded_history_and_the_resume_gets_all_of_it(tmp_path, monkeypatch):
    "state.json keeps only the newest rows (a 7B run has ~500k steps); the rest is appended to checkpoints/.history.jsonl."
    import json
    import llm_course.learner as learner
    monkeypatch.setattr(learner, "HISTORY_IN_STATE", 3)
    cfg = dict(steps=10, batch_size=4, block_size=16, checkpoint_every=5, out_dir=str(tmp_path), device="cpu", progress=False)
    ref = Learner(lm(), data(), None, TrainConfig(**{**cfg, "out_dir": str(tmp_path/"ref")})); ref.fit()
    first = Learner(lm(), data(), None, TrainConfig(**cfg)); first.fit(until=5)
    state = json.loads((latest_checkpoint(tmp_path)/"state.json").read_text())
    assert len(state["history"]) == 3 and state["history_rows"] == 5
    again = Learner(lm(), data(), None, TrainConfig(**cfg, resume=True)); again.fit()
    assert [h["loss"] for h in again.history] == [h["loss"] for h in ref.history]  # all ten rows, bit for bit

def test_a_step_that_evaluates_and_checkpoints_saves_first_and_the_resume_owes_the_evaluation(tmp_path):
    "Evaluation can run out of memory: the step's checkpoint is written before it, and a resume from there evaluates that step."
    from llm_course.learner import Callback
    class DiesInEval(Callback):  # runs after the checkpoint's before_eval (order 30): the evaluation of step 6 fails
        order = 35
        def before_eval(self, learn):
            if learn.step == 6: raise RuntimeError("CUDA out of memory (simulated)")
    ids = data(); val = ids[:600]
    cfg = lambda out, **kw: TrainConfig(steps=9, batch_size=8, block_size=12, lr=5e-3, eval_every=3, eval_batches=2, checkpoint_every=3,
                                        out_dir=str(out), progress=False, seed=4, **kw)
    whole = Learner(lm(), ids, val, config=cfg(tmp_path/"whole")); whole.fit()
    with pytest.raises(RuntimeError, match="simulated"):
        Learner(lm(), ids, val, config=cfg(tmp_path/"split"), callbacks=[DiesInEval()]).fit()
    assert latest_checkpoint(tmp_path/"split").name == "step-000006"  # the six steps survive the failed evaluation
    resumed = Learner(lm(seed=1), ids, val, config=cfg(tmp_path/"split", resume=True)); resumed.fit()
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    vw = {h["step"]: h["val_loss"] for h in whole.history if "val_loss" in h}
    assert {h["step"]: h["val_loss"] for h in resumed.history if "val_loss" in h} == vw and 6 in vw  # step 6's, evaluated on resume
    assert torch.equal(flat(whole.model), flat(resumed.model))

def test_checkpoint_minutes_saves_by_the_clock(tmp_path):
    "checkpoint_minutes: a checkpoint once that much wall time has passed since the last one, whatever the step count."
    from llm_course.learner import CheckpointTimer
    clock = [0.0]
    class Tick(CheckpointTimer.__mro__[1]):  # a Callback that advances the fake clock by 20 s a step (steps 1-6), then 70 s
        order = -100
        def after_step(self, learn): clock[0] += 20.0 if learn.step <= 6 else 70.0
    cfg = TrainConfig(steps=10, batch_size=4, block_size=12, checkpoint_every=0, checkpoint_minutes=1.0, keep_checkpoints=10,
                      out_dir=str(tmp_path), progress=False)
    learn = Learner(lm(), data(), None, cfg, callbacks=[Tick(), CheckpointTimer(1.0, clock=lambda: clock[0])])
    learn.fit()
    # 60 s after the start (step 3); the timer counts anew from the step after a save (4: 80 s), so 7 (190 s), 9, and the end
    assert [int(p.name.split("-")[1]) for p in list_checkpoints(tmp_path)] == [3, 7, 9, 10]
    with pytest.raises(ConfigError, match="checkpoint_minutes must be a positive number"): TrainConfig(checkpoint_minutes=0)
