"Bad inputs to llm_course.learner: each raises the package's own error with a fix hint."
import json, math

import pytest
import torch
import torch.nn as nn

from llm_course.core import CheckpointError, ConfigError, DataError, LLMCourseError, seed_everything
from llm_course.learner import Learner, TrainConfig, TrainingError, latest_checkpoint, load_checkpoint
from llm_course.rnn import LSTMLM

V = 17

@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1); yield; torch.set_num_threads(n)

@pytest.fixture(scope="module")
def ids(): return torch.randint(0, V, (3000,), generator=torch.Generator().manual_seed(0))

def lm(hidden=16, seed=0):
    seed_everything(seed); return LSTMLM(V, emb_dim=8, hidden_size=hidden)

def cfg(**kw): return TrainConfig(**{**dict(steps=4, batch_size=4, block_size=8, progress=False), **kw})

@pytest.mark.parametrize("kw, match", [
    (dict(steps=0), "steps must be an int ≥ 1"),
    (dict(steps=-5), "steps must be an int ≥ 1"),
    (dict(batch_size=0), "batch_size must be an int ≥ 1"),
    (dict(block_size=-1), "block_size must be an int ≥ 1"),
    (dict(grad_accum=0), "grad_accum must be an int ≥ 1"),
    (dict(steps=2.5), "steps must be an int ≥ 1"),
    (dict(steps=True), "steps must be an int ≥ 1"),
    (dict(eval_every=-1), "eval_every must be an int ≥ 0"),
    (dict(eval_batches=0), "eval_batches"),
    (dict(keep_checkpoints=0), "keep_checkpoints"),
    (dict(batch_size=32, grad_accum=3), "grad_accum=3 does not divide batch_size=32"),
    (dict(steps=100, warmup_steps=101), "longer than the run"),
    (dict(schedule="cosinus"), "unknown schedule 'cosinus'"),
    (dict(schedule="step"), "needs a step_size.*get_schedule"),
    (dict(precision="fp16"), "unknown precision"),
    (dict(lr=0), "lr must be a positive number"),
    (dict(lr=float("inf")), "lr must be a positive number"),
    (dict(weight_decay=-0.1), "weight_decay"),
    (dict(grad_clip=0), "grad_clip must be > 0 or None"),
    (dict(betas=(0.9, 1.2)), "betas"),
    (dict(min_lr_ratio=2), "min_lr_ratio"),
    (dict(diverge_factor=0.5), "diverge_factor"),
    (dict(resume=True), "resume=True needs out_dir"),
])
def test_bad_config(kw, match):
    with pytest.raises(ConfigError, match=match) as e: cfg(**kw)
    assert ":" in str(e.value) and isinstance(e.value, ValueError)  # what is wrong: how to fix it

def test_bad_device():
    with pytest.raises(ConfigError, match="unknown device"): Learner(lm(), torch.arange(100) % V, config=cfg(device="tpu")).fit()

def test_bad_data(ids):
    with pytest.raises(ConfigError, match="train_data.*block_size"): Learner(lm(), ids[:5], config=cfg())
    with pytest.raises(DataError, match="train_data.*integer"): Learner(lm(), ids.float(), config=cfg())
    with pytest.raises(DataError, match="val_data.*1-D"): Learner(lm(), ids, ids.view(-1, 10), config=cfg())
    with pytest.raises(DataError, match="vocab_size ≥"): Learner(LSTMLM(5, 4, 4), ids, config=cfg()).fit()

def test_model_with_wrong_output(ids):
    class NotALM(nn.Module):
        def __init__(self): super().__init__(); self.w = nn.Linear(1, 1)
        def forward(self, x): return self.w(x[..., None].float()).squeeze(-1)  # [B, T], no vocabulary dim
    with pytest.raises(ConfigError, match=r"logits \[B, T, V\]"): Learner(NotALM(), ids, config=cfg()).fit()

def test_all_targets_ignored(ids):
    def data(bs, g): x = torch.zeros(bs, 8, dtype=torch.long); return x, torch.full_like(x, -100)
    with pytest.raises(DataError, match="no targets"): Learner(lm(), data, config=cfg()).fit()

def test_nan_guard_stops_and_keeps_last_good_checkpoint(ids, tmp_path):
    class Poisoned(nn.Module):  # becomes NaN after step 3
        def __init__(self): super().__init__(); self.lm, self.calls = lm(), 0
        def forward(self, x):
            self.calls += 1
            out = self.lm(x)
            return out * float("nan") if self.calls > 3 else out
    learn = Learner(Poisoned(), ids, config=cfg(steps=10, checkpoint_every=1, out_dir=tmp_path))
    with pytest.raises(TrainingError, match="diverged at step 4.*loss nan.*Lower the learning rate.*step-000003") as e: learn.fit()
    assert isinstance(e.value, LLMCourseError)
    assert learn.step == 3 and all(torch.isfinite(p).all() for p in learn.model.parameters())  # weights untouched
    assert latest_checkpoint(tmp_path).name == "step-000003"
    state = load_checkpoint(latest_checkpoint(tmp_path), Poisoned())
    assert all(math.isfinite(h["loss"]) for h in state["history"])

def test_runaway_loss_guard(ids):
    with pytest.raises(TrainingError, match="uniform guess"):
        Learner(lm(hidden=64), ids, config=cfg(steps=30, lr=1e6, grad_clip=None)).fit()
    Learner(lm(hidden=64), ids, config=cfg(steps=3, lr=1e6, grad_clip=None, diverge_factor=None)).fit()  # off: runs on

def test_resume_errors(ids, tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint"): Learner(lm(), ids, config=cfg(out_dir=tmp_path, resume=True)).fit()
    Learner(lm(), ids, config=cfg(out_dir=tmp_path)).fit()
    with pytest.raises(ConfigError, match="already holds a checkpoint.*resume=True"): Learner(lm(), ids, config=cfg(out_dir=tmp_path)).fit()
    with pytest.raises(CheckpointError, match="different model.*rnn.weight_hh_l0.*build the model"):
        Learner(lm(hidden=32), ids, config=cfg(out_dir=tmp_path, resume=True, steps=8)).fit()
    with pytest.raises(CheckpointError, match="batch_size=4.*now 8.*same settings"):
        Learner(lm(), ids, config=cfg(out_dir=tmp_path, resume=True, steps=8, batch_size=8)).fit()
    class Other(nn.Module):
        def __init__(self): super().__init__(); self.w = nn.Linear(2, 2)
        def forward(self, x): return x
    with pytest.raises(CheckpointError, match="model class LSTMLM vs Other"): load_checkpoint(latest_checkpoint(tmp_path), Other())

def test_corrupt_checkpoints(ids, tmp_path):
    Learner(lm(), ids, config=cfg(out_dir=tmp_path)).fit()
    ck = latest_checkpoint(tmp_path)
    w = (ck/"model.safetensors").read_bytes()
    (ck/"model.safetensors").write_bytes(w[: len(w) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors' has .* bytes, expected .*truncated"): load_checkpoint(ck, lm())
    (ck/"checksums.json").unlink()  # a checkpoint from before checksums: safetensors itself notices the cut
    with pytest.raises(CheckpointError, match="corrupt or incomplete"): load_checkpoint(ck, lm())
    (ck/"state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"): load_checkpoint(ck, lm())
    (ck/"state.json").write_text(json.dumps({"format": "something/else"}))
    with pytest.raises(CheckpointError, match="format"): load_checkpoint(ck, lm())
    with pytest.raises(CheckpointError, match="state.json missing"): load_checkpoint(tmp_path/"nowhere", lm())
    with pytest.raises(CheckpointError, match="no checkpoint folder"): load_checkpoint(None, lm())

def test_resume_into_model_with_different_config(ids, tmp_path):
    "Same shapes, different settings (e.g. a RoPE base): the model's config dataclass must match too."
    from dataclasses import dataclass
    @dataclass
    class TinyConfig:
        vocab_size: int = V
        temperature: float = 1.0
    class Tiny(nn.Module):
        def __init__(self, config):
            super().__init__(); self.config = config
            self.emb, self.head = nn.Embedding(V, 8), nn.Linear(8, V)
        def forward(self, x): return self.head(self.emb(x)) / self.config.temperature
    Learner(Tiny(TinyConfig()), ids, config=cfg(out_dir=tmp_path)).fit()
    with pytest.raises(CheckpointError, match="temperature=1.0 in the checkpoint, 2.0 now"):
        Learner(Tiny(TinyConfig(temperature=2.0)), ids, config=cfg(out_dir=tmp_path, resume=True, steps=8)).fit()
    Learner(Tiny(TinyConfig()), ids, config=cfg(out_dir=tmp_path, resume=True, steps=8)).fit()  # the right one resumes


@pytest.mark.parametrize("w", [[[1.0, 2.0]], [], [1.0, -1.0], [0.0, 0.0], [float("nan"), 1.0], "heavy"])
def test_bad_class_weights(ids, w):
    with pytest.raises(ConfigError, match="class_weights"): Learner(lm(), ids, config=cfg(), class_weights=w)

def test_class_weights_of_wrong_length(ids):
    with pytest.raises(ConfigError, match=f"class_weights has 3 entries.*{V} classes"):
        Learner(lm(), ids, config=cfg(), class_weights=[1.0, 2.0, 3.0]).fit()


def test_evaluate_without_validation_data(ids):
    with pytest.raises(ConfigError, match="no validation data: pass val_data="): Learner(lm(), ids, config=cfg()).evaluate()

def test_resume_with_other_settings_leaves_the_model_untouched(ids, tmp_path):
    Learner(lm(), ids, config=cfg(out_dir=tmp_path)).fit()
    model = lm(seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(CheckpointError, match="trained with batch_size=4 \\(now 8\\)"):
        Learner(model, ids, config=cfg(out_dir=tmp_path, resume=True, batch_size=8)).fit()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("kw, match", [(dict(weight_decay="a"), "weight_decay must be ≥ 0, got 'a'"),
                                       (dict(betas=0.9), r"betas must be two numbers in \[0, 1\), got 0.9")])
def test_bad_optimizer_settings_are_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match): cfg(**kw)
