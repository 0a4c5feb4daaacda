"""Chapter 18's exercise checks reject the usual wrong answers and the shortcuts, each with a message naming it, and accept the solution."""
import time

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from conftest import rejected, solutions
from llm_course.distributed import (_ddp_reference, check_ddp_buckets, check_ring_all_reduce, check_shard_flat,
                                    check_zero1_adamw_step)

S = solutions("18_distributed")
CHECKS = (check_shard_flat, check_ddp_buckets, check_ring_all_reduce, check_zero1_adamw_step)


def test_solutions_pass():
    for check, name in zip(CHECKS, ("shard_flat", "ddp_buckets", "ring_all_reduce", "zero1_adamw_step")):
        assert check(S[name]), name


def test_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check in CHECKS:
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r) and "`stub`" in r.message


# shard_flat ----------------------------------------------------------------------------------------------------------

def test_shard_chunk_without_padding():
    rejected(check_shard_flat(lambda flat, n: list(torch.chunk(flat, n))), "pad with zeros")


def test_shard_floor_division():  # drops the tail
    rejected(check_shard_flat(lambda flat, n: [flat[i * (len(flat) // n):(i + 1) * (len(flat) // n)] for i in range(n)]), "ceil")


def test_shard_padding_in_front():
    def wrong(flat, n):
        size = -(-flat.numel() // n)
        padded = F.pad(flat, (size * n - flat.numel(), 0))
        return [padded[i * size:(i + 1) * size] for i in range(n)]
    rejected(check_shard_flat(wrong), "at the end")


# ddp_buckets ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("numels, cap, first", [([30] * 5, 200, 100), ([5, 300, 7, 7, 40, 1, 90], 128, 64), ([10], 4, 4)])
def test_bucket_reference_is_ddps(numels, cap, first):
    "The check's rule is PyTorch's own: DDP's C++ bucketing, fed the parameters in gradient-ready (reverse) order."
    params = [torch.empty(n) for n in numels]
    order = list(reversed(range(len(params))))
    torch_buckets, _ = dist._compute_bucket_assignment_by_size([params[i] for i in order], [first, cap], [False] * len(params), order)
    assert _ddp_reference([4 * n for n in numels], cap, first) == torch_buckets


def _buckets(params, cap, first, order=None, bytes_of=lambda p: p.numel() * p.element_size(), strict=False):
    "Bucketing with one knob turned: the walk order, how a parameter's size is counted, or buckets that never exceed the cap."
    buckets, cur, n = [], [], 0
    for i in (reversed(range(len(params))) if order is None else order):
        limit = first if not buckets else cap
        if strict and cur and n + bytes_of(params[i]) > limit: buckets.append(cur); cur, n = [], 0
        cur.append(i); n += bytes_of(params[i])
        if not strict and n >= limit: buckets.append(cur); cur, n = [], 0
    return buckets + ([cur] if cur else [])


def test_buckets_torch_function_is_switched_off():
    def with_torch(ps, cap, first):
        order = list(reversed(range(len(ps))))
        return dist._compute_bucket_assignment_by_size([ps[i] for i in order], [first, cap], [False] * len(ps), order)[0]
    rejected(check_ddp_buckets(with_torch), "called torch.distributed._compute_bucket_assignment_by_size")


def test_buckets_forward_order():
    rejected(check_ddp_buckets(lambda ps, cap, first: _buckets(ps, cap, first, order=range(len(ps)))), "forward order", "last layer first")


def test_buckets_never_over_the_cap():
    rejected(check_ddp_buckets(lambda ps, cap, first: _buckets(ps, cap, first, strict=True)), "the parameter that crosses the cap stays in it")


def test_buckets_count_elements_not_bytes():
    rejected(check_ddp_buckets(lambda ps, cap, first: _buckets(ps, cap, first, bytes_of=lambda p: p.numel())), "numel × element_size()")


def test_buckets_one_cap_for_all():
    rejected(check_ddp_buckets(lambda ps, cap, first: _buckets(ps, cap, cap)), "the first bucket has its own, smaller cap")


def test_buckets_in_forward_list_order():
    rejected(check_ddp_buckets(lambda ps, cap, first: _buckets(ps, cap, first)[::-1]), "the order they are all-reduced")


def test_buckets_lose_a_parameter():
    rejected(check_ddp_buckets(lambda ps, cap, first: [b for b in _buckets(ps, cap, first) if 0 not in b]), "exactly one bucket")


# ring_all_reduce -----------------------------------------------------------------------------------------------------

def test_ring_mean_instead_of_sum():
    rejected(check_ring_all_reduce(lambda x, r, N, send, recv: S["ring_all_reduce"](x, r, N, send, recv) / N), "returns the sum")


def test_ring_whole_tensors():  # correct sums, but every rank passes whole tensors around: (N-1)·S elements each
    def wrong(x, rank, N, send, recv):
        acc, cur = x.clone(), x.clone()
        for _ in range(N - 1):
            send(cur); cur = recv(); acc = acc + cur
        return acc
    rejected(check_ring_all_reduce(wrong), "more than one chunk", "send chunks")


def _shared_table(publish, combine):
    "The old `[sum(xs)] * N`, per rank: each rank publishes its data where the others can read it, waits for all, combines."
    table = {}
    def shortcut(x, rank, N, send, recv):
        key = (N, x.numel())
        table[key + (rank,)] = publish(x)
        while sum(1 for k in list(table) if k[:2] == key) < N: time.sleep(0.001)
        return combine([table[key + (r,)] for r in range(N)])
    return shortcut


def test_ring_reading_another_ranks_tensor():  # the tensors themselves, read by the other ranks
    rejected(check_ring_all_reduce(_shared_table(lambda x: x, sum)), "used rank", "tensor", "only through recv()")


def test_ring_zero_messages():  # numbers copied out of every rank's tensor (no tensor crosses ranks): and no message sent
    combine = lambda rows: torch.tensor([sum(col) for col in zip(*rows)])
    rejected(check_ring_all_reduce(_shared_table(lambda x: x.tolist(), combine)), "sent 0 messages", "exactly 2(N−1)",
             "without exchanging anything")


def test_ring_no_all_gather():  # only the reduce-scatter half: N−1 messages
    def wrong(x, rank, N, send, recv):
        chunks = list(x.clone().tensor_split(N))
        for s in range(N - 1):
            send(chunks[(rank - s) % N]); i = (rank - s - 1) % N; chunks[i] = chunks[i] + recv()
        return torch.cat(chunks)
    rejected(check_ring_all_reduce(wrong), "exactly 2(N−1)", "all-gather steps")


def test_ring_off_by_one_chunk():  # adds the arriving chunk into the chunk it just sent
    def wrong(x, rank, N, send, recv):
        chunks = list(x.clone().tensor_split(N))
        for s in range(N - 1):
            send(chunks[(rank - s) % N]); i = (rank - s) % N; chunks[i] = chunks[i] + recv()
        for s in range(N - 1):
            send(chunks[(rank + 1 - s) % N]); chunks[(rank - s) % N] = recv()
        return torch.cat(chunks)
    rejected(check_ring_all_reduce(wrong), "chunk (r + 1) % N")


def test_ring_recv_before_send_deadlocks():
    def wrong(x, rank, N, send, recv):
        chunks = list(x.clone().tensor_split(N))
        for s in range(N - 1):
            i = (rank - s - 1) % N; chunks[i] = chunks[i] + recv(); send(chunks[(rank - s) % N])
        return torch.cat(chunks)
    rejected(check_ring_all_reduce(wrong), "deadlock", "recv()")


def test_ring_torch_chunk_too_few_pieces():  # torch.chunk returns fewer than N pieces for tiny tensors
    def wrong(x, rank, N, send, recv):
        chunks = list(x.clone().chunk(N))
        for s in range(N - 1):
            send(chunks[(rank - s) % N]); i = (rank - s - 1) % N; chunks[i] = chunks[i] + recv()
        for s in range(N - 1):
            send(chunks[(rank + 1 - s) % N]); chunks[(rank - s) % N] = recv()
        return torch.cat(chunks)
    rejected(check_ring_all_reduce(wrong), "raised IndexError")


# zero1_adamw_step ----------------------------------------------------------------------------------------------------

def _full_adamw(param, grad, state, rank, N, all_gather, lr, betas, eps, wd, l2=False, bias_correction=True):
    "AdamW (or a variant) on the whole parameter, on every rank: the shortcut ZeRO-1 exists to avoid."
    if not state: state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t, g = state["step"], grad + wd * param if l2 else grad
    p = param.clone() if l2 else param * (1 - lr * wd)
    state["m"] = betas[0] * state["m"] + (1 - betas[0]) * g
    state["v"] = betas[1] * state["v"] + (1 - betas[1]) * g * g
    m, v = (state["m"] / (1 - betas[0] ** t), state["v"] / (1 - betas[1] ** t)) if bias_correction else (state["m"], state["v"])
    return p - lr * m / (v.sqrt() + eps)


def _sharded(update):
    "A ZeRO-1 step whose shard update is `update(p, g, state, t, lr, betas, eps, wd)`: wrong updates, right sharding."
    def step(param, grad, state, rank, N, all_gather, lr, betas, eps, wd):
        size = -(-param.numel() // N); pad = size * N - param.numel(); mine = slice(rank * size, (rank + 1) * size)
        p, g = F.pad(param, (0, pad))[mine].clone(), F.pad(grad, (0, pad))[mine]
        if not state: state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
        state["step"] += 1
        p = update(p, g, state, state["step"], lr, betas, eps, wd)
        return torch.cat(all_gather(p))[:param.numel()]
    return step


def _adam_update(l2=False, bias_correction=True):
    def update(p, g, state, t, lr, betas, eps, wd):
        if l2: g = g + wd * p
        else: p = p * (1 - lr * wd)
        state["m"] = betas[0] * state["m"] + (1 - betas[0]) * g
        state["v"] = betas[1] * state["v"] + (1 - betas[1]) * g * g
        m, v = (state["m"] / (1 - betas[0] ** t), state["v"] / (1 - betas[1] ** t)) if bias_correction else (state["m"], state["v"])
        return p - lr * m / (v.sqrt() + eps)
    return update


def test_zero1_every_rank_runs_full_adamw():
    rejected(check_zero1_adamw_step(_full_adamw), "as if every rank ran the full AdamW step", "2·⌈S/N⌉")


def test_zero1_torch_adamw_is_switched_off():
    def with_torch(param, grad, state, rank, N, all_gather, lr, betas, eps, wd):
        p = torch.nn.Parameter(param.clone())
        opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
        p.grad = grad; opt.step()
        return p.detach()
    rejected(check_zero1_adamw_step(with_torch), "torch.optim.AdamW")


def test_zero1_adam_l2_instead_of_decoupled_decay():
    rejected(check_zero1_adamw_step(_sharded(_adam_update(l2=True))), "Adam with an L2 penalty")


def test_zero1_no_bias_correction():
    rejected(check_zero1_adamw_step(_sharded(_adam_update(bias_correction=False))), "no bias correction")


def test_zero1_without_all_gather():  # each rank updates its shard and keeps the rest of the old parameter
    def wrong(param, grad, state, rank, N, all_gather, lr, betas, eps, wd):
        size = -(-param.numel() // N); pad = size * N - param.numel(); mine = slice(rank * size, (rank + 1) * size)
        p, g = F.pad(param, (0, pad))[mine].clone(), F.pad(grad, (0, pad))[mine]
        if not state: state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
        state["step"] += 1
        full = F.pad(param, (0, pad)).clone(); full[mine] = _adam_update()(p, g, state, state["step"], lr, betas, eps, wd)
        return full[:param.numel()]
    rejected(check_zero1_adamw_step(wrong), "call it once per step with your updated shard")


def test_zero1_returns_the_shard():
    def wrong(param, grad, state, rank, N, all_gather, lr, betas, eps, wd):
        full = _sharded(_adam_update())(param, grad, state, rank, N, all_gather, lr, betas, eps, wd)
        size = -(-param.numel() // N)
        return full[rank * size:(rank + 1) * size]
    rejected(check_zero1_adamw_step(wrong), "return the whole updated parameter")


def test_zero1_state_outside_state():  # moments kept where the check cannot count them
    hidden = {}
    def wrong(param, grad, state, rank, N, all_gather, lr, betas, eps, wd):
        return _sharded(_adam_update())(param, grad, hidden.setdefault((id(state), rank), {}), rank, N, all_gather, lr, betas, eps, wd)
    rejected(check_zero1_adamw_step(wrong), "keep them in `state`")
