"Bad inputs to the schedules and the LR finder raise ConfigError with a fix hint."
import pytest
import torch
import torch.nn as nn

from llm_course.core import ConfigError
from llm_course.schedule import (as_scheduler, cosine_schedule, get_schedule, linear_schedule, lr_find,
                                 one_cycle_schedule, step_schedule, wsd_schedule)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown schedule 'cosin': use one of constant, step, linear, cosine, wsd, inverse_sqrt, one_cycle"):
        get_schedule("cosin", total_steps=10)


@pytest.mark.parametrize("total", [0, -5])
def test_total_steps_not_positive(total):
    with pytest.raises(ConfigError, match="total_steps must be an int ≥ 1.*number of optimizer steps"):
        cosine_schedule(0, total_steps=total)
    with pytest.raises(ConfigError, match="total_steps must be an int ≥ 1"):
        get_schedule("linear", total_steps=total)


def test_warmup_longer_than_run():
    with pytest.raises(ConfigError, match=r"warmup_steps=200 is longer than the run \(total_steps=100\).*warmup_steps=5"):
        get_schedule("cosine", total_steps=100, warmup_steps=200)
    with pytest.raises(ConfigError, match="longer than the run"):
        get_schedule("constant", total_steps=100, warmup_steps=101)


def test_negative_warmup_and_step():
    with pytest.raises(ConfigError, match="warmup_steps must be an int ≥ 0.*use 0 for no warmup"):
        linear_schedule(3, total_steps=10, warmup_steps=-1)
    with pytest.raises(ConfigError, match="step must be an int ≥ 0"):
        cosine_schedule(-1, total_steps=10)


def test_non_integer_and_ratio():
    with pytest.raises(ConfigError, match="total_steps must be an int"):
        cosine_schedule(0, total_steps=10.5)
    with pytest.raises(ConfigError, match=r"min_ratio must be a number in \[0, 1\]"):
        cosine_schedule(0, total_steps=10, min_ratio=1.5)
    with pytest.raises(ConfigError, match="gamma"):
        step_schedule(0, step_size=3, gamma=0)
    with pytest.raises(ConfigError, match="step_size must be an int ≥ 1"):
        step_schedule(0, step_size=0)


def test_wsd_and_one_cycle_errors():
    with pytest.raises(ConfigError, match="exceed total_steps"):
        wsd_schedule(0, total_steps=10, warmup_steps=5, decay_steps=6)
    with pytest.raises(ConfigError, match="unknown decay_type 'exp'"):
        wsd_schedule(0, total_steps=10, decay_type="exp")
    with pytest.raises(ConfigError, match="one-cycle"):
        one_cycle_schedule(0, total_steps=2, pct_start=0.3)
    with pytest.raises(ConfigError, match="anneal"):
        one_cycle_schedule(0, total_steps=100, anneal="exp")


def test_bad_arguments_and_scheduler():
    with pytest.raises(ConfigError, match="bad arguments for schedule 'cosine'"):
        get_schedule("cosine", total_steps=10, warmup=3)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match="only used with a schedule name"):
        as_scheduler(opt, lambda s: 1.0, total_steps=10)
    with pytest.raises(ConfigError, match="name or a function"):
        as_scheduler(opt, 3)


def test_lr_find_errors():
    model = nn.Linear(2, 2)
    ce = lambda out, y: ((out - y) ** 2).mean()
    with pytest.raises(ConfigError, match="start_lr < end_lr"):
        lr_find(model, ce, [(torch.zeros(1, 2), torch.zeros(1, 2))], start_lr=1.0, end_lr=1e-3)
    with pytest.raises(ConfigError, match="batches is empty"):
        lr_find(model, ce, [], steps=10)
    with pytest.raises(ConfigError, match="steps must be an int ≥ 5"):
        lr_find(model, ce, [(torch.zeros(1, 2), torch.zeros(1, 2))], steps=2)
