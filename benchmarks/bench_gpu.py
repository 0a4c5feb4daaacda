"""A slice of the Llama-2-7B run on one GPU, through the course's own `train`: tokens/s, MFU, HFU and peak memory, against chapter
17's planner.

The llama2-7b shape (d_model 4096, 32 heads, d_ff 11008, vocab 32,000, context 4096) cut to a few layers, bf16 autocast (one
process: no FSDP), micro-batch 1 × seq 4096, eager and `torch.compile`d, on synthetic tokens (the data path is not what is
measured). Each run's metrics.jsonl gives tokens/s, MFU (model FLOPs: 6N plus the causal half of attention, chapter 17's
convention) and HFU (with checkpointing's recompute); the peak memory is `torch.cuda.max_memory_allocated`, compared with
`Plan(...).total_memory` for the same shape (the planner's CUDA-context allowance left out: the allocator does not see it).
Targets from issue 21: MFU ≥ 50% compiled, the planner's memory within 10% of the measured peak.

Writes benchmarks/results/gpu.md with the device named. Run: python benchmarks/bench_gpu.py [--layers 4] [--steps 30]
Budget: under 8 minutes on one H100 (most of it compilation). Without a CUDA GPU it says so and exits 0.
Not yet run: no GPU was available when it was written.
"""
from __future__ import annotations
import argparse, json, platform, statistics, sys, tempfile
from pathlib import Path

import torch

from llm_course.model import PRESETS, ModelConfig
from llm_course.scaling import Plan
from llm_course.train import TrainJob, gpu_of_device, train

OUT = Path(__file__).parent/"results"/"gpu.md"


def run(layers: int, steps: int, compile: bool, checkpointing: bool, folder: Path) -> dict:
    name = f"llama2-7b-{layers}l"
    PRESETS[name] = {**PRESETS["llama2-7b"], "n_layer": layers}  # the 7B block, fewer of them (this process only)
    job = TrainJob(preset=name, corpus="synthetic", vocab_size=32000, block_size=4096, batch_size=1, steps=steps, lr=3e-4,
                   precision="bf16", compile=compile, activation_checkpointing=checkpointing, device="cuda", threads=0,
                   eval_every=0, eval_batches=1, final_eval_batches=1, checkpoint_every=0, sample_tokens=0, log_every=1,
                   progress=False, verbose=False, out=str(folder/f"{name}-{'compiled' if compile else 'eager'}"))
    torch.cuda.reset_peak_memory_stats()
    summary = train(job)
    rows = [json.loads(l) for l in (Path(job.out)/"metrics.jsonl").read_text().splitlines() if '"loss"' in l]
    steady = rows[len(rows) // 3:]  # after compilation and the allocator's warm-up
    plan = Plan(ModelConfig.preset(name), gpus=1, gpu=gpu_of_device(torch.cuda.get_device_name()) or "h100-80gb", seq=4096,
                micro_batch=1, sharding="none", checkpointing=checkpointing, precision="bf16")
    planned = plan.total_memory - plan.memory()["cuda_context"]
    peak = torch.cuda.max_memory_allocated()
    return dict(mode="compiled" if compile else "eager", layers=layers, checkpointing=checkpointing,
                tokens_per_s=statistics.median(r["tokens_per_s"] for r in steady),
                mfu=statistics.median(r["mfu"] for r in steady), hfu=statistics.median(r["hfu"] for r in steady),
                peak_gib=peak / 2**30, planned_gib=planned / 2**30, planner_error=planned / peak - 1, steps=summary["steps"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--steps", type=int, default=30)
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU here: nothing measured (benchmarks/RESULTS.md says so)"); return 0
    device = torch.cuda.get_device_name()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(a.layers, a.steps, c, ck, Path(tmp)) for c in (False, True) for ck in (False, True)]
    lines = [f"# The 7B shape, {a.layers} layers, on one GPU through `train`", "",
             f"Device: {device} (torch {torch.__version__}, CUDA {torch.version.cuda}, {platform.node()}); micro-batch 1 × 4096 "
             f"tokens, bf16 autocast, {a.steps} steps, medians of the last two thirds.", "",
             "| mode | checkpointing | tokens/s | MFU | HFU | peak memory | planner | planner error |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {'on' if r['checkpointing'] else 'off'} | {r['tokens_per_s']:,.0f} | {r['mfu']:.1%} | "
                     f"{r['hfu']:.1%} | {r['peak_gib']:.1f} GiB | {r['planned_gib']:.1f} GiB | {r['planner_error']:+.1%} |")
    best = max(r["mfu"] for r in rows if r["mode"] == "compiled")
    worst = max(abs(r["planner_error"]) for r in rows)
    lines += ["", f"Targets (issue 21): MFU ≥ 50% compiled: {'met' if best >= 0.5 else 'NOT met'} ({best:.1%}); planner within 10% "
                  f"of the measured peak: {'met' if worst <= 0.10 else 'NOT met'} (worst {worst:.1%})."]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__": sys.exit(main())
