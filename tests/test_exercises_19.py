"""Chapter 19's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import numpy as np

from conftest import rejected, solutions
from llm_course.train import check_global_batch_ids, check_rank_rows, check_steps_for_tokens, check_tokens_per_step

S = solutions("19_train_7b")



def test_tokens_per_step():
    assert check_tokens_per_step(S["tokens_per_step"])
    rejected(check_tokens_per_step(lambda mb, T, a, w: mb * T * a), "world size")
    rejected(check_tokens_per_step(lambda mb, T, a, w: mb * T * w), "grad_accum")
    rejected(check_tokens_per_step(lambda mb, T, a, w: mb * a * w), "sequences, not tokens")
    assert "raised ZeroDivisionError" in check_tokens_per_step(lambda mb, T, a, w: 1 // 0).message


def test_steps_for_tokens():
    assert check_steps_for_tokens(S["steps_for_tokens"])
    per = lambda mb, T, a, w: mb * T * a * w
    rejected(check_steps_for_tokens(lambda t, *s: int(t // per(*s))), "rounded down")
    rejected(check_steps_for_tokens(lambda t, *s: int(t // per(*s)) + 1), "exact multiple")
    rejected(check_steps_for_tokens(lambda t, mb, T, a, w: -(-int(t) // (mb * T * w))), "grad_accum")
    rejected(check_steps_for_tokens(lambda t, *s: -(-t // per(*s))), "int")   # float floor division gives a float


def test_rank_rows():
    assert check_rank_rows(S["rank_rows"])
    rejected(check_rank_rows(lambda B, r, w: slice(r, B, w)), "interleaved")
    rejected(check_rank_rows(lambda B, r, w: slice(r * (B // w), (r + 1) * (B // w) + 1)), "exclusive")
    rejected(check_rank_rows(lambda B, r, w: slice(r * (B // w), (r + 1) * (B // w))), "expected an error", "ConfigError")
    rejected(check_rank_rows(lambda B, r, w: list(range(r * (B // w), (r + 1) * (B // w)))), "return a slice")


def test_global_batch_ids():
    assert check_global_batch_ids(S["global_batch_ids"])
    def one_order(step, B, n, seed):      # the same permutation every epoch
        return np.random.default_rng(seed).permutation(n)[(step * B + np.arange(B)) % n]
    def epoch0(step, B, n, seed):         # epoch 0's order reused for every epoch
        return np.random.default_rng([seed, 0]).permutation(n)[(step * B + np.arange(B)) % n]
    def no_times_b(step, B, n, seed):     # step s starts at position s
        return np.array([np.random.default_rng([seed, int(p // n)]).permutation(n)[p % n] for p in step + np.arange(B)])
    def seed_plus_epoch(step, B, n, seed):  # a different order per epoch, but not the course's
        return np.array([np.random.default_rng(seed + int(p // n)).permutation(n)[p % n] for p in step * B + np.arange(B)])
    rejected(check_global_batch_ids(one_order), "one order for every epoch", "[seed, epoch]")
    rejected(check_global_batch_ids(epoch0), "one order for every epoch")
    rejected(check_global_batch_ids(seed_plus_epoch), "crosses into the second epoch", "expected [8, 1, 9, 1]")
    rejected(check_global_batch_ids(no_times_b), "s·batch_size")
