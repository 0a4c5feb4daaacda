"End-to-end pretraining job (tiny, few steps), streaming from its folder, resume, and the MLM/NSP data helpers."
import json, math

import pytest
import torch

from llm_course.learner import IGNORE_INDEX
from llm_course.model import load_pretrained
from llm_course.pretrain import (TrainRun, causal_lm_loss, induction_scores, load_trained, make_nsp_pairs, mask_tokens,
                                 previous_token_scores, repeated_random_tokens, stream_from_checkpoint, train_language_model)

QUICK = dict(max_chars=40_000, batch_size=4, block_size=32, eval_every=2, eval_batches=2, final_eval_batches=2,
             sample_tokens=10, progress=False, verbose=False, checkpoint_every=2)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    summary = train_language_model(TrainRun(steps=4, out=str(out), **QUICK))
    return out, summary


def test_run_writes_every_file(run_dir):
    out, s = run_dir
    for name in ("model.safetensors", "config.json", "tokenizer.json", "metrics.json", "loss.png"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if not p.name.startswith(".")) == ["step-000002", "step-000004"]
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert s["steps"] == 4 and s["stop_reason"] == "steps" and isinstance(s["sample"], str) and len(s["sample"]) > 0


def test_metrics_json_is_sane(run_dir):
    out, s = run_dir
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == 4 and len(m["history"]) == 4 and [h["step"] for h in m["history"]] == [1, 2, 3, 4]
    V = m["vocab_size"]
    assert 0 < m["val_loss"] < 2 * math.log(V) and math.isclose(m["val_perplexity"], math.exp(m["val_loss"]))
    assert m["val_loss"] == pytest.approx(s["val_loss"]) and m["run"]["steps"] == 4 and m["model"]["vocab_size"] == V
    assert all(math.isfinite(h["loss"]) for h in m["history"])


def test_model_reloads_and_streams(run_dir):
    out, _ = run_dir
    model = load_pretrained(out)
    model2, tok = load_trained(out)
    assert model.config == model2.config and tok.vocab_size == model.config.vocab_size
    pieces = list(stream_from_checkpoint(out, "The ", max_new_tokens=12, seed=3))
    assert all(isinstance(p, str) for p in pieces) and len("".join(pieces)) == 12  # characters: one per token
    assert "".join(pieces) == "".join(stream_from_checkpoint(out, "The ", max_new_tokens=12, seed=3))  # seeded
    long_prompt = "x" * (model.config.block_size + 20)  # longer than the context: its end is kept
    assert len("".join(stream_from_checkpoint(out, long_prompt, max_new_tokens=5, temperature=0))) == 5


def test_resume_continues_the_step_count(tmp_path):
    out = tmp_path / "run"
    train_language_model(TrainRun(steps=2, out=str(out), **QUICK))
    s = train_language_model(TrainRun(steps=4, out=str(out), resume=True, **QUICK))
    m = json.loads((out / "metrics.json").read_text())
    assert s["steps"] == 4 and [h["step"] for h in m["history"]] == [1, 2, 3, 4]


def test_time_budget_stops_cleanly(tmp_path):
    out = tmp_path / "run"
    s = train_language_model(TrainRun(steps=10_000, minutes=0.001, out=str(out), **QUICK))
    assert s["steps"] < 10_000 and "time budget" in s["stop_reason"] and (out / "model.safetensors").exists()


def test_causal_lm_loss_shifts_targets():
    ids = torch.tensor([[1, 2, 3, 4]])
    logits = torch.full((1, 4, 5), -30.0)
    for t in range(3): logits[0, t, ids[0, t + 1]] = 30.0  # a perfect next-token predictor
    assert causal_lm_loss(logits, ids) < 1e-6
    assert causal_lm_loss(logits, torch.tensor([[1, 3, 2, 4]])) > 10  # unshifted or wrong targets cost a lot
    assert causal_lm_loss(logits, torch.tensor([[1, 2, IGNORE_INDEX, IGNORE_INDEX]])) < 1e-6  # ignored targets do not count


def test_mask_tokens_proportions_and_labels():
    V, MASK = 50, 49
    ids = torch.randint(0, 40, (200, 256), generator=torch.Generator().manual_seed(0))
    inputs, labels = mask_tokens(ids, V, MASK, prob=0.15, generator=torch.Generator().manual_seed(1))
    picked = labels != IGNORE_INDEX
    assert abs(picked.float().mean().item() - 0.15) < 0.005
    assert torch.equal(labels[picked], ids[picked]) and torch.equal(inputs[~picked], ids[~picked])
    n = picked.sum().item()
    masked = (inputs == MASK) & picked
    same = (inputs == ids) & picked
    assert abs(masked.sum().item() / n - 0.8) < 0.01
    # 10% random tokens, of which 1/V happen to equal the original: "unchanged" is 10% + 10%/V
    assert abs(same.sum().item() / n - (0.1 + 0.1 / V)) < 0.01
    assert abs((picked & ~masked & ~same).sum().item() / n - 0.1 * (1 - 1 / V)) < 0.01


def test_mask_tokens_skips_special_ids_and_is_seeded():
    ids = torch.tensor([[0] + [5] * 30 + [1]] * 50)
    inputs, labels = mask_tokens(ids, 10, 9, prob=0.5, generator=torch.Generator().manual_seed(0), special_ids=(0, 1))
    assert (labels[:, 0] == IGNORE_INDEX).all() and (labels[:, -1] == IGNORE_INDEX).all()
    assert (inputs[:, 0] == 0).all() and (labels != IGNORE_INDEX).any()
    again = mask_tokens(ids, 10, 9, prob=0.5, generator=torch.Generator().manual_seed(0), special_ids=(0, 1))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)
    assert (mask_tokens(ids, 10, 9, prob=0.0)[1] == IGNORE_INDEX).all()


def test_nsp_pairs_labels():
    sents = [f"s{i}" for i in range(400)]
    pairs = make_nsp_pairs(sents, seed=0)
    assert len(pairs) == 399
    idx = {s: i for i, s in enumerate(sents)}
    for a, b, is_next in pairs:
        assert is_next in (0, 1)
        assert (idx[b] == idx[a] + 1) == (is_next == 1) and b != a
    share = sum(p[2] for p in pairs) / len(pairs)
    assert 0.4 < share < 0.6
    assert make_nsp_pairs(sents, seed=0) == pairs and make_nsp_pairs(sents, seed=1) != pairs


def test_head_scores_find_planted_heads():
    T, P = 16, 8
    attn = torch.full((2, 3, 4, T, T), 0.0)
    attn[...] = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]  # uniform causal
    prev = torch.zeros(T, T); prev[0, 0] = 1; prev[torch.arange(1, T), torch.arange(T - 1)] = 1
    attn[1, :, 2] = prev
    ind = torch.zeros(T, T); ind[:P, :P] = torch.eye(P); ind[torch.arange(P, T), torch.arange(1, P + 1)] = 1
    attn[0, :, 3] = ind
    ps, is_ = previous_token_scores(attn), induction_scores(attn, P)
    assert ps.shape == (2, 4) and ps.argmax().item() == 1 * 4 + 2 and ps[1, 2] == pytest.approx(1.0)
    assert is_.argmax().item() == 3 and is_[0, 3] == pytest.approx(1.0)
    x = repeated_random_tokens(P, [3, 4, 5], batch_size=2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 2 * P) and torch.equal(x[:, :P], x[:, P:])


# --- the packaged demo model (chapter 15; used by chapters 10, 12, 14, 16) -------------------------------------------

def test_demo_model_loads_and_has_learnt():
    from llm_course.core import load_json
    from llm_course.generate import generate_text
    from llm_course.pretrain import demo_model, demo_model_path, stream_cross_entropy
    from llm_course.data import load_default_corpus, split_text
    model, tok = demo_model()
    c = model.config
    assert (c.n_layer, c.n_head, c.d_model, c.block_size, c.vocab_size) == (4, 4, 128, 128, tok.vocab_size) and not model.training
    info = load_json(demo_model_path() / "summary.json")
    assert info["seed"] == 0 and info["steps"] == 1500 and info["script"] == "tools/train_demo_model.sh" and info["seconds"] > 0
    text = load_default_corpus()
    _, val = split_text(torch.tensor(tok.encode(text)), (0.9, 0.1))
    loss = stream_cross_entropy(model, val[:20_000], 128, stride=64)
    assert loss < 2.0, loss   # trained: far below ln V (4.7) and the unigram (3.35)
    out = generate_text(model, tok, "The function ", 40, temperature=0.8, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, str) and len(out) > 0 and set(out) <= set(tok.stoi)   # the continuation, in the model's characters


def test_demo_model_ships_as_package_data(root):
    try: import tomllib
    except ModuleNotFoundError: import tomli as tomllib  # Python 3.10
    from llm_course.pretrain import demo_model_path
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["llm_course"]
    assert "data/demo_model/*" in patterns
    names = sorted(p.name for p in demo_model_path().iterdir())
    assert names == ["checksums.json", "config.json", "model.safetensors", "run.json", "summary.json", "tokenizer.json"]
    tracked = __import__("subprocess").run(["git", "ls-files", "llm_course/data/demo_model"], cwd=root, capture_output=True, text=True).stdout
    assert "model.safetensors" in tracked or not (root / ".git").exists()


def test_demo_model_corrupt_or_missing(tmp_path, monkeypatch):
    import shutil
    import llm_course.pretrain as pretrain
    from llm_course.core import CheckpointError
    copy = tmp_path / "demo_model"
    shutil.copytree(pretrain.demo_model_path(), copy)
    monkeypatch.setattr(pretrain, "demo_model_path", lambda: copy)
    data = bytearray((copy / "model.safetensors").read_bytes()); data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors"): pretrain.demo_model()
    (copy / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="tools/train_demo_model.sh"): pretrain.demo_model()
