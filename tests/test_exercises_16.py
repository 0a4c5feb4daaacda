"""Chapter 16's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import torch

from conftest import solutions
from llm_course.finetune import check_last_token_pool, check_lora_merge, check_precision_recall_f1

S = solutions("16_finetuning")


def test_solutions_pass():
    assert check_precision_recall_f1(S["precision_recall_f1"])
    assert check_lora_merge(S["lora_merge"])
    assert check_last_token_pool(S["last_token_pool"])


def test_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check in (check_precision_recall_f1, check_lora_merge, check_last_token_pool):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


# precision_recall_f1 -------------------------------------------------------------------------------------------------

def test_prf_rows_and_columns_swapped():  # precision divided by the row sum: that is the recall
    def wrong(cm):
        cm = cm.double(); tp = cm.diag()
        p, r = tp / cm.sum(1).clamp(min=1), tp / cm.sum(0).clamp(min=1)
        return p, r, torch.where(p + r > 0, 2 * p * r / (p + r).clamp(min=1e-300), torch.zeros_like(p))
    r = check_precision_recall_f1(wrong)
    assert not r and r.done and "column sum" in r.message


def test_prf_nan_for_undefined():  # 0/0 left as nan
    def wrong(cm):
        cm = cm.double(); tp = cm.diag()
        p, r = tp / cm.sum(0), tp / cm.sum(1)
        return p, r, 2 * p * r / (p + r)
    r = check_precision_recall_f1(wrong)
    assert not r and "0/0" in r.message and "count it as 0" in r.message


def test_prf_arithmetic_mean():  # F1 as (P + R) / 2
    def wrong(cm):
        p, r, _ = S["precision_recall_f1"](cm)
        return p, r, (p + r) / 2
    r = check_precision_recall_f1(wrong)
    assert not r and "harmonic mean" in r.message


def test_prf_one_number():  # the macro average instead of per-class values
    def wrong(cm):
        p, r, f = S["precision_recall_f1"](cm)
        return p.mean(), r.mean(), f.mean()
    r = check_precision_recall_f1(wrong)
    assert not r and "one value per class" in r.message


# lora_merge ----------------------------------------------------------------------------------------------------------

def test_lora_merge_missing_scale():
    r = check_lora_merge(lambda W, A, B, alpha, r: W + B @ A)
    assert not r and "forgot the scale" in r.message


def test_lora_merge_inverted_scale():
    r = check_lora_merge(lambda W, A, B, alpha, r: W + (r / alpha) * B @ A)
    assert not r and "alpha / r, not r / alpha" in r.message


def test_lora_merge_transposed():  # (B·A)ᵀ: right on no non-square layer, wrong values on a square one
    r = check_lora_merge(lambda W, A, B, alpha, r: W + (alpha / r) * (A.T @ B.T))
    assert not r and "transposed" in r.message


def test_lora_merge_in_place():  # W += … changes the frozen base layer
    r = check_lora_merge(lambda W, A, B, alpha, r: W.add_((alpha / r) * B @ A))
    assert not r and "in place" in r.message


# last_token_pool -----------------------------------------------------------------------------------------------------

def test_pool_position_minus_one():  # h[:, -1]: padding on right-padded rows
    r = check_last_token_pool(lambda h, mask: h[:, -1])
    assert not r and "position T-1 is padding" in r.message


def test_pool_length_minus_one():  # mask.sum(1) - 1: only right padding
    r = check_last_token_pool(lambda h, mask: h[torch.arange(len(h)), mask.sum(1) - 1])
    assert not r and "left-padded" in r.message


def test_pool_first_real_token():  # argmax of the mask: the first 1
    r = check_last_token_pool(lambda h, mask: h[torch.arange(len(h)), mask.argmax(1)])
    assert not r and "FIRST real token" in r.message


def test_pool_mean():  # mean pooling is the other pooling, not this one
    r = check_last_token_pool(lambda h, mask: (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))
    assert not r and r.done and "differ" in r.message
