"""HSDP (issue 21): the 7B model on a 64-rank fake process group is sharded within a node and replicated across nodes; the bytes
its collectives move, counted call by call, match the planner and cross nodes ≥ 5× less than flat FSDP; gradient sync skipped on
non-final micro-batches is fewer collectives; on 4 gloo ranks as 2 × 2 the losses equal one process."""
import json, os, subprocess, sys, textwrap

import pytest

from test_train import torchrun

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "TORCH_CPP_LOG_LEVEL": "ERROR"}
for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE"): ENV.pop(k, None)

# One process pretends to be rank 0 of 64 (torch's fake process group: collectives return at once, their calls are real).
FAKE_64 = textwrap.dedent('''
    import contextlib, json, sys, torch, torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore
    from llm_course.distributed import Distributed, parallelize
    from llm_course.model import ModelConfig, Transformer
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=64)
    node = lambda g: {r // 8 for r in dist.get_process_group_ranks(g)}  # 8 GPUs per node: ranks 0-7 on node 0, …
    sent = []  # (collective, crosses nodes, bytes this rank sends in a ring)
    def counted(name, f, size):
        def wrapper(*a, **k):
            g = k.get("group") or dist.group.WORLD; n = g.size()
            sent.append((name, len(node(g)) > 1, size(*a, **k) * (n - 1) / n)); return f(*a, **k)
        return wrapper
    nbytes = lambda t: t.numel() * t.element_size()
    dist.all_gather_single = counted("all_gather", dist.all_gather_single, lambda out, inp, **k: nbytes(out))
    dist.reduce_scatter_single = counted("reduce_scatter", dist.reduce_scatter_single, lambda output, input, **k: nbytes(input))
    dist.all_reduce = counted("all_reduce", dist.all_reduce, lambda t, **k: 2 * nbytes(t))
    out = {}
    with torch.device("meta"): big = Transformer(ModelConfig.preset("llama2-7b"))
    big = parallelize(big, "hsdp", shard_size=8)
    out["placements"] = sorted({str(p.placements) for p in big.parameters()})
    out["local"] = sum(p.to_local().numel() for p in big.parameters())
    config = ModelConfig.preset("llama2-7b", n_layer=4, d_model=256, n_head=4, n_kv_head=4, d_ff=688, vocab_size=2048, block_size=64)
    for parallel, sync in (("fsdp", "auto"), ("hsdp", "auto"), ("fsdp", "step"), ("hsdp", "step")):
        with torch.device("meta"): m = Transformer(config)
        m = parallelize(m, parallel, precision="bf16", shard_size=8)
        m.to_empty(device="cpu"); m.init_weights()
        cb = Distributed(parallel, grad_sync=sync); cb.learn_model = m
        x = torch.randint(0, 2048, (4, 1, 64))
        sent.clear()
        for i in range(4):  # one optimizer step of 4 micro-batches
            with cb.grad_sync(last=i == 3): m(x[i]).float().mean().backward()
        out[f"{parallel}-{sync}"] = dict(inter=sum(b for _, x_, b in sent if x_), intra=sum(b for _, x_, b in sent if not x_),
                                         calls={c: sum(1 for n, _, _ in sent if n == c) for c in ("all_gather", "reduce_scatter", "all_reduce")})
    print("@@" + json.dumps(out))
''')


@pytest.fixture(scope="module")
def fake64():
    res = subprocess.run([sys.executable, "-c", FAKE_64], capture_output=True, text=True, env=ENV, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(next(l for l in res.stdout.splitlines() if l.startswith("@@"))[2:])


def test_7b_on_64_ranks_is_sharded_in_a_node_and_replicated_across(fake64):
    assert fake64["placements"] == ["(Replicate(), Shard(dim=0))"]
    assert fake64["local"] == 842_301_952 == 6_738_415_616 // 8  # one node's share: an eighth of the model on each GPU


def test_counted_bytes_match_the_planner_and_cross_nodes_far_less(fake64):
    from llm_course.model import ModelConfig
    from llm_course.scaling import Plan
    config = ModelConfig.preset("llama2-7b", n_layer=4, d_model=256, n_head=4, n_kv_head=4, d_ff=688, vocab_size=2048, block_size=64)
    flat, hsdp = fake64["fsdp-auto"], fake64["hsdp-auto"]
    assert flat["intra"] == 0 and hsdp["inter"] > 0
    assert flat["inter"] / hsdp["inter"] >= 5, (flat, hsdp)
    for name, got in (("fsdp", flat), ("hsdp", hsdp)):
        want = Plan(config, gpus=64, sharding=name, micro_batch=1, grad_accum=4, seq=64).communication()
        for link, key in (("intra_node", "intra"), ("inter_node", "inter")):
            assert abs(got[key] - want[link]) <= 0.02 * max(want[link], 1), (name, link, got[key], want[link])


def test_skipped_gradient_sync_is_fewer_collectives(fake64):
    units = 5  # 4 blocks and the root
    assert fake64["fsdp-auto"]["calls"]["reduce_scatter"] == 4 * units  # FSDP keeps gradients sharded: one per micro-batch
    assert fake64["fsdp-step"]["calls"]["reduce_scatter"] == units  # "step": once, holding whole gradients in between
    assert fake64["hsdp-auto"]["calls"] == {**fake64["hsdp-auto"]["calls"], "reduce_scatter": 4 * units, "all_reduce": units}
    assert fake64["hsdp-step"]["calls"]["all_reduce"] == fake64["hsdp-step"]["calls"]["reduce_scatter"] == units


def test_hsdp_on_four_gloo_ranks_equals_one_process(tmp_path):
    "2 replicas × 2 shards for 20 steps of the tiny preset: the losses of one process within 1e-5."
    common = ["--corpus", "default", "--max-chars", "20000", "--steps", "20", "--batch-size", "8", "--grad-accum", "2",
              "--no-progress", "--sample-tokens", "0", "--eval-every", "0", "--checkpoint-every", "0", "--data-order", "sharded", "--lr", "1e-3"]
    res = torchrun(4, *common, "--parallel", "hsdp", "--shard-size", "2", "--out", tmp_path/"hsdp")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "llm_course.train", *common, "--out", tmp_path/"one"], capture_output=True,
                         text=True, env=ENV)
    assert one.returncode == 0, one.stderr[-3000:]
    losses = lambda run: [h["loss"] for h in json.loads((run/"metrics.json").read_text())["history"]]
    a, b = losses(tmp_path/"hsdp"), losses(tmp_path/"one")
    assert len(a) == len(b) == 20 and max(abs(x - y) for x, y in zip(a, b)) < 1e-5, list(zip(a, b))
