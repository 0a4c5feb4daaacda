"""Solutions to chapter 1's exercises — try first, then compare."""
import torch


def train_val_split(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    "The start of `ids` for training, the last `val_fraction` of it for validation."
    cut = round(len(ids) * (1 - val_fraction))  # round, not int(): 589.6 tokens is 590
    return ids[:cut], ids[cut:]


def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    "Random windows x[B, T] of `data` and their targets y = x shifted left by one token."
    # offsets 0 … len(data) - block_size - 1: randint's high is exclusive, and the last window needs one more token for y
    offsets = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[o:o + block_size] for o in offsets.tolist()]).long()
    y = torch.stack([data[o + 1:o + block_size + 1] for o in offsets.tolist()]).long()
    return x, y


def sequential_batches(data: torch.Tensor, batch_size: int, block_size: int):
    "Yield (x, y): `batch_size` contiguous streams walked in order, `block_size` tokens at a time."
    L = (len(data) - 1) // batch_size  # tokens per stream; the -1 leaves room for the last target
    streams = torch.stack([data[b * L:b * L + L + 1] for b in range(batch_size)]).long()  # [B, L + 1]
    for t0 in range(0, L, block_size):
        t = min(block_size, L - t0)  # the last step may be shorter
        yield streams[:, t0:t0 + t], streams[:, t0 + 1:t0 + t + 1]
