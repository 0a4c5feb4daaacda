"""Checkpoints written in the background (issue 21): on 2 gloo ranks training steps go on while `dcp.async_save` writes, each rank
hashes only its own files, and a SIGKILL during a background write leaves the previous checkpoint whole: the resumed run's losses
equal the uninterrupted run's."""
import json, time

from test_train import losses, torchrun
from llm_course.runs import verify_checksums
from llm_course.distributed import kill_job
from llm_course.learner import list_checkpoints

RUN = ["--corpus", "default", "--max-chars", "20000", "--steps", "12", "--checkpoint-every", "4", "--log-every", "1",
       "--batch-size", "8", "--no-progress", "--sample-tokens", "0", "--eval-every", "0"]


def test_training_goes_on_during_a_background_write_and_a_kill_loses_only_it(tmp_path):
    ref = tmp_path/"ref"
    res = torchrun(2, *RUN, "--out", ref, env={"LLM_COURSE_TEST_ASYNC_WRITE_SLEEP": "1.5"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    write = json.loads((ref/"checkpoints"/"step-000008"/"state.json").read_text())["write"]
    rows = [json.loads(l) for l in (ref/"metrics.jsonl").read_text().splitlines()]
    during = [r["step"] for r in rows if "loss" in r and write["started"] < r["time"] < write["written"]]
    assert min(during) >= 8 and max(during) >= 10, (during, write)  # steps 9, 10, … trained while step 8's shards were written
    listed = json.loads((ref/"checkpoints"/"step-000008"/"checksums.json").read_text())["files"]
    assert {"__0_0.distcp", "__1_0.distcp", ".metadata", "state.json"} <= set(listed)  # each rank's file, hashed by that rank

    run = tmp_path/"run"
    p = torchrun(2, *RUN, "--out", run, env={"LLM_COURSE_TEST_ASYNC_WRITE_SLEEP": "5"}, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and not ((run/"checkpoints"/"step-000004").exists()
                                          and list((run/"checkpoints").glob(".step-000008.tmp-*"))): time.sleep(0.05)
    time.sleep(0.5)
    kill_job(p.pid); p.wait(60)  # mid-write of step 8, in the background
    assert [c.name for c in list_checkpoints(run)] == ["step-000004"] and verify_checksums(run/"checkpoints"/"step-000004", required=True)
    res = torchrun(2, "--out", run, "--resume", "--no-progress")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert len(losses(run)) == 12 and max(abs(a - b) for a, b in zip(losses(run), losses(ref))) < 1e-6
