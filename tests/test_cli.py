"The `llm-course` command end to end: the installed entry point, one-line errors, outputs never clobbered."
import json, os, subprocess, sys

import pytest
import torch

from llm_course.cli import main

TINY = ["--steps", "4", "--no-progress"]


def run_cli(*args, cwd=None):
    "The console script as a user runs it (through the interpreter running the tests)."
    code = "import sys; from llm_course.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, IN_TEST="1"))


def one_line_error(res):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(lines) == 1 and "error" in lines[0], res.stderr
    return lines[0]


def test_info_human_and_json(capsys):
    assert main(["info"]) == 0
    assert "torch" in capsys.readouterr().out
    assert main(["info", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["packages"]["torch"] == torch.__version__ and rep["cpus"] >= 1


def test_train_then_generate(tmp_path, capsys):
    out = tmp_path/"run"
    assert main(["train", "--out", str(out), *TINY]) == 0
    for name in ["model.safetensors", "config.json", "tokenizer.json", "metrics.json", "loss.png"]:
        assert (out/name).is_file(), f"train did not write {name}"
    metrics = json.loads((out/"metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["val_loss"] > 0 and metrics["val_perplexity"] > 1
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(out), "--prompt", "The ", "--max-new-tokens", "20", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("The ") and len(text.rstrip("\n")) >= len("The ") + 20  # the prompt, then 20 new characters


def test_generate_is_reproducible_with_a_seed(tmp_path, capsys):
    out = tmp_path/"run"
    assert main(["train", "--out", str(out), *TINY]) == 0
    capsys.readouterr()
    outs = []
    for _ in range(2):
        assert main(["generate", "--checkpoint", str(out), "--prompt", "a", "--max-new-tokens", "15", "--seed", "3"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def test_usage_mistake_is_one_line():
    line = one_line_error(run_cli("train", "--steps", "many"))
    assert "--steps" in line and "--help" in line


def test_unknown_command_is_one_line():
    one_line_error(run_cli("fly"))


@pytest.mark.parametrize("args, words", [
    (["train", "--preset", "no-such-preset"], "preset"),
    (["train", "--corpus", "/no/such/corpus.txt"], "corpus.txt"),
    (["train", "--steps", "0"], "steps"),
    (["generate", "--checkpoint", "/no/such/run"], "/no/such/run"),
])
def test_bad_input_is_one_line_exit_2(args, words, tmp_path):
    extra = ["--out", str(tmp_path/"o")] if args[0] == "train" else []
    line = one_line_error(run_cli(*args, *extra))
    assert words in line


def test_unwritable_output_folder_keeps_earlier_outputs(tmp_path):
    out = tmp_path/"run"
    assert run_cli("train", "--out", str(out), *TINY).returncode == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    blocker = tmp_path/"a-file"
    blocker.write_text("not a folder")
    line = one_line_error(run_cli("train", "--out", str(blocker/"sub"), *TINY))
    assert "a-file" in line
    # a failing run into the earlier folder (bad preset) must not touch what is there
    one_line_error(run_cli("train", "--out", str(out), "--preset", "nope", *TINY))
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_second_run_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path/"run"
    assert main(["train", "--out", str(out), *TINY]) == 0
    first = (out/"model.safetensors").read_bytes()
    assert main(["train", "--out", str(out), *TINY]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out/"model.safetensors").read_bytes() == first
    assert main(["train", "--out", str(out), "--seed", "1", "--overwrite", *TINY]) == 0
    assert (out/"model.safetensors").read_bytes() != first
    assert sorted(p.name for p in (out/"checkpoints").iterdir() if not p.name.startswith(".")) == ["step-000004"]
    assert main(["train", "--out", str(out), "--resume", "--seed", "1", "--steps", "6", "--no-progress"]) == 0
    assert json.loads((out/"metrics.json").read_text())["steps"] == 6
