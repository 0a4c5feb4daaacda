"""Honest metrics (issue 21): the FLOPs per token behind metrics.jsonl's MFU and HFU columns are PyTorch's own count
(FlopCounterMode over a real forward + backward, with and without activation checkpointing), up to the stated convention —
chapter 17 counts the causal half of the attention matrix, FlopCounterMode (and torchtitan) the whole of it."""
import json

import pytest
import torch

from llm_course.learner import Learner, TrainConfig
from llm_course.model import ModelConfig, Transformer
from llm_course.scaling import GPUS, flops_breakdown, flops_per_token, measure_step
from llm_course.train import JsonlLogger, gpu_of_device

torch.set_num_threads(1)
CONFIG = ModelConfig.preset("tiny", vocab_size=96, block_size=64)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_flops_per_token_is_pytorchs_count(checkpointing):
    torch.manual_seed(0)
    # attention as two visible matmuls: FlopCounterMode has no formula for the CPU's fused SDPA kernel (it would count 0 there)
    counted = measure_step(Transformer(CONFIG), micro_batch=2, seq=64, checkpointing=checkpointing,
                           explicit_attention=True)["flops"] / (2 * 64)
    full = flops_per_token(CONFIG, 64, checkpointing, causal=False)  # FlopCounterMode's convention: the whole T×T attention
    assert abs(counted - full) / full < 0.02, (counted, full)
    half = flops_breakdown(CONFIG, 64, checkpointing, causal=False)["attention"] / 2
    assert flops_per_token(CONFIG, 64, checkpointing) == pytest.approx(full - half - (half / 3 if checkpointing else 0))


@pytest.mark.parametrize("checkpointing", [False, True])
def test_logged_mfu_and_hfu_use_those_counts(tmp_path, checkpointing):
    "MFU: the model's FLOPs only (recompute excluded, as PaLM defines it); HFU: what the hardware ran, recompute included."
    peak = 1e12
    data = torch.randint(0, 96, (5000,))
    learn = Learner(Transformer(CONFIG), data, None, TrainConfig(steps=3, batch_size=4, block_size=64, device="cpu", progress=False,
                    eval_every=0, out_dir=str(tmp_path)), callbacks=[JsonlLogger(1, peak, checkpointing)])
    learn.fit()
    rows = [json.loads(l) for l in (tmp_path/"metrics.jsonl").read_text().splitlines() if "loss" in l]
    assert len(rows) == 3
    for r in rows:
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * flops_per_token(CONFIG, 64) / peak, rel=1e-12)
        assert r["hfu"] == pytest.approx(r["tokens_per_s"] * flops_per_token(CONFIG, 64, checkpointing) / peak, rel=1e-12)
        assert (r["hfu"] > r["mfu"]) == checkpointing


def test_the_peak_is_the_named_devices():
    assert gpu_of_device("NVIDIA H100 80GB HBM3") == "h100-80gb" and GPUS["h100-80gb"].peak_flops == 989e12
    assert gpu_of_device("NVIDIA A100-SXM4-40GB") == "a100-40gb" and GPUS["a100-40gb"].peak_flops == 312e12
    assert gpu_of_device("Some Other GPU") is None  # no table value: no MFU column rather than a wrong one
