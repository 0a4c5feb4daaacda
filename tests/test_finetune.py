"Fine-tuning: classifier head, freezing, LoRA (merge parity), metrics vs a NumPy computation, resampling, bad input."
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_course.core import ConfigError, DataError
from llm_course.model import ModelConfig, Transformer
from llm_course.finetune import (SequenceClassifier, LoRALinear, FusedLoRALinear, lora_param_count, apply_lora, merge_lora, freeze, unfreeze_last_blocks,
                                 count_params, confusion_matrix, classification_report, classification_batches,
                                 fit_classifier, predict, encode_bytes, encode_texts, stratified_split, docstring_topics,
                                 balanced_class_weights)

torch.set_num_threads(1)


@pytest.fixture()
def backbone():
    torch.manual_seed(0)
    return Transformer(ModelConfig.preset("tiny", vocab_size=256, block_size=32, n_layer=2, n_head=4, d_model=32, d_ff=64))


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_shapes_and_padding_invariance(backbone, pooling):
    clf = SequenceClassifier(backbone, 3, pooling=pooling, pad_id=0).eval()
    x = torch.randint(1, 256, (2, 10))
    padded = torch.cat([x, torch.zeros(2, 6, dtype=torch.long)], 1)
    with torch.no_grad():
        assert clf(x).shape == (2, 3)
        assert torch.allclose(clf(x), clf(padded), atol=1e-5)
        assert torch.allclose(clf(padded), clf(padded, (padded != 0).long()), atol=1e-6)


def test_lora_linear_init_and_formula():
    torch.manual_seed(0)
    base = nn.Linear(16, 24)
    x = torch.randn(3, 16)
    lora = LoRALinear(base, r=2, alpha=4)
    assert torch.equal(lora(x), base(x)) and not base.weight.requires_grad
    with torch.no_grad(): lora.lora_B.normal_()
    assert torch.allclose(lora(x), F.linear(x, base.weight + 2 * lora.lora_B @ lora.lora_A, base.bias), atol=1e-5)
    assert count_params(lora, trainable=True) == 2 * (16 + 24)


def randomize_lora_B(model, std=0.1):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name: p.normal_(0, std)


def test_apply_and_merge_lora(backbone):
    clf = SequenceClassifier(backbone, 4, pad_id=0)
    n_all = count_params(clf)
    apply_lora(clf.backbone, ("q", "v"), r=4, alpha=8)
    d = backbone.config.d_model
    head = clf.head.weight.numel() + clf.head.bias.numel()
    # the paper's form: q and v each get r·(d_in + d_out), i.e. 2·r·(d_in + d_out) per block
    assert count_params(clf.backbone, trainable=True) == 2 * (2 * 4 * (d + d)) == lora_param_count(backbone.config, 4)
    assert count_params(clf, trainable=True) == 2 * 2 * 4 * 2 * d + head
    randomize_lora_B(clf)
    clf.eval()
    x = torch.randint(1, 256, (3, 12))
    with torch.no_grad():
        before = clf(x); merge_lora(clf); after = clf(x)
    assert (before - after).abs().max() <= 1e-5
    assert not any(isinstance(m, (LoRALinear, FusedLoRALinear)) for m in clf.modules()) and count_params(clf) == n_all
    assert count_params(clf.backbone, trainable=True) == 0  # merged weights stay frozen, as the base layers were


@pytest.mark.parametrize("n_kv_head", [None, 2])
def test_lora_q_v_separate_pairs_k_untouched(n_kv_head):
    "Hu et al.: W_q and W_v each get their own A and B; W_k (the middle rows of the fused qkv) is left as it was."
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", vocab_size=64, block_size=16, n_layer=2, n_head=4, n_kv_head=n_kv_head, d_model=32, d_ff=64)
    model = apply_lora(Transformer(cfg), ("q", "v"), r=3, alpha=6)
    attn = model.blocks[0].attn
    qkv = attn.qkv
    assert isinstance(qkv, FusedLoRALinear)
    assert {n for n, p in qkv.named_parameters() if p.requires_grad} == {"lora_A.q", "lora_A.v", "lora_B.q", "lora_B.v"}
    assert qkv.lora_A["q"].data_ptr() != qkv.lora_A["v"].data_ptr() and qkv.lora_B["q"].data_ptr() != qkv.lora_B["v"].data_ptr()
    H, K = cfg.n_head * cfg.head_dim, cfg.n_kv_head * cfg.head_dim
    assert qkv.lora_B["q"].shape == (H, 3) and qkv.lora_B["v"].shape == (K, 3) and qkv.lora_A["q"].shape == (3, cfg.d_model)
    assert count_params(model, trainable=True) == cfg.n_layer * (3 * (cfg.d_model + H) + 3 * (cfg.d_model + K)) == lora_param_count(cfg, 3)
    randomize_lora_B(model, 0.5)
    x = torch.randn(2, 5, cfg.d_model)
    with torch.no_grad():
        # the explicit form: three separate nn.Linear layers, q and v updated by their own (alpha/r)·B·A
        Wq, Wk, Wv = qkv.base.weight.split([H, K, K])
        q = F.linear(x, Wq) + 2 * x @ qkv.lora_A["q"].T @ qkv.lora_B["q"].T
        k = F.linear(x, Wk)
        v = F.linear(x, Wv) + 2 * x @ qkv.lora_A["v"].T @ qkv.lora_B["v"].T
        y = qkv(x)
        assert torch.allclose(y, torch.cat([q, k, v], -1), atol=1e-5)
        assert torch.equal(y[..., H:H + K], qkv.base(x)[..., H:H + K])  # k exactly unchanged
        assert (qkv.delta_weight()[H:H + K] == 0).all()
        # gradients reach the adapters, never the frozen base
        ids = torch.randint(0, 64, (2, 8))
        before = model(ids)
    loss = model(ids).logsumexp(-1).mean()
    loss.backward()
    assert qkv.lora_A["q"].grad is not None and qkv.lora_B["v"].grad is not None and qkv.base.weight.grad is None
    with torch.no_grad():
        merged = merge_lora(model)
        assert torch.allclose(merged(ids), before, atol=1e-5)


def test_lora_shared_variant_counts(backbone):
    "The older shared form (one A for q and v stacked) keeps its own count r·(d_in + 2·d_out) per block."
    cfg = backbone.config
    apply_lora(backbone, ("q", "v"), r=4, alpha=8, shared=True)
    assert isinstance(backbone.blocks[0].attn.qkv, LoRALinear)
    assert count_params(backbone, trainable=True) == cfg.n_layer * 4 * (cfg.d_model + 2 * cfg.d_model) == lora_param_count(cfg, 4, shared=True)
    assert lora_param_count(cfg, 4, shared=True) < lora_param_count(cfg, 4)


def test_fused_lora_bad_parts():
    with pytest.raises(ConfigError, match="non-overlapping"): FusedLoRALinear(nn.Linear(4, 12), {"q": (0, 8), "v": (4, 12)})
    with pytest.raises(ConfigError, match="non-overlapping"): FusedLoRALinear(nn.Linear(4, 12), {"q": (0, 16)})
    with pytest.raises(ConfigError, match="empty"): FusedLoRALinear(nn.Linear(4, 12), {})
    with pytest.raises(ConfigError, match="subset"): lora_param_count(ModelConfig.preset("tiny"), 4, ("o",))


def test_lora_other_targets(backbone):
    apply_lora(backbone, ("qkv", "proj"), r=2, alpha=2)
    # per block: attn.qkv, attn.proj and mlp.proj (a name matches every layer called so)
    assert sum(isinstance(m, LoRALinear) for m in backbone.modules()) == 3 * backbone.config.n_layer


def test_freezing(backbone):
    clf = SequenceClassifier(backbone, 2, pad_id=0)
    unfreeze_last_blocks(clf, 0)
    assert count_params(clf, trainable=True) == clf.head.weight.numel() + clf.head.bias.numel()
    unfreeze_last_blocks(clf, 1)
    assert all(p.requires_grad for p in clf.backbone.blocks[-1].parameters())
    assert not any(p.requires_grad for p in clf.backbone.blocks[0].parameters())
    freeze(clf, False)
    assert count_params(clf, trainable=True) == count_params(clf)


def test_metrics_against_numpy():
    rng = np.random.default_rng(1)
    for _ in range(30):
        C = int(rng.integers(2, 6)); n = int(rng.integers(1, 120))
        yt, yp = rng.integers(0, C, n), rng.integers(0, C, n)
        cm = confusion_matrix(yt, yp, C)
        assert (cm.numpy() == np.bincount(yt * C + yp, minlength=C * C).reshape(C, C)).all()
        rep = classification_report(yt, yp, C)
        for c in range(C):
            tp = np.sum((yt == c) & (yp == c)); P = tp / max(np.sum(yp == c), 1); R = tp / max(np.sum(yt == c), 1)
            assert abs(rep["precision"][c] - P) < 1e-12 and abs(rep["recall"][c] - R) < 1e-12
            assert abs(rep["f1"][c] - (2 * P * R / (P + R) if P + R else 0)) < 1e-12
        assert abs(rep["accuracy"] - np.mean(yt == yp)) < 1e-12


def test_perfect_and_never_predicted():
    rep = classification_report([0, 1, 2, 2], [0, 1, 2, 2], 3)
    assert rep["accuracy"] == rep["macro_f1"] == 1.0
    rep = classification_report([0, 1, 1], [0, 0, 0], 2)
    assert rep["precision"][1] == 0 and rep["recall"][1] == 0 and rep["f1"][1] == 0


def test_balanced_batches_resample():
    ids = torch.arange(100)[:, None]
    labels = torch.tensor([0] * 95 + [1] * 5)
    x, y = classification_batches(ids, labels, balanced=True)(4000, torch.Generator().manual_seed(0))
    assert abs(y.float().mean().item() - 0.5) < 0.05 and y.shape == (4000, 1)
    x, y = classification_batches(ids, labels)(4000, torch.Generator().manual_seed(0))
    assert y.float().mean().item() < 0.1


def test_balanced_class_weights():
    labels = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    w = balanced_class_weights(labels, 3)
    assert torch.allclose(w, torch.tensor([10 / 18, 10 / 9, 10 / 3], dtype=w.dtype))
    assert torch.allclose(w[labels].mean(), torch.tensor(1.0, dtype=w.dtype))  # the average example keeps weight 1
    assert torch.allclose(w * torch.bincount(labels), torch.full((3,), 10 / 3, dtype=w.dtype))  # every class sums the same


def test_fit_classifier_with_class_weights(backbone):
    "A zero weight on a class removes it from the loss: the classifier never learns to predict it."
    texts = ["aaaa aaa aa"] * 20 + ["zzz zzzz z"] * 20
    ids, mask = encode_bytes(texts, 16)
    y = torch.tensor([0] * 20 + [1] * 20)
    states = copy.deepcopy(backbone.state_dict())
    preds = {}
    for w in (None, torch.tensor([1.0, 0.0])):
        backbone.load_state_dict(states)
        clf = SequenceClassifier(backbone, 2, pooling="mean", pad_id=0)
        fit_classifier(clf, ids, y, steps=30, batch_size=8, lr=3e-3, class_weights=w)
        preds[w is None] = predict(clf, ids, mask)
    assert (preds[True] == y).all() and (preds[False] == 0).all()


def test_fit_classifier_learns_a_trivial_task(backbone):
    texts = ["aaaa aaa aa"] * 20 + ["zzz zzzz z"] * 20
    ids, mask = encode_bytes(texts, 16)
    y = torch.tensor([0] * 20 + [1] * 20)
    clf = SequenceClassifier(backbone, 2, pooling="mean", pad_id=0)
    m = fit_classifier(clf, ids, y, steps=30, batch_size=8, lr=3e-3)
    assert m["step"] == 30
    assert (predict(clf, ids, mask) == y).float().mean() == 1.0


def test_data_helpers():
    data = docstring_topics(("asyncio", "email"), max_chars=64)
    assert set(data.labels.tolist()) == {0, 1} and all(len(t) <= 64 for t in data.texts)
    tr, te = stratified_split(data.labels, 0.25)
    assert len(set(tr.tolist()) & set(te.tolist())) == 0 and len(tr) + len(te) == len(data.labels)


# ---- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 0, -3, 2.5, True])
def test_bad_n_classes(backbone, n):
    with pytest.raises(ConfigError, match="n_classes"): SequenceClassifier(backbone, n)
    with pytest.raises(ConfigError, match="n_classes"): confusion_matrix([0], [0], n)


def test_labels_out_of_range(backbone):
    with pytest.raises(ConfigError, match="0..2"): confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ConfigError, match="0..2"): classification_report([0, 1], [0, -1], 3)
    clf = SequenceClassifier(backbone, 3, pad_id=0)
    with pytest.raises(ConfigError, match="0..2"): fit_classifier(clf, torch.ones(2, 4, dtype=torch.long), torch.tensor([0, 5]), steps=1)
    with pytest.raises(ConfigError, match="integer"): confusion_matrix(torch.tensor([0.5]), torch.tensor([0]), 2)


@pytest.mark.parametrize("r", [0, -1, 1.5])
def test_bad_lora_rank(backbone, r):
    with pytest.raises(ConfigError, match="rank"): LoRALinear(nn.Linear(4, 4), r=r)
    with pytest.raises(ConfigError, match="rank"): apply_lora(backbone, r=r)


def test_other_bad_input(backbone):
    with pytest.raises(ConfigError, match="pooling"): SequenceClassifier(backbone, 2, pooling="max")
    with pytest.raises(ConfigError, match="match no linear"): apply_lora(backbone, ("nope",))
    with pytest.raises(ConfigError, match="alpha"): LoRALinear(nn.Linear(4, 4), r=2, alpha=0)
    clf = SequenceClassifier(backbone, 2, pad_id=0)
    with pytest.raises(ConfigError, match="k must be"): unfreeze_last_blocks(clf, 5)
    freeze(clf)
    with pytest.raises(ConfigError, match="no trainable"): fit_classifier(clf, torch.ones(2, 4, dtype=torch.long), torch.tensor([0, 1]))
    with pytest.raises(DataError, match=r"classes \[1\] have no training examples"): balanced_class_weights(torch.tensor([0, 2, 2]), 3)
    with pytest.raises(ConfigError, match="0..2"): balanced_class_weights(torch.tensor([0, 3]), 3)


def test_encode_bytes_rejects_non_positive_max_len():
    with pytest.raises(ConfigError, match="max_len must be an int ≥ 1"): encode_bytes(["abc"], 0)


def test_pad_id_outside_the_vocabulary(backbone):
    "A character tokenizer uses every id, so encode_texts pads with -1; the classifier masks it and never embeds it."
    from llm_course.tokenizer import CharTokenizer
    tok = CharTokenizer.train("abc xyz.")
    ids, mask = encode_texts(["abc", "xyz. abc"], tok, 12)
    assert (ids[mask == 0] == -1).all() and ids[0, :3].tolist() == tok.encode("abc")
    clf = SequenceClassifier(backbone, 2, pad_id=-1).eval()
    with torch.no_grad():
        assert torch.allclose(clf(ids), clf(ids, mask), atol=1e-6)
        assert torch.allclose(clf(ids[:1, :3]), clf(ids[:1]), atol=1e-5)   # padding changes nothing
    with pytest.raises(DataError, match="empty"): encode_texts(["abc", ""], tok, 8)
    m = fit_classifier(clf, ids, torch.tensor([0, 1]), steps=2, batch_size=2)   # the Learner passes ids with -1 in them
    assert m["step"] == 2
