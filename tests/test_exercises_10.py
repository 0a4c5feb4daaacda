"Chapter 10's exercise checks reject the usual wrong answers, each with a message that names the mistake."
import torch

from conftest import solutions
from llm_course.viz import check_attention_distance, check_smooth

SOL = solutions("10_viz")


def test_solutions_pass():
    assert check_smooth(SOL["smooth"]) and check_attention_distance(SOL["attention_distance"])


def test_smooth_without_bias_correction():
    def wrong(values, beta=0.9):
        out, m = [], 0.0
        for x in values: m = beta * m + (1 - beta) * x; out.append(m)
        return out
    r = check_smooth(wrong)
    assert not r and r.done and "bias correction" in r.message and "pulled towards 0" in r.message


def test_smooth_with_beta_swapped():
    def wrong(values, beta=0.9):
        out, m = [], 0.0
        for t, x in enumerate(values, 1): m = (1 - beta) * m + beta * x; out.append(m / (1 - beta ** t))
        return out
    r = check_smooth(wrong)
    assert not r and "beta weights the past" in r.message


def test_smooth_correction_off_by_one():  # t counted from 0 would divide by zero; from 2 is the plausible slip
    def wrong(values, beta=0.9):
        out, m = [], 0.0
        for t, x in enumerate(values, 2): m = beta * m + (1 - beta) * x; out.append(m / (1 - beta ** t))
        return out
    r = check_smooth(wrong)
    assert not r and "1 − beta**t after t values" in r.message


def test_smooth_dropping_values():
    r = check_smooth(lambda values, beta=0.9: values[1:])
    assert not r and "one smoothed number per input value" in r.message


def _dist(T):
    return (torch.arange(T)[:, None] - torch.arange(T)[None, :]).double()


def test_attention_distance_sign():
    r = check_attention_distance(lambda a: (a * -_dist(a.shape[-1])).sum(-1).mean(-1))
    assert not r and "query − key" in r.message


def test_attention_distance_averaged_over_keys():
    r = check_attention_distance(lambda a: (a * _dist(a.shape[-1])).mean(-1).mean(-1))
    assert not r and "sum the weighted distances over the keys" in r.message


def test_attention_distance_unweighted():
    def wrong(a):
        d = _dist(a.shape[-1]); vis = (d >= 0).double()
        return ((d * vis).sum(-1) / vis.sum(-1)).mean().expand(a.shape[:2])
    r = check_attention_distance(wrong)
    assert not r and "weight each distance" in r.message


def test_attention_distance_not_reduced():
    r = check_attention_distance(lambda a: (a * _dist(a.shape[-1])).sum(-1))
    assert not r and "one number per head" in r.message
