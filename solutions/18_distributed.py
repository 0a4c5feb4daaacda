"""Solutions to chapter 18's exercises — try first, then compare."""
import torch
import torch.nn.functional as F


def average_gradients(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    "One tensor per rank: the element-wise mean of all ranks' gradients (what DDP's all-reduce leaves on each rank)."
    mean = torch.stack(grads).mean(0)            # sum over ranks, divided by the world size
    return [mean.clone() for _ in grads]         # every rank holds its own copy


def shard_flat(flat: torch.Tensor, world_size: int) -> list[torch.Tensor]:
    "world_size shards of ceil(numel / world_size) elements each; the tail zero-padded."
    size = -(-flat.numel() // world_size)        # ceil without floats
    padded = F.pad(flat, (0, size * world_size - flat.numel()))
    return [padded[r * size:(r + 1) * size].clone() for r in range(world_size)]


def ring_all_reduce(xs: list[torch.Tensor], send) -> list[torch.Tensor]:
    "Every rank's copy of sum(xs), by reduce-scatter + all-gather around a ring; ranks exchange data only via send(src, (src+1) % N, t)."
    N = len(xs)
    chunks = [list(x.clone().tensor_split(N)) for x in xs]    # chunks[r][i]: rank r's chunk i (N pieces, even if tiny)
    for s in range(N - 1):   # reduce-scatter: rank r sends chunk (r - s) % N to the right, adds chunk (r - s - 1) % N from the left
        arriving = [send(r, (r + 1) % N, chunks[r][(r - s) % N]) for r in range(N)]   # all sends of a step happen at once
        for r in range(N):
            chunks[r][(r - s - 1) % N] = chunks[r][(r - s - 1) % N] + arriving[(r - 1) % N]
    # now rank r holds the complete sum of chunk (r + 1) % N
    for s in range(N - 1):   # all-gather: pass the finished chunks around
        arriving = [send(r, (r + 1) % N, chunks[r][(r + 1 - s) % N]) for r in range(N)]
        for r in range(N):
            chunks[r][(r - s) % N] = arriving[(r - 1) % N]
    return [torch.cat(c) for c in chunks]
