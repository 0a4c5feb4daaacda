"""Solutions to chapter 6's exercises — try first, then compare."""
import torch

from llm_course.nnlm import context_windows


def make_windows(ids: list[int], context: int, pad_id: int) -> list[list[int]]:
    "For each position t: the `context` ids ending at t, oldest first, left-padded with `pad_id`."
    padded = [pad_id] * (context - 1) + list(ids)  # the padding stands for the text before the first token
    return [padded[t:t + context] for t in range(len(ids))]  # padded[t + context - 1] is ids[t]


def mlp_forward(idx, C, H, d, U, b, W=None):
    "Logits [B, T, V]: y = b + W x + U tanh(d + H x), x the concatenated embeddings of each left-padded window."
    V, m = U.shape[0], C.shape[1]
    n = H.shape[1] // m
    x = C[context_windows(idx, n, pad_id=V)].flatten(-2)  # [B, T, n, m] -> [B, T, n*m], oldest token first
    y = b + torch.tanh(d + x @ H.T) @ U.T
    return y if W is None else y + x @ W.T
