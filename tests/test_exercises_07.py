"Chapter 7's exercise checks reject the usual wrong answers, each with a message that names the mistake."
import torch

from conftest import solutions
from llm_course.rnn import check_clip_grad_norm, check_lstm_cell_step

SOL = solutions("07_lstm")


def test_solutions_pass():
    assert check_clip_grad_norm(SOL["clip_grad_norm"]) and check_lstm_cell_step(SOL["lstm_cell_step"])


def _norm(grads): return sum(float((g ** 2).sum()) for g in grads) ** 0.5


def test_clip_per_tensor():
    def wrong(grads, max_norm):
        return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads], _norm(grads)
    r = check_clip_grad_norm(wrong)
    assert not r and r.done and "global norm" in r.message


def test_clip_scales_small_gradients_up():
    def wrong(grads, max_norm):
        n = _norm(grads)
        return [g * (max_norm / (n + 1e-6)) for g in grads], n
    r = check_clip_grad_norm(wrong)
    assert not r and "only shrink" in r.message


def test_clip_sum_of_norms():
    def wrong(grads, max_norm):
        n = sum(g.norm().item() for g in grads)
        return [g * min(1.0, max_norm / (n + 1e-6)) for g in grads], n
    r = check_clip_grad_norm(wrong)
    assert not r and "not the sum of the tensors' norms" in r.message


def test_clip_returns_norm_after_clipping():
    def wrong(grads, max_norm):
        n = _norm(grads); s = min(1.0, max_norm / (n + 1e-6))
        return [g * s for g in grads], n * s
    r = check_clip_grad_norm(wrong)
    assert not r and "BEFORE clipping" in r.message


def test_clip_nan_on_zeros():
    def wrong(grads, max_norm):
        n = _norm(grads)
        return [g * min(1.0, max_norm / n) for g in grads], n
    r = check_clip_grad_norm(wrong)
    assert not r and "all-zero gradients" in r.message


def _step(x, h, c, w_ih, w_hh, b_ih, b_hh, order="ifgo", cand=torch.tanh, gate=torch.sigmoid, out_tanh=True):
    blocks = dict(zip(order, (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=-1)))
    i, f, g, o = gate(blocks["i"]), gate(blocks["f"]), cand(blocks["g"]), gate(blocks["o"])
    c = f * c + i * g
    return o * (torch.tanh(c) if out_tanh else c), c


def test_lstm_input_and_forget_gates_swapped():
    r = check_lstm_cell_step(lambda *a: _step(*a, order="figo"))
    assert not r and "i, f, g, o" in r.message and "input and forget" in r.message


def test_lstm_g_and_o_swapped():
    r = check_lstm_cell_step(lambda *a: _step(*a, order="ifog"))
    assert not r and "i, f, g, o" in r.message


def test_lstm_tanh_and_sigmoid_swapped():
    r = check_lstm_cell_step(lambda *a: _step(*a, cand=torch.sigmoid, gate=torch.tanh))
    assert not r and "swapped them" in r.message


def test_lstm_no_tanh_on_the_cell():
    r = check_lstm_cell_step(lambda *a: _step(*a, out_tanh=False))
    assert not r and "o ⊙ tanh(c)" in r.message and "hidden state h" in r.message


def test_lstm_returns_only_h():
    r = check_lstm_cell_step(lambda *a: _step(*a)[0])
    assert not r and "return the pair (h, c)" in r.message
