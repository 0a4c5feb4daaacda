"""Solutions to chapter 15's exercises — try first, then compare."""
import math

import torch


def bits_per_byte(loss: float, n_tokens: int, text: str) -> float:
    "Total bits (loss · n_tokens in nats, converted) divided by the UTF-8 bytes of `text`."
    total_bits = loss * n_tokens / math.log(2)      # nats → bits: divide by ln 2
    return total_bits / len(text.encode("utf-8"))   # bytes, not characters: "é" is 2 bytes, "数" 3


def bert_mask(ids: torch.Tensor, pick: torch.Tensor, kind: torch.Tensor, random_ids: torch.Tensor,
              mask_id: int, prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    "BERT's corruption of `ids` from uniform draws `pick`, `kind` (same shape) and replacement tokens `random_ids`."
    picked = pick < prob
    labels = torch.where(picked, ids, torch.full_like(ids, -100))         # predict only the picked tokens
    inputs = torch.where(picked & (kind < 0.8), torch.full_like(ids, mask_id), ids)   # 80%: [MASK]
    inputs = torch.where(picked & (kind >= 0.8) & (kind < 0.9), random_ids, inputs)   # 10%: a random token
    return inputs, labels                                                 # the last 10% stay as they were


def markov_entropy_rate(P: torch.Tensor) -> float:
    "Entropy rate (nats per step) of the Markov chain with transition matrix P (rows sum to 1)."
    P = torch.as_tensor(P, dtype=torch.float64)
    n = len(P)
    # the stationary distribution: π (P − I) = 0 and Σπ = 1, solved as one (over-determined) linear system
    A = torch.cat([P.T - torch.eye(n, dtype=P.dtype), torch.ones(1, n, dtype=P.dtype)])
    b = torch.cat([torch.zeros(n, dtype=P.dtype), torch.ones(1, dtype=P.dtype)])
    pi = torch.linalg.lstsq(A, b[:, None]).solution[:, 0]
    row_entropy = -torch.xlogy(P, P).sum(dim=1)    # xlogy(0, 0) = 0: impossible transitions add no surprise
    return float(pi @ row_entropy)
