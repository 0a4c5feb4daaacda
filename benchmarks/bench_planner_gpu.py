"""The planner's memory prediction (llm_course.scaling) against torch.cuda.max_memory_allocated, on a CUDA GPU.

A 2–4-layer slice of Llama-2-7B at full width (d_model 4096, d_ff 11008, vocab 32000) trains for two AdamW steps
on one GPU; the second step's peak is measured. Two recipes:
  fp32  weights, gradients and AdamW moments in fp32 (16 B/parameter): the whole plan is compared;
  bf16  weights in bf16 (as FSDP2 gathers them with param_dtype=bfloat16): only the step's growth
        (activations + logits + the bf16 gradients created in backward) is compared, since the model state
        of this pure-bf16 recipe is not the planner's fp32-master layout.
Each with and without activation checkpointing. Prints predicted and measured GiB and their ratio.

Run: python benchmarks/bench_planner_gpu.py [--layers 2 4] [--seq 4096] [--micro-batch 1]
     python benchmarks/bench_planner_gpu.py --dry-run    # predictions only (no GPU needed)
Not yet run: no GPU was available when it was written (see benchmarks/RESULTS.md).
"""
from __future__ import annotations
import argparse, contextlib, platform

import torch
import torch.nn.functional as F

from llm_course.model import ModelConfig, Transformer
from llm_course.scaling import GiB, Accelerator, Plan, activation_memory, checkpoint_blocks, logits_memory, param_count


def predicted(c, recipe, B, T, ck, mem):
    if recipe == "fp32":
        p = Plan(c, gpus=1, gpu=Accelerator("this-gpu", mem, None), seq=T, micro_batch=B, sharding="none",
                 precision="fp32", checkpointing=ck, tokens=1)
        return sum(v for k, v in p.memory().items() if k != "cuda_context")   # the allocator does not see the context
    act = activation_memory(c, B, T, 2, ck)
    return sum(act.values()) + sum(logits_memory(c, B, T, 2).values()) + 2 * param_count(c)


def measured(c, recipe, B, T, ck):
    torch.manual_seed(0)
    dtype = torch.float32 if recipe == "fp32" else torch.bfloat16
    with torch.device("cuda"): model = Transformer(c).to(dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)   # foreach would add a temporary copy
    x = torch.randint(0, c.vocab_size, (B, T + 1), device="cuda")
    def step():
        with checkpoint_blocks(model) if ck else contextlib.nullcontext():
            loss = F.cross_entropy(model(x[:, :-1]).float().flatten(0, 1), x[:, 1:].flatten())
            loss.backward()
        opt.step(); opt.zero_grad(set_to_none=True)
    step()   # the first step allocates the AdamW moments
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step(); torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del model, opt, x; torch.cuda.empty_cache()
    return peak if recipe == "fp32" else peak - before


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, nargs="+", default=[2, 4])
    p.add_argument("--seq", type=int, default=4096)
    p.add_argument("--micro-batch", type=int, default=1)
    p.add_argument("--dry-run", action="store_true", help="print the predictions only")
    a = p.parse_args(argv)
    if not a.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible: run this on a GPU machine (or pass --dry-run for the predictions)")
    mem = torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else 80 * GiB
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "dry run"
    print(f"machine: {name} ({mem / GiB:.1f} GiB), {platform.processor() or platform.machine()}, torch {torch.__version__}; "
          f"llama2-7b width, seq {a.seq}, micro-batch {a.micro_batch}")
    print(f"{'layers':>6} {'recipe':<6} {'ckpt':<5} {'predicted GiB':>14} {'measured GiB':>13} {'pred/meas':>10}")
    for L in a.layers:
        c = ModelConfig.preset("llama2-7b", n_layer=L)
        for recipe in ("fp32", "bf16"):
            for ck in (False, True):
                pred = predicted(c, recipe, a.micro_batch, a.seq, ck, mem)
                meas = None if a.dry_run else measured(c, recipe, a.micro_batch, a.seq, ck)
                print(f"{L:>6} {recipe:<6} {'on' if ck else 'off':<5} {pred / GiB:>14.2f} "
                      + (f"{meas / GiB:>13.2f} {pred / meas:>10.3f}" if meas else f"{'–':>13} {'–':>10}"))


if __name__ == "__main__": main()
