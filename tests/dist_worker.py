"Test worker for tests/test_distributed.py: one or more `llm_course.distributed` training runs in one torchrun job, plus test-only hooks."
import json, os, sys, time

from llm_course.distributed import dist_info, teardown_distributed, train_main
from llm_course.learner import Callback


class SampleLog(Callback):
    "Append each step's window ids, per rank, to a JSON-lines file (the file is closed after every line, so a SIGKILL loses nothing written)."
    order = 99
    def __init__(self, path): self.path = path
    def after_step(self, learn):
        if not hasattr(learn.train_data, "last_ids"): return  # the Learner's random windows: nothing to log
        ids = [int(i) for i in learn.train_data.last_ids]
        with open(self.path, "a") as f: f.write(json.dumps(dict(step=learn.step, rank=dist_info().rank, ids=ids)) + "\n")


class Fault(Callback):
    "At `step` on `rank`: 'crash' raises, 'hang' sleeps forever (the other ranks must time out, not hang)."
    order = 98
    def __init__(self, rank, step, mode): self.rank, self.step, self.mode = rank, step, mode
    def after_step(self, learn):
        if dist_info().rank != self.rank or learn.step != self.step: return
        if self.mode == "crash": raise RuntimeError(f"injected failure on rank {self.rank} at step {self.step}")
        time.sleep(3600)


def main(argv):
    "argv: [--fault RANK:STEP:MODE] [--log-samples PATH] TRAIN-ARGS [+ TRAIN-ARGS …] (runs separated by '+')."
    cbs = []
    while argv and argv[0] in ("--fault", "--log-samples"):
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--fault": r, s, m = value.split(":"); cbs.append(Fault(int(r), int(s), m))
        else: cbs.append(SampleLog(value.replace("{rank}", os.environ.get("RANK", "0"))))
    runs, cur = [], []
    for a in argv:
        if a == "+": runs.append(cur); cur = []
        else: cur.append(a)
    runs.append(cur)
    for run in runs:
        train_main(run, callbacks=cbs, teardown=False)
    teardown_distributed()


if __name__ == "__main__":
    main(sys.argv[1:])
