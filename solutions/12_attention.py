"""Solutions to chapter 12's exercises — try first, then compare."""
import math

import torch


def cached_causal_mask(T: int, offset: int) -> torch.Tensor:
    "Bool [T, offset + T]: True where query i (at position offset + i) may attend to key j, i.e. j ≤ offset + i."
    j = torch.arange(offset + T)[None, :]           # key positions 0 … offset+T-1
    i = torch.arange(offset, offset + T)[:, None]   # query positions offset … offset+T-1
    return j <= i


def rope_rotate(x: torch.Tensor, pos: int, theta: float = 10000.0) -> torch.Tensor:
    "Rotate one vector x [d] to position `pos`: pair (i, i + d/2) turns by pos·theta^(-2i/d)."
    d = x.shape[-1]
    freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = (pos * freqs).to(x.dtype)
    x1, x2 = x[: d // 2], x[d // 2:]
    return torch.cat([x1 * angle.cos() - x2 * angle.sin(), x2 * angle.cos() + x1 * angle.sin()])


def dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    "softmax(q·kᵀ/√d)·v for q [..., T, d], k and v [..., S, d]; causal: query i (position S-T+i) sees keys j ≤ S-T+i."
    T, S, d = q.shape[-2], k.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if causal:
        allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal=S - T)
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(dim=-1) @ v   # softmax subtracts each row's max itself: no overflow
