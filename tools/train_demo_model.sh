#!/usr/bin/env bash
# Train the small model the chapters' demos use (sampling in 14, fine-tuning in 16, attention in 10/12/15),
# then copy its weights, config and tokenizer into the package (llm_course/data/demo_model/).
# Recorded: preset tiny (4 layers, d_model 128, ~0.87M parameters), character tokenizer, the embedded default corpus,
# 1,500 steps of 32 x 128 characters, seed 0, one CPU thread (700 s of CPU time; 47 min of wall time on the shared 2-core VM). Wall time goes to runs/demo-model/metrics.json and
# llm_course/data/demo_model/summary.json (with the CPU seconds of runs/demo-model.time, if the run was timed:
# `{ time tools/train_demo_model.sh ; } 2> runs/demo-model.time`).
#   tools/train_demo_model.sh              # train (about 12 CPU minutes), then copy
#   tools/train_demo_model.sh --copy-only  # copy an already finished runs/demo-model into the package
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" != "--copy-only" ]]; then
    llm-course train --preset tiny --corpus default --tokenizer char --steps 1500 --batch-size 32 --block-size 128 \
        --lr 3e-3 --seed 0 --eval-every 250 --checkpoint-every 500 --out runs/demo-model --overwrite "$@"
fi
python - <<'PY'
"Copy the finished run into llm_course/data/demo_model/ with a summary (no checkpoints), then record its checksums."
import re, shutil
from pathlib import Path
from llm_course.core import load_json, save_json
from llm_course.runs import write_checksums
src, dst = Path("runs/demo-model"), Path("llm_course/data/demo_model")
if not (src / "model.safetensors").exists(): raise SystemExit(f"{src} holds no finished run: train it first (tools/train_demo_model.sh)")
if dst.exists(): shutil.rmtree(dst)
dst.mkdir(parents=True)
for name in ("model.safetensors", "config.json", "tokenizer.json", "run.json"): shutil.copy2(src / name, dst / name)
m = load_json(src / "metrics.json")
keep = ("val_loss", "val_perplexity", "steps", "train_loss", "seconds", "train_seconds", "tokens_seen", "tokens_per_s", "n_params",
        "vocab_size", "tokenizer", "corpus", "corpus_chars", "train_tokens", "val_tokens", "device", "stop_reason", "sample")
summary = {k: m[k] for k in keep}
summary.update(seed=m["run"]["seed"], script="tools/train_demo_model.sh",
               val_history=[dict(step=h["step"], val_loss=h["val_loss"]) for h in m["history"] if "val_loss" in h])
timing = Path("runs/demo-model.time")
if timing.exists():  # bash's `time`: real/user/sys as 'XmY.YYYs'
    for kind, mins, secs in re.findall(r"(real|user|sys)\s+(\d+)m([\d.]+)s", timing.read_text()):
        summary[f"time_{kind}_s"] = round(int(mins) * 60 + float(secs), 1)
save_json(summary, dst / "summary.json", ensure_ascii=False)
write_checksums(dst)
print(f"copied {src} -> {dst}: val loss {summary['val_loss']:.4f} nats/char after {summary['steps']} steps, "
      f"{summary['seconds'] / 60:.1f} min of wall time")
PY
