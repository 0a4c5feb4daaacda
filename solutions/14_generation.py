"""Solutions to chapter 14's exercises — try first, then compare."""
import torch


def keep_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    "Set every logit below the k-th largest of its row to -inf (ties with the k-th stay)."
    k = min(k, logits.shape[-1])
    kth = logits.topk(k, dim=-1).values[..., -1:]          # the k-th largest value of each row
    return logits.masked_fill(logits < kth, float("-inf"))


def keep_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    "Keep the nucleus: the most likely tokens until their probability reaches p (the token that crosses p included)."
    if p >= 1: return logits                                # everything: even tokens whose probability rounds to 0
    probs, order = logits.softmax(-1).sort(dim=-1, descending=True)
    mass_above = probs.cumsum(-1) - probs                  # probability of the tokens ranked above each one
    drop_sorted = mass_above >= p                          # p was reached before this token: drop it
    drop = drop_sorted.scatter(-1, order, drop_sorted)     # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def penalize_repeats(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    "For every token in row b's `seen`: divide its logit by `penalty` if positive, multiply if negative (once per token)."
    score = logits.gather(-1, seen)                        # the logits of the seen tokens (duplicates give the same value)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return logits.scatter(-1, seen, score)
