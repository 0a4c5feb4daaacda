"""Solutions to chapter 19's exercises — try first, then compare."""
import numpy as np

from llm_course.core import ConfigError


def tokens_per_step(micro_batch: int, block_size: int, grad_accum: int, world_size: int) -> int:
    "Tokens one optimizer step reads over all ranks."
    # every rank runs grad_accum micro-batches of micro_batch sequences of block_size tokens before the step
    return micro_batch * block_size * grad_accum * world_size


def steps_for_tokens(tokens: float, micro_batch: int, block_size: int, grad_accum: int, world_size: int) -> int:
    "The fewest optimizer steps that read at least `tokens` tokens."
    per_step = tokens_per_step(micro_batch, block_size, grad_accum, world_size)
    return -(-int(tokens) // per_step)  # ceiling division in integers: no float rounding for huge budgets


def rank_rows(batch_size: int, rank: int, world_size: int) -> slice:
    "Rank `rank`'s rows of a global batch of `batch_size` sequences split over `world_size` ranks."
    if batch_size % world_size:
        raise ConfigError(f"batch_size={batch_size} cannot be split evenly over {world_size} ranks: "
                          f"use a multiple of {world_size}, e.g. batch_size={max(world_size, batch_size - batch_size % world_size)}")
    per = batch_size // world_size
    return slice(rank * per, (rank + 1) * per)


def global_batch_ids(step: int, batch_size: int, n_windows: int, seed: int) -> np.ndarray:
    "Window ids read by optimizer step `step` (global batch), epoch by epoch in a seeded order."
    positions = step * batch_size + np.arange(batch_size)  # positions in the endless, epoch-after-epoch sequence
    orders = {}                                          # each epoch's permutation, computed once
    ids = []
    for p in positions:
        epoch = int(p // n_windows)
        if epoch not in orders: orders[epoch] = np.random.default_rng([seed, epoch]).permutation(n_windows)
        ids.append(orders[epoch][p % n_windows])
    return np.array(ids)
