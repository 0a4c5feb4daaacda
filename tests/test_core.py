"llm_course.core: devices, seeds, test mode, atomic writes and the checksummed download cache (local files only)."
import hashlib, os, stat

import pytest
import torch

from llm_course.core import (ConfigError, DownloadError, atomic_path, atomic_write_bytes, cached_download, in_test,
                             eval_mode, load_json, pick_device, save_json, seed_everything, shrink)


def test_in_test_and_shrink(monkeypatch):
    monkeypatch.setenv("IN_TEST", "1")
    assert in_test() and shrink(1000, 10) == 10
    monkeypatch.delenv("IN_TEST")
    assert not in_test() and shrink(1000, 10) == 1000


def test_pick_device_cpu_and_bad_name():
    assert pick_device("cpu").type == "cpu"
    assert pick_device().type in ("cpu", "cuda")  # never mps unless asked
    with pytest.raises(ConfigError): pick_device("tpu")


def test_seed_everything_repeats():
    seed_everything(3); a = torch.randn(4)
    seed_everything(3); b = torch.randn(4)
    assert torch.equal(a, b)


def test_atomic_write_gives_normal_permissions_and_no_leftovers(tmp_path):
    p = atomic_write_bytes(tmp_path/"w.bin", b"abc")
    mask = os.umask(0); os.umask(mask)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~mask
    assert p.read_bytes() == b"abc" and [q.name for q in tmp_path.iterdir()] == ["w.bin"]


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path/"keep.txt"; target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ"); raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_json_round_trip(tmp_path):
    save_json({"a": [1, 2]}, tmp_path/"x.json")
    assert load_json(tmp_path/"x.json") == {"a": [1, 2]}


def test_cached_download_verifies_sha256(tmp_path):
    src = tmp_path/"src.txt"; src.write_bytes(b"hello course")
    digest = hashlib.sha256(b"hello course").hexdigest()
    got = cached_download(src.as_uri(), digest, folder=tmp_path/"cache")
    assert got.read_bytes() == b"hello course"
    src.write_bytes(b"tampered")  # the cached copy is used and still verified
    assert cached_download(src.as_uri(), digest, folder=tmp_path/"cache") == got
    with pytest.raises(DownloadError):
        cached_download(src.as_uri(), digest, fname="other.txt", folder=tmp_path/"cache")
    assert not (tmp_path/"cache"/"other.txt").exists()


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_flag_even_after_an_error(training):
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train(training)
    with eval_mode(net) as m: assert m is net and not any(x.training for x in net.modules())
    assert all(x.training == training for x in net.modules())
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(net): raise RuntimeError("boom")
    assert all(x.training == training for x in net.modules())


def test_eval_mode_restores_each_submodule():
    net = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Dropout(0.5))
    net[1].eval()  # a frozen part kept in eval mode
    with eval_mode(net): assert not any(m.training for m in net.modules())
    assert net.training and net[0].training and not net[1].training
