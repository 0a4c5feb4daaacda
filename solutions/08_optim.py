"""Solutions to chapter 8's exercises — try first, then compare."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def adam_step(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int,
              lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
    "One Adam step: the new (p, m, v); t is this step's number, 1 on the first."
    b1, b2 = betas
    m = b1 * m + (1 - b1) * g  # running mean of the gradient…
    v = b2 * v + (1 - b2) * g * g  # …and of its square
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)  # undo the pull towards the zeros they started from
    return p - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adamw_step(p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int,
               lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
    "One AdamW step with decoupled weight decay: the new (p, m, v)."
    p = p * (1 - lr * weight_decay)  # shrink the weights first, outside the moments
    return adam_step(p, g, m, v, t, lr, betas, eps)


def accumulate_gradients(model: nn.Module, micro_batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    "Backward through every micro-batch so the gradients equal one big batch's; return the big-batch mean loss."
    n = sum(int((y != -100).sum()) for _, y in micro_batches)  # real targets in the whole batch, known up front
    total = 0.0
    for x, y in micro_batches:
        loss_sum = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum")
        (loss_sum / n).backward()  # each token weighs 1/n, whichever micro-batch it is in
        total += loss_sum.item()
    return total / n
