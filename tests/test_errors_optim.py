"Bad hyper-parameters and inputs raise ConfigError/DataError with a fix hint."
import math

import pytest
import torch
import torch.nn as nn

from llm_course.core import ConfigError, DataError
from llm_course.optim import SGD, Adagrad, Adam, AdamW, accumulate_lm_gradients, clip_grad_norm, micro_batch_weights, param_groups


def ps(): return [nn.Parameter(torch.zeros(2))]


@pytest.mark.parametrize("cls", [SGD, Adagrad, Adam, AdamW])
def test_negative_lr(cls):
    with pytest.raises(ConfigError, match="learning rate must be a number ≥ 0, got lr=-0.1: typical"):
        cls(ps(), lr=-0.1)
    with pytest.raises(ConfigError, match="learning rate"):
        cls(ps(), lr=float("nan"))


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.9), (0.9,), "0.9"])
def test_bad_betas(cls, betas):
    with pytest.raises(ConfigError, match=r"betas must be two numbers in \[0, 1\).*betas=\(0.9, 0.999\)"):
        cls(ps(), betas=betas)


@pytest.mark.parametrize("cls", [Adagrad, Adam, AdamW])
@pytest.mark.parametrize("eps", [0.0, -1e-8])
def test_bad_eps(cls, eps):
    with pytest.raises(ConfigError, match="eps must be > 0.*use 1e-8"):
        cls(ps(), eps=eps)


def test_other_bad_settings():
    with pytest.raises(ConfigError, match=r"momentum must be in \[0, 1\)"): SGD(ps(), lr=0.1, momentum=1.0)
    with pytest.raises(ConfigError, match="Nesterov needs momentum > 0"): SGD(ps(), lr=0.1, nesterov=True)
    with pytest.raises(ConfigError, match="weight_decay must be ≥ 0"): AdamW(ps(), weight_decay=-0.1)
    with pytest.raises(ConfigError, match="weight_decay must be ≥ 0"): param_groups(nn.Linear(2, 2), weight_decay=-1)
    with pytest.raises(ConfigError, match="initial_accumulator_value"): Adagrad(ps(), initial_accumulator_value=-1)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"): param_groups(frozen)


def test_clip_errors():
    with pytest.raises(ConfigError, match="max_norm must be > 0"): clip_grad_norm(ps(), 0.0)
    with pytest.raises(ConfigError, match="norm_type"): clip_grad_norm(ps(), 1.0, norm_type=1.0)


def test_accumulation_errors():
    y = torch.full((2, 3), -100)
    with pytest.raises(DataError, match="every target equals ignore_index=-100"): micro_batch_weights([y])
    with pytest.raises(DataError, match="every target equals ignore_index"):
        accumulate_lm_gradients(nn.Sequential(nn.Embedding(5, 5)), [(torch.zeros(2, 3, dtype=torch.long), y)])
    with pytest.raises(DataError, match="no micro-batches"): accumulate_lm_gradients(nn.Linear(2, 2), [])
