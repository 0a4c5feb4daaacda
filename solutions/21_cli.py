"""Solutions to chapter 21's exercises — try first, then compare."""
import statistics

from llm_course.core import ConfigError
from llm_course.scaling import flops_per_token
from llm_course.train import read_metrics


def train_flags(global_batch_tokens: int, seq: int, gpus: int, max_micro_batch: int) -> tuple[int, int]:
    "`--batch-size` and `--grad-accum` of `llm-course train` for a global batch of tokens on `gpus` GPUs."
    if global_batch_tokens % (seq * gpus):
        raise ConfigError(f"a global batch of {global_batch_tokens:,} tokens is not a whole number of sequences per GPU: "
                          f"use a multiple of seq × gpus = {seq * gpus:,}")
    batch_size = global_batch_tokens // seq          # sequences per optimizer step, over all processes
    per_gpu = batch_size // gpus
    micro = min(max_micro_batch, per_gpu)
    while per_gpu % micro: micro -= 1                # the largest micro-batch that fits and divides each GPU's share
    return batch_size, per_gpu // micro


def run_speed(metrics_path, config, seq: int, peak_flops: float, devices: int) -> tuple[float, float]:
    "The median tokens/s of a run's training steps, and its MFU (chapter 17's FLOPs per token, the peak of all devices)."
    rows = read_metrics(metrics_path)                # skips a half-written last line
    speeds = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s") is not None]   # evaluation rows have none
    tokens_per_s = statistics.median(speeds)         # robust to the first step and to a step that wrote a checkpoint
    return tokens_per_s, tokens_per_s * flops_per_token(config, seq) / (devices * peak_flops)
