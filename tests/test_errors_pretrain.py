"Bad input to the pretraining job and to streaming raises the package's errors, with a fix, and never harms earlier outputs."
import json, os

import pytest

from llm_course.core import CheckpointError, ConfigError, DataError, OutputError, TokenizerError
from llm_course.pretrain import TrainRun, check_output_folder, mask_tokens, make_nsp_pairs, stream_from_checkpoint, train_language_model

QUICK = dict(max_chars=20_000, batch_size=2, block_size=16, eval_every=0, eval_batches=1, final_eval_batches=1,
             sample_tokens=0, progress=False, verbose=False)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    "A finished tiny run, and a snapshot of its files."
    out = tmp_path_factory.mktemp("errs") / "run"
    train_language_model(TrainRun(steps=2, out=str(out), **QUICK))
    return out


def snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kw,err,match", [
    (dict(preset="huge"), ConfigError, "unknown model preset 'huge'.*tiny"),
    (dict(corpus="wikipedia"), DataError, "unknown corpus 'wikipedia'"),
    (dict(corpus="/no/such/file.txt"), DataError, "does not exist"),
    (dict(steps=0), ConfigError, "steps must be an int ≥ 1"),
    (dict(steps=-5), ConfigError, "steps"),
    (dict(steps=2.5), ConfigError, "steps"),
    (dict(minutes=0), ConfigError, "minutes must be a positive number"),
    (dict(minutes=float("nan")), ConfigError, "minutes"),
    (dict(tokenizer="word"), ConfigError, "unknown tokenizer 'word'"),
    (dict(device="tpu"), ConfigError, "unknown device 'tpu'"),
    (dict(batch_size=0), ConfigError, "batch_size"),
    (dict(lr=-1.0), ConfigError, "lr must be a positive number"),
    (dict(val_fraction=1.5), ConfigError, "val_fraction"),
])
def test_bad_settings_write_nothing(tmp_path, kw, err, match):
    out = tmp_path / "new" / "run"
    with pytest.raises(err, match=match): train_language_model(TrainRun(**{"steps": 2, "out": str(out), **QUICK, **kw}))
    assert not out.exists() and not out.parent.exists()


def test_unwritable_out_parent_is_a_file(tmp_path):
    f = tmp_path / "afile"; f.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        train_language_model(TrainRun(steps=2, out=str(f / "run"), **QUICK))
    with pytest.raises(OutputError, match="is a file"): train_language_model(TrainRun(steps=2, out=str(f), **QUICK))
    assert f.read_text() == "x"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_out_read_only(tmp_path):
    ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="read-only"): check_output_folder(ro / "run")
    finally: ro.chmod(0o700)


def test_earlier_outputs_untouched_by_a_failing_run(done):
    before = snapshot(done)
    with pytest.raises(OutputError, match="already holds a run.*resume=True"):
        train_language_model(TrainRun(steps=2, out=str(done), **QUICK))  # same folder, no resume: refused
    with pytest.raises(ConfigError, match="unknown model preset"):
        train_language_model(TrainRun(steps=4, out=str(done), resume=True, **{**QUICK, "preset": "nope"}))
    with pytest.raises(CheckpointError, match=r"started with preset='tiny' \(now 'tiny-gpt2'\)"):  # another model: refused before any write
        train_language_model(TrainRun(steps=4, out=str(done), resume=True, **{**QUICK, "preset": "tiny-gpt2"}))
    assert snapshot(done) == before


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        train_language_model(TrainRun(steps=2, out=str(tmp_path / "empty"), resume=True, **QUICK))


def test_missing_checkpoint_folder_for_streaming(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist.*--out"): stream_from_checkpoint(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"): stream_from_checkpoint(tmp_path / "empty")


def test_corrupt_config_json(done, tmp_path):
    bad = tmp_path / "bad"; bad.mkdir()
    for name in ("model.safetensors", "tokenizer.json"): (bad / name).write_bytes((done / name).read_bytes())
    (bad / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"): stream_from_checkpoint(bad)
    (bad / "config.json").write_text(json.dumps({"vocab_size": 3, "n_layerz": 2}))
    with pytest.raises(CheckpointError, match="not a valid model config"): stream_from_checkpoint(bad)


def test_missing_or_corrupt_tokenizer(done, tmp_path):
    bad = tmp_path / "bad"; bad.mkdir()
    for name in ("model.safetensors", "config.json"): (bad / name).write_bytes((done / name).read_bytes())
    with pytest.raises(CheckpointError, match="no tokenizer.json"): stream_from_checkpoint(bad)
    (bad / "tokenizer.json").write_text("[1, 2")
    with pytest.raises(CheckpointError, match="not a readable tokenizer"): stream_from_checkpoint(bad)


def test_bad_generation_settings(done):
    with pytest.raises(ConfigError, match="temperature"): stream_from_checkpoint(done, temperature=-1)
    with pytest.raises(ConfigError, match="top_p"): stream_from_checkpoint(done, top_p=0)
    with pytest.raises(ConfigError, match="max_new_tokens"): stream_from_checkpoint(done, max_new_tokens=-1)
    with pytest.raises(TokenizerError, match="not in the vocabulary"): stream_from_checkpoint(done, "日本")


def test_bad_masking_and_nsp_input():
    with pytest.raises(ConfigError, match="mask_id"): mask_tokens([[1, 2]], 5, 7)
    with pytest.raises(ConfigError, match="prob"): mask_tokens([[1, 2]], 5, 4, prob=1.5)
    with pytest.raises(ConfigError, match="integer token ids"): mask_tokens([[1.0, 2.0]], 5, 4)
    with pytest.raises(DataError, match="at least 3 sentences"): make_nsp_pairs(["a", "b"])
