"Generation: sampling filters vs transformers, cache parity, HF greedy parity, stops, streaming, chat."
import pytest
import torch
from transformers import RepetitionPenaltyLogitsProcessor, TopKLogitsWarper, TopPLogitsWarper

from llm_course.model import ModelConfig, Transformer, to_hf
from llm_course.rnn import LSTMLM
from llm_course.core import ConfigError
from llm_course.generate import (top_k_filter, top_p_filter, sample_next, generate, stream, generate_text, chat,
                                 IncrementalDecoder, stop_string_filter, iter_tokens, apply_repetition_penalty)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(ModelConfig.preset("tiny", vocab_size=256, block_size=32, n_layer=2, n_head=4, d_model=32, d_ff=64)).eval()


class ByteTok:
    def encode(self, s): return list(s.encode("utf-8"))
    def decode(self, ids): return bytes(ids).decode("utf-8", errors="replace")


def test_filters_match_transformers():
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        V = int(torch.randint(2, 100, (1,), generator=g))
        z = torch.randn(3, V, generator=g) * 4
        p, k = float(torch.rand(1, generator=g)) * 0.98 + 0.01, int(torch.randint(1, V + 2, (1,), generator=g))
        assert torch.equal(torch.isinf(top_p_filter(z, p)), torch.isinf(TopPLogitsWarper(p)(None, z)))
        assert torch.equal(torch.isinf(top_k_filter(z, k)), torch.isinf(TopKLogitsWarper(k)(None, z)))
    z = torch.randn(2, 10)
    assert torch.equal(top_p_filter(z, 1.0), z)


def test_sample_next_greedy_and_seeded():
    z = torch.randn(4, 30)
    assert torch.equal(sample_next(z, temperature=0), z.argmax(-1))
    a = sample_next(z, 1.0, top_p=0.9, generator=torch.Generator().manual_seed(0))
    b = sample_next(z, 1.0, top_p=0.9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.dtype == torch.long and a.shape == (4,)


@pytest.mark.parametrize("kw", [dict(temperature=0), dict(temperature=1.0, top_k=10), dict(temperature=0.7, top_p=0.8),
                                dict(temperature=0.9, top_p=0.95, repetition_penalty=1.3)])
def test_cache_parity_including_sliding(model, kw):
    p = torch.randint(0, 256, (2, 5), generator=torch.Generator().manual_seed(2))
    a = generate(model, p, 40, use_cache=True, generator=torch.Generator().manual_seed(3), **kw)  # slides past 32
    b = generate(model, p, 40, use_cache=False, generator=torch.Generator().manual_seed(3), **kw)
    assert a.shape == (2, 45) and a.dtype == torch.long and torch.equal(a, b) and torch.equal(a[:, :5], p)


def test_greedy_matches_hf_generate(model):
    hf = to_hf(model).eval()
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    p = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = hf.generate(p, max_new_tokens=20, do_sample=False, attention_mask=torch.ones_like(p))
    assert torch.equal(generate(model, p, 20, temperature=0), ref)


def test_repetition_penalty_matches_transformers(model):
    g = torch.Generator().manual_seed(5)
    for _ in range(100):
        B, V, T = int(torch.randint(1, 4, (1,), generator=g)), int(torch.randint(2, 100, (1,), generator=g)), int(torch.randint(1, 20, (1,), generator=g))
        z, seen = torch.randn(B, V, generator=g) * 3, torch.randint(0, V, (B, T), generator=g)
        pen = float(torch.rand(1, generator=g)) * 2 + 0.1
        assert torch.equal(apply_repetition_penalty(z, seen, pen), RepetitionPenaltyLogitsProcessor(pen)(seen, z.clone()))
    z = torch.tensor([[2.0, -2.0, 1.0]])
    assert apply_repetition_penalty(z, torch.tensor([[0, 1, 1]]), 2.0).tolist() == [[1.0, -4.0, 1.0]]   # negatives multiplied, once
    assert apply_repetition_penalty(z, torch.tensor([[0]]), 1.0) is z
    hf = to_hf(model).eval()
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    p = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = hf.generate(p, max_new_tokens=20, do_sample=False, repetition_penalty=1.5, attention_mask=torch.ones_like(p))
    ours = generate(model, p, 20, temperature=0, repetition_penalty=1.5)
    assert torch.equal(ours, ref) and not torch.equal(ours, generate(model, p, 20, temperature=0))


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "1.2"])
def test_repetition_penalty_bad_values(model, bad):
    with pytest.raises(ConfigError, match="repetition_penalty must be a number > 0"):
        generate(model, torch.tensor([[1, 2]]), 3, repetition_penalty=bad)


def test_generate_1d_prompt_and_zero_tokens(model):
    p = torch.tensor([1, 2, 3])
    assert generate(model, p, 4, temperature=0).shape == (1, 7)
    assert torch.equal(generate(model, p, 0), p[None])


def test_stop_ids(model):
    p = torch.tensor([[10, 20, 30]])
    full = generate(model, p, 10, temperature=0)
    stop = int(full[0, 5])  # the third new token
    out = generate(model, p, 10, temperature=0, stop_ids=[stop])
    first = out[0, 3:].tolist().index(stop)
    assert out.size(1) == 3 + first + 1 and out[0, -1] == stop


def test_rnn_model_without_cache():
    torch.manual_seed(0)
    lm = LSTMLM(50, emb_dim=8, hidden_size=16)
    a = generate(lm, torch.tensor([[1, 2]]), 10, temperature=0)
    assert a.shape == (1, 12) and lm.training  # training flag restored


def test_model_training_flag_restored(model):
    model.train()
    generate(model, torch.tensor([[1]]), 2)
    assert model.training
    model.eval()


def test_incremental_decoder_multibyte():
    text = "naïve 日本語 🎉 ok"
    ids = list(text.encode("utf-8"))
    for dec in (lambda x: bytes(x).decode("utf-8", errors="replace"), lambda x: bytes(x), ByteTok()):
        d = IncrementalDecoder(dec)
        pieces = [d.push([i]) for i in ids] + [d.flush()]
        assert "".join(pieces) == text and all("\ufffd" not in p for p in pieces)


def test_stream_matches_generate(model):
    p = torch.tensor([72, 105])
    pieces = list(stream(model, ByteTok(), p, 30, generator=torch.Generator().manual_seed(5)))
    ids = generate(model, p, 30, generator=torch.Generator().manual_seed(5))[0, 2:].tolist()
    assert "".join(pieces) == bytes(ids).decode("utf-8", errors="replace")
    assert generate_text(model, ByteTok(), "Hi", 30, generator=torch.Generator().manual_seed(5)) == "".join(pieces)


def test_stop_strings():
    assert list(stop_string_filter(["a", "bS", "TOPc"], ["STOP"])) == ["a", "b"]
    assert "".join(stop_string_filter(["xS", "Ty"], "STOP")) == "xSTy"


def test_chat_scripted(model):
    lines = iter(["hi", "how are you?"])
    def ask(_):
        try: return next(lines)
        except StopIteration: raise EOFError
    out = []
    turns = chat(model, ByteTok(), max_new_tokens=10, input_fn=ask, output_fn=out.append,
                 generator=torch.Generator().manual_seed(0))
    assert [u for u, _ in turns] == ["hi", "how are you?"] and "".join(out).count("Bot:") == 2
    # a conversation longer than the context keeps going (the transcript is cropped)
    lines = iter(["x" * 50, "y" * 50, ""])
    assert len(chat(model, ByteTok(), max_new_tokens=5, input_fn=lambda _: next(lines), output_fn=lambda s: None)) == 2
