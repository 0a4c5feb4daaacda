"""`prepare --workers 2` under fault injection: a worker or the parent SIGKILLed at moments read off the file system.

Before: a dead worker left the parent waiting forever, and a dead parent left its workers orphaned, holding the folder's lock.
Now every kill ends the job within seconds (a dead worker: one line naming the shard), no process of the job survives, and
the same command run again writes shards byte-identical to an uninterrupted prepare."""
import hashlib, json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

ENV = {**os.environ, "IN_TEST": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
pytestmark = pytest.mark.xdist_group("prepare_faults")  # one worker runs them: the moments depend on the pace of the job


def command(corpus, out):
    return [sys.executable, "-c", "import sys; from llm_course.cli import main; sys.exit(main())", "prepare", str(corpus),
            "--out", str(out), "--tokenizer", "char", "--workers", "2", "--shard-tokens", "50000", "--val-fraction", "0.05",
            "--no-progress"]


def shards(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.bin"))}


def children(pid: int) -> list[int]:
    try: return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError: return []


def alive(pid: int) -> bool:
    try: stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError: return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    "A JSONL corpus of 12,000 documents (about 110 shards of 50,000 tokens) and the shards of an uninterrupted prepare."
    d = tmp_path_factory.mktemp("faults")
    words = "the cat sat on a mat while a dog ran in the fog and ate old bones by the river bank".split()
    with open(d/"docs.jsonl", "w") as f:
        for i in range(12000): f.write(json.dumps({"text": " ".join(words[(i * 7 + j) % len(words)] for j in range(120))}) + "\n")
    res = subprocess.run(command(d/"docs.jsonl", d/"ref"), env=ENV, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert len(shards(d/"ref")) >= 100, "the corpus should make enough shards for the moments below"
    return d, shards(d/"ref")


@pytest.mark.parametrize("victim", ["worker", "parent"])
def test_kills_at_five_moments_end_fast_leave_no_orphan_and_resume_identically(setup, victim, full_size):
    d, want = setup
    # kill once k shards are finished (read off the folder): ten moments over both victims (`--slow`), six by default
    for k in (2, 10, 25, 45, 70) if full_size else (2, 25, 70):
        out = d/f"{victim}-{k}"
        p = subprocess.Popen(command(d/"docs.jsonl", out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
        deadline = time.time() + 120
        while len(list(out.glob("train-*.bin"))) < k and p.poll() is None and time.time() < deadline: time.sleep(0.02)
        workers = children(p.pid)
        if p.poll() is not None: pytest.fail(f"prepare finished before {k} shards were seen: make the corpus larger")
        assert len(workers) == 2, workers
        t0 = time.time()
        os.kill(workers[0] if victim == "worker" else p.pid, signal.SIGKILL)
        p.wait(30)
        took = time.time() - t0
        assert took < 30, f"the job took {took:.0f} s to end after the {victim} was killed"
        if victim == "worker":
            lines = p.stderr.read().strip().splitlines()
            assert p.returncode == 2 and len(lines) == 1 and "worker died" in lines[0] and ".bin" in lines[0], (p.returncode, lines)
        for _ in range(50):  # the kernel delivers the parent-death signal at once; allow it a moment to be reaped
            if not any(alive(w) for w in workers): break
            time.sleep(0.1)
        assert not any(alive(w) for w in workers), f"orphaned workers {[w for w in workers if alive(w)]} after killing the {victim}"
        res = subprocess.run(command(d/"docs.jsonl", out), env=ENV, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr  # the lock is free: no survivor holds it
        assert shards(out) == want, f"shards differ from an uninterrupted prepare after killing the {victim} at {k} shards"
