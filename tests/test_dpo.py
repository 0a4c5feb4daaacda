"""Chapter 19c (DPO): loss, rewards and gradients equal TRL's DPOTrainer on random fp32 batches; the β → 0 and reference = policy
edge cases as derived; answer log-probs; a short DPO run on a tiny model widens the held-out margin; bad input."""
import copy, math, random

import pytest
import torch

from conftest import raises
from llm_course.core import ConfigError, DataError
from llm_course.dpo import (PreferencePair, answer_batch, check_pairs, dpo_loss, dpo_train, near_miss, pair_batch,
                            preference_metrics, reference_logps, sampled_kl, sequence_logps, trl_dpo_loss)
from llm_course.learner import IGNORE_INDEX
from llm_course.model import ModelConfig, Transformer
from llm_course.sft import encode_chat, render_chat
from llm_course.tokenizer import CharTokenizer

torch.set_num_threads(1)


def _batch(B, T, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(2 * B, T, generator=g) < 0.7).float()
    tok = -scale * torch.rand(2 * B, T, generator=g) * mask
    ref = -scale * torch.rand(2 * B, T, generator=g).mul(mask).sum(1)
    return tok[:B], tok[B:], ref[:B], ref[B:], mask


@pytest.mark.parametrize("beta", [0.01, 0.1, 0.5, 5.0])
def test_parity_with_trl(beta):
    for seed in range(10):
        B = 1 + seed % 7
        ct, rt, rc, rr, mask = _batch(B, 12, seed, scale=1.0 + seed)
        assert ct.dtype == torch.float32
        a_c, a_r = ct.clone().requires_grad_(), rt.clone().requires_grad_()
        losses, cr, rj = dpo_loss(a_c.sum(1), a_r.sum(1), rc, rr, beta)
        losses.mean().backward()
        b_c, b_r = ct.clone().requires_grad_(), rt.clone().requires_grad_()
        loss, tcr, trj = trl_dpo_loss(b_c, b_r, rc, rr, mask, beta)
        loss.backward()
        assert abs(losses.mean().item() - loss.item()) < 1e-6
        assert (cr - tcr).abs().max() < 1e-6 and (rj - trj).abs().max() < 1e-6
        assert (a_c.grad - b_c.grad).abs().max() < 1e-6 and (a_r.grad - b_r.grad).abs().max() < 1e-6
        assert a_c.grad.abs().sum() > 0  # a real gradient was compared


def test_reference_equals_policy():
    ct, rt, _, _, _ = _batch(6, 10, 0)
    pc, pr = ct.sum(1).requires_grad_(), rt.sum(1).requires_grad_()
    for beta in (0.05, 0.3, 2.0):
        pc.grad = pr.grad = None
        losses, cr, rj = dpo_loss(pc, pr, pc.detach(), pr.detach(), beta)
        losses.mean().backward()
        assert torch.allclose(losses, torch.full_like(losses, math.log(2)), atol=1e-7)
        assert (cr == 0).all() and (rj == 0).all()
        assert torch.allclose(pc.grad, torch.full_like(pc.grad, -beta / 2 / 6)) and torch.allclose(pr.grad, torch.full_like(pr.grad, beta / 2 / 6))
        # TRL agrees at this point too
        loss, tcr, _ = trl_dpo_loss(ct, rt, pc.detach(), pr.detach(), torch.ones(12, 10), beta)
        assert abs(loss.item() - math.log(2)) < 1e-6 and (tcr.abs() < 1e-6).all()


def test_beta_to_zero():
    g = torch.Generator().manual_seed(3)
    pc, pr, rc, rr = (-5 * torch.rand(8, generator=g, dtype=torch.float64) for _ in range(4))
    delta = (pc - rc) - (pr - rr)
    prev = None
    for beta in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5):
        x = pc.clone().requires_grad_()
        losses, cr, rj = dpo_loss(x, pr, rc, rr, beta)
        losses.sum().backward()
        slope = (math.log(2) - losses) / beta
        err = (slope - delta / 2).abs().max().item()
        assert prev is None or err < prev / 5  # → Δ/2, linearly in β (next term: β·Δ²/8)
        prev = err
        assert torch.allclose(x.grad / beta, torch.full_like(x.grad, -0.5), atol=beta * delta.abs().max().item())  # gradient ∝ β
        assert torch.allclose(cr - rj, beta * delta)
    assert prev < 1e-4


def _setup(n_words=24, seed=0):
    words = ["table", "chair", "lamp", "door", "window", "floor", "roof", "wall", "desk", "book", "pen", "cup", "plate", "fork",
             "knife", "spoon", "glass", "bottle", "shelf", "rug", "sofa", "bed", "clock", "vase"][:n_words]
    rng = random.Random(seed)
    pairs = [PreferencePair([{"role": "user", "content": f"Uppercase: {w}"}], w.upper(), near_miss(w, rng)) for w in words]
    tok = CharTokenizer.train("".join(render_chat(p.prompt + [{"role": "assistant", "content": p.chosen + p.rejected}]) for p in pairs))
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, d_model=32, d_ff=64))
    return pairs, tok, model


def test_answer_logps_are_the_answer_tokens():
    pairs, tok, model = _setup(4)
    x, y = pair_batch(tok, pairs)
    assert x.shape[0] == 8
    lp = sequence_logps(model, x, y)
    for i, p in enumerate(pairs + pairs):
        answer = p.chosen if i < 4 else p.rejected
        ids, mask = encode_chat(tok, p.prompt + [{"role": "assistant", "content": answer}])
        assert tok.decode(y[i][y[i] != IGNORE_INDEX]) == answer + "<|end|>"
        full = model(torch.tensor([ids[:-1]])).log_softmax(-1)[0]
        want = sum(full[t, ids[t + 1]] for t in range(len(ids) - 1) if mask[t + 1])
        assert abs(lp[i].item() - want.item()) < 1e-5


def test_dpo_train_widens_the_margin():
    pairs, tok, model = _setup()
    ref = copy.deepcopy(model)
    val = pairs[:8]
    before = preference_metrics(model, tok, val, *reference_logps(ref, tok, val))
    assert abs(before["loss"] - math.log(2)) < 1e-5 and before["reward_accuracy"] == 0.0
    hist = dpo_train(model, ref, tok, pairs, val, steps=25, batch_size=8, lr=3e-3, beta=0.5, eval_every=5)
    assert len(hist) == 25 and "val_margin" in hist[4] and "val_margin" not in hist[3]
    after = hist[-1]
    assert after["val_margin"] > 0.5 and after["val_reward_accuracy"] >= 0.75 and after["val_loss"] < math.log(2) - 0.1
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), copy.deepcopy(ref).state_dict().values()))
    assert not any(p.requires_grad for p in ref.parameters())  # frozen
    kl0 = sampled_kl(ref, ref, tok, [p.prompt for p in val[:2]], samples=1, max_new_tokens=4)
    kl = sampled_kl(model, ref, tok, [p.prompt for p in val[:4]], samples=2, max_new_tokens=6)
    assert kl0 == 0.0 and kl > 0


def test_bad_input():
    p = [{"role": "user", "content": "Uppercase: cat"}]
    e = raises(DataError, check_pairs, [PreferencePair(p, "CAT", "CaT"), PreferencePair(p, "CAT", "CAT")], hint="pair 1 has the same chosen and rejected")
    assert "\n" not in str(e)
    raises(DataError, check_pairs, [], hint="no preference pairs")
    raises(DataError, check_pairs, [PreferencePair(p + [{"role": "assistant", "content": "x"}], "a", "b")], hint="end on a user message")
    raises(ConfigError, dpo_loss, torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), beta=0, hint="beta=0.1")
    pairs, tok, model = _setup(4)
    raises(ConfigError, dpo_train, model, model, tok, pairs, steps=1, hint="frozen copy")
    raises(DataError, answer_batch, tok, [p], ["🦜"], hint="cannot be encoded")
