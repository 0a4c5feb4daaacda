"Tests of llm_course.nnlm: the Bengio-style MLP language model."
import math

import pytest
import torch
import torch.nn.functional as F

from llm_course.nnlm import MLPLM, MLPLMConfig, context_windows


def _naive_logits(m, idx):
    "Bengio's equations, one position at a time."
    B, T = idx.shape; n = m.context
    out = torch.empty(B, T, m.vocab_size)
    for b in range(B):
        for t in range(T):
            win = [idx[b, s].item() if s >= 0 else m.pad_id for s in range(t - n + 1, t + 1)]
            x = m.emb.weight[win].flatten()
            y = m.out(torch.tanh(m.hidden(x)))
            out[b, t] = y if m.direct is None else y + m.direct(x)
    return out


def test_context_windows_left_pad_oldest_first():
    idx = torch.tensor([[3, 1, 4, 1]])
    w = context_windows(idx, 3, 9)
    assert w.shape == (1, 4, 3)
    assert w[0].tolist() == [[9, 9, 3], [9, 3, 1], [3, 1, 4], [1, 4, 1]]
    assert torch.equal(context_windows(idx, 1, 9)[..., 0], idx)


@pytest.mark.parametrize("direct", [False, True])
def test_forward_shape_and_naive_equations(direct):
    torch.manual_seed(0)
    m = MLPLM(MLPLMConfig(vocab_size=12, context=4, emb_dim=3, hidden_size=5, direct=direct))
    idx = torch.randint(0, 12, (3, 9))
    logits = m(idx)
    assert logits.shape == (3, 9, 12) and logits.dtype == torch.float32
    assert torch.allclose(logits, _naive_logits(m, idx), atol=1e-5)
    assert sum(p.numel() for p in m.parameters()) == m.config.n_params


def test_kwargs_and_config_override():
    m = MLPLM(vocab_size=7, context=2)
    assert m.config == MLPLMConfig(vocab_size=7, context=2)
    m2 = MLPLM(MLPLMConfig(vocab_size=7), hidden_size=3)
    assert m2.hidden.out_features == 3 and m2.config.vocab_size == 7


def test_causal_and_limited_to_context():
    torch.manual_seed(1)
    m = MLPLM(vocab_size=10, context=3, emb_dim=4, hidden_size=8)
    a = torch.randint(0, 10, (2, 15)); b = a.clone(); b[:, 6] = (a[:, 6] + 3) % 10
    changed = ((m(a) - m(b)).abs().amax(-1) > 0)
    assert changed[0].nonzero().flatten().tolist() == [6, 7, 8]
    # a prefix gives the same logits as the full sequence at the shared positions
    assert torch.allclose(m(a[:, :5]), m(a)[:, :5], atol=1e-6)


def test_stream_cross_entropy_matches_per_position_losses():
    torch.manual_seed(2)
    m = MLPLM(vocab_size=9, context=3, emb_dim=4, hidden_size=8, direct=True)
    s = torch.randint(0, 9, (41,))
    lo = m(s[None, :-1])[0]
    first = m.window_logits(torch.full((3,), m.pad_id))
    ref = (F.cross_entropy(lo, s[1:], reduction="sum") + F.cross_entropy(first[None], s[:1], reduction="sum")) / len(s)
    for chunk in (1, 5, 1000):
        assert m.cross_entropy(s, chunk_size=chunk) == pytest.approx(ref.item(), abs=1e-5)
    assert m.cross_entropy(s[:1]) == pytest.approx(F.cross_entropy(first[None], s[:1]).item(), abs=1e-5)


def test_untrained_model_is_near_uniform_and_training_lowers_loss():
    torch.manual_seed(3)
    V = 6
    m = MLPLM(vocab_size=V, context=2, emb_dim=4, hidden_size=16)
    ids = torch.tensor([0, 1, 2, 3, 4, 5] * 50)  # deterministic given one previous token
    start = m.cross_entropy(ids)
    assert abs(start - math.log(V)) < 0.5
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(200):
        loss = F.cross_entropy(m(ids[None, :-1]).flatten(0, 1), ids[1:])
        opt.zero_grad(); loss.backward(); opt.step()
    assert m.cross_entropy(ids) < 0.1 < start


def test_gradients_reach_every_parameter():
    m = MLPLM(vocab_size=5, context=2, emb_dim=3, hidden_size=4, direct=True)
    m(torch.tensor([[0, 1, 2, 3]])).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
