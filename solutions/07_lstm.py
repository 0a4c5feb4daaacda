"""Solutions to chapter 7's exercises — try first, then compare."""
import torch


def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    "Scale every gradient by min(1, max_norm / global norm); return the clipped list and the norm before clipping."
    norm = sum(float((g.double() ** 2).sum()) for g in grads) ** 0.5  # one norm over every element of every tensor
    scale = min(1.0, max_norm / (norm + 1e-6))  # only shrink; the 1e-6 keeps all-zero gradients finite
    return [g * scale for g in grads], norm


def lstm_cell_step(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    "One LSTM step with PyTorch's stacked weights (gate order i, f, g, o): the new (h, c)."
    i, f, g, o = (x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c
