"Chapter 17's planner: parameter, FLOP and activation formulas against measurements; plans, auto_plan, check_fits; `llm-course plan`."
import dataclasses, json, os, subprocess, sys

import pytest
import torch
from conftest import raises

from llm_course.core import ConfigError
from llm_course.model import PRESETS, ModelConfig, Transformer, _hf_config
from llm_course.scaling import (GPUS, GiB, Plan, accelerator, activation_memory, auto_plan, check_fits, chinchilla_loss,
                                compute_optimal, flops_breakdown, flops_per_token, implied_mfu, logits_memory,
                                matmul_params, measure_step, param_breakdown, param_count, plan_figure, PlannerWidget)

torch.set_num_threads(1)


def meta_count(cls, cfg):
    with torch.device("meta"): m = cls(cfg)
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", list(PRESETS))
def test_param_formula_equals_meta_model_and_transformers(name):
    from transformers import GPT2LMHeadModel, LlamaForCausalLM
    c = ModelConfig.preset(name)
    hf = LlamaForCausalLM if c.style == "llama" else GPT2LMHeadModel
    assert param_count(c) == meta_count(Transformer, c) == meta_count(hf, _hf_config(c)) == c.n_params()


def test_known_counts_and_breakdown():
    c = ModelConfig.preset("llama2-7b")
    assert param_count(c) == 6_738_415_616
    assert param_count(ModelConfig.preset("llama-1b")) == 1_100_048_384     # TinyLlama-1.1B
    b = param_breakdown(c)
    assert b["embeddings"] == b["head"] == 32000 * 4096 and b["mlp"] == 32 * 3 * 4096 * 11008
    gqa = param_breakdown(ModelConfig.preset("llama-1b"))["attention"]
    assert gqa == 22 * (2048 * (32 + 8) * 64 + 2048 * 2048)                 # k, v projections 8× narrower than q
    assert param_breakdown(ModelConfig.preset("gpt2-small"))["head"] == 0   # tied


@pytest.mark.parametrize("name, kw, B, T", [("tiny", {}, 2, 32), ("tiny", dict(n_kv_head=2, n_layer=2), 1, 48),
                                            ("tiny-gpt2", dict(n_layer=2), 2, 24)])
def test_flops_match_flop_counter(name, kw, B, T):
    c = ModelConfig.preset(name, **kw)
    m = Transformer(c)
    fb, n = flops_breakdown(c, T, causal=False), B * T
    assert measure_step(m, B, T)["flops"] == fb["matmul"] * n                      # CPU's fused SDPA is not counted
    assert measure_step(m, B, T, explicit_attention=True)["flops"] == (fb["matmul"] + fb["attention"]) * n
    ck = measure_step(m, B, T, checkpointing=True)["flops"]
    assert abs((flops_per_token(c, T, True, causal=False) - fb["attention"] * 4 / 3) * n / ck - 1) < 0.01


def test_flops_terms():
    c = ModelConfig.preset("llama2-7b")
    fb = flops_breakdown(c, 4096)
    assert fb["matmul"] == 6 * (param_count(c) - 32000 * 4096 - 65 * 4096)   # all but the embedding and the norms
    assert flops_breakdown(c, 4096, causal=False)["attention"] == 2 * fb["attention"] == 12 * 32 * 4096 * 4096
    assert 1.25 < flops_per_token(c, 4096, True) / flops_per_token(c, 4096) < 1.34


@pytest.mark.parametrize("name, kw, B, T", [("tiny", {}, 2, 64), ("tiny", dict(n_kv_head=2, n_layer=2), 1, 96),
                                            ("tiny-gpt2", dict(n_layer=2), 3, 32)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("ckpt", [False, True])
def test_activation_prediction_within_10_percent(name, kw, B, T, dtype, ckpt):
    c = ModelConfig.preset(name, **kw)
    m = Transformer(c).to(dtype)
    a = torch.finfo(dtype).bits // 8
    measured = measure_step(m, B, T, checkpointing=ckpt)["saved_bytes"]
    pred = activation_memory(c, B, T, a, ckpt)
    predicted = sum(pred.values()) - pred.get("recompute", 0) + logits_memory(c, B, T, a)["log_probs"]
    assert abs(predicted / measured - 1) < 0.10, (predicted, measured)
    if ckpt:   # checkpointing really keeps far less
        assert measured < 0.5 * measure_step(m, B, T)["saved_bytes"]


def test_model_state_bytes_per_parameter():
    P = param_count(ModelConfig.preset("llama2-7b"))
    states = lambda p: sum(v for k, v in p.memory().items() if k in ("weights", "master_weights", "gradients", "optimizer"))
    assert states(Plan(gpus=1, gpu="h200", precision="fp32")) == 16 * P
    # one GPU / DDP in bf16 (autocast): fp32 weights, gradients, m and v kept (16 B); bf16 casts of the matmul weights only while a step runs
    one, ddp = Plan(gpus=1, gpu="h200").memory(), Plan(gpus=8, sharding="ddp").memory()
    assert states(Plan(gpus=1, gpu="h200")) == 16 * P and one["weights"] == 0
    assert one["bf16_casts"] == ddp["bf16_casts"] == 2 * matmul_params(ModelConfig.preset("llama2-7b"))
    assert "bf16_casts" not in Plan(gpus=8).memory() and "bf16_casts" not in Plan(gpus=1, gpu="h200", precision="fp32").memory()
    assert states(Plan(gpus=8, sharding="zero1")) == 2 * P + 4 * P + -(-12 * P // 8)
    assert states(Plan(gpus=8, sharding="zero2")) == 2 * P + -(-16 * P // 8)
    assert states(Plan(gpus=8, sharding="fsdp")) == -(-4 * P // 8) * 2 + -(-8 * P // 8)
    fsdp = Plan(gpus=8).memory()
    assert 0 < fsdp["fsdp_working_set"] < 2 * GiB and "fsdp_working_set" not in Plan(gpus=8, sharding="ddp").memory()
    # checkpointing trades memory for compute; chunked loss removes the full logits
    assert Plan(gpus=8, checkpointing=True).memory()["activations"] < Plan(gpus=8).memory()["activations"] / 10
    assert Plan(gpus=8, chunked_loss=True).memory()["logits"] < Plan(gpus=8).memory()["logits"] / 2
    assert Plan(gpus=8, checkpointing=True).tokens_per_s < Plan(gpus=8).tokens_per_s


def test_throughput_and_days():
    p = Plan("llama2-7b", gpus=64, gpu="h100-80gb", mfu=0.4, tokens=2e12)
    assert p.tokens_per_s == pytest.approx(64 * 0.4 * 989e12 / flops_per_token(p.config, 4096))
    assert p.days == pytest.approx(2e12 / p.tokens_per_s / 86400) and p.gpu_hours == pytest.approx(64 * 24 * p.days)
    assert Plan("llama2-7b", gpus=128, tokens=2e12).days == pytest.approx(p.days / 2)
    assert p.cost_usd is None and Plan("llama2-7b", gpus=64, tokens=2e12, usd_per_gpu_hour=2.0).cost_usd == pytest.approx(2 * p.gpu_hours)


def test_llama2_anchor_and_chinchilla():
    c = ModelConfig.preset("llama2-7b")
    mfu = implied_mfu(184_320, 2e12, flops_per_token(c, 4096), GPUS["a100-80gb"].peak_flops)
    assert 0.38 < mfu < 0.45
    N, D = compute_optimal(1e23)
    assert 6 * N * D == pytest.approx(1e23)
    for f in (0.8, 1.25):   # the optimum is a minimum along the iso-compute curve
        assert chinchilla_loss(N, D) < chinchilla_loss(N * f, D / f)


def test_gpus_table_and_cpu_peak():
    assert list(GPUS) == ["cpu", "a100-40gb", "a100-80gb", "h100-80gb", "h200"]
    assert GPUS["h100-80gb"].peak_flops == GPUS["h200"].peak_flops > GPUS["a100-80gb"].peak_flops
    assert GPUS["h200"].memory_bytes > GPUS["a100-80gb"].memory_bytes > GPUS["a100-40gb"].memory_bytes
    cpu = accelerator("cpu")
    assert cpu.peak_flops > 1e8 and cpu.memory_bytes > GiB


def test_auto_plan_7b_on_8_h100_chooses_fsdp_and_says_why():
    plan, reasons = auto_plan("llama2-7b", "h100-80gb", 8, global_batch_tokens=4 * 2**20)
    assert plan.sharding == "fsdp" and plan.fits and plan.micro_batch >= 1
    assert not dataclasses.replace(plan, micro_batch=plan.micro_batch + 1).fits     # the largest that fits
    assert plan.micro_batch * 4096 * 8 * plan.grad_accum == 4 * 2**20
    assert "FSDP" in reasons[0] and "more than" in reasons[0] and len(reasons) == 4
    assert all(r.endswith(".") for r in reasons)


def test_auto_plan_prefers_ddp_and_no_checkpointing_when_they_fit():
    plan, reasons = auto_plan("llama-100m", "a100-40gb", 4, seq=1024)
    assert plan.sharding == "ddp" and not plan.checkpointing and "DDP" in reasons[0]
    plan, reasons = auto_plan("llama-1b", "a100-40gb", 8, seq=2048)   # checkpointing only when nothing fits without it
    assert plan.checkpointing == (not Plan("llama-1b", gpus=8, gpu="a100-40gb", sharding="fsdp", seq=2048).fits)


def test_auto_plan_7b_on_one_a100_40gb_cannot_fit():
    e = raises(ConfigError, auto_plan, "llama2-7b", "a100-40gb", 1, hint="short by")
    assert "GiB" in str(e) and "--gpus" in str(e) and "llm-course plan --auto" in str(e)


def test_check_fits():
    c = ModelConfig.preset("llama2-7b")
    e = raises(ConfigError, check_fits, c, 80 * GiB, 1, 4096, hint="llm-course plan --auto --preset llama2-7b")
    assert "short by" in str(e) and "--gpu a100-80gb" in str(e)
    assert check_fits(c, 80 * GiB, 1, 4096, gpus=8, sharding="fsdp").fits
    assert check_fits(ModelConfig.preset("tiny"), 8 * GiB, 64, 128).fits


@pytest.mark.parametrize("kw, hint", [(dict(gpu="v100"), "a100-80gb"), (dict(model="nope"), "llama2-7b"),
                                      (dict(gpus=0), "gpus="), (dict(gpus=-2), "gpus="), (dict(seq=8192), "seq ≤ 4096"),
                                      (dict(micro_batch=0), "micro_batch="), (dict(mfu=0.0), "0.35"), (dict(mfu=1.2), "0.35"),
                                      (dict(sharding="zero3"), "fsdp"), (dict(gpus=8, sharding="none"), "ddp"),
                                      (dict(precision="fp8"), "bf16"), (dict(usd_per_gpu_hour=-1), "2.5")])
def test_bad_plan_settings(kw, hint):
    raises(ConfigError, Plan, **kw, hint=hint)


def test_figure_and_widget():
    fig = plan_figure([Plan(gpus=8), Plan(gpus=8, sharding="ddp")])
    ax = fig.axes[0]
    assert len(ax.patches) >= 10 and ax.get_ylabel() == "GiB per GPU"
    w = PlannerWidget(live=True)
    before = w.image.value
    w.gpus.value = 1
    assert w.image.value != before and "does not fit" in w.stats.value
    w.seq.value = 8192
    assert "longer than the model" in w.stats.value


# ------------------------------------------------------------------ the CLI

def run_cli(*args):
    code = "import sys; from llm_course.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=dict(os.environ, IN_TEST="1"))


def one_line_error(res):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(lines) == 1 and "error" in lines[0], res.stderr
    return lines[0]


def test_cli_plan_prints_components_fit_speed_days(capsys):
    from llm_course.cli import main
    assert main(["plan", "--preset", "llama2-7b", "--gpu", "h100-80gb", "--gpus", "8", "--tokens", "2e12", "--usd-per-gpu-hour", "2"]) == 0
    out = capsys.readouterr().out
    for word in ("6,738,415,616", "master_weights", "optimizer", "activations", "logits", "fits", "tokens/s", "days", "$"):
        assert word in out, word


def test_cli_plan_auto_json(capsys):
    from llm_course.cli import main
    assert main(["plan", "--auto", "--gpus", "8", "--gpu", "h100-80gb", "--global-batch-tokens", "4194304", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["sharding"] == "fsdp" and d["fits"] and d["global_batch_tokens"] == 4194304 and len(d["reasons"]) == 4
    assert d["memory_bytes"]["activations"] > 0 and d["tokens_per_s"] > 0


def test_cli_plan_auto_cannot_fit_is_one_line():
    line = one_line_error(run_cli("plan", "--auto", "--preset", "llama2-7b", "--gpu", "a100-40gb", "--gpus", "1"))
    assert "short by" in line and "GiB" in line


@pytest.mark.parametrize("args, words", [
    (["--gpu", "v100"], "h100-80gb"), (["--preset", "nope"], "llama2-7b"), (["--gpus", "0"], "gpus"),
    (["--gpus", "-1"], "gpus"), (["--seq", "8192"], "4096"), (["--micro-batch", "0"], "micro"),
    (["--mfu", "1.5"], "mfu"), (["--mfu", "0"], "mfu"), (["--global-batch-tokens", "1000000"], "not a multiple"),
    (["--auto", "--global-batch-tokens", "1000000"], "not a multiple"), (["--usd-per-gpu-hour", "-1"], "price"),
])
def test_cli_plan_bad_input_is_one_line_exit_2(args, words, capsys):
    from llm_course.cli import main
    assert main(["plan", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llm-course plan: error:") and words in lines[0], lines


def test_cli_plan_usage_mistake_is_one_line():
    assert "--gpus" in one_line_error(run_cli("plan", "--gpus", "many"))


def test_exercise_rejects_a_kept_bf16_copy_on_the_ddp_path():
    "Chapter 17's exercise 3 follows the planner: one GPU and DDP keep no bf16 copy between steps (autocast casts while a step runs)."
    from conftest import solutions
    from llm_course.scaling import check_model_state_bytes
    S = solutions("17_scaling")
    def kept(n, gpus=1, sharding="none", precision="bf16"):
        out = S["model_state_bytes"](n, gpus, sharding, precision)
        if precision == "bf16" and sharding in ("none", "ddp"): out["weights"] = 2 * n
        return out
    r = check_model_state_bytes(kept)
    assert not r and "autocast" in r.message and "bf16_casts" in r.message
