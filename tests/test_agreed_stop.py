"""Stop decisions agreed by every rank, pre-emption by a signal, and validation sharded over the ranks (issues 20 and 21).

Before: under torchrun each rank stopped on its own clock (a straggler made the ranks hang in mismatched collectives), a
SIGTERM killed the run without a checkpoint, and every rank evaluated the same windows at the whole micro-batch."""
import json, random, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest

from llm_course.distributed import PREEMPTED_EXIT, free_port, launch

pytestmark = pytest.mark.xdist_group("agreed_stop")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "IN_TEST": "1", "PYTHONWARNINGS": "ignore", "TORCH_CPP_LOG_LEVEL": "ERROR"}
for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"): ENV.pop(k, None)
SMALL = ["--block-size", "16", "--batch-size", "4", "--max-chars", "20000", "--sample-tokens", "0", "--no-progress",
         "--eval-every", "0", "--parallel", "ddp"]

# rank 1's clock runs 1.6 times as fast as rank 0's: its time budget runs out several steps earlier
SKEWED = """import os, sys, time
if os.environ.get("RANK") == "1":
    real, start = time.perf_counter, time.perf_counter()
    time.perf_counter = lambda: start + 1.6 * (real() - start)
from llm_course.train import main
sys.exit(main(sys.argv[1:]))
"""


def torchrun(script, *args, wait=True, env=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port()), *script, *map(str, args)]
    env = {**ENV, **(env or {})}
    if not wait: return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def history(run: Path) -> list[dict]:
    return json.loads((run/"metrics.json").read_text())["history"]


def test_a_skewed_clock_still_stops_both_ranks_at_the_same_step(tmp_path):
    (tmp_path/"skewed.py").write_text(SKEWED)
    res = torchrun([str(tmp_path/"skewed.py")], "--minutes", "0.12", "--steps", "100000", "--out", tmp_path/"run", *SMALL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]  # before: the ranks hung in mismatched collectives
    m = json.loads((tmp_path/"run"/"metrics.json").read_text())
    assert "time budget" in m["stop_reason"], m["stop_reason"]
    assert [p.name for p in (tmp_path/"run"/"checkpoints").iterdir() if not p.name.startswith(".")] == [f"step-{m['steps']:06d}"]


def test_sigterm_checkpoints_the_stop_step_and_the_resume_matches(tmp_path, full_size):
    "2 FSDP ranks SIGTERMed at random moments (5 under --slow, else 2), one of them while a checkpoint is being written: each time "
    "the stop step is checkpointed, the exit says preempted (75), and the resumed run's losses equal the uninterrupted run's."
    args = ["--steps", "16", "--checkpoint-every", "4", "--log-every", "1", *SMALL[:-1], "fsdp"]
    ref = torchrun(["-m", "llm_course.train"], "--out", tmp_path/"ref", *args)
    assert ref.returncode == 0, ref.stdout[-3000:]
    want = [h["loss"] for h in history(tmp_path/"ref")]
    rng = random.Random(0)
    for i in range(5 if full_size else 2):
        run, during_save = tmp_path/f"run{i}", i % 2 == 1
        env = {"LLM_COURSE_TEST_CHECKPOINT_SLEEP": "1"} if during_save else {}  # widens the window in which a save finishes
        p = torchrun(["-m", "llm_course.train"], "--out", run, *args, wait=False, env=env)
        log, target, deadline = run/"metrics.jsonl", rng.randint(1, 12), time.time() + 300
        def reached():
            if during_save: return bool(list((run/"checkpoints").glob(".step-*.tmp-*"))) if (run/"checkpoints").exists() else False
            return log.exists() and len(log.read_text().splitlines()) >= target
        while not reached() and p.poll() is None and time.time() < deadline: time.sleep(0.02)
        workers = [int(x) for x in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()]
        assert len(workers) == 2
        for w in workers: os.kill(w, signal.SIGTERM)  # as Slurm signals every task of the job
        out, _ = p.communicate(timeout=120)
        assert "preempted by SIGTERM" in out and "checkpoint written" in out and str(PREEMPTED_EXIT) in out, out[-3000:]
        assert not (run/"model.safetensors").exists()
        stop = max(int(c.name.split("-")[1]) for c in (run/"checkpoints").iterdir() if c.name.startswith("step-"))
        assert 0 < stop < 16 and not list((run/"checkpoints").glob(".step-*")), (stop, out[-2000:])
        rows = [json.loads(l)["step"] for l in log.read_text().splitlines() if "loss" in l]
        assert max(rows) == stop, (rows, stop)  # the checkpoint is of the step the run stopped at: nothing trained is lost
        res = torchrun(["-m", "llm_course.train"], "--out", run, "--resume", "--no-progress")
        assert res.returncode == 0, res.stdout[-3000:]
        np.testing.assert_allclose([h["loss"] for h in history(run)], want, rtol=0, atol=1e-6)


def sharded_eval_job():
    import torch
    from llm_course.distributed import Distributed, dist_info, init_distributed, report, teardown_distributed
    from llm_course.learner import Learner, TrainConfig
    from llm_course.model import ModelConfig, Transformer
    init_distributed()
    torch.manual_seed(0)
    model = Transformer(ModelConfig.preset("tiny", n_layer=2, d_model=32, n_head=2, d_ff=64, block_size=16, vocab_size=50))
    val = torch.randint(0, 50, (5000,), generator=torch.Generator().manual_seed(1))
    cfg = TrainConfig(steps=1, batch_size=8, grad_accum=2, block_size=16, eval_batches=3, progress=False)
    learn = Learner(model, val, val, cfg, callbacks=[Distributed("ddp")])
    seen = []
    model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    loss = learn.evaluate()
    both = [None] * dist_info().world_size
    torch.distributed.all_gather_object(both, [x.tolist() for x in seen])
    report(loss=loss, shapes=[list(x.shape) for x in seen], windows=both)
    teardown_distributed()


def test_evaluation_is_sharded_over_the_ranks_and_equals_one_process():
    import torch
    from llm_course.learner import Learner, TrainConfig
    from llm_course.model import ModelConfig, Transformer
    r = launch(sharded_eval_job, nproc=2, timeout_s=180).results[0]
    assert r["shapes"] == [[2, 16]] * 3  # each rank: the training micro-batch (8 // 2 accumulation // 2 ranks) per forward
    rows = lambda rank: {tuple(w) for batch in r["windows"][rank] for w in batch}
    assert not rows(0) & rows(1), "the ranks evaluated the same windows"
    torch.manual_seed(0)
    model = Transformer(ModelConfig.preset("tiny", n_layer=2, d_model=32, n_head=2, d_ff=64, block_size=16, vocab_size=50))
    val = torch.randint(0, 50, (5000,), generator=torch.Generator().manual_seed(1))
    one = Learner(model, val, val, TrainConfig(steps=1, batch_size=8, grad_accum=2, block_size=16, eval_batches=3, progress=False))
    assert abs(one.evaluate() - r["loss"]) < 1e-6


def test_a_killed_rank_is_one_line_on_the_others(tmp_path):
    "SIGKILL of rank 1: rank 0 says so in one line (gloo's 'Connection reset by peer' used to reach it as a traceback)."
    p = torchrun(["-m", "llm_course.train"], "--out", tmp_path/"run", "--steps", "5000", *SMALL, wait=False)
    log = tmp_path/"run"/"metrics.jsonl"
    deadline = time.time() + 300
    while not log.exists() and time.time() < deadline: time.sleep(0.05)
    workers = [int(x) for x in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()]
    os.kill(workers[1], signal.SIGKILL)
    out, _ = p.communicate(timeout=120)
    assert p.returncode != 0
    ours = [l for l in out.splitlines() if l.startswith("llm_course.train [rank 0]")]
    assert len(ours) == 1 and "lost contact with another rank" in ours[0] and "--resume" in ours[0], out[-3000:]
    assert 'File "' + str(Path(__file__).resolve().parents[1]/"llm_course") not in out  # no traceback through our code


def test_a_two_rank_run_resumed_as_one_plain_process_keeps_its_data_order(tmp_path):
    "The data order is the run's (run.json): resumed without a launcher, it continues the sharded order, not random windows; "
    "2 ranks × grad_accum 2 resumed as 1 process × grad_accum 4 (the same global batch) continue within 1e-5."
    args = ["--checkpoint-every", "3", "--grad-accum", "2", *SMALL]
    ref = torchrun(["-m", "llm_course.train"], "--out", tmp_path/"ref", "--steps", "6", *args)
    assert ref.returncode == 0, ref.stdout[-3000:]
    first = torchrun(["-m", "llm_course.train"], "--out", tmp_path/"run", "--steps", "6", *args)
    assert first.returncode == 0, first.stdout[-3000:]
    import shutil
    (tmp_path/"run"/"model.safetensors").unlink(); shutil.rmtree(tmp_path/"run"/"checkpoints"/"step-000006")  # as if stopped at 3
    assert json.loads((tmp_path/"run"/"run.json").read_text())["data_order"] == "sharded"
    res = subprocess.run([sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", "train",
                          "--resume", "--out", str(tmp_path/"run"), "--no-progress", "--grad-accum", "4"], env=ENV, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    got, want = [h["loss"] for h in history(tmp_path/"run")], [h["loss"] for h in history(tmp_path/"ref")]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_checkpoints_by_the_clock_are_agreed_by_both_ranks(tmp_path):
    "--checkpoint-every 0.02min under FSDP (a save is collective) with rank 1's clock 1.6 times as fast: both ranks save at the same steps."
    (tmp_path/"skewed.py").write_text(SKEWED)
    res = torchrun([str(tmp_path/"skewed.py")], "--steps", "40", "--checkpoint-every", "0.02min", "--out", tmp_path/"run", *SMALL[:-1], "fsdp")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]  # mismatched saves would hang in DCP's collectives
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp_path/"run"/"checkpoints").iterdir() if p.name.startswith("step-"))
    assert len(steps) >= 2 and steps[-1] == 40 and steps[0] < 40, steps  # clock-triggered saves before the end
    assert json.loads((tmp_path/"run"/"run.json").read_text())["checkpoint_minutes"] == 0.02
