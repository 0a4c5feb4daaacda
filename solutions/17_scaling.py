"""Solutions to chapter 17's exercises — try first, then compare."""
from llm_course.model import ModelConfig


def training_days(n_params: float, tokens: float, gpus: int, peak_flops: float, mfu: float) -> float:
    "Days to train n_params on tokens at 6·N FLOPs per token, on gpus × peak_flops × mfu FLOP/s."
    flops = 6 * n_params * tokens                 # forward 2·N + backward 4·N per token
    seconds = flops / (gpus * peak_flops * mfu)   # what the GPUs really deliver
    return seconds / 86400


def matmul_flops_per_token(config: ModelConfig) -> int:
    "6 × (weights of the blocks' linear layers + the output head): training FLOPs per token of the matmuls."
    c = config
    qkv = c.d_model * (c.n_head + 2 * c.n_kv_head) * c.head_dim   # q has n_head heads, k and v n_kv_head each
    out = c.n_head * c.head_dim * c.d_model
    mlp = (3 if c.mlp == "swiglu" else 2) * c.d_model * c.d_ff    # SwiGLU: gate, up and down
    head = c.vocab_size * c.d_model                              # multiplied by every token, tied or not
    return 6 * (c.n_layer * (qkv + out + mlp) + head)


def model_state_bytes(n_params: int, gpus: int = 1, sharding: str = "none", precision: str = "bf16") -> dict[str, int]:
    "Bytes per GPU of weights, master_weights, gradients and optimizer (AdamW) under none/ddp/zero1/zero2 and bf16/fp32."
    def shard(nbytes: int, sharded: bool) -> int:
        return -(-nbytes // gpus) if sharded else nbytes   # ceil(nbytes / gpus) in integers: the last rank's shard is padded
    bf16 = precision == "bf16"
    kept_bf16 = bf16 and sharding in ("zero1", "zero2")   # one GPU / DDP: autocast casts while a step runs, nothing kept
    return dict(weights=n_params * (2 if kept_bf16 else 0 if bf16 else 4),              # a bf16 copy kept between steps, or the fp32 weights
                master_weights=shard(n_params * 4, sharding in ("zero1", "zero2")) if bf16 else 0,
                gradients=shard(n_params * 4, sharding == "zero2"),                     # fp32 gradients
                optimizer=shard(n_params * 8, sharding in ("zero1", "zero2")))          # AdamW: m and v in fp32
