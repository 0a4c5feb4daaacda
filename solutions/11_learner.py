"""Solutions to chapter 11's exercises — try first, then compare."""
import math

from llm_course.learner import Callback
from llm_course.optim import clip_grad_norm


class ClipGradients(Callback):
    "Clip the global gradient norm to `max_norm` before the optimizer steps; record the norm before clipping."
    def __init__(self, max_norm: float = 1.0): self.max_norm = max_norm

    def after_backward(self, learn):  # the gradients exist and the optimizer has not used them yet
        learn.grad_norm = float(clip_grad_norm(learn.model.parameters(), self.max_norm))


class PlateauStop(Callback):
    "Stop when the validation loss has not improved by more than `min_delta` for `patience` evaluations."
    def __init__(self, patience: int = 3, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.wait = math.inf, 0

    def after_eval(self, learn):
        if learn.val_loss < self.best - self.min_delta: self.best, self.wait = learn.val_loss, 0  # a real improvement: new best
        else: self.wait += 1  # (a gain smaller than min_delta does not move the best)
        if self.wait >= self.patience:
            learn.stop_reason = f"no improvement > {self.min_delta} for {self.patience} evaluations (best {self.best:.4f})"
