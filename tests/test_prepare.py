"`llm-course prepare` (issue 13): streaming encode, shards + manifest, resume after SIGKILL, workers, checksums, bad input."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import raises
from llm_course.core import ConfigError, DataError, MissingPathError, OutputError, TokenizerError
from llm_course import data
from llm_course.data import (check_tokenizer, check_vocab_size, load_manifest, manifest_tokenizer, open_shards, TokenShards,
                             MANIFEST_NAME)
from llm_course.distributed import ShardedTokens
from llm_course.tokenizer import BPETokenizer, CharTokenizer, HFTokenizer, bpe_to_tokenizers
from llm_course.train import open_prepared_tokenizer, prepare
from llm_course.cli import main

TRICKY = ("Dear reader,\n\n\n  here's a run of newlines\n\n\n\nCRLF\r\n\r\nand non-ASCII: café, e\u0301, Жук, 世界, 🤖👍🏽.\t\n"
          "<|endoftext|>It'll end  \n \n  soon. 42 + 7 = 49!\n")
DOCS = [f"Document {i}: the cat's hat.\n\n\nCafé {i * 7} 世界 🤖\r\n" + "hello world, " * (i % 5) for i in range(120)]


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train("\n\n".join(DOCS) + TRICKY, 300, special_tokens=["<|endoftext|>"])


@pytest.fixture(scope="module")
def hf_json(bpe, tmp_path_factory):
    path = tmp_path_factory.mktemp("hf")/"tokenizer.json"
    bpe_to_tokenizers(bpe).save(str(path))
    return path


@pytest.fixture()
def jsonl(tmp_path):
    p = tmp_path/"corpus.jsonl"
    p.write_text("".join(json.dumps({"text": d, "id": i}, ensure_ascii=False) + "\n" for i, d in enumerate(DOCS)), encoding="utf-8")
    return p


def cuts(s, at):
    b = [0, *at, len(s)]
    return [s[i:j] for i, j in zip(b, b[1:])]


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def joined(tok, docs):
    return sum((tok.encode(d) + [tok.eot_id] for d in docs), [])


# --- streaming encode -----------------------------------------------------------------------------------------------

def test_stream_equals_whole_at_every_cut(bpe, hf_json):
    char = CharTokenizer.train(TRICKY)
    hf = HFTokenizer.from_file(hf_json)
    for tok in (char, bpe, hf):
        whole = tok.encode(TRICKY)
        for k in range(len(TRICKY) + 1):
            assert list(tok.encode_iterable(cuts(TRICKY, [k]))) == whole, (tok, k)
        assert list(tok.encode_iterable(iter(TRICKY))) == whole  # one character per chunk
    assert hf.encode(TRICKY) == bpe.encode(TRICKY)  # the HF file encodes like our BPE


ATOMS = [" ", "  ", "\n", "\n\n", "\r\n", "\r", "\t", "'", "'s", "'ll", "l", "ab", "1", "42", "é", "e\u0301", "世界", "🤖", "👍🏽",
         ",", "!?", "<|endoftext|>", "<|endo", "\u00a0", "\u2028"]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(ATOMS), max_size=25), st.lists(st.integers(0, 300), max_size=5))
def test_stream_property(bpe, hf_json, atoms, at):
    s = "".join(atoms)
    pieces = cuts(s, sorted({a % (len(s) + 1) for a in at}))
    assert list(bpe.encode_iterable(pieces)) == bpe.encode(s)
    assert list(HFTokenizer.from_file(hf_json).encode_iterable(pieces)) == bpe.encode(s)


# --- shards, manifest, reader ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["char", "bpe", "hf"])
def test_round_trip(jsonl, tmp_path, hf_json, kind):
    spec = str(hf_json) if kind == "hf" else kind
    res = prepare(jsonl, tmp_path/"out", tokenizer=spec, vocab_size=300, shard_tokens=700, workers=1, val_fraction=0.1, progress=False)
    man = load_manifest(tmp_path/"out")
    tok = open_prepared_tokenizer(tmp_path/"out")
    assert man == res.manifest and man["tokenizer"]["sha256"] == tok.checksum == manifest_tokenizer(tmp_path/"out")["sha256"]
    train_docs, val_docs = [d for i, d in enumerate(DOCS) if i % 10 != 9], [d for i, d in enumerate(DOCS) if i % 10 == 9]
    for split, docs in (("train", train_docs), ("val", val_docs)):
        x = open_shards(tmp_path/"out", split)
        assert x[:].tolist() == joined(tok, docs)
        assert man["splits"][split]["docs"] == len(docs) and man["splits"][split]["tokens"] == len(x)
        assert all(e["tokens"] == 700 for e in man["splits"][split]["shards"][:-1])
    assert man["total_tokens"] == sum(v["tokens"] for v in man["splits"].values()) and man["eot_id"] == tok.eot_id
    check_tokenizer(man, tok); check_vocab_size(man, tok.vocab_size)
    assert "prepared out/" in res.summary() and tok.checksum[:16] in res.summary()


def test_reader_indexing_and_sharded_tokens(jsonl, tmp_path):
    prepare(jsonl, tmp_path/"out", tokenizer="char", shard_tokens=333, workers=1, progress=False)
    x = open_shards(tmp_path/"out")
    flat = np.concatenate([np.fromfile(tmp_path/"out"/e["file"], dtype=x.dtype)
                           for e in load_manifest(tmp_path/"out")["splits"]["train"]["shards"]])
    assert len(x) == len(flat) and x.dtype == flat.dtype and len(x.arrays) > 3 and isinstance(x, TokenShards)
    idx = np.random.default_rng(0).integers(0, len(x), size=(7, 65))
    assert np.array_equal(x[idx], flat[idx]) and x[idx].shape == (7, 65)
    assert x[5] == flat[5] and x[-1] == flat[-1] and np.array_equal(x[330:340], flat[330:340])
    a, b = ShardedTokens(x, block_size=32, seed=3, rank=1, world_size=2), ShardedTokens(flat, block_size=32, seed=3, rank=1, world_size=2)
    for _ in range(3):
        (xa, ya), (xb, yb) = a(8), b(8)
        assert xa.equal(xb) and ya.equal(yb)


def test_text_file_in_blocks_and_folder(tmp_path, bpe, hf_json, monkeypatch):
    monkeypatch.setattr(data, "BLOCK_CHARS", 37)  # a long file arrives in many small blocks, cut mid-word
    text = "".join(DOCS[:30]) + TRICKY
    (tmp_path/"one.txt").write_bytes(text.encode())
    for spec in ("bpe", "char", str(hf_json)):
        out = tmp_path/f"o-{Path(spec).name}"
        prepare(tmp_path/"one.txt", out, tokenizer=spec, vocab_size=280, shard_tokens=500, workers=1, progress=False)
        tok = open_prepared_tokenizer(out)
        assert open_shards(out)[:].tolist() == tok.encode(text) + [tok.eot_id], spec  # CRLF kept, one document
    (tmp_path/"docs"/"sub").mkdir(parents=True)
    for i, d in enumerate(DOCS[:5]): (tmp_path/"docs"/("sub" if i % 2 else "")/f"{i}.md").write_text(d, encoding="utf-8")
    (tmp_path/"docs"/".hidden.txt").write_text("skip me")
    res = prepare(tmp_path/"docs", tmp_path/"of", tokenizer="char", workers=1, progress=False)
    order = sorted(range(5), key=lambda i: f"{'sub/' if i % 2 else ''}{i}.md")
    tok = open_prepared_tokenizer(tmp_path/"of")
    assert open_shards(tmp_path/"of")[:].tolist() == joined(tok, [DOCS[i] for i in order]) and res.manifest["source"]["kind"] == "folder"


def test_datasets_from_local_files(tmp_path):
    import datasets
    datasets.Dataset.from_dict({"story": DOCS[:20]}).save_to_disk(str(tmp_path/"ds"))
    res = prepare(tmp_path/"ds", tmp_path/"o1", tokenizer="char", text_field="story", max_docs=12, workers=1, progress=False)
    tok = open_prepared_tokenizer(tmp_path/"o1")
    assert res.manifest["source"]["kind"] == "datasets" and open_shards(tmp_path/"o1")[:].tolist() == joined(tok, DOCS[:12])
    datasets.Dataset.from_dict({"text": DOCS[:9]}).to_parquet(str(tmp_path/"c.parquet"))
    prepare(tmp_path/"c.parquet", tmp_path/"o2", tokenizer="char", workers=1, progress=False)
    tok = open_prepared_tokenizer(tmp_path/"o2")
    assert open_shards(tmp_path/"o2")[:].tolist() == joined(tok, DOCS[:9])


# --- parallel, resume, checksums ------------------------------------------------------------------------------------

def test_workers_give_identical_bytes(jsonl, tmp_path):
    kw = dict(tokenizer="bpe", vocab_size=300, shard_tokens=500, val_fraction=0.2, progress=False)
    prepare(jsonl, tmp_path/"w1", workers=1, **kw)
    prepare(jsonl, tmp_path/"w2", workers=2, **kw)
    assert files(tmp_path/"w1") == files(tmp_path/"w2") and len(files(tmp_path/"w1")) > 6


def test_killed_prepare_resumes_byte_identical(tmp_path):
    big = tmp_path/"big.jsonl"
    rng = np.random.default_rng(0)
    words = np.array("the cat sat on a mat; café 世界 and\n\nthen ran away 🤖".split(" "))
    big.write_text("".join(json.dumps({"text": " ".join(rng.choice(words, 400))}, ensure_ascii=False) + "\n" for _ in range(1500)))
    kw = dict(tokenizer="char", shard_tokens=20_000, workers=1, val_fraction=0.05, progress=False)
    args = ["prepare", str(big), "--out", str(tmp_path/"killed"), "--tokenizer", "char", "--shard-tokens", "20000",
            "--workers", "1", "--val-fraction", "0.05", "--no-progress"]
    code = "import sys, llm_course.data as d; from llm_course.cli import main; d.BLOCK_CHARS = 1000; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=dict(os.environ, IN_TEST="1"))
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list((tmp_path/"killed").glob("train-*.bin.json"))) < 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL); proc.wait()
    done = sorted(p.name for p in (tmp_path/"killed").glob("train-*.bin.json"))
    assert proc.returncode == -signal.SIGKILL and not (tmp_path/"killed"/MANIFEST_NAME).exists() and len(done) >= 3, done
    res = prepare(big, tmp_path/"killed", **kw)  # the re-run keeps the finished shards and does the rest
    assert res.reused_shards >= 3
    prepare(big, tmp_path/"straight", **kw)
    assert files(tmp_path/"killed") == files(tmp_path/"straight")
    assert not [p for p in (tmp_path/"killed").iterdir() if p.name.startswith(".")]  # no temporary files left


def test_checksums_and_repair(jsonl, tmp_path):
    kw = dict(tokenizer="char", shard_tokens=600, workers=1, progress=False)
    prepare(jsonl, tmp_path/"out", **kw)
    good = files(tmp_path/"out")
    shard = tmp_path/"out"/"train-00002.bin"
    b = bytearray(shard.read_bytes()); b[10] ^= 1; shard.write_bytes(bytes(b))
    e = raises(DataError, open_shards, tmp_path/"out", hint="run the same `llm-course prepare")
    assert "train-00002.bin" in str(e) and "corrupt" in str(e) and "\n" not in str(e)
    open_shards(tmp_path/"out", verify=False)  # sizes only: a flipped byte passes
    shard.write_bytes(bytes(b[:-2]))
    assert "truncated" in str(raises(DataError, open_shards, tmp_path/"out", verify=False, hint="redoes only what is damaged"))
    shard.unlink()
    assert "missing" in str(raises(DataError, open_shards, tmp_path/"out", hint="llm-course prepare"))
    res = prepare(jsonl, tmp_path/"out", **kw)  # the re-run redoes the damaged shard and those after it
    assert files(tmp_path/"out") == good and res.reused_shards == 2


def test_other_tokenizer_and_vocab_checks(jsonl, tmp_path, bpe):
    prepare(jsonl, tmp_path/"out", tokenizer="char", workers=1, progress=False)
    tok = open_prepared_tokenizer(tmp_path/"out")
    check_tokenizer(tmp_path/"out", tok); check_tokenizer(tmp_path/"out", tok.checksum)
    e = raises(DataError, check_tokenizer, tmp_path/"out", bpe, hint="train with the shards' tokenizer")
    assert "BPETokenizer" in str(e) and tok.checksum[:12] in str(e)
    raises(ConfigError, check_vocab_size, tmp_path/"out", tok.vocab_size - 1, hint=f"set the model's vocab_size to at least {tok.vocab_size}")
    raises(ConfigError, check_vocab_size, 32_001, 32_000, hint="32,064")


# --- bad input ------------------------------------------------------------------------------------------------------

def bad_inputs(tmp_path, hf_json):
    (tmp_path/"empty.txt").write_text("")
    (tmp_path/"blank.jsonl").write_text('{"text": ""}\n\n{"text": ""}\n')
    (tmp_path/"c.jsonl").write_text('{"body": "hello"}\n')
    (tmp_path/"broken.json").write_text('{"model": {"type": "BPE", "vocab": 5}}')
    (tmp_path/"empty_dir").mkdir()
    (tmp_path/"ok.txt").write_text("some text\n")
    busy = tmp_path/"busy"; busy.mkdir(); (busy/"notes.txt").write_text("mine")
    ok = str(tmp_path/"ok.txt")
    return [  # (cli args, API kwargs, error class, fix hint)
        ([str(tmp_path/"nope.txt")], dict(source=tmp_path/"nope.txt"), MissingPathError, "check the path"),
        ([str(tmp_path/"empty.txt")], dict(source=tmp_path/"empty.txt"), DataError, "point to files with some text"),
        ([str(tmp_path/"blank.jsonl")], dict(source=tmp_path/"blank.jsonl"), DataError, "point to files with some text"),
        ([str(tmp_path/"empty_dir")], dict(source=tmp_path/"empty_dir"), DataError, "add text files"),
        ([str(tmp_path/"c.jsonl")], dict(source=tmp_path/"c.jsonl"), DataError, "pass the field that holds the text"),
        ([ok, "--tokenizer", str(tmp_path/"broken.json")], dict(source=ok, tokenizer=str(tmp_path/"broken.json")), TokenizerError,
         "pass the tokenizer.json of a Hugging Face model"),
        ([ok, "--tokenizer", str(tmp_path/"missing.json")], dict(source=ok, tokenizer=str(tmp_path/"missing.json")), MissingPathError,
         "pass the path of a tokenizer.json"),
        ([ok, "--tokenizer", str(hf_json), "--eot", "<nope>"], dict(source=ok, tokenizer=str(hf_json), eot="<nope>"), TokenizerError,
         "pass one it has"),
        ([ok, "--vocab-size", str(2**32 + 1)], dict(source=ok, vocab_size=2**32 + 1), ConfigError, "use a smaller vocabulary"),
        ([ok, "--shard-tokens", "0"], dict(source=ok, shard_tokens=0), ConfigError, "shard_tokens="),
        ([ok, "--val-fraction", "0.9"], dict(source=ok, val_fraction=0.9), ConfigError, "val_fraction=0.01"),
        ([ok, "--out", str(busy)], dict(source=ok, out=busy), OutputError, "choose an empty or new --out"),
    ]


def test_bad_input_api(tmp_path, hf_json):
    for _, kw, exc, hint in bad_inputs(tmp_path, hf_json):
        kw = dict(dict(out=tmp_path/"out", workers=1, progress=False), **kw)
        raises(exc, prepare, hint=hint, **kw)
        assert not (tmp_path/"out").exists()  # nothing was written
    assert (tmp_path/"busy"/"notes.txt").read_text() == "mine" and sorted(p.name for p in (tmp_path/"busy").iterdir()) == ["notes.txt"]


def test_bad_input_cli(tmp_path, hf_json, capsys):
    for args, _, _, hint in bad_inputs(tmp_path, hf_json):
        if "--out" not in args: args = [*args, "--out", str(tmp_path/"out")]
        assert main(["prepare", *args, "--workers", "1", "--no-progress"]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("llm-course prepare: error:"), err
        assert hint.replace("shard_tokens=", "--shard-tokens").replace("val_fraction=", "--val-fraction ") in err[0], (hint, err)
        assert not (tmp_path/"out").exists()


def test_resume_refuses_other_settings_and_a_second_writer(jsonl, tmp_path):
    prepare(jsonl, tmp_path/"out", tokenizer="char", shard_tokens=800, workers=1, progress=False)
    before = files(tmp_path/"out")
    raises(OutputError, prepare, jsonl, tmp_path/"out", tokenizer="char", shard_tokens=900, workers=1, progress=False,
           hint="re-run it with the same settings")
    assert files(tmp_path/"out") == before
    import fcntl  # another process's lock on the folder (RunLock is re-entrant within one process)
    fd = os.open(tmp_path/".out.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raises(OutputError, prepare, jsonl, tmp_path/"out", tokenizer="char", shard_tokens=800, workers=1, progress=False,
               hint="being written by another run")
    finally: os.close(fd)
    assert files(tmp_path/"out") == before


def test_llama_style_tokenizer_json(tmp_path, jsonl):
    "A SentencePiece-style tokenizer.json (Llama 2's pipeline: prepend ▁, spaces as ▁, no pre-tokenizer, </s>): no newline cuts, still exact."
    from tokenizers import Tokenizer, models, normalizers, trainers, decoders
    hf = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    hf.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    hf.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    hf.train_from_iterator(DOCS, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    hf.save(str(tmp_path/"tokenizer.json"))
    tok = HFTokenizer.from_file(tmp_path)
    assert tok.eot_token == "</s>" and tok.eot_id == 2 and not tok.newline_cut_safe
    whole = tok.encode(TRICKY)
    assert all(list(tok.encode_iterable(cuts(TRICKY, [k]))) == whole for k in range(0, len(TRICKY) + 1, 7))
    data.BLOCK_CHARS, old = 50, data.BLOCK_CHARS  # long documents arrive in blocks and are joined back (no safe cut for this pipeline)
    try:
        (tmp_path/"long.txt").write_text(TRICKY * 5, encoding="utf-8")
        prepare(tmp_path/"long.txt", tmp_path/"o1", tokenizer=str(tmp_path), workers=1, progress=False)
        assert open_shards(tmp_path/"o1")[:].tolist() == tok.encode(TRICKY * 5) + [2]
    finally: data.BLOCK_CHARS = old
    prepare(jsonl, tmp_path/"o2", tokenizer=str(tmp_path/"tokenizer.json"), workers=2, progress=False)
    assert open_shards(tmp_path/"o2")[:].tolist() == joined(tok, DOCS)


def test_sources_are_recognised_without_reading(tmp_path):
    from llm_course.data import document_source
    assert document_source("roneneldan/TinyStories").kind == "datasets"  # a hub name: streamed when read (not here: no network)
    (tmp_path/"a.jsonl").write_text("{}\n"); (tmp_path/"b.txt").write_text("x")
    assert [document_source(tmp_path/n).kind for n in ("a.jsonl", "b.txt")] == ["jsonl", "text"]
    assert document_source("default").kind == "default"


def test_hidden_files_in_out_survive(jsonl, tmp_path):
    (tmp_path/"out").mkdir(); (tmp_path/"out"/".keep").write_text("")
    prepare(jsonl, tmp_path/"out", tokenizer="char", workers=1, progress=False)
    assert (tmp_path/"out"/".keep").exists() and (tmp_path/"out"/MANIFEST_NAME).exists()
