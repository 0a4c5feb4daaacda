"Chapter 11's exercise checks reject the usual wrong answers, each with a message that names the mistake."
import math

import torch.nn as nn

from conftest import solutions
from llm_course.learner import Callback, check_clip_callback, check_plateau_stop
from llm_course.optim import clip_grad_norm

SOL = solutions("11_learner")


def test_solutions_pass():
    assert check_clip_callback(SOL["ClipGradients"]) and check_plateau_stop(SOL["PlateauStop"])


class ClipAfterStep(Callback):
    "Clips once the optimizer has already used the gradients."
    def __init__(self, max_norm): self.max_norm = max_norm
    def after_step(self, learn): learn.grad_norm = float(clip_grad_norm(learn.model.parameters(), self.max_norm))


class ClipPerTensor(Callback):
    def __init__(self, max_norm): self.max_norm = max_norm
    def after_backward(self, learn):
        norms = [float(clip_grad_norm([p], self.max_norm)) for p in learn.model.parameters()]
        learn.grad_norm = math.sqrt(sum(n * n for n in norms))


class ClipNoNorm(Callback):
    def __init__(self, max_norm): self.max_norm = max_norm
    def after_backward(self, learn): clip_grad_norm(learn.model.parameters(), self.max_norm)


class ClipNormAfter(Callback):
    def __init__(self, max_norm): self.max_norm = max_norm
    def after_backward(self, learn):
        clip_grad_norm(learn.model.parameters(), self.max_norm)
        learn.grad_norm = float(nn.utils.get_total_norm([p.grad for p in learn.model.parameters()]))


def test_clip_after_the_step():
    r = check_clip_callback(ClipAfterStep)
    assert not r and r.done and "unclipped gradients" in r.message and "after_backward" in r.message


def test_clip_per_tensor():
    r = check_clip_callback(ClipPerTensor)
    assert not r and "global norm" in r.message


def test_clip_without_recording_the_norm():
    r = check_clip_callback(ClipNoNorm)
    assert not r and "learn.grad_norm is not set" in r.message


def test_clip_records_the_norm_after_clipping():
    r = check_clip_callback(ClipNormAfter)
    assert not r and "*after* clipping" in r.message


def _plateau(late=0, vs_previous=False, use_delta=True):
    class Wrong(Callback):
        def __init__(self, patience=3, min_delta=0.0): self.patience, self.min_delta, self.best, self.prev, self.wait = patience, min_delta, math.inf, math.inf, 0
        def after_eval(self, learn):
            ref = self.prev if vs_previous else self.best
            if learn.val_loss < ref - (self.min_delta if use_delta else 0): self.best, self.wait = learn.val_loss, 0
            else: self.wait += 1
            self.prev = learn.val_loss
            if self.wait >= self.patience + late: learn.stop_reason = "plateau"
    return Wrong


def test_plateau_off_by_one_late():
    r = check_plateau_stop(_plateau(late=1))
    assert not r and "one evaluation late" in r.message


def test_plateau_off_by_one_early():
    r = check_plateau_stop(_plateau(late=-1))
    assert not r and "one evaluation early" in r.message


def test_plateau_against_the_previous_loss():
    r = check_plateau_stop(_plateau(vs_previous=True))
    assert not r and "*best* loss so far" in r.message


def test_plateau_ignores_min_delta():
    r = check_plateau_stop(_plateau(use_delta=False))
    assert not r and "more than min_delta" in r.message


def test_plateau_never_stops():
    class Never(Callback):
        def __init__(self, patience=3, min_delta=0.0): pass
        def after_eval(self, learn): pass
    r = check_plateau_stop(Never)
    assert not r and "yours stopped never" in r.message and "learn.stop_reason" in r.message
