"""Chapter 17's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
from conftest import solutions
from llm_course.scaling import check_matmul_flops_per_token, check_model_state_bytes, check_training_days, param_count

S = solutions("17_scaling")


def test_solutions_pass():
    assert check_training_days(S["training_days"])
    assert check_matmul_flops_per_token(S["matmul_flops_per_token"])
    assert check_model_state_bytes(S["model_state_bytes"])


def test_stubs_are_not_done():
    def stub(*args, **kwargs): raise NotImplementedError
    for check in (check_training_days, check_matmul_flops_per_token, check_model_state_bytes):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


# training_days -------------------------------------------------------------------------------------------------------

def test_days_forward_only():
    r = check_training_days(lambda n, tokens, gpus, peak, mfu: 2 * n * tokens / (gpus * peak * mfu) / 86400)
    assert not r and r.done and "6·N" in r.message and "backward" in r.message


def test_days_without_mfu():
    r = check_training_days(lambda n, tokens, gpus, peak, mfu: 6 * n * tokens / (gpus * peak) / 86400)
    assert not r and "mfu × peak" in r.message


def test_days_one_gpu():
    r = check_training_days(lambda n, tokens, gpus, peak, mfu: 6 * n * tokens / (peak * mfu) / 86400)
    assert not r and "divide by gpus" in r.message


def test_days_in_hours():
    r = check_training_days(lambda n, tokens, gpus, peak, mfu: 6 * n * tokens / (gpus * peak * mfu) / 3600)
    assert not r and "in days" in r.message


# matmul_flops_per_token ----------------------------------------------------------------------------------------------

def test_flops_counting_every_parameter():  # 6 × all parameters: embeddings and norms are not matmuls
    r = check_matmul_flops_per_token(lambda c: 6 * param_count(c))
    assert not r and "embeddings" in r.message


def test_flops_forward_only():
    r = check_matmul_flops_per_token(lambda c: S["matmul_flops_per_token"](c) // 3)
    assert not r and "forward pass only" in r.message


def test_flops_ignoring_gqa():  # k and v counted with n_head heads
    def wrong(c):
        per_block = c.d_model * 3 * c.n_head * c.head_dim + c.n_head * c.head_dim * c.d_model \
                    + (3 if c.mlp == "swiglu" else 2) * c.d_model * c.d_ff
        return 6 * (c.n_layer * per_block + c.vocab_size * c.d_model)
    r = check_matmul_flops_per_token(wrong)
    assert not r and "n_kv_head" in r.message


def test_flops_swiglu_two_matrices():
    def wrong(c):
        per_block = c.d_model * (c.n_head + 2 * c.n_kv_head) * c.head_dim + c.n_head * c.head_dim * c.d_model + 2 * c.d_model * c.d_ff
        return 6 * (c.n_layer * per_block + c.vocab_size * c.d_model)
    r = check_matmul_flops_per_token(wrong)
    assert not r and "three matrices" in r.message


def test_flops_without_head():
    r = check_matmul_flops_per_token(lambda c: S["matmul_flops_per_token"](c) - 6 * c.vocab_size * c.d_model)
    assert not r and "output head" in r.message


# model_state_bytes ---------------------------------------------------------------------------------------------------

def _with(**change):
    def wrong(n, gpus=1, sharding="none", precision="bf16"):
        out = S["model_state_bytes"](n, gpus, sharding, precision)
        for k, f in change.items(): out[k] = f(n, gpus, sharding, precision, out[k])
        return out
    return wrong


def test_state_without_master_copy():
    r = check_model_state_bytes(_with(master_weights=lambda n, g, s, p, v: 0))
    assert not r and r.done and "fp32 master copy" in r.message


def test_state_adam_one_moment():
    r = check_model_state_bytes(_with(optimizer=lambda n, g, s, p, v: v // 2 if s in ("none", "ddp") else -(-n * 4 // g)))
    assert not r and "two fp32 moments" in r.message


def test_state_zero1_shards_gradients():
    r = check_model_state_bytes(_with(gradients=lambda n, g, s, p, v: -(-n * 4 // g) if s in ("zero1", "zero2") else v))
    assert not r and "ZeRO-1 shards only the optimizer state" in r.message


def test_state_rounding_down():
    r = check_model_state_bytes(_with(**{k: (lambda b: lambda n, g, s, p, v: n * b // g if v != n * b and v else v)(b)
                                         for k, b in (("master_weights", 4), ("optimizer", 8), ("gradients", 4))}))
    assert not r and "round up" in r.message


def test_state_bf16_gradients():
    r = check_model_state_bytes(_with(gradients=lambda n, g, s, p, v: v // 2))
    assert not r and "fp32" in r.message and "gradients" in r.message
