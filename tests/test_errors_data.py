"Bad input to llm_course.data: each case raises the package's own error, and the message says how to fix it."
import numpy as np
import pytest
import torch

from conftest import raises
from llm_course.core import ConfigError, DataError, MissingPathError
from llm_course.data import get_batch, load_corpus, open_memmap, pack_memmap, split_text, synthetic_corpus


def test_empty_corpus(tmp_path):
    (tmp_path/"empty.txt").write_text("  \n\n\t\n", encoding="utf-8")
    raises(DataError, load_corpus, tmp_path/"empty.txt", hint="point to a file with some text")


def test_missing_path(tmp_path):
    e = raises(MissingPathError, load_corpus, tmp_path/"nope.txt", hint="check the path")
    assert isinstance(e, FileNotFoundError)  # catchable the standard way too


def test_folder_with_no_text(tmp_path):
    (tmp_path/"picture.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path/".hidden.txt").write_text("hidden files are skipped", encoding="utf-8")
    raises(DataError, load_corpus, tmp_path, hint="add text files there")


def test_non_utf8_bytes(tmp_path):
    (tmp_path/"legacy.txt").write_bytes("naïve café".encode("latin-1"))
    e = raises(DataError, load_corpus, tmp_path/"legacy.txt", hint="encoding='latin-1'")
    assert "byte offset 2" in str(e)  # where the first bad byte is
    assert load_corpus(tmp_path/"legacy.txt", encoding="latin-1") == "naïve café"  # and the suggested fix works


def test_unknown_corpus_name():
    raises(DataError, load_corpus, "tinyshakespeare", hint="valid names are 'default', 'synthetic'")


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.9, 0.2, 0.05), (1.2, -0.2)])
def test_split_fractions_that_dont_add_up(fractions):
    raises(ConfigError, split_text, "some text", fractions, hint="e.g. (0.9, 0.05, 0.05)")


def test_batch_longer_than_data():
    raises(ConfigError, get_batch, torch.arange(10), 2, 64, hint="use a smaller block_size")


def test_float_data_for_batches():
    raises(DataError, get_batch, torch.rand(100), 2, 8, hint="encode the text into ids first")


def test_synthetic_size():
    raises(ConfigError, synthetic_corpus, 0, hint="n_chars must be an int ≥ 1, got 0: e.g. n_chars=")


def test_memmap_ids_outside_vocab(tmp_path):
    raises(DataError, pack_memmap, np.array([1, 2, 300]), tmp_path/"t.bin", 256, hint="real vocab_size")
    assert not (tmp_path/"t.bin").exists()  # nothing half-written


def test_truncated_memmap_keeps_nothing_silently(tmp_path):
    path = pack_memmap(np.arange(100), tmp_path/"t.bin", 1000)
    path.write_bytes(path.read_bytes()[:50])
    raises(DataError, open_memmap, path, hint="re-create it with pack_memmap()")
