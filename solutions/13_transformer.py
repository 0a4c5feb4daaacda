"""Solutions to chapter 13's exercises — try first, then compare."""
import torch

from llm_course.model import Transformer


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    "x / √(mean(x²) + eps) · weight, the mean over the last axis."
    return weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def prenorm_block(x, norm1, attn, norm2, mlp):
    "One pre-norm block: the sub-layers read normalised copies; their outputs are added to the untouched stream."
    x = x + attn(norm1(x))
    return x + mlp(norm2(x))


def to_hf_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    "The model's weights under the names and layouts of Hugging Face's LlamaForCausalLM or GPT2LMHeadModel."
    c, ours = model.config, model.state_dict()
    kinds = ("weight", "bias") if c.bias else ("weight",)
    if c.style == "llama":
        H, K = c.n_head * c.head_dim, c.n_kv_head * c.head_dim       # the fused qkv: H query rows, then K key and K value rows
        sd = {"model.embed_tokens.weight": ours["tok_emb.weight"], "model.norm.weight": ours["norm.weight"],
              "lm_head.weight": ours["lm_head.weight"]}                # listed even when tied (then it is the embedding)
        for i in range(c.n_layer):
            h, o = f"model.layers.{i}.", f"blocks.{i}."
            for kind in kinds:
                q, k, v = ours[f"{o}attn.qkv.{kind}"].split([H, K, K])
                sd.update({f"{h}self_attn.q_proj.{kind}": q, f"{h}self_attn.k_proj.{kind}": k, f"{h}self_attn.v_proj.{kind}": v,
                           f"{h}self_attn.o_proj.{kind}": ours[f"{o}attn.proj.{kind}"],
                           f"{h}mlp.gate_proj.{kind}": ours[f"{o}mlp.gate.{kind}"], f"{h}mlp.up_proj.{kind}": ours[f"{o}mlp.up.{kind}"],
                           f"{h}mlp.down_proj.{kind}": ours[f"{o}mlp.proj.{kind}"]})
            sd[f"{h}input_layernorm.weight"] = ours[f"{o}norm1.weight"]
            sd[f"{h}post_attention_layernorm.weight"] = ours[f"{o}norm2.weight"]
        return sd
    sd = {"transformer.wte.weight": ours["tok_emb.weight"], "transformer.wpe.weight": ours["pos_emb.weight"],
          "transformer.ln_f.weight": ours["norm.weight"], "transformer.ln_f.bias": ours["norm.bias"], "lm_head.weight": ours["lm_head.weight"]}
    for i in range(c.n_layer):
        h, o = f"transformer.h.{i}.", f"blocks.{i}."
        for theirs, mine in (("attn.c_attn", "attn.qkv"), ("attn.c_proj", "attn.proj"), ("mlp.c_fc", "mlp.fc"), ("mlp.c_proj", "mlp.proj")):
            sd[f"{h}{theirs}.weight"] = ours[f"{o}{mine}.weight"].T      # GPT-2's Conv1D stores [in, out]
            sd[f"{h}{theirs}.bias"] = ours[f"{o}{mine}.bias"]
        for theirs, mine in (("ln_1", "norm1"), ("ln_2", "norm2")):
            sd[f"{h}{theirs}.weight"], sd[f"{h}{theirs}.bias"] = ours[f"{o}{mine}.weight"], ours[f"{o}{mine}.bias"]
    return sd
