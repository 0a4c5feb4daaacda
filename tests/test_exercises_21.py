"""Chapter 21's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import json
import statistics

from conftest import rejected, solutions
from llm_course.cli import check_run_speed, check_train_flags
from llm_course.core import ConfigError
from llm_course.scaling import flops_per_token
from llm_course.train import read_metrics

S = solutions("21_cli")


def test_solutions_pass_and_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check, name in ((check_train_flags, "train_flags"), (check_run_speed, "run_speed")):
        assert check(S[name]), name
        r = check(stub); assert not r and not r.done and "not done yet" in repr(r)


# train_flags ----------------------------------------------------------------------------------------------------------

def _flags(per_gpu_batch=False, tokens=False, micro=None, refuse=True):
    "The solution with one step changed."
    def f(T, seq, gpus, mx):
        if refuse and T % (seq * gpus): raise ConfigError("not a multiple")
        b = T // seq
        per = max(1, b // gpus)
        m = micro(per, mx) if micro else max(d for d in range(1, min(mx, per) + 1) if per % d == 0)
        return (T if tokens else per if per_gpu_batch else b), per // m
    return f


def test_flags_batch_size_per_gpu():
    rejected(check_train_flags(_flags(per_gpu_batch=True)), "global batch, over all processes")


def test_flags_batch_size_in_tokens():
    rejected(check_train_flags(_flags(tokens=True)), "counts sequences, not tokens")


def test_flags_max_micro_batch_that_does_not_divide():  # grad_accum rounded: train refuses the split
    rejected(check_train_flags(lambda T, seq, gpus, mx: (T // seq, -(-(T // seq // gpus) // mx))), "is refused", "must divide each GPU")


def test_flags_micro_batch_one():  # valid, but needless accumulation
    rejected(check_train_flags(_flags(micro=lambda per, mx: 1)), "more accumulation than needed")


def test_flags_accept_an_impossible_batch():
    rejected(check_train_flags(_flags(refuse=False)), "expected ConfigError")


# run_speed ------------------------------------------------------------------------------------------------------------

def _speed(average=statistics.median, fpt=lambda c, seq: flops_per_token(c, seq), all_devices=True):
    def f(path, c, seq, peak, devices):
        speeds = [r["tokens_per_s"] for r in read_metrics(path) if r.get("tokens_per_s") is not None]
        tps = average(speeds)
        return tps, tps * fpt(c, seq) / ((devices if all_devices else 1) * peak)
    return f


def test_speed_mean():
    rejected(check_run_speed(_speed(average=statistics.fmean)), "that is the mean", "median")


def test_speed_six_n():
    rejected(check_run_speed(_speed(fpt=lambda c, seq: 6 * c.n_params())), "6 × all parameters", "flops_per_token")


def test_speed_full_attention():
    rejected(check_run_speed(_speed(fpt=lambda c, seq: flops_per_token(c, seq, causal=False))), "half of the full T×T")


def test_speed_peak_of_one_device():
    rejected(check_run_speed(_speed(all_devices=False)), "peak of all devices")


def test_speed_hfu_instead_of_mfu():
    rejected(check_run_speed(_speed(fpt=lambda c, seq: flops_per_token(c, seq, checkpointing=True))), "not the recompute")


def test_speed_evaluation_rows():  # every row read as a training row
    def wrong(path, c, seq, peak, devices):
        rows = [json.loads(line) for line in open(path) if line.endswith("\n")]
        tps = statistics.median(r["tokens_per_s"] for r in rows)
        return tps, 0.0
    rejected(check_run_speed(wrong), "raised KeyError", "tokens_per_s")


def test_speed_half_written_line():
    def wrong(path, c, seq, peak, devices):
        rows = [json.loads(line) for line in open(path)]
        return _speed()(path, c, seq, peak, devices) if rows else None
    rejected(check_run_speed(wrong), "raised JSONDecodeError", "still being written")
