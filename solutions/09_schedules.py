"""Solutions to chapter 9's exercises — try first, then compare."""
import math


def warmup_cosine(step: int, *, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> float:
    "Linear warmup from 0, then a half cosine from 1 to `min_ratio` at `total_steps`, then the floor."
    if step < warmup_steps: return step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))  # clamped: the floor after the run
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def wsd(step: int, *, total_steps: int, warmup_steps: int = 0, decay_steps: int, min_ratio: float = 0.0) -> float:
    "Linear warmup from `min_ratio`, hold 1, linear decay over the last `decay_steps` steps to `min_ratio`."
    if step < warmup_steps: return min_ratio + (1 - min_ratio) * step / warmup_steps
    decay_start = total_steps - decay_steps
    if step < decay_start: return 1.0
    progress = min(1.0, (step - decay_start) / max(1, decay_steps))
    return min_ratio + (1 - min_ratio) * (1 - progress)
