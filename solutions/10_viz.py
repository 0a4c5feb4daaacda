"""Solutions to chapter 10's exercises — try first, then compare."""
import torch


def smooth(values: list[float], beta: float = 0.9) -> list[float]:
    "Bias-corrected exponential moving average of `values`."
    out, m = [], 0.0
    for t, x in enumerate(values, 1):
        m = beta * m + (1 - beta) * x
        out.append(m / (1 - beta ** t))  # without this the first values are pulled towards m_0 = 0
    return out


def attention_distance(attn: torch.Tensor) -> torch.Tensor:
    "Mean over the queries of the attention-weighted distance i − j to the keys: [layers, heads]."
    T = attn.shape[-1]
    pos = torch.arange(T, device=attn.device)
    dist = (pos[:, None] - pos[None, :]).to(attn.dtype)  # [T, T]: query i reads key j from i − j tokens back
    return (attn * dist).sum(-1).mean(-1)
