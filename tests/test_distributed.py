"Chapter 18 on CPU: 1 process vs 2-process DDP/FSDP2 (gloo) give the same losses and weights; kill and resume; 2 -> 1 ranks; the 7B meta dry run; HF export; bad input."
import json, os, random, shutil, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from llm_course.core import CheckpointError, ConfigError
from llm_course.runs import verify_checksums
from llm_course.data import load_default_corpus, open_memmap, pack_memmap
from llm_course.distributed import (DistributedError, ShardedTokens, _train_parser, free_port, activation_bytes, checkpoint_blocks, export_hf,
                                    kill_job, launch, load_full_model, load_sharded_checkpoint, rank_rows, tiny_model, torchrun_command,
                                    train_config)
from llm_course.learner import Learner, latest_checkpoint, list_checkpoints
from llm_course.model import ModelConfig, Transformer

pytestmark = pytest.mark.xdist_group("distributed")  # the 2-process jobs share 2 cores: one worker runs them all
WORKER = str(Path(__file__).parent/"dist_worker.py")
STEPS = 20
VAL = ["--val-data", None, "--eval-every", 10]  # the validation file is filled in by the `tokens` fixture


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> str:
    "The first 200,000 bytes of the default corpus as a token file (byte ids, vocab 256)."
    path = tmp_path_factory.mktemp("data")/"train.bin"
    text = load_default_corpus()
    pack_memmap(np.frombuffer(text[:200_000].encode(), dtype=np.uint8), path, vocab_size=256)
    pack_memmap(np.frombuffer(text[200_000:220_000].encode(), dtype=np.uint8), path.parent/"val.bin", vocab_size=256)
    VAL[1] = str(path.parent/"val.bin")
    return str(path)


def args(tokens, *extra):
    return ["--data", tokens, "--steps", str(STEPS), *map(str, extra)]


def reference(argv, val=False):
    "The plain chapter-11 Learner in this process, no `Distributed`: the losses and final weights every layout must reproduce."
    a = _train_parser().parse_args(argv)
    data = open_memmap(a.data) if a.random_windows else ShardedTokens(a.data, a.block_size, seed=a.seed, rank=0, world_size=1)
    learn = Learner(tiny_model(a), data, open_memmap(a.val_data) if a.val_data else None, config=train_config(a)); learn.fit()
    out = [h["loss"] for h in learn.history], {k: v.detach().clone() for k, v in learn.model.state_dict().items()}
    return (*out, {h["step"]: h["val_loss"] for h in learn.history if h.get("val_loss") is not None}) if val else out


def job(argv, nproc=2, timeout_s=120, env=None, check=True):
    return launch([WORKER, *map(str, argv)], nproc=nproc, timeout_s=timeout_s, env=env, check=check)


def max_diff(a, b): return max(abs(x - y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def layouts(tokens, tmp_path_factory):
    "One 2-process job trains the same run as DDP, FSDP2, FSDP2 + activation checkpointing, and DDP on random windows."
    d = tmp_path_factory.mktemp("layouts")
    runs = dict(ddp=["--parallel", "ddp"], fsdp=["--parallel", "fsdp", "--out", d/"fsdp", "--plot", *VAL], fsdp_ac=["--parallel", "fsdp", "--ac"],
                ddp_windows=["--parallel", "ddp", "--random-windows"])
    argv = ["--log-samples", d/"samples-{rank}.jsonl"]
    for i, (name, extra) in enumerate(runs.items()):
        argv += (["+"] if i else []) + args(tokens, *extra, "--save-final", d/f"{name}.safetensors")
    res = job(argv, timeout_s=240)
    return dict(zip(runs, res.results)), d


def test_one_vs_two_processes_same_losses_and_weights(tokens, layouts):
    results, d = layouts
    ref_losses, ref_weights = reference(args(tokens))
    for name in ("ddp", "fsdp", "fsdp_ac"):
        r = results[name]
        assert r["world_size"] == 2 and len(r["losses"]) == STEPS
        assert max_diff(r["losses"], ref_losses) < 1e-5, name
        w = load_file(d/f"{name}.safetensors")
        assert w.keys() == ref_weights.keys()
        assert max((w[k] - ref_weights[k]).abs().max().item() for k in w) < 1e-5, name
    assert results["fsdp_ac"]["losses"] == results["fsdp"]["losses"]  # recomputation changes nothing
    *_, ref_val = reference(args(tokens, *VAL), val=True)  # evaluation: the same validation losses, averaged over ranks
    got_val = {int(k): v for k, v in results["fsdp"]["val_losses"].items()}
    assert got_val.keys() == ref_val.keys() == {10, 20} and max(abs(got_val[s] - ref_val[s]) for s in ref_val) < 1e-5
    assert (d/"fsdp"/"loss.png").stat().st_size > 1000  # rank 0's LossPlot of the averaged losses
    win_losses, _ = reference(args(tokens, "--random-windows"))  # the Learner's own random windows, split by rows
    assert max_diff(results["ddp_windows"]["losses"], win_losses) < 1e-5


def test_activation_checkpointing_memory_as_predicted():
    "Checkpointing keeps one [B, T, d] input per block: 4·B·T·d bytes in fp32, instead of every intermediate."
    B, T, d = 8, 64, 64
    held = {}
    for L in (2, 4):
        for ac in (False, True):
            torch.manual_seed(0)
            m = Transformer(ModelConfig.preset("tiny", n_layer=L, d_model=d, n_head=4, d_ff=128, block_size=T))
            if ac: checkpoint_blocks(m)
            held[L, ac] = activation_bytes(m, torch.randint(0, 256, (B, T)))
    per_block = {ac: (held[4, ac] - held[2, ac]) / 2 for ac in (False, True)}
    assert abs(per_block[True] - 4 * B * T * d) / (4 * B * T * d) < 0.1, per_block
    assert per_block[False] > 10 * per_block[True] and held[4, True] < held[4, False] / 4


def test_sharded_tokens_disjoint_and_resumable(tokens):
    B, T = 8, 32
    one = ShardedTokens(tokens, T, seed=3, rank=0, world_size=1)
    ranks = [ShardedTokens(tokens, T, seed=3, rank=r, world_size=2) for r in range(2)]
    seen = []
    for step in range(5):
        x1, y1 = one(B)
        parts = [s(B) for s in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x1) and torch.equal(torch.cat([p[1] for p in parts]), y1)
        assert torch.equal(x1[:, 1:], y1[:, :-1])
        seen += one.last_ids.tolist()
    assert len(set(seen)) == len(seen)  # no window twice within an epoch
    again = ShardedTokens(tokens, T, seed=3, rank=0, world_size=1); again.seek(3)
    assert again.sample_ids(3, B).tolist() == seen[24:32]
    assert sorted(np.concatenate([one.order(0)])) == list(range(one.n_windows))  # an epoch covers every window once
    with pytest.raises(ConfigError, match="cannot be split evenly over 3 processes.*batch_size=6"): rank_rows(8, 0, 3)


def samples_by_step(folder: Path, attempts: list[str]) -> dict:
    "The windows each step really trained on: a step re-run after a kill replaces the earlier attempt's record."
    steps = {}
    for att in attempts:
        for rank in (0, 1):
            p = folder/f"{att}-{rank}.jsonl"
            if not p.exists(): continue
            for line in p.read_text().splitlines():
                rec = json.loads(line)
                steps.setdefault(rec["step"], {})[rec["rank"]] = rec["ids"]  # later attempts overwrite
    return {s: v[0] + v[1] for s, v in sorted(steps.items())}


def test_kill_and_resume_ten_times(tokens, layouts, tmp_path, full_size):
    "SIGKILL the whole 2-process FSDP2 job 10 times (`--slow`; by default 4) after a step, or while a checkpoint is written; resume each time."
    results, d = layouts
    ref = results["fsdp"]["losses"]
    ref_samples = {s: ids for s, ids in samples_by_step(d, ["samples"]).items()}  # the fsdp run wrote after ddp: same ids anyway
    out, logs = tmp_path/"run", tmp_path/"logs"; logs.mkdir()
    rng = random.Random(0)
    common = args(tokens, "--parallel", "fsdp", "--out", out, "--checkpoint-every", 2, "--resume", "auto")
    attempts, kills = [], []
    n = 10 if full_size else 4
    for i in range(n + 1):
        att = f"attempt{i:02d}"; attempts.append(att)
        during_save = i % 2 == 1
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
               **({"LLM_COURSE_TEST_CHECKPOINT_SLEEP": "0.4"} if during_save else {})}
        argv = [WORKER, "--log-samples", logs/f"{att}-{{rank}}.jsonl", *map(str, common)]
        p = subprocess.Popen(torchrun_command(2, argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        t0, start = time.time(), (latest_checkpoint(out).name if latest_checkpoint(out) else None)
        target = rng.randint(1, 3)
        if i < n:
            while p.poll() is None and time.time() - t0 < 60:
                done = sum(1 for _ in open(logs/f"{att}-0.jsonl")) if (logs/f"{att}-0.jsonl").exists() else 0
                tmps = list((out/"checkpoints").glob(".step-*.tmp-*")) if (out/"checkpoints").exists() else []
                if (during_save and tmps) or (not during_save and done >= target): break
                time.sleep(0.02)
            if during_save: time.sleep(rng.uniform(0, 0.3))
            if p.poll() is None:
                kill_job(p.pid); kills.append(("checkpoint write" if during_save else f"after {target} step(s)", start))
        out_text = p.communicate(timeout=120)[0].decode()
        time.sleep(0.2)  # let the kernel reap the killed workers (and release their run-folder lock)
        if i == n: assert p.returncode == 0, out_text[-3000:]
        for ck in list_checkpoints(out): verify_checksums(ck)  # what a killed write left behind is never listed as a checkpoint
    print(f"\n{len(kills)} kills (what was running, the checkpoint it had resumed from): {kills}")
    assert len(kills) >= n - 2, kills
    m = json.loads((out/"metrics.json").read_text())
    assert [h["step"] for h in m["history"]] == list(range(1, STEPS + 1))
    assert max_diff([h["loss"] for h in m["history"]], ref) < 1e-6
    got = samples_by_step(logs, attempts)
    assert sorted(got) == list(range(1, STEPS + 1)) and got == ref_samples
    flat = [i for ids in got.values() for i in ids]
    assert len(flat) == len(set(flat)) == STEPS * 8  # every window once: none twice, none skipped


def test_save_on_two_ranks_resume_on_one(tokens, tmp_path):
    "The first half under `accelerate launch` (2 ranks, its CPU multi-process mode), the second as a plain single process."
    out = tmp_path/"run"
    acc = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", "llm_course.distributed", "train",
           *map(str, args(tokens, "--parallel", "fsdp", "--out", out, "--until", 10))]
    p = subprocess.run(acc, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert json.loads(next(l for l in p.stdout.splitlines() if l.startswith("@@result "))[9:])["world_size"] == 2
    assert latest_checkpoint(out).name == "step-000010"
    p = subprocess.run([sys.executable, "-m", "llm_course.distributed", "train", *map(str, args(tokens, "--parallel", "fsdp",
                        "--out", out, "--resume", "yes"))], capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(next(l for l in p.stdout.splitlines() if l.startswith("@@result "))[9:])
    assert r["world_size"] == 1
    ref_losses, _ = reference(args(tokens))
    assert max_diff(r["losses"], ref_losses) < 1e-5  # steps 1-10 on two ranks, 11-20 on one: one curve


def test_llama2_7b_meta_sharded_over_two_ranks():
    r = launch(["-m", "llm_course.distributed", "dry-run", "--preset", "llama2-7b"], nproc=2, timeout_s=120).results[0]
    assert r["total"] == r["expected"] == 6_738_415_616
    assert r["max_rss_mb"] < 2048, r


def test_hf_export_matches_our_logits(layouts, tmp_path):
    from transformers import AutoModelForCausalLM
    results, d = layouts
    ck = latest_checkpoint(d/"fsdp")
    ours = load_full_model(ck)
    folder = export_hf(ck, tmp_path/"hf")
    assert (folder/"config.json").exists() and (folder/"model.safetensors").exists()
    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    x = torch.randint(0, 256, (2, 32))
    with torch.no_grad(): diff = (hf(x).logits - ours(x)).abs().max().item()
    assert diff < 1e-5
    final = load_file(d/"fsdp.safetensors")  # and the checkpoint holds the trained weights
    assert all(torch.equal(final[k], v) for k, v in ours.state_dict().items())


# ----- bad input: the package's error with a fix, and no hang -----

def test_batch_not_divisible_by_world_size(tokens):
    r = job(args(tokens, "--batch-size", 7), check=False, timeout_s=60)
    assert r.returncode != 0 and "cannot be split evenly over 2 processes" in r.output and "batch_size=6" in r.output


def test_one_rank_crashes_the_others_exit(tokens):
    r = job(["--fault", "1:3:crash", *args(tokens)], check=False, timeout_s=60)
    assert r.returncode != 0 and "injected failure on rank 1 at step 3" in r.output
    assert "rank 1" in r.output.replace("local_rank: 1", "rank 1")  # torchrun's summary names the failed rank


def test_one_rank_hangs_the_others_time_out(tokens):
    t0 = time.time()
    r = job(["--fault", "1:3:hang", *args(tokens, "--timeout", 5)], check=False, timeout_s=90)
    assert r.returncode != 0 and time.time() - t0 < 60
    assert "DistributedError" in r.output and "another rank has probably crashed or hangs" in r.output


def test_checkpoint_of_another_model(layouts):
    results, d = layouts
    ck = latest_checkpoint(d/"fsdp")
    other = Transformer(ModelConfig.preset("tiny", n_layer=2, d_model=32, n_head=4, d_ff=64, block_size=32))
    with pytest.raises(CheckpointError, match="belongs to a different model.*d_model=64 in the checkpoint, 32 now"):
        load_sharded_checkpoint(ck, other)


def test_missing_or_truncated_shard(layouts, tokens, tmp_path):
    results, d = layouts
    run = tmp_path/"run"; shutil.copytree(d/"fsdp", run)
    ck = latest_checkpoint(run)
    (ck/"__1_0.distcp").unlink()
    with pytest.raises(CheckpointError, match="missing __1_0.distcp"): load_full_model(ck)
    shutil.rmtree(run); shutil.copytree(d/"fsdp", run)
    shard = latest_checkpoint(run)/"__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[:1000])
    r = job(args(tokens, "--parallel", "fsdp", "--out", run, "--resume", "yes", "--steps", STEPS + 2), check=False, timeout_s=60)
    assert r.returncode != 0 and "CheckpointError" in r.output and "__1_0.distcp' has 1,000 bytes" in r.output
    assert r.output.count("truncated or overwritten") >= 2  # both ranks say it, none hangs


def test_one_process_with_the_callback(tokens, tmp_path):
    "Run directly (no launcher), `Distributed` makes a group of one: same losses as the plain Learner, sharded checkpoints, exact resume."
    from llm_course.distributed import Distributed, teardown_distributed
    ref_losses, _ = reference(args(tokens, "--steps", 6))
    a = _train_parser().parse_args(args(tokens, "--steps", 6, "--out", tmp_path/"run", "--checkpoint-every", 3))
    try:
        learn = Learner(tiny_model(a), ShardedTokens(a.data, a.block_size), config=train_config(a), callbacks=[Distributed("none")])
        learn.fit(until=3)
        assert [p.name for p in list_checkpoints(tmp_path/"run")] == ["step-000003"]
        assert json.loads((list_checkpoints(tmp_path/"run")[0]/"state.json").read_text())["format"] == "llm_course.dcp/1"
        a.resume = "yes"
        again = Learner(tiny_model(a), ShardedTokens(a.data, a.block_size), config=train_config(a), callbacks=[Distributed("none")])
        again.fit()
    finally: teardown_distributed()
    assert max_diff([h["loss"] for h in again.history], ref_losses) < 1e-6


def meta_init_job(tokens):
    "Worker (run by `launch`): 2-rank meta-device build of the tiny model, checks of its shards, then 3 Learner steps on it."
    import torch
    from llm_course.distributed import (Distributed, ShardedTokens, all_reduce_sum, build_sharded_model, init_distributed,
                                        local_numel, report, teardown_distributed)
    from llm_course.learner import Learner, TrainConfig
    from llm_course.model import ModelConfig
    init_distributed()
    cfg = ModelConfig.preset("tiny", n_layer=2, d_model=64, n_head=4, d_ff=128, block_size=32)
    model = build_sharded_model(cfg, "fsdp", seed=0)
    w = model.blocks[0].attn.qkv.weight.full_tensor()
    half, norms = w.shape[0] // 2, model.norm.weight.full_tensor().tolist()[:3]
    learn = Learner(model, ShardedTokens(tokens, 32), config=TrainConfig(steps=3, batch_size=8, block_size=32, progress=False),
                    callbacks=[Distributed("fsdp")])  # already sharded: `parallelize` leaves it as it is
    learn.fit()
    report(total=int(all_reduce_sum(local_numel(model))), expected=cfg.n_params(), std=w.std().item(),
           shards_differ=not torch.equal(w[:half], w[half:]), norms=norms,
           losses=[h["loss"] for h in learn.history])
    teardown_distributed()


def test_meta_device_init_then_train(tokens):
    r = launch(meta_init_job, nproc=2, args=(tokens,), timeout_s=120).results[0]
    assert r["total"] == r["expected"] and r["shards_differ"] and abs(r["std"] - 0.02) < 0.002 and r["norms"] == [1.0, 1.0, 1.0]
    assert r["losses"][-1] < r["losses"][0] and abs(r["losses"][0] - np.log(256)) < 0.1  # a fresh model: about ln(vocab)
