"""Solutions to chapter 13's exercises — try first, then compare."""
import torch

from llm_course.model import ModelConfig


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    "x / √(mean(x²) + eps) · weight, the mean over the last axis."
    return weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def prenorm_block(x, norm1, attn, norm2, mlp):
    "One pre-norm block: the sub-layers read normalised copies; their outputs are added to the untouched stream."
    x = x + attn(norm1(x))
    return x + mlp(norm2(x))


def count_params(config: ModelConfig) -> int:
    "Parameters of `Transformer(config)`: embeddings, blocks, final norm, output head (unless tied)."
    c, b = config, int(config.bias)
    d, f, hd = c.d_model, c.d_ff, c.d_model // c.n_head
    qkv_out = (c.n_head + 2 * c.n_kv_head) * hd            # queries, then keys and values for the kv heads only
    attn = d * qkv_out + b * qkv_out + c.n_head * hd * d + b * d
    n_in = 2 if c.mlp == "swiglu" else 1                    # SwiGLU: gate and up; GELU: one input matrix
    mlp = n_in * (d * f + b * f) + f * d + b * d
    norm = 2 * d if (c.norm == "layernorm" and c.bias) else d
    embeddings = c.vocab_size * d + (c.block_size * d if c.pos == "learned" else 0)
    head = 0 if c.tie_weights else c.vocab_size * d
    return embeddings + c.n_layer * (attn + mlp + 2 * norm) + norm + head
