"""Chapter 19's one `train`: recipes, the planner first, a 2-process FSDP2 rehearsal on gloo that is killed and resumed, export
to Hugging Face, and the 8-rank dry run of the Llama-2-7B shape."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from conftest import raises
from llm_course.core import ConfigError, MissingPathError
from llm_course.distributed import free_port, kill_job
from llm_course.train import TrainJob, job_from_dict, load_recipe, validate_job

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "IN_TEST": "1", "PYTHONWARNINGS": "ignore", "TORCH_CPP_LOG_LEVEL": "ERROR"}
for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"): ENV.pop(k, None)


def torchrun(nproc, *args, env=None, wait=True, timeout=600):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), "-m", "llm_course.train", *map(str, args)]
    if not wait: return subprocess.Popen(cmd, env={**ENV, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True, start_new_session=True)
    return subprocess.run(cmd, env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=timeout)


def cli(*args):
    return subprocess.run([sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", *map(str, args)],
                          capture_output=True, text=True, env=ENV)


def losses(run: Path) -> list[float]:
    return [h["loss"] for h in json.loads((run/"metrics.json").read_text())["history"]]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    "A local JSONL corpus tokenised by `llm-course prepare` (the course's BPE) into train and val shards."
    d = tmp_path_factory.mktemp("data")
    with open(d/"docs.jsonl", "w") as f:
        for i in range(300): f.write(json.dumps({"text": ("the cat sat on the mat. " if i % 2 else "a dog ran in the fog. ") * 30}) + "\n")
    res = cli("prepare", d/"docs.jsonl", "--out", d/"shards", "--tokenizer", "bpe", "--vocab-size", "300", "--val-fraction", "0.1",
              "--no-progress")
    assert res.returncode == 0, res.stderr
    return d/"shards"


def test_two_processes_fsdp_killed_resumed_exported(tmp_path, prepared):
    "prepare → torchrun on 2 gloo ranks (FSDP2): an uninterrupted run, and one SIGKILLed after its first checkpoint then resumed, "
    "end with the same losses; the run exports to a Hugging Face folder whose logits equal ours."
    ref, run = tmp_path/"ref", tmp_path/"run"
    SMALL = ["--data", prepared, "--batch-size", "8", "--no-progress", "--sample-tokens", "0", "--checkpoint-every", "3"]
    res = torchrun(2, "--out", ref, "--steps", "6", "--parallel", "fsdp", *SMALL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (ref/"checkpoints"/"step-000006"/".metadata").exists()  # a sharded (DCP) checkpoint
    p = torchrun(2, "--out", run, "--steps", "6", "--parallel", "fsdp", *SMALL, wait=False,
                 env={"LLM_COURSE_TEST_CHECKPOINT_SLEEP": "2"})
    deadline = time.time() + 300
    while not (run/"checkpoints"/"step-000003").exists() and time.time() < deadline: time.sleep(0.2)
    time.sleep(1)  # into the next steps, or the next checkpoint's write
    kill_job(p.pid); p.wait(60)  # torchrun and every worker below it (the workers are not in its process group)
    assert not (run/"model.safetensors").exists()
    res = torchrun(2, "--out", run, "--resume", "--no-progress")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert max(abs(a - b) for a, b in zip(losses(run), losses(ref))) < 1e-6 and len(losses(run)) == 6
    assert [json.loads(l)["step"] for l in (run/"metrics.jsonl").read_text().splitlines() if "loss" in json.loads(l)] == [6]
    # export, then compare logits with transformers
    from transformers import AutoModelForCausalLM
    from llm_course.pretrain import load_trained
    assert cli("export", run, "--to-hf", tmp_path/"hf").returncode == 0
    hf = AutoModelForCausalLM.from_pretrained(tmp_path/"hf", local_files_only=True).eval()
    ours, tok = load_trained(run)
    ids = torch.tensor([tok.encode("the cat sat on the mat. a dog")])
    with torch.no_grad(): assert torch.allclose(hf(ids).logits, ours(ids), atol=1e-5)


def test_dry_run_of_llama2_7b_on_8_ranks_matches_the_planner(tmp_path):
    args = ["--preset", "llama2-7b", "--block-size", "4096", "--batch-size", "8", "--precision", "bf16", "--gpu", "h100-80gb"]
    res = torchrun(8, *args, "--dry-run", "--out", tmp_path/"7b")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    shares = next(l for l in res.stdout.splitlines() if l.startswith("parameters per rank"))
    assert "(sum 6,738,415,616)" in shares and len(shares.split(":")[1].split("(")[0].split(",")) >= 8
    plan = cli("plan", "--preset", "llama2-7b", "--gpus", "8", "--gpu", "h100-80gb", "--seq", "4096", "--micro-batch", "1",
               "--sharding", "fsdp")
    assert plan.returncode == 0, plan.stderr
    memory = lambda text: [l for l in text.splitlines() if l.startswith("  ") and "GiB" in l]
    assert memory(plan.stdout) and memory(res.stdout) == memory(plan.stdout)
    assert not (tmp_path/"7b").exists()  # a dry run writes nothing


def test_recipes_load_and_bad_ones_are_one_line(tmp_path):
    for recipe in sorted((ROOT/"recipes").glob("*.toml")):
        job = load_recipe(recipe)
        assert isinstance(job, TrainJob) and job.preset in recipe.name
    (tmp_path/"bad.toml").write_text('preset = "tiny"\nstepz = 10\n')
    raises(ConfigError, load_recipe, tmp_path/"bad.toml", hint="unknown setting(s) ['stepz']")
    (tmp_path/"type.toml").write_text('steps = "ten"\n')
    raises(ConfigError, load_recipe, tmp_path/"type.toml", hint="steps must be int | None")
    (tmp_path/"syntax.toml").write_text('steps = = 3\n')
    raises(ConfigError, load_recipe, tmp_path/"syntax.toml", hint="fix its syntax")
    raises(MissingPathError, load_recipe, tmp_path/"none.toml", hint="see recipes/")
    raises(ConfigError, validate_job, job_from_dict({"parallel": "zero9"}), hint="unknown parallel")
    res = cli("train", "--config", tmp_path/"bad.toml")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "stepz" in res.stderr


def test_bad_data_is_one_line_and_writes_nothing(tmp_path, prepared):
    run = tmp_path/"run"
    res = cli("train", "--data", prepared, "--vocab-size", "100", "--out", run, "--steps", "2", "--no-progress")
    assert res.returncode == 2 and "the tokenizer has 280 tokens but the model's vocab_size is 100" in res.stderr, res.stderr
    res = cli("train", "--data", tmp_path/"nowhere", "--out", run, "--steps", "2", "--no-progress")
    assert res.returncode == 2 and "nowhere" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not run.exists()
    # resuming on shards made with another tokenizer than the run's
    assert cli("train", "--data", prepared, "--out", run, "--steps", "2", "--checkpoint-every", "1", "--no-progress",
               "--sample-tokens", "0").returncode == 0
    other = tmp_path/"other"
    assert cli("prepare", prepared.parent/"docs.jsonl", "--out", other, "--tokenizer", "char", "--val-fraction", "0.1",
               "--no-progress").returncode == 0
    res = cli("train", "--resume", "--data", other, "--out", run, "--no-progress")
    assert res.returncode == 2 and "was started with --data" in res.stderr, res.stderr


def test_a_run_that_cannot_fit_is_refused_before_training(tmp_path, monkeypatch):
    import llm_course.train as T
    monkeypatch.setattr(T, "device_memory_bytes", lambda device: 8 * 2**30)  # a pretend 8 GB GPU
    job = TrainJob(preset="llama-1b", block_size=2048, batch_size=8, steps=1, max_chars=100000, out=str(tmp_path/"big"),
                   progress=False, sample_tokens=0)
    e = raises(ConfigError, T.train, job, hint="llm-course plan --auto --preset llama-1b")
    assert "short by" in str(e) and not (tmp_path/"big").exists()


def test_auto_applies_the_planners_choices(tmp_path):
    "`--auto` asks chapter 17's planner for the layout and says why, one sentence per choice, before training."
    res = cli("train", "--auto", "--out", tmp_path/"a", "--steps", "2", "--max-chars", "20000", "--no-progress", "--sample-tokens", "0")
    assert res.returncode == 0, res.stderr
    chose = res.stdout.split("the planner chose:")[1].splitlines()
    assert any("sharding" in l.lower() or "one gpu" in l.lower() for l in chose) and any("accumulation" in l.lower() for l in chose)
    assert json.loads((tmp_path/"a"/"run.json").read_text())["parallel"] == "none"
