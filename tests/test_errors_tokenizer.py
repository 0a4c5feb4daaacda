"Bad input to llm_course.tokenizer: each case raises the package's own error, and the message says how to fix it."
import json

import pytest

from conftest import raises
from llm_course.core import ConfigError, DataError, MissingPathError, TokenizerError
from llm_course.tokenizer import BPETokenizer, CharTokenizer, TokenizerConfigError

SPECIAL = "<|endoftext|>"


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer.train("low lower lowest newer newest wider " * 50, 270, special_tokens=[SPECIAL])


@pytest.mark.parametrize("vocab_size, specials", [(255, ()), (256, [SPECIAL]), (100, ["<a>", "<b>"])])
def test_vocab_below_bytes(vocab_size, specials):
    e = raises(ConfigError, BPETokenizer.train, "some text", vocab_size, special_tokens=specials,
               hint=f"vocab_size >= {256 + len(specials)}")
    assert isinstance(e, TokenizerError)  # both kinds of caller catch it


def test_vocab_size_not_int():
    raises(TokenizerError, BPETokenizer.train, "some text", "300", hint="vocab_size >=")


def test_empty_training_text():
    raises(DataError, BPETokenizer.train, "", 300, hint="pass the corpus")
    raises(DataError, BPETokenizer.train, [], 300, hint="pass the corpus")
    raises(DataError, BPETokenizer.train, SPECIAL * 3, 300, special_tokens=[SPECIAL], hint="pass the corpus")
    raises(DataError, CharTokenizer.train, "", hint="pass the corpus")


def test_missing_file(tmp_path):
    e = raises(MissingPathError, BPETokenizer.load, tmp_path/"nope.json", hint="check the path")
    assert isinstance(e, FileNotFoundError)
    raises(MissingPathError, CharTokenizer.load, tmp_path/"nope.json", hint="check the path")


def test_truncated_json(tok, tmp_path):
    path = tok.save(tmp_path/"bpe.json")
    (tmp_path/"cut.json").write_text(path.read_text()[: len(path.read_text()) // 2])
    raises(TokenizerError, BPETokenizer.load, tmp_path/"cut.json", hint="re-save it with BPETokenizer.save(path)")


def test_incomplete_json(tok, tmp_path):
    obj = json.loads(tok.save(tmp_path/"bpe.json").read_text())
    for broken in ({k: v for k, v in obj.items() if k != "merges"},  # a field missing
                   obj | {"merges": obj["merges"][:-3]},  # merges cut: vocab_size disagrees
                   obj | {"merges": [[9999, 1]] + obj["merges"]},  # an id that doesn't exist
                   obj | {"merges": [["a", "b"]]}):  # not ids
        (tmp_path/"bad.json").write_text(json.dumps(broken))
        raises(TokenizerError, BPETokenizer.load, tmp_path/"bad.json", hint="re-save it with BPETokenizer.save(path)")


def test_wrong_kind_of_file(tok, tmp_path):
    CharTokenizer("abc").save(tmp_path/"char.json")
    raises(TokenizerError, BPETokenizer.load, tmp_path/"char.json", hint="load it with the class that saved it")
    (tmp_path/"list.json").write_text("[1, 2]")
    raises(TokenizerError, BPETokenizer.load, tmp_path/"list.json", hint="re-save the tokenizer")


def test_unknown_special_token(tok):
    raises(TokenizerError, tok.encode, "hi", allowed_special={"<|im_start|>"}, hint="allowed_special='none'")


def test_ids_out_of_range(tok):
    for bad in ([0, tok.vocab_size], [-1], [1.5]):
        raises(TokenizerError, tok.decode, bad, hint="decode ids made by the same tokenizer")
    raises(TokenizerError, CharTokenizer("ab").decode, [2], hint="decode ids made by the same tokenizer")


def test_lone_surrogate(tok):
    raises(TokenizerError, tok.encode, "a\ud800", hint="text.encode('utf-8', 'replace')")


def test_unknown_character():
    raises(TokenizerError, CharTokenizer("ab").encode, "abc", hint="use BPETokenizer")


def test_bad_pattern_and_specials():
    raises(ConfigError, BPETokenizer.train, "text", 300, pattern="(unclosed", hint="use GPT2_SPLIT_PATTERN")
    raises(TokenizerError, BPETokenizer.train, "text", 300, special_tokens=["", "x"], hint="special_tokens=['<|endoftext|>']")
    raises(TokenizerError, BPETokenizer.train, "text", 300, special_tokens=["x", "x"], hint="give each once")


def test_bad_min_frequency():
    with pytest.raises(TokenizerConfigError, match="min_frequency must be an int ≥ 0, got '2'"):
        BPETokenizer.train("hello world", 300, min_frequency="2")
