"""A run folder is never lost or mixed: all-or-nothing --overwrite (also under SIGKILL/SIGTERM at random moments), one writer
at a time, verified weights, and one-line errors for the failures people hit (disk full, out of memory, bad flags)."""
import json, os, random, resource, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from conftest import raises
from llm_course.cli import main
from llm_course.core import CheckpointError, ConfigError
from llm_course.runs import CHECKSUMS_NAME, verify_checksums
from llm_course.model import ModelConfig, Transformer, from_hf, to_hf
from llm_course.pretrain import TrainRun, load_trained, stream_from_checkpoint

QUICK = ["--steps", "4", "--no-progress", "--max-chars", "20000"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpora")
    (d/"A.txt").write_text("the cat sat on the mat. " * 2000)
    (d/"B.txt").write_text("THE COW SAT ON THE CAT. " * 2000)
    return d/"A.txt", d/"B.txt"


def cli(*args, env=None, limits=None, cwd=None, **kw):
    "`llm-course` in a fresh process, as a user runs it (optionally under ulimits)."
    code = "import sys; from llm_course.cli import main; sys.exit(main())"
    def preexec():
        for what, n in (limits or {}).items(): resource.setrlimit(what, (n, n))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "IN_TEST": "1", **(env or {})}, preexec_fn=preexec if limits else None, **kw)


def one_line_error(res, *fragments):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, (res.returncode, res.stderr[-3000:])
    for f in fragments: assert f in lines[0], (f, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def generates(folder) -> str:
    return "".join(stream_from_checkpoint(folder, "", max_new_tokens=8, temperature=0))


# ---------------------------------------------------------------- 1. --overwrite is all-or-nothing

def test_interrupted_overwrite_keeps_the_old_run(tmp_path, corpora):
    A, B = corpora
    out = tmp_path/"run"
    assert main(["train", "--corpus", str(A), "--out", str(out), *QUICK]) == 0
    before = snapshot(out)
    p = subprocess.Popen([sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", "train",
                          "--corpus", str(B), "--steps", "1000", "--no-progress", "--out", str(out), "--overwrite"],
                         env={**os.environ, "IN_TEST": "1"}, stderr=subprocess.PIPE, text=True)
    staged = tmp_path/".run.next"
    deadline = time.time() + 60
    while not (staged/"tokenizer.json").exists() and time.time() < deadline: time.sleep(0.1)
    assert (staged/"tokenizer.json").exists(), "the overwrite should build its run beside the old one"
    p.send_signal(signal.SIGINT)  # Ctrl-C: stop after the step, checkpoint the new run in its staging folder, exit 75
    assert p.wait(60) == 75 and "preempted by SIGINT" in p.stderr.read()
    assert snapshot(out) == before  # the old run, byte for byte: model and tokenizer from the same run
    assert generates(out).strip()  # and it still generates (lower-case text: A's alphabet)


def _moments(staged: Path, run: Path, new_tok: bytes):
    "Points in the life of an --overwrite, as the file system shows them: one kill lands at (just after) each."
    ck = staged/"checkpoints"
    return [("staging folder created", lambda: staged.exists()),
            ("tokenizer written", lambda: (staged/"tokenizer.json").exists()),
            ("run.json written", lambda: (staged/"run.json").exists()),
            ("first checkpoint being written", lambda: any(ck.glob(".step-000003.tmp-*"))),
            ("first checkpoint complete", lambda: (ck/"step-000003").exists()),
            ("second checkpoint being written", lambda: any(ck.glob(".step-000006.tmp-*"))),
            ("last checkpoint being written", lambda: any(ck.glob(".step-000009.tmp-*"))),
            ("final weights being written", lambda: any(staged.glob(".model.safetensors.*.tmp")) or (staged/"model.safetensors").exists()),
            ("loss plot written", lambda: (staged/"loss.png").exists()),
            ("metrics written", lambda: (staged/"metrics.json").exists()),
            ("checksums written", lambda: (staged/"checksums.json").exists()),
            ("swapped in", lambda: (run/"tokenizer.json").exists() and (run/"tokenizer.json").read_bytes() == new_tok)]


def _observed(reached) -> bool:
    "Whether a moment is reached; a folder that vanishes while it is being listed (the swap renames it) is not yet."
    try: return reached()
    except FileNotFoundError: return False


CI_MOMENTS = ("staging folder created", "first checkpoint being written", "final weights being written", "checksums written", "swapped in")

def test_overwrite_survives_kills_at_random_moments(tmp_path, corpora, full_size):
    "SIGKILL/SIGTERM an --overwrite at 12 moments of its life (`--slow`; by default 5 of them) — during every kind of file write, and "
    "just after the swap: each time the folder holds the complete old run or the complete new one, verified by its checksums, and "
    "generate works on it."
    A, B = corpora
    old = tmp_path/"old"
    assert main(["train", "--corpus", str(A), "--out", str(old), "--checkpoint-every", "3", *QUICK]) == 0
    args = ["train", "--corpus", B, "--steps", "9", "--checkpoint-every", "3", "--no-progress", "--max-chars", "20000", "--overwrite",
            "--sample-tokens", "0"]
    env = {**os.environ, "IN_TEST": "1", "LLM_COURSE_TEST_CHECKPOINT_SLEEP": "0.3"}  # widens each checkpoint write
    code = "import sys; from llm_course.cli import main; sys.exit(main())"
    ref = tmp_path/"ref"; shutil.copytree(old, ref)
    assert subprocess.run([sys.executable, "-c", code, *map(str, args), "--out", str(ref)], env=env, capture_output=True).returncode == 0
    new_tok, old_tok = (ref/"tokenizer.json").read_bytes(), (old/"tokenizer.json").read_bytes()
    new_model, old_model = (ref/"model.safetensors").read_bytes(), (old/"model.safetensors").read_bytes()
    rng, seen = random.Random(0), []
    for i, (moment, reached) in enumerate(_moments(tmp_path/".run.next", tmp_path/"run", new_tok)):
        if not full_size and moment not in CI_MOMENTS: continue
        run = tmp_path/"run"; shutil.rmtree(run, ignore_errors=True); shutil.copytree(old, run)
        p = subprocess.Popen([sys.executable, "-c", code, *map(str, args), "--out", str(run)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while p.poll() is None and not _observed(reached): time.sleep(0.002)
        time.sleep(rng.random() * 0.02)
        p.send_signal(signal.SIGKILL if i % 2 else signal.SIGTERM); p.wait(60)
        assert run.is_dir(), f"kill at '{moment}': the run folder is gone"
        tok, model = (run/"tokenizer.json").read_bytes(), (run/"model.safetensors").read_bytes()
        assert (tok, model) in ((old_tok, old_model), (new_tok, new_model)), f"kill at '{moment}': a mixed or partial run"
        assert verify_checksums(run, "run", required=True)
        assert generates(run).strip()
        seen.append("new" if tok == new_tok else "old")
    assert seen[0] == "old" and seen[-1] == "new", seen  # before the swap the old run, after it the new one


# ---------------------------------------------------------------- 2. one writer at a time

def test_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path, corpora):
    A, B = corpora
    out = tmp_path/"two"
    first = subprocess.Popen([sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", "train",
                              "--corpus", str(A), "--steps", "300", "--no-progress", "--out", str(out)],
                             env={**os.environ, "IN_TEST": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out/"tokenizer.json").exists() and time.time() < deadline: time.sleep(0.1)
    res = cli("train", "--corpus", B, "--steps", "200", "--seed", "1", "--no-progress", "--out", out)
    one_line_error(res, "being written by another run", f"pid {first.pid}")
    first.send_signal(signal.SIGKILL); first.wait(60)
    assert (tmp_path/".two.lock").exists()  # left behind by the dead process…
    assert cli("train", "--corpus", B, "--out", out, *QUICK).returncode == 0  # …and taken over
    assert not (tmp_path/".two.lock").exists()
    assert generates(out).strip().isupper()  # B's run, alone


# ---------------------------------------------------------------- 3. verified weights

def test_corrupt_weights_are_named_not_sampled_from(tmp_path, corpora):
    out = tmp_path/"run"
    assert main(["train", "--corpus", str(corpora[0]), "--out", str(out), "--checkpoint-every", "2", *QUICK]) == 0
    w = out/"model.safetensors"
    data = bytearray(w.read_bytes()); data[len(data) // 2: len(data) // 2 + 64] = os.urandom(64); w.write_bytes(bytes(data))
    one_line_error(cli("generate", "--checkpoint", out, "--temperature", "0"), "model.safetensors", "corrupt", "restore")
    ck = out/"checkpoints"/"step-000004"/"optimizer.safetensors"
    ck.write_bytes(ck.read_bytes()[:-10])
    one_line_error(cli("train", "--out", out, "--resume", "--no-progress"), "optimizer.safetensors", "truncated")


# ---------------------------------------------------------------- 4. ordinary failures: one line, exit 2, nothing lost

def test_disk_full_while_saving_loses_nothing(tmp_path, corpora):
    out = tmp_path/"run"
    assert main(["train", "--corpus", str(corpora[0]), "--out", str(out), *QUICK]) == 0
    before = snapshot(out)
    res = cli("train", "--corpus", "synthetic", "--out", out, "--overwrite", *QUICK, limits={resource.RLIMIT_FSIZE: 4000 * 1024})
    one_line_error(res, "disk is full or a file-size", "choose another --out")
    assert snapshot(out) == before


def test_out_of_memory_is_one_line(tmp_path):
    res = cli("train", "--corpus", "synthetic", "--max-chars", "200000", "--steps", "1", "--batch-size", "200000",
              "--no-progress", "--out", tmp_path/"f6", limits={resource.RLIMIT_AS: 6_000_000 * 1024})
    one_line_error(res, "out of memory", "--batch-size")


def test_bad_devices_and_seeds_are_one_line(tmp_path):
    one_line_error(cli("train", "--device", "cpu:x", "--out", tmp_path/"x", *QUICK), "malformed device 'cpu:x'")
    one_line_error(cli("train", "--seed", "99999999999999999999999", "--out", tmp_path/"x", *QUICK), "at most 2**63 - 1")
    assert not (tmp_path/"x").exists()
    out = tmp_path/"run"
    assert main(["train", "--out", str(out), *QUICK]) == 0
    one_line_error(cli("generate", "--checkpoint", out, "--seed", "99999999999999999999999"), "at most 2**63 - 1")
    res = cli("generate", "--checkpoint", out, "--temperature", "1e-40", "--max-new-tokens", "20", "--prompt", "a")
    assert res.returncode == 0 and len(res.stdout.rstrip("\n")) == 21  # as good as greedy, not NaN probabilities


def test_closed_pipe_exits_quietly(tmp_path):
    out = tmp_path/"run"
    assert main(["train", "--out", str(out), *QUICK]) == 0
    code = "import sys; from llm_course.cli import main; sys.exit(main())"
    res = subprocess.run(f"{sys.executable} -c '{code}' generate --checkpoint {out} --max-new-tokens 20000 | head -c 20; "
                         "echo \" ${PIPESTATUS[0]}\"", shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert res.stdout.endswith(" 141\n") and res.stderr == "", (res.stdout[-200:], res.stderr[-2000:])


# ---------------------------------------------------------------- 5. a run that stopped before its first checkpoint

def test_run_without_a_checkpoint_is_reused(tmp_path):
    out = tmp_path/"f8"
    line = one_line_error(cli("train", "--corpus", "synthetic", "--max-chars", "20000", "--steps", "50", "--lr", "1e6",
                              "--no-progress", "--out", out), "diverged")
    assert "--lr" in line and "--checkpoint-every" in line and "lr=" not in line
    res = cli("train", "--corpus", "synthetic", "--max-chars", "20000", "--steps", "6", "--lr", "1e-3", "--checkpoint-every", "3",
              "--no-progress", "--out", out)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (out/"checkpoints").iterdir() if not p.name.startswith(".")) == ["step-000003", "step-000006"]


# ---------------------------------------------------------------- 6. checked before training, and on resume

def test_prompt_is_checked_before_training(tmp_path, corpora):
    t0 = time.perf_counter()
    line = one_line_error(cli("train", "--corpus", corpora[0], "--steps", "100000", "--no-progress", "--prompt", "Z",
                              "--out", tmp_path/"p"), "prompt 'Z' cannot be encoded")
    assert time.perf_counter() - t0 < 60 and not (tmp_path/"p").exists(), line


def test_resume_refuses_changed_settings_and_records_more_steps(tmp_path, corpora):
    out = tmp_path/"run"
    assert main(["train", "--corpus", str(corpora[0]), "--out", str(out), "--lr", "3e-3", *QUICK]) == 0
    for flags, name in ((["--lr", "0.05"], "--lr 0.003 (now 0.05)"), (["--max-chars", "10000"], "--max-chars 20000"),
                        (["--tokenizer", "bpe"], "--tokenizer 'char' (now 'bpe')"), (["--corpus", corpora[1]], "--corpus")):
        one_line_error(cli("train", "--out", out, "--resume", "--no-progress", *flags), "was started with", name)
    res = cli("train", "--out", out, "--resume", "--steps", "6", "--no-progress")  # the flags left out: the run's own
    assert res.returncode == 0 and "re-planned" in res.stdout, res.stderr
    run = json.loads((out/"run.json").read_text())
    assert run["steps"] == 6 and run["changes"] == [{"at_step": 4, "steps": [4, 6]}]
    assert json.loads((out/"metrics.json").read_text())["steps"] == 6


# ---------------------------------------------------------------- 7. the Python API

def test_api_bad_input(tmp_path):
    m = Transformer(ModelConfig.preset("tiny", n_layer=2))
    raises(ConfigError, m, torch.tensor([[300]]), hint="vocab_size ≥ 301")
    raises(ConfigError, ModelConfig, norm_eps=-1.0, hint="norm_eps=1e-05")
    raises(ConfigError, ModelConfig, init_std=float("nan"), hint="init_std=0.02")
    from llm_course.pretrain import validate_run
    raises(ConfigError, validate_run, TrainRun(val_fraction="0.1", out=str(tmp_path/"r")), hint="val_fraction=0.1")
    raises(ConfigError, validate_run, TrainRun(resume="no", out=str(tmp_path/"r")), hint="resume=True")
    raises(CheckpointError, load_trained, None, hint="load_trained('runs/tiny')")
    hf = tmp_path/"hf"; to_hf(m).save_pretrained(hf)
    cfg = json.loads((hf/"config.json").read_text())
    (hf/"config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 4}))
    raises(CheckpointError, from_hf, hf, hint="do not cover its config.json")  # transformers alone would fill layers 2-3 randomly
    (hf/"config.json").write_text(json.dumps({**cfg, "hidden_size": 256}))
    raises(CheckpointError, from_hf, hf, hint="tensor shapes")
    (hf/"config.json").write_text(json.dumps(cfg))
    w = hf/"model.safetensors"; w.write_bytes(w.read_bytes()[:1000])
    raises(CheckpointError, from_hf, hf, hint="complete weights")


# ---------------------------------------------------------------- 8. small things

def test_small_things(tmp_path, corpora):
    out = tmp_path/"run"
    os.umask(0o022)
    assert main(["train", "--corpus", str(corpora[0]), "--out", str(out), "--checkpoint-every", "2", *QUICK]) == 0
    ck = out/"checkpoints"/"step-000004"
    assert oct(ck.stat().st_mode & 0o777) == "0o755" and {oct(p.stat().st_mode & 0o777) for p in ck.iterdir()} == {"0o644"}
    # a temporary file that a SIGKILL during the final save left behind is cleared by the next run into the folder
    (out/".model.safetensors.abc123.tmp").write_bytes(b"half")
    assert main(["train", "--corpus", str(corpora[0]), "--out", str(out), "--overwrite", *QUICK]) == 0
    assert not list(out.glob(".*.tmp"))
    line = one_line_error(cli("train", "--out", out, "--resume", "--preset", "tiny-gpt2", "--no-progress"), "--preset 'tiny'")
    assert len(line) < 300
    line = one_line_error(cli("train", "--out", tmp_path/"s", "--steps", "0"), "--steps")
    assert "steps=" not in line
    res = cli("train", "--corpus", corpora[0], "--tokenizer", "bpe", "--bpe-vocab-size", "3000", "--out", tmp_path/"bpe", *QUICK)
    assert res.returncode == 0 and "llm-course: note: BPE stopped" in res.stderr and "warn" not in res.stderr.lower(), res.stderr


def test_train_refuses_a_run_that_cannot_fit_the_gpu(tmp_path, monkeypatch):
    "Chapter 17's planner runs before the model is built: on a (pretend) 1 GiB GPU a huge batch is refused with the shortfall."
    import llm_course.pretrain as pretrain, llm_course.train as trainer
    monkeypatch.setattr(trainer, "device_memory_bytes", lambda device: 2**30)  # the check is `train`'s (chapter 15's run is one)
    out = tmp_path/"gpu"
    e = raises(ConfigError, pretrain.train_language_model, TrainRun(out=str(out), batch_size=4096, block_size=128, steps=1,
                                                                    max_chars=20000, progress=False), hint="llm-course plan --auto")
    assert "short by" in str(e) and not out.exists()
