"Bad input to generation raises ConfigError with a hint."
import pytest
import torch

from llm_course.core import ConfigError
from llm_course.model import ModelConfig, Transformer
from llm_course.generate import generate, top_k_filter, top_p_filter, sample_next, stream, IncrementalDecoder


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(ModelConfig.preset("tiny", vocab_size=64, block_size=16, n_layer=1, n_head=2, d_model=16, d_ff=32))


P = torch.tensor([[1, 2, 3]])


@pytest.mark.parametrize("kw,match", [(dict(temperature=-1.0), "temperature"), (dict(temperature=float("nan")), "temperature"),
                                      (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(top_p=-0.1), "top_p"),
                                      (dict(top_k=0), "top_k"), (dict(top_k=-3), "top_k"), (dict(top_k=2.5), "top_k")])
def test_bad_sampling_settings(model, kw, match):
    with pytest.raises(ConfigError, match=match): generate(model, P, 3, **kw)


def test_filters_reject_bad_values():
    with pytest.raises(ConfigError): top_k_filter(torch.zeros(5), 0)
    with pytest.raises(ConfigError): top_p_filter(torch.zeros(5), 0)
    with pytest.raises(ConfigError): sample_next(torch.zeros(1, 5), temperature=-2)


def test_prompt_longer_than_context(model):
    long = torch.zeros(1, 17, dtype=torch.long)
    with pytest.raises(ConfigError, match="crop_prompt=True"): generate(model, long, 2)
    out = generate(model, long, 2, crop_prompt=True)
    assert out.shape == (1, 19)


def test_bad_prompts(model):
    with pytest.raises(ConfigError): generate(model, torch.zeros(1, 3), 2)                   # floats
    with pytest.raises(ConfigError): generate(model, torch.zeros(1, 0, dtype=torch.long), 2)  # empty
    with pytest.raises(ConfigError): generate(model, P, -1)
    with pytest.raises(ConfigError): generate(model, P, 2, stop_ids=["\n"])


def test_stream_errors(model):
    with pytest.raises(ConfigError, match="one text at a time"): next(stream(model, lambda ids: "", torch.zeros(2, 3, dtype=torch.long)))
    with pytest.raises(ConfigError, match="tokenizer"): next(stream(model, lambda ids: "", "text prompt"))
    with pytest.raises(ConfigError): IncrementalDecoder(42)
