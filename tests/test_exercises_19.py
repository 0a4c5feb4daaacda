"""Chapter 19's exercise checks reject the usual wrong answers and the shortcuts, each with a message naming it, and accept the solution."""
import numpy as np
import torch

from conftest import rejected, solutions
from llm_course.distributed import ShardedTokens
from llm_course.model import KVCache, ModelConfig
from llm_course.scaling import layer_activation_bytes
from llm_course.distributed import permuted
from llm_course.train import check_activation_bytes_per_token, check_global_batch_ids, check_kv_cache_bytes

S = solutions("19_train_7b")
CHECKS = (check_activation_bytes_per_token, check_kv_cache_bytes, check_global_batch_ids)


def test_solutions_pass_and_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check, name in zip(CHECKS, ("activation_bytes_per_token", "kv_cache_bytes", "global_batch_ids")):
        assert check(S[name]), name
        r = check(stub); assert not r and not r.done and "not done yet" in repr(r)


# activation_bytes_per_token -------------------------------------------------------------------------------------------

def _acts(kv=None, rope=True, swiglu=4, norm_fp32=True, lse=True):
    "The solution's count with one piece changed."
    def f(c, a):
        d, H, K, hd = c.d_model, c.n_head, c.n_kv_head if kv is None else kv(c), c.head_dim
        norm = (4 * d + 4 + 2 * a * d if norm_fp32 else 2 * a * d) if c.norm == "rmsnorm" else 2 * a * d + 8
        attn = a * (H + 2 * K) * hd + a * H * hd + 4 * H * lse + (a * (H + K) * hd if c.pos == "rope" and rope else 0)
        return 2 * norm + attn + (swiglu if c.mlp == "swiglu" else 2) * a * c.d_ff
    return f


def test_activations_gqa_counted_as_mha():
    rejected(check_activation_bytes_per_token(_acts(kv=lambda c: c.n_head)), "n_kv_head heads, not n_head")


def test_activations_without_rope_copies():
    rejected(check_activation_bytes_per_token(_acts(rope=False)), "RoPE keeps the rotated q and k")


def test_activations_swiglu_as_two_tensors():
    rejected(check_activation_bytes_per_token(_acts(swiglu=2)), "SwiGLU keeps four")


def test_activations_norm_in_act_bytes():
    rejected(check_activation_bytes_per_token(_acts(norm_fp32=False)), "RMSNorm keeps its input as fp32")


def test_activations_no_logsumexp():
    rejected(check_activation_bytes_per_token(_acts(lse=False)), "log-sum-exp per head")


def test_activations_whole_model():
    rejected(check_activation_bytes_per_token(lambda c, a: c.n_layer * S["activation_bytes_per_token"](c, a)), "one block")


def test_activations_course_function_is_switched_off():
    rejected(check_activation_bytes_per_token(lambda c, a: sum(layer_activation_bytes(c, 1, a).values())),
             "called chapter 17's layer_activation_bytes")


# kv_cache_bytes --------------------------------------------------------------------------------------------------------

def test_kv_cache_only_keys():
    rejected(check_kv_cache_bytes(lambda c, T, B, nb: c.n_layer * c.n_kv_head * c.head_dim * nb * T * B), "keys and values", "factor 2")


def test_kv_cache_n_head_with_gqa():
    rejected(check_kv_cache_bytes(lambda c, T, B, nb: 2 * c.n_layer * c.d_model * nb * T * B), "GQA", "only the kv heads are cached")


def test_kv_cache_bits():
    rejected(check_kv_cache_bytes(lambda c, T, B, nb: 8 * S["kv_cache_bytes"](c, T, B, nb)), "bytes, not bits")


def test_kv_cache_one_layer():
    rejected(check_kv_cache_bytes(lambda c, T, B, nb: S["kv_cache_bytes"](c, T, B, nb) // c.n_layer), "times n_layer")


def test_kv_cache_course_class_is_switched_off():
    def with_kvcache(c, T, B, nb):
        cache = KVCache(ModelConfig.from_dict({**c.to_dict(), "block_size": T}), B, device="meta", dtype={2: torch.bfloat16}.get(nb, torch.float32))
        return cache.k.nbytes * 2
    rejected(check_kv_cache_bytes(with_kvcache), "called the course's KVCache")


# global_batch_ids -----------------------------------------------------------------------------------------------------

def test_global_batch_ids():
    at = lambda i, n, key, epoch: int(permuted(np.array([i]), n, key, epoch)[0])
    def one_order(step, B, n, seed):      # epoch 0's order reused for every epoch
        return np.array([at(p % n, n, seed, 0) for p in step * B + np.arange(B)])
    def no_times_b(step, B, n, seed):     # step s starts at position s
        return np.array([at(p % n, n, seed, int(p // n)) for p in step + np.arange(B)])
    rejected(check_global_batch_ids(one_order), "one order for every epoch", "(seed, epoch)")
    rejected(check_global_batch_ids(no_times_b), "s·batch_size")


def test_global_batch_ids_seed_plus_epoch():  # a different order per epoch, but runs with neighbouring seeds share orders
    def seed_plus_epoch(step, B, n, seed):
        return np.array([int(permuted(np.array([p % n]), n, seed + int(p // n), 0)[0]) for p in step * B + np.arange(B)])
    rejected(check_global_batch_ids(seed_plus_epoch), "seed + e", "neighbouring seeds share their orders", "permuted(…, n_windows, seed, epoch)")


def test_global_batch_ids_course_class_is_switched_off():
    def with_course(step, B, n, seed):
        return ShardedTokens(np.zeros(n + 1, dtype=np.int64), 1, seed=seed, rank=0, world_size=1).sample_ids(step, B)
    rejected(check_global_batch_ids(with_course), "called chapter 18's ShardedTokens")


def test_the_solutions_agree_with_the_course():  # the convention the exercise text states is the planner's
    c = ModelConfig.preset("llama2-7b")
    assert S["activation_bytes_per_token"](c, 2) == sum(layer_activation_bytes(c, 1, 2).values()) == 202_888
    assert S["kv_cache_bytes"](c, 4096, 1, 2) == 2**31   # 2 GiB: 32 layers × 2 × 32 heads × 128 × 2 B × 4096 tokens
