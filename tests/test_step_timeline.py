"""`step_timeline` draws the planner's numbers: per lane, its bars add up to the plan's compute and communication times."""
from __future__ import annotations

import dataclasses, math
from collections import defaultdict
from pathlib import Path

import pytest

from llm_course.core import ConfigError
from llm_course.model import ModelConfig
from llm_course.train import job_plan, load_recipe, step_bars, step_timeline

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
CONFIG = ModelConfig.preset("llama2-7b")


def plans() -> dict:
    j8, j64 = load_recipe(RECIPES / "llama2-7b-8xh100.toml"), load_recipe(RECIPES / "llama2-7b-64gpu.toml")
    return {"8 x H100, fsdp": job_plan(j8, CONFIG, 8), "64 GPUs, hsdp": job_plan(j64, CONFIG, 64),
            "64 GPUs, flat fsdp": job_plan(dataclasses.replace(j64, parallel="fsdp"), CONFIG, 64)}


def drawn(fig) -> list[dict]:
    "Seconds per `lane:what` gid in each panel, read back from the figure's bars."
    out = []
    for ax in fig.axes:
        if not ax.patches: continue
        d = defaultdict(float)
        for p in ax.patches:
            if p.get_gid(): d[p.get_gid()] += p.get_width()
        out.append(dict(d))
    return out


def lane(d: dict, name: str) -> float: return sum(v for k, v in d.items() if k.startswith(name + ":"))


@pytest.mark.parametrize("n", [2, None])
def test_bars_are_the_plans_numbers(n):
    ps = plans()
    panels = drawn(step_timeline(ps, micro_batches=n))
    assert len(panels) == 3
    for d, p in zip(panels, ps.values()):
        k = p.grad_accum
        shown = k if n is None else n
        comm, dev = p.communication(), p.device
        compute = d["compute:forward"] + d["compute:backward"]
        assert compute == pytest.approx(shown * p.step_seconds / k, rel=1e-9)
        assert not p.checkpointing and d["compute:forward"] / compute == pytest.approx(1 / 3)  # forward 2N of 6N (no recompute)
        per_step = comm["inter_node"] if p.sharding == "hsdp" else 0.0  # HSDP: the replicas' all-reduce, once per step
        per_mb = {"intra_node": comm["intra_node"], "inter_node": comm["inter_node"] - per_step}
        assert lane(d, "intra_node") == pytest.approx(shown * per_mb["intra_node"] / k / dev.intra_node_bytes_per_s, rel=1e-9)
        assert lane(d, "inter_node") == pytest.approx((shown * per_mb["inter_node"] / k + per_step) / dev.inter_node_bytes_per_s,
                                                      rel=1e-9)
        if n is None:  # a whole step: the planner's communication time
            assert lane(d, "intra_node") + lane(d, "inter_node") == pytest.approx(p.comm_seconds, rel=1e-9)


def test_waiting_only_where_the_links_are_slower():
    ps = plans()
    waits = [lane({k: v for k, v in d.items() if k == "compute:waiting"}, "compute") for d in drawn(step_timeline(ps))]
    assert waits[0] == 0 and waits[1] == 0  # NVLink hides under compute; HSDP's one all-reduce too
    flat = ps["64 GPUs, flat fsdp"]
    assert flat.bandwidth_bound and waits[2] > 0  # flat FSDP over InfiniBand: the GPUs wait


def test_bars_do_not_overlap_in_a_lane():
    for p in plans().values():
        by_lane = defaultdict(list)
        for ln, what, start, s in step_bars(p, None): by_lane[ln].append((start, s))
        for bars in by_lane.values():
            bars.sort()
            assert all(a + s <= b + 1e-12 for (a, s), (b, _) in zip(bars, bars[1:]))
            assert all(math.isfinite(s) and s > 0 for _, s in bars)


def test_collectives_are_ring_costs_in_the_right_micro_batch():
    "Textbook ring costs on one node: each rank sends (G-1)/G of the bf16 weights per all-gather and of the fp32 gradients per reduce-scatter."
    p8, hsdp = plans()["8 x H100, fsdp"], plans()["64 GPUs, hsdp"]
    P, bw, ring = CONFIG.n_params(), p8.device.intra_node_bytes_per_s, 7 / 8
    bars = step_bars(p8, 1)
    gathers = [s for ln, what, _, s in bars if what == "all-gather"]
    scatter = [s for ln, what, _, s in bars if what == "reduce-scatter"]
    assert gathers[0] == pytest.approx(ring * 2 * P / bw, rel=1e-9)  # forward: every weight, in bf16
    assert gathers[1] < gathers[0]  # backward: all but the root and the last block, kept since forward
    assert scatter == [pytest.approx(ring * 4 * P / bw, rel=1e-9)]
    for n in (1, 2, None):  # HSDP's all-reduce between the replicas: once, beside the step's last backward
        bars = step_bars(hsdp, n)
        last_backward = [start for ln, what, start, _ in bars if what == "backward"][-1]
        assert [start for ln, what, start, _ in bars if what == "all-reduce"] == [last_backward]


def test_bad_input_is_a_config_error():
    p8 = plans()["8 x H100, fsdp"]
    for bad in (0, -1, 2.5, "2"):
        with pytest.raises(ConfigError, match="micro_batches"): step_bars(p8, bad)
    with pytest.raises(ConfigError, match="must be a Plan"): step_bars({"a": p8})
    with pytest.raises(ConfigError, match="non-empty dict"): step_timeline({})
    with pytest.raises(ConfigError, match="link speed"): step_bars(dataclasses.replace(p8, gpu="cpu"))  # a CPU has no NVLink to time
