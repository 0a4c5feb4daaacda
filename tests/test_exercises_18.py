"""Chapter 18's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import torch
import torch.nn.functional as F

from conftest import solutions
from llm_course.distributed import check_average_gradients, check_ring_all_reduce, check_shard_flat

S = solutions("18_distributed")


def test_solutions_pass():
    assert check_average_gradients(S["average_gradients"])
    assert check_shard_flat(S["shard_flat"])
    assert check_ring_all_reduce(S["ring_all_reduce"])


def test_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check in (check_average_gradients, check_shard_flat, check_ring_all_reduce):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


# average_gradients ---------------------------------------------------------------------------------------------------

def test_average_sum_instead_of_mean():
    r = check_average_gradients(lambda grads: [torch.stack(grads).sum(0) for _ in grads])
    assert not r and r.done and "that is the sum" in r.message and "divide by the number of ranks" in r.message


def test_average_one_tensor_not_one_per_rank():
    r = check_average_gradients(lambda grads: torch.stack(grads).mean(0))
    assert not r and "one gradient per rank" in r.message


def test_average_within_each_tensor():  # the mean of each rank's own elements
    r = check_average_gradients(lambda grads: [g.mean() for g in grads])
    assert not r and "across ranks" in r.message


# shard_flat ----------------------------------------------------------------------------------------------------------

def test_shard_chunk_without_padding():
    r = check_shard_flat(lambda flat, n: list(torch.chunk(flat, n)))
    assert not r and "pad with zeros" in r.message


def test_shard_floor_division():  # drops the tail
    r = check_shard_flat(lambda flat, n: [flat[i * (len(flat) // n):(i + 1) * (len(flat) // n)] for i in range(n)])
    assert not r and "ceil" in r.message


def test_shard_padding_in_front():
    def wrong(flat, n):
        size = -(-flat.numel() // n)
        padded = F.pad(flat, (size * n - flat.numel(), 0))
        return [padded[i * size:(i + 1) * size] for i in range(n)]
    r = check_shard_flat(wrong)
    assert not r and "at the end" in r.message


# ring_all_reduce -----------------------------------------------------------------------------------------------------

def test_ring_mean_instead_of_sum():
    def wrong(xs, send):
        return [t / len(xs) for t in S["ring_all_reduce"](xs, send)]
    r = check_ring_all_reduce(wrong)
    assert not r and "returns the sum" in r.message


def test_ring_whole_tensors():  # correct sums, but every rank passes whole tensors around: (N-1)·S elements each
    def wrong(xs, send):
        N = len(xs); acc = [x.clone() for x in xs]; cur = [x.clone() for x in xs]
        for _ in range(N - 1):
            cur = [send((r - 1) % N, r, cur[(r - 1) % N]) for r in range(N)]
            acc = [a + c for a, c in zip(acc, cur)]
        return acc
    r = check_ring_all_reduce(wrong)
    assert not r and "send chunks of S/N" in r.message


def test_ring_sending_left():
    def wrong(xs, send):
        N = len(xs)
        if N > 1: send(1, 0, xs[1])
        return [torch.stack(xs).sum(0) for _ in xs]
    r = check_ring_all_reduce(wrong)
    assert not r and "right neighbour" in r.message


def test_ring_off_by_one_chunk():  # adds the arriving chunk into the chunk it just sent
    def wrong(xs, send):
        N = len(xs)
        chunks = [list(x.clone().tensor_split(N)) for x in xs]
        for s in range(N - 1):
            arriving = [send(r, (r + 1) % N, chunks[r][(r - s) % N]) for r in range(N)]
            for r in range(N): chunks[r][(r - s) % N] = chunks[r][(r - s) % N] + arriving[(r - 1) % N]
        for s in range(N - 1):
            arriving = [send(r, (r + 1) % N, chunks[r][(r + 1 - s) % N]) for r in range(N)]
            for r in range(N): chunks[r][(r - s) % N] = arriving[(r - 1) % N]
        return [torch.cat(c) for c in chunks]
    r = check_ring_all_reduce(wrong)
    assert not r and "chunk (r + 1) % N" in r.message


def test_ring_torch_chunk_too_few_pieces():  # torch.chunk returns fewer than N pieces for tiny tensors
    def wrong(xs, send):
        N = len(xs)
        chunks = [list(x.clone().chunk(N)) for x in xs]
        for s in range(N - 1):
            arriving = [send(r, (r + 1) % N, chunks[r][(r - s) % N]) for r in range(N)]
            for r in range(N): chunks[r][(r - s - 1) % N] = chunks[r][(r - s - 1) % N] + arriving[(r - 1) % N]
        for s in range(N - 1):
            arriving = [send(r, (r + 1) % N, chunks[r][(r + 1 - s) % N]) for r in range(N)]
            for r in range(N): chunks[r][(r - s) % N] = arriving[(r - 1) % N]
        return [torch.cat(c) for c in chunks]
    r = check_ring_all_reduce(wrong)
    assert not r and "raised IndexError" in r.message
