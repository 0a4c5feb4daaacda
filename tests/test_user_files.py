"""Never delete what the package did not write, and know what data a run trained on (issue 20).

Each test first builds the situation that lost data or trained on the wrong data before (the reproduction), then checks that
the package refuses it in one line, that every user file is still there byte for byte, and that the allowed paths still work."""
import contextlib, hashlib, io, json, os, shutil, subprocess, sys, threading
from pathlib import Path

import pytest

from conftest import raises
from llm_course.core import CheckpointError, ConfigError, DataError, OutputError
from llm_course.runs import replace_folder
from llm_course.data import open_shards
from llm_course.pretrain import TrainRun, load_trained, validate_run

QUICK = ["--steps", "3", "--no-progress", "--sample-tokens", "0", "--max-chars", "20000", "--checkpoint-every", "2"]
ENV = {**os.environ, "IN_TEST": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def cli(*args, cwd=None):
    "`llm-course ARGS` in a fresh process, as a user runs it."
    return subprocess.run([sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", *map(str, args)],
                          capture_output=True, text=True, env=ENV, cwd=cwd)


def quick(*args, cwd=None):
    "The same command in this process (cheap: no interpreter start), for the refusals that stop before any training."
    from llm_course.cli import main
    old, err = os.getcwd(), io.StringIO()
    try:
        os.chdir(cwd or old)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): code = main(list(map(str, args)))
    finally: os.chdir(old)
    return subprocess.CompletedProcess(args, code, "", err.getvalue())


def one_line(res, *words):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, (res.returncode, res.stderr[-2000:])
    for w in words: assert w in lines[0], (w, lines[0])
    return lines[0]


def tree(folder: Path) -> dict:
    "Every path under `folder` (links not followed) -> the SHA-256 of a file, 'dir', or where a link points."
    out = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        out[key] = (f"link:{os.readlink(p)}" if p.is_symlink() else "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    "A finished run of three steps, trained once for the module."
    d = tmp_path_factory.mktemp("run")
    (d/"a.txt").write_text("the cat sat on the mat. " * 1000)
    res = cli("train", "--corpus", d/"a.txt", "--out", d/"run", *QUICK)
    assert res.returncode == 0, res.stderr
    return d/"run"


def user_tree(root: Path) -> Path:
    "A project folder full of someone's files, the kind a user points --out or --to-hf at by mistake."
    (root/"dest"/"sub").mkdir(parents=True)
    (root/"dest"/"precious.txt").write_text("draft")
    (root/"dest"/"sub"/"notes.md").write_text("notes")
    (root/"proj"/"checkpoints"/"epoch-3").mkdir(parents=True)
    (root/"proj"/"checkpoints"/"epoch-3"/"model.ckpt").write_text("w")
    (root/"proj"/"config.json").write_text("{}")
    (root/"afile").write_text("a file")
    (root/"empty").mkdir()
    (root/"link").symlink_to(root/"dest", target_is_directory=True)
    (root/"link_to_empty").symlink_to(root/"empty", target_is_directory=True)
    return root


# ---------------------------------------------------------------- export never replaces what it did not write

def test_export_never_removes_or_renames_a_user_file(tmp_path, run):
    root = user_tree(tmp_path/"home")
    shutil.copytree(run, root/"myrun", symlinks=True)
    before = tree(root)
    for dest, words in [("dest", "did not write"), ("link", "did not write"), ("afile", "is a file"), (".", "did not write"),
                        ("myrun", "run folder"), ("myrun/hf", "overlap the run"), ("proj", "did not write")]:
        one_line(quick("export", "myrun", "--to-hf", dest, cwd=root), words)
        assert tree(root) == before, f"export --to-hf {dest} changed the tree"
    assert not [p for p in root.rglob("*") if ".tmp" in p.name], "a refused export left a temporary behind"


def test_export_writes_new_empty_and_earlier_exports(tmp_path, run):
    root = user_tree(tmp_path/"home")
    assert quick("export", run, "--to-hf", root/"hf").returncode == 0
    assert (root/"hf"/"model.safetensors").is_file() and (root/"hf"/".llm_course.json").is_file()
    first = tree(root/"hf")
    assert quick("export", run, "--to-hf", root/"hf").returncode == 0  # an earlier export of ours is replaced
    assert set(tree(root/"hf")) == set(first)
    assert quick("export", run, "--to-hf", root/"link_to_empty").returncode == 0  # through a link to an empty folder: the link stays
    assert (root/"link_to_empty").is_symlink() and (root/"empty"/"model.safetensors").is_file()
    (root/"hf"/"README.md").write_text("my model card")  # an export the user has since added to: not replaced any more
    one_line(quick("export", run, "--to-hf", root/"hf"), "README.md")
    assert (root/"hf"/"README.md").read_text() == "my model card"


# ---------------------------------------------------------------- train --out never cleans up someone else's folder

def test_train_out_refuses_a_folder_of_user_files(tmp_path):
    root = user_tree(tmp_path/"home")
    (root/"a.txt").write_text("the cat sat on the mat. " * 1000)
    before = tree(root)
    for out in ("proj", "dest", ".", "link"):
        one_line(quick("train", "--corpus", "a.txt", "--out", out, *QUICK, cwd=root), "did not write", "nothing was changed")
        one_line(quick("train", "--corpus", "a.txt", "--out", out, "--overwrite", *QUICK, cwd=root), "did not write")
        assert tree(root) == before, f"train --out {out} changed the tree"
    assert cli("train", "--corpus", "a.txt", "--out", "empty", *QUICK, cwd=root).returncode == 0  # an empty folder is fine


def test_overwrite_and_leftovers_touch_only_a_run_of_ours(tmp_path, run):
    shutil.copytree(run, tmp_path/"r")
    (tmp_path/"a.txt").write_text("the cat sat on the mat. " * 1000)
    (tmp_path/"r"/"notes.txt").write_text("my notes on this run")
    before = tree(tmp_path)
    one_line(quick("train", "--corpus", tmp_path/"a.txt", "--out", tmp_path/"r", "--overwrite", *QUICK), "notes.txt")
    assert tree(tmp_path) == before
    (tmp_path/"r"/"notes.txt").unlink()
    assert cli("train", "--corpus", tmp_path/"a.txt", "--out", tmp_path/"r", "--overwrite", *QUICK).returncode == 0
    # a run of ours that stopped before its first checkpoint: its leftovers are cleared, and only they
    left = tmp_path/"left"
    left.mkdir(); shutil.copy(run/".llm_course.json", left); shutil.copy(run/"run.json", left); shutil.copy(run/"tokenizer.json", left)
    assert cli("train", "--corpus", tmp_path/"a.txt", "--out", left, *QUICK).returncode == 0
    assert (left/"model.safetensors").is_file()


def test_bad_paths_and_numbers_are_one_line(tmp_path):
    (tmp_path/"a.txt").write_text("the cat sat on the mat. " * 1000)
    bad = os.fsencode(tmp_path) + b"/bad\xff"
    res = subprocess.run([sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", "train",
                          "--corpus", str(tmp_path/"a.txt"), "--out", bad, *QUICK], capture_output=True, text=True, env=ENV)
    one_line(res, "not valid UTF-8")
    one_line(quick("train", "--batch-size", "99999999999999999999", "--out", tmp_path/"x"), "far too large")
    one_line(quick("plan", "--tokens", "inf", "--json"), "finite")
    one_line(quick("plan", "--tokens", "nan"), "finite")
    raises(ConfigError, validate_run, TrainRun(threads=10_000, out=str(tmp_path/"y")), hint="CPU cores")
    assert not (tmp_path/"x").exists() and not (tmp_path/"y").exists()


def test_resuming_a_finished_run_adds_no_metrics_rows(tmp_path, run):
    shutil.copytree(run, tmp_path/"r")
    rows = lambda: [json.loads(l) for l in (tmp_path/"r"/"metrics.jsonl").read_text().splitlines()]
    vals = lambda: [r["step"] for r in rows() if "val_loss" in r]
    assert len(vals()) == len(set(vals())), vals()  # one validation row per step, the final eval included
    before = len(rows())
    assert cli("train", "--resume", "--out", tmp_path/"r", "--no-progress").returncode == 0
    assert len(rows()) == before and len(vals()) == len(set(vals()))


# ---------------------------------------------------------------- the data a run trained on

def test_resume_refuses_a_corpus_edited_in_place(tmp_path):
    corpus = tmp_path/"c.txt"
    corpus.write_text("the cat sat on the mat. the dog ate a bone. " * 500)
    assert cli("train", "--corpus", corpus, "--out", tmp_path/"r", "--steps", "4", "--checkpoint-every", "2", "--no-progress",
               "--sample-tokens", "0").returncode == 0
    (tmp_path/"r"/"model.safetensors").unlink(); shutil.rmtree(tmp_path/"r"/"checkpoints"/"step-000004")  # stopped at step 2
    corpus.write_text(corpus.read_text().replace("the cat sat", "the sat cat", 1))  # same length, same characters
    before = tree(tmp_path/"r")
    one_line(cli("train", "--resume", "--out", tmp_path/"r", "--no-progress"), "changed since it started", "--allow-data-change")
    assert tree(tmp_path/"r") == before
    other = tmp_path/"elsewhere"; other.mkdir()  # run.json holds absolute paths: a resume from another folder finds the data
    res = cli("train", "--resume", "--out", tmp_path/"r", "--no-progress", "--allow-data-change", "--sample-tokens", "0", cwd=other)
    assert res.returncode == 0, res.stderr
    changes = json.loads((tmp_path/"r"/"run.json").read_text())["changes"]
    assert any("data_identity" in c for c in changes), changes


def test_prepared_data_changes_are_refused(tmp_path):
    docs = tmp_path/"docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"document {i}: the cat sat on the mat. " * 20}) + "\n" for i in range(200)))
    res = cli("prepare", docs, "--out", tmp_path/"shards", "--tokenizer", "char", "--val-fraction", "0.1", "--no-progress")
    assert res.returncode == 0, res.stderr
    shards_before = tree(tmp_path/"shards")
    with open(docs, "a") as f: f.write(json.dumps({"text": "one more document"}) + "\n")  # documents appended to the corpus
    one_line(cli("prepare", docs, "--out", tmp_path/"shards", "--tokenizer", "char", "--val-fraction", "0.1", "--no-progress"),
             "corpus changed")
    assert tree(tmp_path/"shards") == shards_before  # the old shards stay whole; nothing of the new text is mixed in
    args = ["--data", tmp_path/"shards", "--steps", "4", "--checkpoint-every", "2", "--no-progress", "--sample-tokens", "0"]
    assert cli("train", "--out", tmp_path/"r", *args).returncode == 0
    (tmp_path/"r"/"model.safetensors").unlink(); shutil.rmtree(tmp_path/"r"/"checkpoints"/"step-000004")
    man_path = tmp_path/"shards"/"manifest.json"
    man = json.loads(man_path.read_text())
    man["splits"]["train"]["tokens"] += 1000  # an edited total: refused wherever the manifest is read
    man_path.write_text(json.dumps(man))
    raises(DataError, open_shards, tmp_path/"shards", hint="manifest was edited")
    one_line(quick("train", "--data", tmp_path/"shards", "--out", tmp_path/"fresh", "--steps", "2"), "manifest was edited")
    man["splits"]["train"]["tokens"] -= 1000; man["settings"]["note"] = "edited"  # consistent, but not the manifest the run read
    man_path.write_text(json.dumps(man))
    one_line(cli("train", "--resume", "--out", tmp_path/"r", "--no-progress"), "changed since it started", "manifest_sha256")


def test_load_trained_never_mixes_two_runs_across_overwrite_swaps(tmp_path):
    "A reader loops load_trained while another thread swaps two different runs in and out 20 times, as --overwrite does."
    for name, text in (("A", "the cat sat on the mat. " * 800), ("B", "THE COW: 0123456789 ?! " * 800)):
        (tmp_path/f"{name}.txt").write_text(text)
        assert cli("train", "--corpus", tmp_path/f"{name}.txt", "--out", tmp_path/name, "--steps", "2", "--no-progress",
                   "--sample-tokens", "0").returncode == 0
    vocab = {load_trained(tmp_path/n)[1].vocab_size: n for n in "AB"}
    assert len(vocab) == 2
    live = tmp_path/"live"
    shutil.copytree(tmp_path/"A", live)
    done, seen, errors = threading.Event(), [], []
    def swapper():
        for i in range(20):
            staged = tmp_path/f".live.next{i}"
            shutil.copytree(tmp_path/"AB"[(i + 1) % 2], staged)
            replace_folder(staged, live)
        done.set()
    t = threading.Thread(target=swapper); t.start()
    while not done.is_set():
        try:
            model, tok = load_trained(live)  # raises if the tokenizer and the weights disagree
            seen.append(vocab[tok.vocab_size])
            assert model.config.vocab_size == tok.vocab_size
        except CheckpointError as e: errors.append(str(e))
    t.join()
    assert seen and not errors, errors[:3]
