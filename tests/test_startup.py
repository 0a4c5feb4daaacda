"""Start-up on a prepared corpus is cheap (issue 21): no rank re-hashes the shards that `prepare` verified, and however many
shards there are, only a bounded number are mapped (file descriptors) at a time; damage is still caught (`verify`, and sizes)."""
import json, os

import numpy as np
import pytest

import llm_course.data as data
from conftest import raises
from llm_course.core import DataError
from llm_course.train import prepare


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    "200 shards of 500 tokens each (and a few for validation)."
    d = tmp_path_factory.mktemp("startup")
    with open(d/"docs.jsonl", "w") as f:
        for i in range(1200): f.write(json.dumps({"text": f"document {i}: " + "the cat sat on the mat. " * 4}) + "\n")
    res = prepare(d/"docs.jsonl", d/"out", tokenizer="char", shard_tokens=500, workers=1, val_fraction=0.02, progress=False)
    assert len(res.manifest["splits"]["train"]["shards"]) >= 200
    return d/"out"


def open_fds() -> int: return len(os.listdir("/proc/self/fd"))


def test_startup_reads_no_shard_in_full_and_bounds_open_files(shards, monkeypatch):
    hashed = []
    monkeypatch.setattr(data, "sha256_file", lambda p: hashed.append(p) or "x")
    before = open_fds()
    x = data.open_shards(shards, "train", verify=False, max_open=8)  # what training does at every start, on every rank
    assert hashed == [] and len(x.arrays) >= 200
    rng = np.random.default_rng(0)
    for _ in range(50): x[rng.integers(0, len(x), size=(4, 64))]  # random windows all over the corpus
    assert len(x.arrays[0].pool.maps) <= 8 and open_fds() - before <= 8 + 2
    assert x[:].tolist() == np.concatenate([np.fromfile(shards/e["file"], dtype=x.dtype) for e in
                                            json.loads((shards/"manifest.json").read_text())["splits"]["train"]["shards"]]).tolist()


def test_damage_is_still_caught(shards, tmp_path):
    import shutil
    bad = tmp_path/"bad"; shutil.copytree(shards, bad)
    p = bad/"train-00007.bin"
    b = bytearray(p.read_bytes()); b[3] ^= 1; p.write_bytes(bytes(b))  # a flipped byte: same size, found by verify
    data.open_shards(bad, "train", verify=False)
    raises(DataError, data.verify_shards, bad, hint="train-00007.bin")
    with open(bad/"train-00011.bin", "r+b") as f: f.truncate(100)  # a truncated shard: found at start-up, from its size
    raises(DataError, data.open_shards, bad, "train", verify=False, hint="truncated")


def test_the_epoch_order_is_a_permutation_computed_a_batch_at_a_time():
    "ShardedTokens' window order is a keyed Feistel permutation: a true permutation, new each epoch, and a step costs a batch's ids."
    import tracemalloc
    from collections import Counter
    from llm_course.distributed import ShardedTokens, permuted
    for n in (1, 2, 3, 7, 1000, 65537):
        orders = [permuted(np.arange(n), n, seed=0, epoch=e) for e in (0, 1)]
        assert all(sorted(o.tolist()) == list(range(n)) for o in orders), n
    assert (permuted(np.arange(1000), 1000, 0, 0) != permuted(np.arange(1000), 1000, 0, 1)).mean() > 0.9  # reshuffled each epoch
    firsts = Counter(int(permuted(np.zeros(1), 10, seed, 0)[0]) for seed in range(2000))
    assert sorted(firsts) == list(range(10)) and max(firsts.values()) < 300  # the first window is any of them, about equally often

    class Corpus:  # 1T tokens, as a 7B run sees its shards: 244M windows of 4096; nothing is read to pick a batch's windows
        def __len__(self): return 10**12
    st = ShardedTokens(Corpus(), 4096, seed=0, rank=0, world_size=1)
    tracemalloc.start()
    ids = st.sample_ids(step=st.n_windows // 1024, batch_size=1024)  # the batch that crosses from epoch 0 into epoch 1
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    assert len(set(ids.tolist())) == 1024 and ids.max() < st.n_windows and peak < 1 << 20, peak  # < 1 MB, not a 2 GB permutation
