"""Appendix A's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import os
from pathlib import Path

from conftest import rejected, solutions
from llm_course.core import atomic_write_bytes
from llm_course.runs import check_latest_complete, check_write_atomically

S = solutions("20_runs")


def test_solutions_pass_and_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check, name in ((check_latest_complete, "latest_complete"), (check_write_atomically, "write_atomically")):
        assert check(S[name]), name
        r = check(stub); assert not r and not r.done and "not done yet" in repr(r)


def _latest(by_name=False, need_state=True, skip_hidden=True):
    "The solution with one rule dropped."
    def f(run):
        root = Path(run)/"checkpoints"
        if not root.is_dir(): return None
        ok = [p for p in root.iterdir() if p.is_dir() and (not skip_hidden or not p.name.startswith("."))
              and "step-" in p.name and (not need_state or (p/"state.json").is_file())]
        return max(ok, key=(lambda p: p.name) if by_name else (lambda p: int(p.name.split("-")[1].split(".")[0])), default=None)
    return f


def test_latest_complete_rejects_each_dropped_rule():
    rejected(check_latest_complete(_latest(by_name=True)), "compare step numbers")
    rejected(check_latest_complete(_latest(need_state=False)), "state.json")
    rejected(check_latest_complete(_latest(skip_hidden=False)), "names starting with '.'")


def test_write_atomically_rejects_the_shortcut_and_each_unsafe_write():
    rejected(check_write_atomically(lambda path, data: atomic_write_bytes(path, data)), "called atomic_write_bytes")
    rejected(check_write_atomically(lambda path, data: Path(path).write_bytes(data)), "wrote into the target itself")
    def no_fsync(path, data):
        tmp = Path(path).parent/".t.tmp"; tmp.write_bytes(data); os.replace(tmp, path)
    rejected(check_write_atomically(no_fsync), "os.fsync")
    def elsewhere(path, data):
        import tempfile
        fd, tmp = tempfile.mkstemp(dir=os.path.expanduser("~")); os.write(fd, data); os.fsync(fd); os.close(fd); os.replace(tmp, path)
    rejected(check_write_atomically(elsewhere), "beside the target")
    def leaves_copy(path, data):
        tmp = Path(path).parent/"copy.bin"
        with open(tmp, "wb") as f: f.write(data); f.flush(); os.fsync(f.fileno())
        Path(path).write_bytes(data)
    rejected(check_write_atomically(leaves_copy), "left ['copy.bin']")
