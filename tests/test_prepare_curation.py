"""`llm-course prepare` with chapter 16a's curation stages: what was removed is reported (documents, characters and the
tokenizer's tokens) and recorded, a killed prepare re-run (with another number of workers) gives byte-identical shards and
report, and bad settings are one line with nothing written."""
import hashlib, json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

from llm_course.data import load_corpus

pytestmark = pytest.mark.xdist_group("prepare_curation")  # one worker: the killed run is compared with the fixture's reference
ENV = {**os.environ, "IN_TEST": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
FLAGS = ["--tokenizer", "char", "--dedup", "minhash", "--boilerplate", "--normalize", "NFKC", "--mask-pii", "--filter",
         "min_words,stop_words", "--languages", "en", "--shard-tokens", "3000", "--workers", "2", "--no-progress"]


def cli(*args):
    return subprocess.run([sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", *map(str, args)],
                          capture_output=True, text=True, env=ENV)


def files(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix in (".bin", ".json") and p.name != "prepare.json"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    "Paragraphs of the course's own corpus, with injected exact duplicates, a near-duplicate, PII and a French document."
    d = tmp_path_factory.mktemp("cur")
    paras = [p for p in load_corpus("default").split("\n\n") if len(p.split()) >= 40][:151]
    paras, pii = paras[:150], "Write to jane.doe@example.org or call from 192.168.1.20. " + paras[150]
    near = paras[1].replace(" the ", " a ", 2)
    docs = paras + paras[:12] + [near, pii,
                                 "Ceci est un document écrit en français. Il parle de la pluie et du beau temps, des trains qui "
                                 "partent à l'heure et des villes que l'on visite en été avec des amis très chers."]
    with open(d/"docs.jsonl", "w") as f:
        for t in docs: f.write(json.dumps({"text": t}) + "\n")
    return d


def test_stages_are_reported_and_recorded(corpus):
    res = cli("prepare", corpus/"docs.jsonl", "--out", corpus/"ref", *FLAGS)
    assert res.returncode == 0, res.stderr
    rep = json.loads((corpus/"ref"/"report.json").read_text())
    assert rep["stages"]["exact_dedup"]["documents_removed"] >= 12  # the 12 copies (and the corpus's own repeated paragraphs)
    assert rep["stages"]["language"]["documents_removed"] >= 1 and rep["pii_masked"]["email"] == 1 and rep["pii_masked"]["ip"] == 1
    assert rep["stages"]["near_dedup"]["documents_removed"] >= 1
    man = json.loads((corpus/"ref"/"manifest.json").read_text())
    assert man["settings"]["curation"]["dedup"] == "minhash" and man["settings"]["curation"]["languages"] == ["en"]
    assert man["splits"]["train"]["docs"] == rep["documents_out"]
    assert man["splits"]["train"]["tokens"] == rep["tokens_out"] + rep["documents_out"]  # the kept tokens, and one end-of-text each
    left = rep["tokens_in"]
    for st in rep["stages"].values(): assert st["tokens_in"] == left; left -= st["tokens_removed"]  # a removed document's tokens too
    assert rep["stages"]["exact_dedup"]["tokens_removed"] > 0 and rep["stages"]["language"]["tokens_removed"] > 0
    assert (corpus/"ref"/"report.png").stat().st_size > 1000


def test_killed_then_rerun_with_one_worker_is_byte_identical(corpus):
    out = corpus/"killed"
    p = subprocess.Popen([sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", "prepare",
                          str(corpus/"docs.jsonl"), "--out", str(out), *FLAGS], env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while len(list(out.glob("train-*.bin"))) < 3 and p.poll() is None and time.time() < deadline: time.sleep(0.02)
    assert p.poll() is None, "prepare finished before it could be killed mid-way"
    os.killpg(p.pid, signal.SIGKILL); p.wait(30)
    assert not (out/"manifest.json").exists() and not (out/"report.json").exists()
    one = [f if f != "2" or FLAGS[k - 1] != "--workers" else "1" for k, f in enumerate(FLAGS)]  # curated and encoded in one process
    assert one != FLAGS and cli("prepare", corpus/"docs.jsonl", "--out", out, *one).returncode == 0
    assert files(out) == files(corpus/"ref")  # shards, sidecars, manifest and report, as the uninterrupted 2-worker prepare wrote them


@pytest.mark.parametrize("flags, words", [(["--languages", "xx"], "unknown language code 'xx'"),
                                          (["--filter", "min_wrods"], "unknown quality filter 'min_wrods'")])
def test_bad_curation_is_one_line_and_writes_nothing(corpus, tmp_path, flags, words):
    res = cli("prepare", corpus/"docs.jsonl", "--out", tmp_path/"out", "--tokenizer", "char", "--no-progress", *flags)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and words in lines[0], res.stderr[-2000:]
    assert not (tmp_path/"out"/"manifest.json").exists()


@pytest.mark.parametrize("table, words", [("threshold = 1.5\n", "threshold"),
                                          ("[filters]\nmin_words = 100000\n", "stage 'quality' removed")])
def test_bad_settings_file_is_one_line(corpus, tmp_path, table, words):
    (tmp_path/"cur.toml").write_text(table)
    res = cli("prepare", corpus/"docs.jsonl", "--out", tmp_path/"out", "--tokenizer", "char", "--curation", tmp_path/"cur.toml",
              "--filter", "min_words", "--no-progress")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and words in lines[0], res.stderr[-2000:]
    assert not (tmp_path/"out"/"manifest.json").exists()
