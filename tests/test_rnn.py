"llm_course.rnn: cells and stacks match PyTorch's given the same weights; truncated BPTT carries state, not gradients."
import math

import pytest
import torch
import torch.nn as nn

from llm_course.core import ConfigError
from llm_course.rnn import (LSTM, RNN, LSTMCell, LSTMLM, RNNCell, RNNLM, detach_state, evaluate_recurrent,
                            train_tbptt)

torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("ours, theirs", [(RNNCell, nn.RNNCell), (LSTMCell, nn.LSTMCell)])
def test_cell_matches_torch(ours, theirs):
    torch.manual_seed(0)
    a, b = ours(5, 7), theirs(5, 7)
    b.load_state_dict(a.state_dict())  # same names and shapes
    x = torch.randn(3, 5)
    out_a, out_b = a(x), b(x)
    if isinstance(out_a, tuple):
        for u, v in zip(out_a, out_b): torch.testing.assert_close(u, v, atol=1e-6, rtol=0)
    else: torch.testing.assert_close(out_a, out_b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("ours, theirs", [(RNN, nn.RNN), (LSTM, nn.LSTM)])
def test_stack_outputs_and_gradients_match_torch(ours, theirs, layers):
    torch.manual_seed(1)
    a = ours(4, 6, num_layers=layers)
    b = theirs(4, 6, num_layers=layers, batch_first=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 9, 4)
    ya, sa = a(x); yb, sb = b(x)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=0)
    (ya.square().sum()).backward(); (yb.square().sum()).backward()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, atol=1e-5, rtol=0, msg=f"gradient of {n}")


def test_state_carried_equals_one_long_pass():
    "Running two halves with the carried state gives exactly the outputs of one pass over the whole sequence."
    torch.manual_seed(2)
    lm = LSTMLM(11, emb_dim=8, hidden_size=16, num_layers=2)
    idx = torch.randint(0, 11, (3, 20))
    whole = lm(idx)
    first, state = lm(idx[:, :10], return_state=True)
    second = lm(idx[:, 10:], state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-6, rtol=0)


def test_detach_state_keeps_values_cuts_graph():
    h = torch.randn(2, 3, requires_grad=True) * 2
    c = torch.randn(2, 3, requires_grad=True) * 3
    dh, dc = detach_state((h, c))
    assert not dh.requires_grad and torch.equal(dh, h) and torch.equal(dc, c)
    assert detach_state(None) is None


def test_tbptt_learns_a_repeating_sequence():
    torch.manual_seed(3)
    ids = torch.arange(7).repeat(300)  # 0..6 repeated: perfectly predictable given one token
    lm = RNNLM(7, emb_dim=8, hidden_size=16)
    before = evaluate_recurrent(lm, ids, batch_size=4, bptt=16)
    hist = train_tbptt(lm, ids, steps=60, batch_size=4, bptt=16, lr=1e-2)
    after = evaluate_recurrent(lm, ids, batch_size=4, bptt=16)
    assert len(hist["loss"]) == 60 and len(hist["grad_norm"]) == 60
    assert before > math.log(7) * 0.8 and after < 0.3


@pytest.mark.parametrize("kwargs", [dict(steps=0), dict(batch_size=0), dict(bptt=-1)])
def test_tbptt_rejects_bad_sizes(kwargs):
    lm = RNNLM(5, emb_dim=4, hidden_size=4)
    args = dict(steps=2, batch_size=2, bptt=4) | kwargs
    with pytest.raises(ConfigError, match="must be an int ≥ 1"):
        train_tbptt(lm, torch.arange(5).repeat(20), **args)


def test_scratch_and_torch_impl_agree():
    torch.manual_seed(4)
    a = LSTMLM(9, emb_dim=6, hidden_size=8, num_layers=2, impl="scratch")
    b = LSTMLM(9, emb_dim=6, hidden_size=8, num_layers=2, impl="torch")
    b.load_state_dict(a.state_dict())
    idx = torch.randint(0, 9, (2, 12))
    torch.testing.assert_close(a(idx), b(idx), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kw", [dict(clip=-1.0), dict(clip=0), dict(lr=0), dict(lr=-1e-3)])
def test_train_tbptt_rejects_non_positive_clip_and_lr(kw):
    model, ids = LSTMLM(10, 4, 8), torch.arange(200) % 10
    with pytest.raises(ConfigError, match=f"{next(iter(kw))} must be a positive number"): train_tbptt(model, ids, steps=1, **kw)


def test_evaluate_recurrent_names_its_own_sizes():
    with pytest.raises(ConfigError, match="bptt must be an int ≥ 1"): evaluate_recurrent(LSTMLM(10, 4, 8), torch.arange(100) % 10, bptt=0)
