"""Solutions to chapter 18's exercises — try first, then compare."""
import torch
import torch.nn.functional as F


def shard_flat(flat: torch.Tensor, world_size: int) -> list[torch.Tensor]:
    "world_size shards of ceil(numel / world_size) elements each; the tail zero-padded."
    size = -(-flat.numel() // world_size)        # ceil without floats
    padded = F.pad(flat, (0, size * world_size - flat.numel()))
    return [padded[r * size:(r + 1) * size].clone() for r in range(world_size)]


def ddp_buckets(params: list[torch.Tensor], cap_bytes: int, first_cap_bytes: int) -> list[list[int]]:
    "DDP's gradient buckets: lists of indices into `params`, in the order they are all-reduced."
    buckets, current, nbytes = [], [], 0
    for i in reversed(range(len(params))):       # gradients become ready in backward: the last parameters first
        current.append(i)
        nbytes += params[i].numel() * params[i].element_size()
        if nbytes >= (first_cap_bytes if not buckets else cap_bytes):   # full: the parameter that crossed the cap stays in
            buckets.append(current)
            current, nbytes = [], 0
    return buckets + ([current] if current else [])


def ring_all_reduce(x: torch.Tensor, rank: int, world_size: int, send, recv) -> torch.Tensor:
    "This rank's copy of the sum over all ranks' `x`, by reduce-scatter + all-gather; send() goes right, recv() comes from the left."
    N = world_size
    chunks = list(x.clone().tensor_split(N))     # N pieces, even when the size doesn't divide (some may be empty)
    for s in range(N - 1):   # reduce-scatter: send chunk (rank - s) % N, add the arriving chunk (rank - s - 1) % N
        send(chunks[(rank - s) % N])
        i = (rank - s - 1) % N
        chunks[i] = chunks[i] + recv()
    # now this rank holds the complete sum of chunk (rank + 1) % N
    for s in range(N - 1):   # all-gather: pass the finished chunks around the ring
        send(chunks[(rank + 1 - s) % N])
        chunks[(rank - s) % N] = recv()
    return torch.cat(chunks)


def zero1_adamw_step(param: torch.Tensor, grad: torch.Tensor, state: dict, rank: int, world_size: int, all_gather,
                     lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> torch.Tensor:
    "One ZeRO-1 AdamW step on this rank: update only its shard of `param`, then all-gather the shards into the whole parameter."
    size = -(-param.numel() // world_size)       # FSDP's rule: equal shards, the last one zero-padded
    pad = size * world_size - param.numel()
    mine = slice(rank * size, (rank + 1) * size)
    p, g = F.pad(param, (0, pad))[mine].clone(), F.pad(grad, (0, pad))[mine]
    if not state: state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))   # this shard's moments only
    state["step"] += 1
    t, (b1, b2), m, v = state["step"], betas, state["exp_avg"], state["exp_avg_sq"]
    p.mul_(1 - lr * weight_decay)                # decoupled weight decay
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    p.addcdiv_(m / (1 - b1 ** t), (v / (1 - b2 ** t)).sqrt().add_(eps), value=-lr)
    return torch.cat(all_gather(p))[:param.numel()]
