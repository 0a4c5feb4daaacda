"""Solutions to chapter 16's exercises — try first, then compare."""
import torch


def precision_recall_f1(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    "Per-class (precision, recall, F1) from a confusion matrix [C, C] (rows: true, columns: predicted); 0 where undefined."
    cm = cm.double()
    tp = cm.diag()
    predicted, actual = cm.sum(0), cm.sum(1)          # column sums: predicted as c; row sums: truly c
    safe = lambda a, b: torch.where(b > 0, a / b.clamp(min=1e-300), torch.zeros_like(a))   # 0/0 -> 0
    precision, recall = safe(tp, predicted), safe(tp, actual)
    return precision, recall, safe(2 * precision * recall, precision + recall)


def lora_merge(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float, r: int) -> torch.Tensor:
    "W + (alpha/r)·B·A: the weight of the merged layer, [d_out, d_in]."
    return W + (alpha / r) * (B @ A)                   # [d_out, r] @ [r, d_in]; a new tensor, W unchanged


def last_token_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    "h[b, t_b] where t_b is the last position of row b whose mask is 1: [B, d]."
    T = mask.size(1)
    positions = torch.arange(1, T + 1, device=mask.device) * mask   # 0 on padding, t+1 on real tokens
    last = positions.argmax(1)                                      # the largest real position, whatever the padding side
    return h[torch.arange(h.size(0), device=h.device), last]
