"""Chapter 19b (SFT): chat templates equal transformers' apply_chat_template of the saved tokenizer, the loss mask is exactly the
assistant's tokens, a packed window equals its conversations run alone, JSONL -> shards -> Learner, chat entry point, bad input."""
import argparse, json, random

import pytest
import torch
import torch.nn.functional as F

from conftest import raises
from llm_course.core import ConfigError, DataError, MissingPathError, OutputError
from llm_course.learner import IGNORE_INDEX, Learner, TrainConfig
from llm_course.model import ModelConfig, Transformer
from llm_course.sft import (COURSE_JINJA, DOC_START, TEMPLATES, ChatTemplate, PackedTransformer, SFTData, _course_segments,
                            add_chat_arguments, chat_from_args, check_template, encode_chat, pack, prepare_sft, render_chat,
                            save_chat_model, save_chat_tokenizer, sft_datasets, sft_example)
from llm_course.tokenizer import BPETokenizer, CharTokenizer

torch.set_num_threads(1)

S, U, A = "system", "user", "assistant"
m = lambda role, content: {"role": role, "content": content}

CONVERSATIONS = [  # alternating user/assistant after an optional system message, so that both templates take them all
    [m(U, "Hi"), m(A, "Hello")],
    [m(S, "You reverse words."), m(U, "Reverse: table"), m(A, "elbat")],
    [m(S, "Be brief."), m(U, "a"), m(A, "b"), m(U, "c"), m(A, "d")],
    [m(U, ""), m(A, "")],                                                    # empty turns
    [m(S, ""), m(U, "x"), m(A, "")],
    [m(U, "naïve café"), m(A, "éfac evïan")],                                 # unicode
    [m(U, "日本語のテキスト"), m(A, "はい")],
    [m(S, "Réponds en français."), m(U, "Ça va ?"), m(A, "Très bien, merci — et toi ?")],
    [m(U, "emoji 🙂"), m(A, "🙃")],
    [m(U, "  padded  "), m(A, "  spaces around  ")],                          # llama2 strips, course keeps
    [m(U, "line\nbreaks\n"), m(A, "two\nlines")],
    [m(U, "<|end|> inside"), m(A, "[INST] tricky </s>")],
    [m(S, "multi"), m(U, "1"), m(A, "2"), m(U, "3"), m(A, "4"), m(U, "5"), m(A, "6")],
    [m(U, "q")],                                                              # a prompt (generation)
    [m(S, "sys"), m(U, "q")],
    [m(U, "a"), m(A, "b"), m(U, "follow-up")],
    [m(U, "tabs\tand\ttabs"), m(A, "ok")],
    [m(U, "Σ∫√∞"), m(A, "math")],
    [m(U, "quote ' and \" and \\ backslash"), m(A, "{{ not jinja }} {% raw %}")],
    [m(S, "Long system " * 5), m(U, "x" * 50), m(A, "y" * 50)],
    [m(U, "Ünïcödé"), m(A, "ÜNÏCÖDÉ"), m(U, "again"), m(A, "")],
    [m(S, "s"), m(U, ""), m(A, "answer")],
    [m(U, "What is 2+2?"), m(A, "4")],
    [m(U, "Spell dog backwards."), m(A, "god")],
]


@pytest.fixture(scope="module")
def char_tok():
    return CharTokenizer.train("".join(render_chat(c, t) for c in CONVERSATIONS for t in TEMPLATES) + "abcdefghijklmnopqrstuvwxyz")


@pytest.fixture(scope="module")
def bpe_tok():
    return BPETokenizer.train("\n".join(render_chat(c) for c in CONVERSATIONS) * 3, 300)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_apply_chat_template_equals_render_chat(name, char_tok, bpe_tok, tmp_path):
    from transformers import AutoTokenizer
    assert len(CONVERSATIONS) >= 20
    hf = AutoTokenizer.from_pretrained(str(save_chat_tokenizer(char_tok, tmp_path/"char", name)))
    hf_bpe = AutoTokenizer.from_pretrained(str(save_chat_tokenizer(bpe_tok, tmp_path/"bpe", name)))
    for conv in CONVERSATIONS:
        gen = conv[-1]["role"] == U
        ours = render_chat(conv, name, add_generation_prompt=gen)
        assert hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen) == ours
        ids = hf.apply_chat_template(conv, tokenize=True, add_generation_prompt=gen)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        assert ids == char_tok.encode(ours)
        ids = hf_bpe.apply_chat_template(conv, tokenize=True, add_generation_prompt=gen)
        assert list(ids["input_ids"] if hasattr(ids, "keys") else ids) == bpe_tok.encode(ours)


def _assistant_text(conv, name):
    "What the loss should cover, written from the templates' definitions (not from the segments)."
    if name == "course": return "".join(x["content"] + "<|end|>" for x in conv if x["role"] == A)
    return "".join(f" {x['content'].strip()} </s>" for x in conv if x["role"] == A)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_loss_mask_is_exactly_the_assistant_tokens(name, char_tok):
    for conv in CONVERSATIONS:
        if conv[-1]["role"] != A: continue
        ids, mask = encode_chat(char_tok, conv, name)
        text = render_chat(conv, name)
        assert ids == char_tok.encode(text) and len(mask) == len(ids)
        assert char_tok.decode([i for i, k in zip(ids, mask) if k]) == _assistant_text(conv, name)
        # each trained run starts right after an assistant header and ends on the stop string
        t = TEMPLATES[name]
        runs, start = [], None
        for i, k in enumerate(mask + [False]):
            if k and start is None: start = i
            if not k and start is not None: runs.append((start, i)); start = None
        assert len(runs) == sum(x["role"] == A for x in conv)
        for a, b in runs:
            assert text[:a].endswith(t.assistant_header) and text[a:b].endswith(t.stop)
        x, y = sft_example(ids, mask)
        assert torch.equal(y != IGNORE_INDEX, torch.tensor(mask[1:]))
        assert torch.equal(y[y != IGNORE_INDEX], torch.tensor(ids[1:])[torch.tensor(mask[1:])])


def _model(style, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    kw = dict(vocab_size=40, block_size=64, n_layer=2, n_head=2, d_model=32, d_ff=64)
    return PackedTransformer(ModelConfig(style=style, **kw) if style == "llama" else ModelConfig(style="gpt2", pos=style, **kw)).to(dtype)


@pytest.mark.parametrize("style", ["llama", "learned", "sinusoidal"])
def test_packed_window_equals_conversations_alone(style):
    g = torch.Generator().manual_seed(1)
    for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-12)):
        model = _model(style, dtype)
        exs = []
        for n in (23, 31):
            ids = torch.randint(0, 40, (n,), generator=g).tolist()
            mask = (torch.rand(n, generator=g) < 0.6).tolist()
            exs.append(sft_example(ids, mask))
        px, py = pack(exs, 64)
        assert px.shape == (1, 64) and int((px >= DOC_START).sum()) == 2
        n_targets = int((py != IGNORE_INDEX).sum())
        loss_sum = lambda lg, y: F.cross_entropy(lg.flatten(0, 1).double(), y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
        packed = loss_sum(model(px), py) / n_targets
        packed.backward()
        g_packed = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        alone = sum(loss_sum(Transformer.forward(model, x[None]), y[None]) for x, y in exs) / n_targets
        alone.backward()
        assert abs(packed.item() - alone.item()) < tol, (style, dtype, packed.item(), alone.item())
        for a, b in zip(g_packed, (p.grad for p in model.parameters())):
            assert torch.allclose(a, b, atol=tol * 10, rtol=1e-4 if dtype == torch.float32 else 1e-9)
        leaky = loss_sum(Transformer.forward(model, px % DOC_START), py) / n_targets  # no document mask: it differs
        assert abs(leaky.item() - alone.item()) > 1e-5  # (a fresh model attends almost uniformly: the leak is small, not zero)


def test_packed_transformer_without_flags_is_the_transformer():
    model = _model("llama")
    plain = Transformer(model.config); plain.load_state_dict(model.state_dict())
    x = torch.randint(0, 40, (2, 20))
    assert torch.equal(model(x), plain(x))
    assert torch.equal(PackedTransformer.from_model(plain)(x), plain(x))


def _jsonl(path, convs):
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in convs))
    return path


def _reverse_convs(n, seed=0):
    rng = random.Random(seed)
    words = ["table", "chair", "lamp", "door", "window", "floor", "roof", "wall"]
    return [[m(U, f"Reverse: {w}"), m(A, w[::-1])] for w in (rng.choice(words) for _ in range(n))]


def test_prepare_sft_and_learner(tmp_path):
    convs = _reverse_convs(60)
    tok = CharTokenizer.train("".join(render_chat(c) for c in convs))
    man = prepare_sft(_jsonl(tmp_path/"c.jsonl", convs), tmp_path/"shards", tok, val_fraction=0.1)
    assert man["train_conversations"] + man["val_conversations"] == 60 and man["val_conversations"] == 6
    assert {p.name for p in (tmp_path/"shards").iterdir()} >= {"sft.json", "tokenizer.json", "checksums.json", "train.tokens.npy",
                                                                "train.mask.npy", "train.offsets.npy", "val.tokens.npy"}
    train, val = sft_datasets(tmp_path/"shards", 128)
    for i in range(len(train)):  # the shards hold exactly what encode_chat gives for some conversation
        x, y = train.example(i)
        assert tok.decode(y[y != IGNORE_INDEX]).endswith("<|end|>")
    x, y = train(4, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 128) and bool((x[:, 0] >= DOC_START).all())
    assert int((x >= DOC_START).sum()) > 4  # several conversations per window
    xp, _ = SFTData(tmp_path/"shards", "train", 128, pack=False)(4, torch.Generator().manual_seed(0))
    assert int((xp >= DOC_START).sum()) == 4
    model = PackedTransformer(ModelConfig(vocab_size=tok.vocab_size, block_size=128, n_layer=1, n_head=2, d_model=32, d_ff=64))
    learn = Learner(model, train, val, TrainConfig(steps=30, batch_size=8, block_size=128, lr=3e-3, device="cpu", progress=False))
    first = learn.evaluate()
    learn.fit()
    assert learn.evaluate() < first - 0.5  # it learns the answers (the loss counts only the assistant's tokens)


def test_chat_from_args(tmp_path, capsys):
    convs = _reverse_convs(10)
    tok = CharTokenizer.train("".join(render_chat(c, t) for c in convs for t in TEMPLATES) + "?")
    model = PackedTransformer(ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, d_model=32, d_ff=64))
    folder = save_chat_model(model, tok, tmp_path/"chat", "llama2")
    assert json.loads((folder/"chat.json").read_text())["template"] == "llama2"
    args = add_chat_arguments(argparse.ArgumentParser()).parse_args(
        ["--checkpoint", str(folder), "--prompt", "Reverse: door", "--prompt", "door?", "--max-new-tokens", "5"])
    conv = chat_from_args(args)
    assert [x["role"] for x in conv] == [U, A, U, A] and capsys.readouterr().out.count("bot> ") == 2


# bad input -> one line, the package's errors ------------------------------------------------------------------------------

def test_conversation_without_assistant_turn(tmp_path, char_tok):
    raises(DataError, encode_chat, char_tok, [m(U, "hi")], hint="no assistant turn")
    p = _jsonl(tmp_path/"c.jsonl", _reverse_convs(3) + [[m(S, "s"), m(U, "no answer")]])
    e = raises(DataError, prepare_sft, p, tmp_path/"out", char_tok, hint="line 4 of c.jsonl: the conversation has no assistant turn")
    assert "\n" not in str(e) and not (tmp_path/"out").exists()


def test_template_not_ending_on_assistant_header():
    no_prompt = ChatTemplate("mine", _course_segments, COURSE_JINJA.split("{%- if add_generation_prompt")[0], "<|assistant|>\n", "<|end|>")
    e = raises(ConfigError, check_template, no_prompt, hint="must end on the assistant header")
    assert "\n" not in str(e).replace("'<|assistant|>\\n'", "")
    raises(ConfigError, render_chat, [m(U, "q")], no_prompt, True, hint="add_generation_prompt")
    wrong_header = ChatTemplate("mine", _course_segments, COURSE_JINJA, "<|bot|>\n", "<|end|>")
    raises(ConfigError, check_template, wrong_header, hint="must end on the assistant header")
    raises(DataError, render_chat, [m(U, "q"), m(A, "a")], "course", True, hint="end the conversation on a user message")


def test_other_bad_input(tmp_path, char_tok):
    raises(DataError, render_chat, [m(U, "a"), m(U, "b")], "llama2", hint="alternating")
    raises(DataError, render_chat, [m(U, "a"), m(S, "b"), m(A, "c")], hint="only the first message")
    raises(DataError, render_chat, [], hint="non-empty list")
    raises(ConfigError, render_chat, [m(U, "a")], "chatml", hint="unknown chat template")
    raises(DataError, encode_chat, char_tok, [m(U, "🦜🦜"), m(A, "x")], hint="cannot be encoded")
    raises(DataError, pack, [sft_example(list(range(30)), [True] * 30)], 16, hint="raise block_size")
    (tmp_path/"bad.jsonl").write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\nnot json\n')
    raises(DataError, prepare_sft, tmp_path/"bad.jsonl", tmp_path/"o", char_tok, hint="line 2 of bad.jsonl is not JSON")
    raises(MissingPathError, prepare_sft, tmp_path/"none.jsonl", tmp_path/"o", char_tok, hint="one conversation per line")
    good = _jsonl(tmp_path/"g.jsonl", _reverse_convs(5))
    prepare_sft(good, tmp_path/"o", char_tok)
    raises(OutputError, prepare_sft, good, tmp_path/"o", char_tok, hint="choose a new folder")
    raises(DataError, SFTData, tmp_path/"o", "train", 8, hint="raise block_size")
    raises(MissingPathError, SFTData, tmp_path, "train", 64, hint="prepare_sft")
    raises(ConfigError, PackedTransformer(ModelConfig(vocab_size=char_tok.vocab_size, block_size=64, n_layer=1, n_head=2, d_model=32,
                                                      d_ff=64)), pack([sft_example([1, 2, 3], [1, 1, 1])], 8)[0],
           attention_mask=torch.ones(1, 8), hint="packed window")
