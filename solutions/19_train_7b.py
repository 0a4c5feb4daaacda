"""Solutions to chapter 19's exercises — try first, then compare."""
import numpy as np

from llm_course.distributed import permuted
from llm_course.model import ModelConfig


def activation_bytes_per_token(config: ModelConfig, act_bytes: int) -> int:
    "Bytes one block keeps per token for its backward pass (fused attention, no dropout, no checkpointing)."
    c, a = config, act_bytes
    d, H, K, hd = c.d_model, c.n_head, c.n_kv_head, c.head_dim
    if c.norm == "rmsnorm": norm = 4 * d + 4 + 2 * a * d        # input in fp32, 1/rms, x/rms, the output
    else: norm = 2 * a * d + 8                                  # LayerNorm: input, output, mean and 1/std in fp32
    attn = a * (H + 2 * K) * hd                                 # q, k, v: only n_kv_head heads of keys and values
    attn += a * H * hd + 4 * H                                  # the attention output, and its fp32 log-sum-exp per head
    if c.pos == "rope": attn += a * (H + K) * hd                # the rotated q and k
    mlp = (4 if c.mlp == "swiglu" else 2) * a * c.d_ff          # SwiGLU: gate, silu(gate), up, product; GELU: fc out, gelu out
    return 2 * norm + attn + mlp


def kv_cache_bytes(config: ModelConfig, context: int, batch_size: int, bytes_per_value: int) -> int:
    "Bytes of the keys and values a model caches for `batch_size` sequences of `context` tokens."
    per_token_per_layer = 2 * config.n_kv_head * config.head_dim * bytes_per_value   # K and V, kv heads only (GQA)
    return config.n_layer * per_token_per_layer * context * batch_size


def global_batch_ids(step: int, batch_size: int, n_windows: int, seed: int) -> np.ndarray:
    "Window ids read by optimizer step `step` (global batch), epoch by epoch in a seeded order."
    positions = step * batch_size + np.arange(batch_size)  # positions in the endless, epoch-after-epoch sequence
    return np.array([permuted(np.array([p % n_windows]), n_windows, seed, int(p // n_windows))[0] for p in positions])
