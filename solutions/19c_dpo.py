"""Solutions to chapter 19c's exercises — try first, then compare."""
import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def my_dpo_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor, beta: float) -> torch.Tensor:
    "Per-pair DPO loss −log σ(β·((pc − rc) − (pr − rr))), [B]."
    margin = beta * ((pc - rc) - (pr - rr))      # difference of the implicit rewards
    return -F.logsigmoid(margin)                 # = softplus(−margin): finite for any margin


def answer_logps(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    "Σ over the kept targets of log softmax(logits)[y], one value per row [B]."
    logp = logits.log_softmax(-1)
    keep = y != IGNORE_INDEX
    picked = logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)   # clamp: -100 is not an index (masked below)
    return (picked * keep).sum(1)
