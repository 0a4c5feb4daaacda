"""Chapter 19a's harness: identical to lm-eval (acc, acc_norm, exact match; zero- and few-shot) on exported models, two gloo ranks
equal one process, the 13-gram contamination check finds what was planted and nothing else, the benchmark-format loaders, and the
bad-input errors."""
import argparse, json, os, subprocess, sys, warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import ROOT, raises
from llm_course.core import ConfigError, DataError, MissingPathError, OutputError
from llm_course.data import load_default_corpus
from llm_course import evaluate as E

FIX = ROOT / "tests" / "fixtures" / "eval"
TINY_CHARS = 200_000  # the tiny run reads this much of the default corpus; its tasks come from its last 10% (held out, same alphabet)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    "A `tiny` run trained from scratch by `train` for a few steps (small block size: prompts overflow it, truncation is exercised)."
    from llm_course.train import TrainJob, train
    out = tmp_path_factory.mktemp("tiny") / "run"
    train(TrainJob(out=str(out), steps=40, max_chars=TINY_CHARS, block_size=64, batch_size=8, eval_every=40, eval_batches=2,
                   final_eval_batches=2, sample_tokens=0, checkpoint_every=40, progress=False, verbose=False))
    return out


@pytest.fixture(scope="module")
def demo():
    return E.demo_model()


LM_EVAL = """
import json, sys, lm_eval
from lm_eval.tasks import TaskManager
out = {}
for hf_dir, task_dir, names in json.loads(sys.argv[1]):
    r = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={hf_dir},dtype=float32", tasks=names, batch_size=1, device="cpu",
                                task_manager=TaskManager(include_path=task_dir), log_samples=True)
    for t in names:
        out[t] = dict(results=r["results"][t], resps=[s["filtered_resps"] for s in sorted(r["samples"][t], key=lambda s: s["doc_id"])])
print("@@" + json.dumps(out))
"""


def test_lm_eval_parity(tiny_run, tmp_path):
    "Same exported model (a tiny run), same task files: our acc/acc_norm/acc_bytes/exact_match equal lm-eval's, example by example."
    import dataclasses
    model, tok = E.load_trained(tiny_run)
    text = load_default_corpus()[int(0.9 * TINY_CHARS):TINY_CHARS]
    # the 40-step model starts every word with a space, so the next word alone would always be "": let it write 8 characters
    gen = dataclasses.replace(E.next_word_task(text, n=6, context_chars=40, n_fewshot=2, seed=2, name="tgen"), until=("\n",), max_new_tokens=8)
    tasks = [(E.cloze_task(text, n=10, context_chars=40, n_fewshot=2, seed=1, name="tcloze"), (0, 2)), (gen, (0, 2)),
             (E.arithmetic_task(n=3, n_fewshot=1, name="tarith"), (1,))]          # GSM8K's format and answer filter
    hf_dir, task_dir, names, ours = E.export_for_eval(tiny_run, tmp_path / "hf"), tmp_path / "tasks", [], {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", E.ContextTruncated)   # few-shot prompts overflow the 64-token context: both sides cut them alike
        for task, shots in tasks:
            for k in shots:
                names.append(E.write_lm_eval_task(task, task_dir, k))
                ours[names[-1]] = E.evaluate_task(model, tok, task, k, per_example=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", LM_EVAL, json.dumps([(str(hf_dir), str(task_dir), names)])], capture_output=True, text=True,
                       env=env, timeout=400)
    line = [l for l in p.stdout.splitlines() if l.startswith("@@")]
    assert line, p.stderr[-3000:]
    theirs = json.loads(line[0][2:])
    assert set(theirs) == set(ours) and len(ours) == 5
    for name, o in ours.items():
        res, resps = theirs[name]["results"], theirs[name]["resps"]
        filt = "strict-match" if name.startswith("tarith") else "none"
        for m in E.METRICS[o["kind"]]: assert o[m] == res[f"{m},{filt}"], (name, m, o[m], res)
        assert len(resps) == o["n"]
        if o["kind"] == "mc":
            for e, r in zip(o["examples"], resps):
                assert max(abs(a - b[0]) for a, b in zip(e["lls"], r)) < 1e-3, (name, e["lls"], r)
        elif filt == "none": assert [e["output"] for e in o["examples"]] == [r[0] for r in resps], name
    # not a vacuous agreement: multiple choice neither all right nor all wrong, and generation wrote different non-empty texts
    assert any(0 < ours[n]["acc"] < 1 for n in ours if ours[n]["kind"] == "mc")
    outputs = [e["output"] for n in ("tgen_0shot", "tgen_2shot") for e in ours[n]["examples"]]
    assert all(outputs) and len(set(outputs)) > 1


def _two_ranks():
    "Worker (run by `launch`): each of 2 gloo ranks scores its share of the items; the summed counts are reported."
    from types import SimpleNamespace
    from llm_course.distributed import init_distributed, report, teardown_distributed, dist_info
    from llm_course import evaluate as E
    import torch, torch.distributed as dist
    init_distributed("gloo")
    model, tok = E.demo_model()
    calls = [0]
    model.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    tasks = [E.cloze_task(n=21, seed=5), E.next_word_task(n=9, seed=6)]
    res = {t.name: E.evaluate_task(model, tok, t) for t in tasks}
    lo, hi = torch.tensor([float(calls[0])], dtype=torch.float64), torch.tensor([float(calls[0])], dtype=torch.float64)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN); dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    cb = E.TaskEvalCallback(tasks, tok, every=1)
    learn = SimpleNamespace(model=model, step=3, history=[dict(step=3, loss=1.0)], config=SimpleNamespace(steps=3), stop_reason=None)
    cb.after_step(learn)
    report(res=res, row=learn.history[-1], world=dist_info().world_size, forwards=(lo.item(), hi.item()))
    teardown_distributed()


def test_two_ranks_equal_one_process(demo):
    from llm_course.distributed import launch
    r = launch(_two_ranks, nproc=2, timeout_s=300).results[0]
    model, tok = demo
    tasks = [E.cloze_task(n=21, seed=5), E.next_word_task(n=9, seed=6)]
    one = {t.name: E.evaluate_task(model, tok, t, rank=0, world_size=1) for t in tasks}
    assert r["world"] == 2 and r["res"] == one
    assert r["forwards"][0] == r["forwards"][1] > 0   # every rank called forward equally often (FSDP's forward is a collective)
    assert r["row"] == dict(step=3, loss=1.0, **{"cloze/acc": one["cloze"]["acc"], "cloze/acc_norm": one["cloze"]["acc_norm"],
                            "cloze/acc_bytes": one["cloze"]["acc_bytes"], "next_word/exact_match": one["next_word"]["exact_match"]})
    # and the halves really are halves: rank 1 alone scores items 1, 3, 5, …
    half = E.evaluate_task(model, tok, tasks[0], rank=1, world_size=2, per_example=True)
    assert [e["index"] for e in half["examples"]] == list(range(1, 21, 2))


# contamination ----------------------------------------------------------------------------------------------------------------

def _train_text(n_words=3000, seed=0):
    import random
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(60)] + "the cat sat on a mat and ran to the big red door".split()
    return " ".join(rng.choice(vocab) for _ in range(n_words))


def _planted_task(train: str) -> tuple[E.Task, list[int]]:
    w = train.split()
    ex = [E.Example(" ".join(w[100:113]).upper() + "?", ["x", "y"], 0),                    # 13 words, other case
          E.Example("Intro: " + ", ".join(w[2000:2010]), [" ".join(w[2010:2014]) + "."], 0),  # the 13-gram spans prompt and answer
          E.Example(" ".join(w[500:512]) + " zebra", ["a", "b"], 0),                     # only 12 words
          E.Example(" ".join(w[700:726:2]), ["a", "b"], 0),                              # the words, not in that order
          E.Example("short item", ["a", "b"], 0),                                        # fewer than 13 words: cannot be checked
          E.Example("completely new words " * 5, ["a", "b"], 0)]
    return E.Task("planted", ex), [0, 1]


def test_contamination_text():
    train = _train_text()
    task, planted = _planted_task(train)
    whole = E.contamination(task, E.build_index(train))
    pieces = E.contamination(task, E.build_index(train[i:i + 97] for i in range(0, len(train), 97)))  # seams everywhere
    assert whole["flagged"] == pieces["flagged"] == planted and whole["too_short"] == [4] and whole["checked"] == 5
    assert E.word_ngrams("A b, C d!", 2) == {("a", "b"), ("b", "c"), ("c", "d")}


def test_contamination_prepared_shards(tmp_path):
    from llm_course.train import prepare
    train = _train_text(seed=1)
    (tmp_path / "corpus.txt").write_text(train)
    # workers=2: prepare(workers=1) runs its worker set-up in the calling process (it resets SIGINT/SIGTERM there)
    prepare(tmp_path / "corpus.txt", tmp_path / "shards", tokenizer="char", workers=2, progress=False)
    task, planted = _planted_task(train)
    idx = E.build_index(E.shard_texts(tmp_path / "shards", chunk_tokens=1001))
    assert E.contamination(task, idx)["flagged"] == planted
    assert len(idx) == len(E.build_index(train))


# loaders ----------------------------------------------------------------------------------------------------------------------

def test_hellaswag_file():
    t = E.load_task("hellaswag", FIX / "hellaswag.jsonl")
    assert t.kind == "mc" and [e.gold for e in t.examples] == [3, 0]
    assert t.examples[0].query == "Roof shingle removal: A man is sitting on a roof. He"
    assert t.examples[1].query == "Home and Garden: How to clean a pan. Soak the pan. Then"   # WikiHow markers cleaned as lm-eval does
    assert t.examples[1].choices[0] == "scrub it with a sponge Rinse it."


def test_arc_files():
    t, lst = E.load_task("arc_challenge", FIX / "arc.jsonl"), E.load_task("arc_easy", FIX / "arc_list.json")
    assert [e.gold for e in t.examples] == [2, 0] and [e.query for e in t.examples] == [e.query for e in lst.examples]
    assert t.examples[1].query == "Question: Which technology was developed most recently?\nAnswer:"
    assert t.examples[1].choices == ["cellular telephone", "television", "refrigerator", "airplane"]


def test_mmlu_file():
    t = E.load_task("mmlu", FIX / "mmlu.jsonl", fewshot_path=FIX / "mmlu.jsonl")
    e = t.examples[1]
    assert e.choices == ["A", "B", "C", "D"] and e.gold == 0
    assert e.query == ("Statement 1 | Every element of a group generates a cyclic subgroup of the group.\nA. True, True\nB. False, False\n"
                       "C. True, False\nD. False, True\nAnswer:")
    assert e.description == "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
    assert E.build_context(t, e, 1).startswith(e.description + t.fewshot[0].query + " B\n\n")


def test_gsm8k_file_and_answers():
    t = E.load_task("gsm8k", FIX / "gsm8k.jsonl")
    assert t.kind == "gen" and t.until[0] == "Question:" and t.examples[0].query.startswith("Question: Natalia")
    assert [E.gsm8k_answer(e.gold) for e in t.examples] == ["72", "3600"]
    assert E.gsm8k_answer("so #### -1,234.") == "-1234" and E.gsm8k_answer("the answer is 42") is None


def test_generation_scoring_with_answer_extractor(demo):
    "An exact match compares the extracted numbers: a right number in other words counts, a wrong one does not."
    model, tok = demo
    task = E.arithmetic_task(n=2)
    rows = E.score_gen(model, tok, task, range(2))
    assert all(r["exact_match"] == float(E.gsm8k_answer(r["output"]) == E.gsm8k_answer(task.examples[r["index"]].gold)) for r in rows)
    assert E.cut_at_stops("12 + 3 = 15\n#### 15\n\nQuestion: more", ("Question:", "\n\n")) == "12 + 3 = 15\n#### 15"


def test_acc_norm_divides_by_characters():
    assert E.pick([-12.0, -5.0], ["in the middle", "up"]) == (1, 0, 0)
    assert E.pick([-6.0, -6.4], ["abcd", "üüüü"]) == (0, 0, 1)   # bytes differ from characters
    assert E.pick([-4.0, -4.0], ["ab", "ab"]) == (0, 0, 0)       # ties: the first


# bad input --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,row,missing", [
    ("hellaswag", dict(activity_label="a", ctx_a="b", ctx_b="c", endings=["x", "y"]), "label"),
    ("arc_easy", dict(question="q", choices=dict(text=["x"], label=["A"])), "answerKey"),
    ("mmlu", dict(question="q", subject="s", choices=["1", "2"]), "answer"),
    ("gsm8k", dict(question="q"), "answer")])
def test_missing_answer_field(tmp_path, fmt, row, missing):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(dict(row, question="ok") if fmt != "hellaswag" else row) + "\n")
    e = raises(DataError, E.load_task, fmt, p, hint=f"no {missing!r} field")
    assert "t.jsonl line 1" in str(e) and "\n" not in str(e)


def test_bad_files(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"question": "q"}\nnot json\n')
    raises(DataError, E.load_task, "gsm8k", tmp_path / "bad.jsonl", hint="line 2 is not valid JSON")
    (tmp_path / "g.jsonl").write_text(json.dumps(dict(question="q", answer="no final line")) + "\n")
    raises(DataError, E.load_task, "gsm8k", tmp_path / "g.jsonl", hint="'#### <number>'")
    (tmp_path / "a.jsonl").write_text(json.dumps(dict(question="q", choices=dict(text=["x"], label=["A"]), answerKey="E")) + "\n")
    raises(DataError, E.load_task, "arc_easy", tmp_path / "a.jsonl", hint="answerKey 'E' is not one of the labels")
    raises(MissingPathError, E.load_task, "arc_easy", tmp_path / "nope.jsonl", hint="check the path")
    raises(ConfigError, E.load_task, "squad", tmp_path / "a.jsonl", hint="use one of hellaswag")


def test_unknown_task_names():
    e = raises(ConfigError, E.task_from_spec, "hellaswagg", hint="use one of cloze, next_word, arithmetic")
    assert "<format>:<file>" in str(e)
    raises(ConfigError, E.task_from_spec, f"squad:{FIX / 'arc.jsonl'}", hint="unknown task format 'squad'")


def test_too_long_is_cut_on_the_left_and_said_once(demo):
    model, tok = demo
    long = E.cloze_task(n=6, context_chars=400, seed=9)                  # every prompt is longer than the 128-token context
    with pytest.warns(E.ContextTruncated) as caught: r = E.evaluate_task(model, tok, long, per_example=True)
    assert len(caught) == 1 and "24 of 24 requests" in str(caught[0].message) and "last 128 tokens" in str(caught[0].message)
    for ex, got in zip(long.examples, r["examples"]):   # the same as scoring by hand what the model can read: the last 129 tokens
        for c, ll in zip(ex.choices, got["lls"]):
            ctx, cont = E.encode_pair(tok, ex.query, " " + c)
            kept = (ctx + cont)[-129:]
            by_hand, cut = E.loglikelihoods(model, [(kept[:-len(cont)], cont)])
            assert cut == 0 and len(ctx) + len(cont) > 129 and abs(by_hand[0] - ll) < 1e-4
    with warnings.catch_warnings(): warnings.simplefilter("error"); E.evaluate_task(model, tok, E.cloze_task(n=3, context_chars=40))
    with pytest.warns(E.ContextTruncated) as caught: E.evaluate_task(model, tok, E.next_word_task(n=4, context_chars=300))
    assert len(caught) == 1


def test_other_bad_settings(demo, tmp_path):
    model, tok = demo
    t = E.cloze_task(n=3, n_fewshot=2)
    raises(ConfigError, E.evaluate_task, model, tok, t, num_fewshot=3, hint="use num_fewshot ≤ 2")
    raises(ConfigError, E.generate_until, model, tok, "hi", max_new_tokens=128, hint="use max_new_tokens < 128")
    raises(DataError, E.Task, "empty", [], hint="has no examples")
    (tmp_path / "full").mkdir(); (tmp_path / "full" / "x").write_text("x")
    raises(OutputError, E.export_for_eval, E.demo_model_path(), tmp_path / "full", hint="export into a new folder")


def test_eval_from_args(capsys):
    p = E.add_eval_arguments(argparse.ArgumentParser())
    out = E.eval_from_args(p.parse_args(["--checkpoint", "demo", "--tasks", f"cloze,arc_easy:{FIX / 'arc.jsonl'}", "--limit", "4", "--json"]))
    printed = json.loads(capsys.readouterr().out)
    assert printed == out and [r["task"] for r in out["results"]] == ["cloze", "arc_easy:arc.jsonl"] and out["results"][0]["n"] == 4
    E.eval_from_args(p.parse_args(["--checkpoint", "demo", "--tasks", "next_word", "--limit", "3"]))
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["task", "n", "shots"] and "next_word" in table
    raises(ConfigError, E.eval_from_args, p.parse_args(["--checkpoint", "demo", "--tasks", "cloze,nope"]), hint="unknown task 'nope'")
    shots = E.eval_from_args(p.parse_args(["--checkpoint", "demo", "--tasks", f"mmlu:{FIX / 'mmlu.jsonl'}:{FIX / 'mmlu.jsonl'}",
                                           "--num-fewshot", "1", "--json"]))
    assert shots["results"][0]["n"] == 2 and shots["results"][0]["num_fewshot"] == 1
    raises(ConfigError, E.eval_from_args, p.parse_args(["--checkpoint", "demo", "--tasks", f"mmlu:{FIX / 'mmlu.jsonl'}", "--num-fewshot", "1"]),
           hint="has 0 few-shot examples")
