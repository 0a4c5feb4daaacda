"""Solutions to chapter 12a's exercises — try first, then compare."""
import math

import torch


def online_logsumexp(blocks) -> torch.Tensor:
    "log Σ exp over each row's columns, which arrive as [R, b] blocks: keep a running max m and a running sum l of exp(x − m)."
    m = l = None
    for b in blocks:
        if m is None:
            m = torch.full(b.shape[:-1], -math.inf, dtype=b.dtype, device=b.device)
            l = torch.zeros_like(m)
        m_new = torch.maximum(m, b.amax(-1))
        m_safe = m_new.masked_fill(m_new == -math.inf, 0.0)   # rows that have seen only -inf so far: no nan from -inf − (-inf)
        l = l * torch.exp(m - m_safe) + torch.exp(b - m_safe[..., None]).sum(-1)
        m = m_new
    return m + l.log()


def merge_attention(o1: torch.Tensor, lse1: torch.Tensor, o2: torch.Tensor, lse2: torch.Tensor):
    "Attention over keys A ∪ B from attention over A and over B: weight each part by its share exp(lse_i − lse) of the mass."
    lse = torch.logaddexp(lse1, lse2)                          # log(e^lse1 + e^lse2), without overflow
    return torch.exp(lse1 - lse)[..., None] * o1 + torch.exp(lse2 - lse)[..., None] * o2, lse


def softmax_backward(p: torch.Tensor, dp: torch.Tensor) -> torch.Tensor:
    "dS = P∘(dP − D), with D_i = Σ_j P_ij·dP_ij (the rows of the softmax's Jacobian diag(p) − p·pᵀ)."
    return p * (dp - (p * dp).sum(-1, keepdim=True))
