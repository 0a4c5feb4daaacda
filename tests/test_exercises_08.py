"Chapter 8's exercise checks reject the usual wrong answers, each with a message that names the mistake."
import torch
import torch.nn.functional as F

from conftest import solutions
from llm_course.optim import check_accumulate_gradients, check_adam_step, check_adamw_step

SOL = solutions("08_optim")
adam_step, adamw_step = SOL["adam_step"], SOL["adamw_step"]


def test_solutions_pass():
    assert check_adam_step(SOL["adam_step"]) and check_adamw_step(SOL["adamw_step"])
    assert check_accumulate_gradients(SOL["accumulate_gradients"])


def test_stub_is_not_done():
    def stub(*a): raise NotImplementedError
    r = check_adam_step(stub)
    assert not r and not r.done and "not done yet" in repr(r)


def _adam(p, g, m, v, t, lr, betas, eps, shift=0, sqrt_v=True):
    b1, b2 = betas
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    tc = t + shift
    denom = (v / (1 - b2 ** tc)).sqrt() if sqrt_v else v.sqrt() / (1 - b2 ** tc)
    return p - lr * (m / (1 - b1 ** tc)) / (denom + eps), m, v


def test_adam_bias_correction_at_the_wrong_step():
    r = check_adam_step(lambda p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8: _adam(p, g, m, v, t, lr, betas, eps, shift=1))
    assert not r and r.done and "step count of *this* step" in r.message
    r = check_adam_step(lambda p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8: _adam(p, g, m, v, t, lr, betas, eps, shift=-1))
    assert not r and "step count of *this* step" in r.message and "1 − β^0 = 0" in r.message


def test_adam_correction_without_sqrt():
    r = check_adam_step(lambda p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8: _adam(p, g, m, v, t, lr, betas, eps, sqrt_v=False))
    assert not r and "before* the square root" in r.message


def test_adam_no_bias_correction():
    def wrong(p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        m, v = betas[0] * m + (1 - betas[0]) * g, betas[1] * v + (1 - betas[1]) * g * g
        return p - lr * m / (v.sqrt() + eps), m, v
    r = check_adam_step(wrong)
    assert not r and "bias corrections are missing" in r.message


def test_adam_moment_without_one_minus_beta():
    def wrong(p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        m = betas[0] * m + g
        v = betas[1] * v + (1 - betas[1]) * g * g
        return p - lr * (m / (1 - betas[0] ** t)) / ((v / (1 - betas[1] ** t)).sqrt() + eps), m, v
    r = check_adam_step(wrong)
    assert not r and "weight (1 − β)" in r.message and "first moment" in r.message


def test_adamw_decay_through_the_gradient():
    def wrong(p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        return adam_step(p, g + weight_decay * p, m, v, t, lr, betas, eps)  # Adam's L2, not AdamW
    r = check_adamw_step(wrong)
    assert not r and "added to the gradient" in r.message and "decoupled" in r.message


def test_adamw_decay_without_lr():
    def wrong(p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        return adam_step(p * (1 - weight_decay), g, m, v, t, lr, betas, eps)
    r = check_adamw_step(wrong)
    assert not r and "scaled by the learning rate" in r.message


def test_adamw_decay_after_the_step():
    def wrong(p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        p, m, v = adam_step(p, g, m, v, t, lr, betas, eps)
        return p * (1 - lr * weight_decay), m, v
    r = check_adamw_step(wrong)
    assert not r and "*before* the Adam step" in r.message


def test_accumulation_mean_of_means():
    def wrong(model, micro_batches):
        total = 0.0
        for x, y in micro_batches:
            if not (y != -100).any(): continue
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100) / len(micro_batches)
            loss.backward(); total += loss.item()
        return total
    r = check_accumulate_gradients(wrong)
    assert not r and "mean of each micro-batch's mean" in r.message


def test_accumulation_not_divided():
    def wrong(model, micro_batches):
        n = sum(int((y != -100).sum()) for _, y in micro_batches); total = 0.0
        for x, y in micro_batches:
            s = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum")
            s.backward(); total += s.item()
        return total / n
    r = check_accumulate_gradients(wrong)
    assert not r and "too large" in r.message and "divide each summed loss" in r.message


def test_accumulation_wrong_loss_returned():
    def wrong(model, micro_batches):
        SOL["accumulate_gradients"](model, micro_batches); return 0.0
    r = check_accumulate_gradients(wrong)
    assert not r and "return the big-batch mean loss" in r.message
