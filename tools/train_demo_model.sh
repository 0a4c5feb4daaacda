#!/usr/bin/env bash
# Train the small model the chapters' demos use (sampling in 14, fine-tuning in 16, attention in 10/12/15),
# then copy its weights, config and tokenizer into the package (llm_course/data/demo_model/).
# Recorded: preset tiny (4 layers, d_model 128, ~0.87M parameters), character tokenizer, the embedded default corpus,
# 1,500 steps of 32 x 128 characters, seed 0, one CPU thread. Wall time goes to runs/demo-model/metrics.json.
set -euo pipefail
cd "$(dirname "$0")/.."
llm-course train --preset tiny --corpus default --tokenizer char --steps 1500 --batch-size 32 --block-size 128 \
    --lr 3e-3 --seed 0 --eval-every 250 --checkpoint-every 500 --out runs/demo-model --overwrite "$@"
