"Bad input to llm_course.nnlm raises ConfigError with a message that says how to fix it."
import pytest
import torch

from llm_course.core import ConfigError, LLMCourseError
from llm_course.nnlm import MLPLM, MLPLMConfig


@pytest.mark.parametrize("field,value", [
    ("context", 0), ("context", -3), ("hidden_size", 0), ("hidden_size", -1), ("emb_dim", 0),
    ("context", 2.5), ("context", True), ("hidden_size", "256"),
])
def test_bad_sizes(field, value):
    kw = dict(vocab_size=10); kw[field] = value
    with pytest.raises(ConfigError, match=f"{field} must be an int ≥ 1.*e.g. {field}="):
        MLPLMConfig(**kw)
    with pytest.raises(ConfigError, match=field):
        MLPLM(**kw)


@pytest.mark.parametrize("value", [0, -5, None, 3.0])
def test_bad_vocab(value):
    with pytest.raises(ConfigError, match="vocab_size must be an int ≥ 1.*e.g. vocab_size="):
        MLPLM(vocab_size=value)


def test_errors_are_course_errors_and_value_errors():
    with pytest.raises(ValueError):
        MLPLM(vocab_size=0)
    with pytest.raises(LLMCourseError, match="got 0"): MLPLM(vocab_size=10, context=0)


def test_bad_direct_and_config_type():
    with pytest.raises(ConfigError, match="direct"): MLPLMConfig(vocab_size=10, direct="yes")
    with pytest.raises(ConfigError, match="MLPLMConfig"): MLPLM({"vocab_size": 10})


def test_bad_token_ids():
    m = MLPLM(vocab_size=10, context=3)
    with pytest.raises(ConfigError, match=r"idx\[None\]"): m(torch.tensor([1, 2, 3]))
    with pytest.raises(ConfigError, match="integer token ids"): m(torch.rand(2, 3))
    with pytest.raises(ConfigError, match=r"\[0, 10\).*vocab_size"): m(torch.tensor([[1, 10]]))
    with pytest.raises(ConfigError, match=r"\[0, 10\)"): m(torch.tensor([[-1, 2]]))
    with pytest.raises(ConfigError, match="1-D"): m.cross_entropy(torch.tensor([[1, 2]]))
    with pytest.raises(ConfigError, match="non-empty"): m.cross_entropy(torch.tensor([], dtype=torch.long))


def test_unknown_setting_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown MLPLM setting.*'hidden'.*hidden_size"):
        MLPLM(vocab_size=10, hidden=0)
