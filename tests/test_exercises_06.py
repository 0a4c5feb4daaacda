"Chapter 6's exercise checks reject the usual wrong answers, each with a message that names the mistake."
import torch

from conftest import solutions
from llm_course.nnlm import check_make_windows, check_mlp_forward, context_windows

SOL = solutions("06_neural_lm")


def test_solutions_pass():
    assert check_make_windows(SOL["make_windows"]) and check_mlp_forward(SOL["mlp_forward"])


def test_windows_without_padding():  # only the positions with a full window
    def wrong(ids, context, pad_id):
        return [ids[t - context + 1:t + 1] for t in range(context - 1, len(ids))]
    r = check_make_windows(wrong)
    assert not r and r.done and "one window per token" in r.message


def test_windows_off_by_one():  # the window ends at t − 1: it leaves out the token it should end with
    def wrong(ids, context, pad_id):
        padded = [pad_id] * context + ids
        return [padded[t:t + context] for t in range(len(ids))]
    r = check_make_windows(wrong)
    assert not r and "ends AT token t" in r.message


def test_windows_newest_first():
    def wrong(ids, context, pad_id):
        padded = [pad_id] * (context - 1) + ids
        return [padded[t:t + context][::-1] for t in range(len(ids))]
    r = check_make_windows(wrong)
    assert not r and "oldest token first" in r.message


def test_windows_padded_on_the_right():
    def wrong(ids, context, pad_id):
        return [(ids[max(0, t - context + 1):t + 1] + [pad_id] * context)[:context] for t in range(len(ids))]
    r = check_make_windows(wrong)
    assert not r and "pad on the left" in r.message


def _forward(idx, C, H, d, U, b, W=None, flip=False, act=torch.tanh, pad=None, use_w=True):
    V, m = U.shape[0], C.shape[1]
    wins = context_windows(idx, H.shape[1] // m, V if pad is None else pad)
    x = C[wins.flip(-1) if flip else wins].flatten(-2)
    y = b + act(d + x @ H.T) @ U.T
    return y + x @ W.T if W is not None and use_w else y


def test_mlp_newest_first():
    r = check_mlp_forward(lambda *a: _forward(*a, flip=True))
    assert not r and r.done and "oldest token first" in r.message


def test_mlp_without_tanh():
    r = check_mlp_forward(lambda *a: _forward(*a, act=lambda t: t))
    assert not r and "left out the tanh" in r.message


def test_mlp_pads_with_token_0():
    r = check_mlp_forward(lambda *a: _forward(*a, pad=0))
    assert not r and "not with token 0" in r.message


def test_mlp_ignores_the_direct_connection():
    r = check_mlp_forward(lambda *a: _forward(*a, use_w=False))
    assert not r and "direct connection" in r.message


def test_mlp_last_position_only():
    r = check_mlp_forward(lambda *a: _forward(*a)[:, -1])
    assert not r and "[B, T, V]" in r.message
