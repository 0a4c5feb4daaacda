"""Instruction tuning through chapter 19's one `train` (issue 22): `prepare --sft` writes conversations, `train --sft --init` starts
from a pretrained run's weights — whole on one process, broadcast into FSDP2 shards from rank 0 under torchrun — and `chat` reads
the template back from the run."""
import json, random

import pytest
import torch

from conftest import raises
from test_train import cli, torchrun
from llm_course.core import ConfigError, DataError, MissingPathError
from llm_course.pretrain import demo_model_path, load_trained
from llm_course.sft import chat_template_of, prepare_sft, uppercase_conversation, write_conversations
from llm_course.tokenizer import CharTokenizer
from llm_course.train import TrainJob, train

torch.set_num_threads(1)
QUIET = dict(progress=False, verbose=False, sample_tokens=0, eval_batches=2, final_eval_batches=2, batch_size=4)


@pytest.fixture(scope="module")
def sft_folder(tmp_path_factory):
    "Conversations of chapter 19b's uppercase task, encoded with the demo model's tokenizer by `llm-course prepare --sft`."
    d, rng = tmp_path_factory.mktemp("sft"), random.Random(0)
    words = ["table", "river", "stone", "green", "light", "house", "water", "paper", "night", "sound"] * 3
    write_conversations([uppercase_conversation(w, rng) for w in words], d/"convs.jsonl")
    res = cli("prepare", d/"convs.jsonl", "--sft", "--tokenizer", demo_model_path(), "--out", d/"data")
    assert res.returncode == 0 and "27 train / 3 val conversations" in res.stdout, res.stdout + res.stderr
    return d/"data"


def _weights_gap(run, folder=None) -> float:
    demo, _ = load_trained(folder or demo_model_path())
    tuned, _ = load_trained(run)
    return max((a - b).abs().max().item() for a, b in zip(demo.state_dict().values(), tuned.state_dict().values()))


def test_train_sft_starts_from_the_init_weights(tmp_path, sft_folder):
    "With a vanishing learning rate the tuned weights are the init's (so the init was loaded); with a real one the replies' loss falls."
    still = train(TrainJob(sft=str(sft_folder), init="demo", steps=2, lr=1e-12, out=str(tmp_path/"still"), **QUIET))
    assert _weights_gap(tmp_path/"still") < 1e-6
    run = json.loads((tmp_path/"still"/"run.json").read_text())
    assert run["preset"] == "tiny" and run["block_size"] == 128 and run["data_identity"]["kind"] == "sft"
    assert run["data_identity"]["init"]["path"] == str(demo_model_path()) and chat_template_of(tmp_path/"still") == "course"
    tuned = train(TrainJob(sft=str(sft_folder), init="demo", steps=12, lr=2e-3, out=str(tmp_path/"tuned"), **QUIET))
    assert tuned["val_loss"] < still["val_loss"] - 0.3, (tuned["val_loss"], still["val_loss"])
    assert tuned["train_tokens"] == json.loads((sft_folder/"sft.json").read_text())["train_tokens"]


def test_two_ranks_fsdp_meta_init_receive_the_init_weights(tmp_path, sft_folder):
    "The 7B path: each rank builds its shards on meta, rank 0 reads the weights, every rank receives its shards (gloo, FSDP2)."
    (tmp_path/"r.toml").write_text("meta_init = true\nparallel = 'fsdp'\n")
    res = torchrun(2, "--config", tmp_path/"r.toml", "--sft", sft_folder, "--init", "demo", "--steps", "2", "--lr", "1e-12",
                   "--batch-size", "4", "--eval-every", "0", "--out", tmp_path/"run", "--no-progress", "--sample-tokens", "0")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert _weights_gap(tmp_path/"run") < 1e-6


def test_bad_sft_runs_are_refused_before_anything_is_written(tmp_path, sft_folder):
    out = tmp_path/"out"
    raises(ConfigError, train, TrainJob(sft=str(sft_folder), data=str(sft_folder), init="demo", out=str(out), **QUIET), hint="pass one")
    raises(MissingPathError, train, TrainJob(sft=str(sft_folder), init=str(tmp_path/"nope"), out=str(out), **QUIET), hint="finished")
    raises(ConfigError, train, TrainJob(sft=str(sft_folder), init="demo", preset="llama-100m", out=str(out), **QUIET), hint="leave --preset out")
    other = tmp_path/"other"  # the same conversations, encoded with another tokenizer than the init run's
    write_conversations([uppercase_conversation("table", random.Random(0))] * 4, tmp_path/"c.jsonl")
    prepare_sft(tmp_path/"c.jsonl", other, CharTokenizer.train("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ<|>:.\n _"))
    raises(DataError, train, TrainJob(sft=str(other), init="demo", out=str(out), **QUIET), hint="another tokenizer")
    assert not out.exists()
    res = cli("prepare", tmp_path/"c.jsonl", "--sft", "--out", tmp_path/"x")
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1 and "--tokenizer RUN_FOLDER" in res.stderr
