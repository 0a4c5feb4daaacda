"""Training-step throughput on CPU: our Llama-style `Transformer` vs Hugging Face's `LlamaForCausalLM`.

Same config, same weights (copied with `to_hf`), same batches, same loss, same AdamW; steps of the two
models are interleaved so that load from other processes hits both alike. Each step is timed twice: wall
clock, and CPU time of this process (`time.process_time`, which other jobs on a shared machine disturb
far less). Prints tokens/s and the ratios. `--compile` runs both models through `torch.compile` first.

    python benchmarks/bench_model.py [--steps 20] [--batch 4] [--seq 256] [--threads 1] [--compile]
"""
import argparse, statistics, time

import torch
import torch.nn.functional as F

from llm_course.model import ModelConfig, Transformer, to_hf


def step(model, opt, x, y, hf: bool):
    "One fwd + bwd + AdamW step; returns the loss."
    logits = model(input_ids=x).logits if hf else model(x)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    loss.backward()
    opt.step(); opt.zero_grad(set_to_none=True)
    return loss.item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest on a shared machine)")
    ap.add_argument("--compile", action="store_true", help="torch.compile both models (minutes of compilation on CPU)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=a.vocab, block_size=a.seq, n_layer=a.layers, n_head=a.heads, d_model=a.d_model, style="llama")
    ours = Transformer(cfg).train()
    hf = to_hf(ours).train()
    print(f"config: {cfg.n_params():,} params, d_model={cfg.d_model}, layers={cfg.n_layer}, heads={cfg.n_head}, d_ff={cfg.d_ff}, "
          f"vocab={cfg.vocab_size}; batch {a.batch} x {a.seq} tokens; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"HF attention: {hf.config._attn_implementation}")
    models = {"ours": ours, "hf": hf}
    if a.compile: models = {k: torch.compile(m) for k, m in models.items()}
    opts = {"ours": torch.optim.AdamW(ours.parameters(), lr=1e-4), "hf": torch.optim.AdamW(hf.parameters(), lr=1e-4)}
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=g) for _ in range(a.warmup + a.steps)]
    times, cpu = {"ours": [], "hf": []}, {"ours": [], "hf": []}
    losses = {"ours": [], "hf": []}
    for i, b in enumerate(batches):
        x, y = b[:, :-1], b[:, 1:]
        order = ("ours", "hf") if i % 2 == 0 else ("hf", "ours")      # alternate who goes first
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            loss = step(models[name], opts[name], x, y, hf=name == "hf")
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if i >= a.warmup: times[name].append(dt); cpu[name].append(dc)
            losses[name].append(loss)
    tok = a.batch * a.seq
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    for k in ("ours", "hf"):
        print(f"{k:5s}: wall median {med[k] * 1e3:7.1f} ms/step ({tok / med[k]:6.0f} tokens/s, min {min(times[k]) * 1e3:.1f} ms); "
              f"CPU median {cmed[k] * 1e3:7.1f} ms/step ({tok / cmed[k]:6.0f} tokens per CPU-second)")
    print(f"first-step loss ours {losses['ours'][0]:.4f} vs HF {losses['hf'][0]:.4f}; "
          f"last ours {losses['ours'][-1]:.4f} vs HF {losses['hf'][-1]:.4f}")
    print(f"ratio HF/ours (median step time): wall {med['hf'] / med['ours']:.2f}x, CPU {cmed['hf'] / cmed['ours']:.2f}x"
          f"{' (both compiled)' if a.compile else ' (eager)'}")


if __name__ == "__main__":
    main()
