"Bad input to llm_course.ngram raises the package's own errors, with a hint how to fix it."
import math

import numpy as np
import pytest
import torch

from llm_course.core import ConfigError, DataError, LLMCourseError
from llm_course.ngram import NGramCounts, NGramLM, as_token_ids


@pytest.mark.parametrize("n", [0, -1, 2.5, "3", None, True])
def test_bad_order(n):
    with pytest.raises(ConfigError, match="n must be an int ≥ 1"): NGramLM(n, 10)


@pytest.mark.parametrize("V", [0, -5, 3.0, None])
def test_bad_vocab_size(V):
    with pytest.raises(ConfigError, match="vocab_size"): NGramLM(3, V)


def test_unknown_smoothing():
    with pytest.raises(ConfigError, match="use one of 'mle', 'add_k', 'kn'"): NGramLM(3, 10, "witten-bell")


@pytest.mark.parametrize("k", [-0.1, -1, math.nan, math.inf, "1"])
def test_bad_k(k):
    with pytest.raises(ConfigError, match="k must be"): NGramLM(3, 10, "add_k", k=k)


def test_k_zero_is_mle():
    ids = [1, 2, 3, 1, 2, 4, 1, 2, 3]
    a = NGramLM(3, 10, "add_k", k=0).fit(ids).distribution([1, 2])
    b = NGramLM(3, 10, "mle").fit(ids).distribution([1, 2])
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


@pytest.mark.parametrize("D", [0, 0.0, 1, 1.0, -0.5, 1.5, math.nan, "0.75"])
def test_bad_discount(D):
    with pytest.raises(ConfigError, match="discount must lie strictly between 0 and 1"): NGramLM(3, 10, "kn", discount=D)


@pytest.mark.parametrize("ids", [[], np.array([], dtype=np.int64), torch.tensor([], dtype=torch.long)])
def test_empty_training_data(ids):
    with pytest.raises(DataError, match="empty"): NGramLM(3, 10).fit(ids)


@pytest.mark.parametrize("ids, what", [([1, 2, 10], "10, outside 0…9"), ([-1, 2], "-1, outside"),
                                       (torch.tensor([3, 99]), "99, outside"), (np.array([5, 12], np.uint8), "12, outside")])
def test_ids_out_of_range(ids, what):
    with pytest.raises(DataError, match=what) as e: NGramLM(2, 10).fit(ids)
    assert "vocab_size" in str(e.value)  # says how to fix it


@pytest.mark.parametrize("ids, match", [("hello", "encode the text first"), (b"hi", "encode the text first"),
                                        ([1.5, 2.0], "integer token ids"), (np.zeros((2, 3), int), "1-D"),
                                        ([[1, 2], [3]], "flat sequence"), ([True, False], "integer token ids")])
def test_ids_wrong_type_or_shape(ids, match):
    with pytest.raises(DataError, match=match): NGramLM(2, 10).fit(ids)


def test_not_fitted():
    lm = NGramLM(3, 10)
    for call in (lambda: lm.distribution([1]), lambda: lm.prob([1], 2), lambda: lm.perplexity([1, 2]),
                 lambda: lm.sample(5), lambda: lm.n_ngrams):
        with pytest.raises(ConfigError, match=r"call \.fit"): call()


def test_bad_eval_input():
    lm = NGramLM(3, 10).fit([1, 2, 3, 4, 1, 2, 3])
    with pytest.raises(DataError, match="no ids"): lm.cross_entropy([])
    with pytest.raises(DataError, match="no ids"): lm.token_log_probs(np.array([], np.int64))
    with pytest.raises(DataError, match="outside"): lm.perplexity([1, 2, 10])
    with pytest.raises(DataError, match="outside"): lm.prob([1, 2], 10)
    with pytest.raises(DataError, match="outside"): lm.prob([1, 12], 3)
    with pytest.raises(DataError, match="outside"): lm.distribution([-3])
    with pytest.raises(DataError, match="outside"): lm.sample(3, context=[11])
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="n_tokens"): lm.sample(bad)


@pytest.mark.parametrize("smoothing", ["mle", "add_k", "kn"])
def test_short_and_odd_contexts_are_handled(smoothing):
    "A context shorter than n-1 backs off; an unseen one backs off; a longer one is cut: never 0/0."
    lm = NGramLM(4, 10, smoothing).fit([1, 2, 3, 4])
    for ctx in ([], None, [1], [9, 9, 9], [0, 0, 0, 0, 0, 1, 2, 3], [4]):
        p = lm.distribution(ctx)
        assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-12
    # training data shorter than n: only the lower orders exist, and the model still works
    tiny = NGramLM(5, 10, smoothing).fit([7, 8])
    assert abs(tiny.distribution([7, 8, 7, 8]).sum() - 1) < 1e-12
    assert np.isfinite(tiny.token_log_probs([7, 8, 7])).all()
    one = NGramLM(3, 10, smoothing).fit([5])
    assert abs(one.distribution([5, 5]).sum() - 1) < 1e-12


def test_errors_are_course_errors_and_value_errors():
    with pytest.raises(LLMCourseError): NGramLM(0, 10)
    with pytest.raises(ValueError): NGramLM(3, 10).fit([])
    with pytest.raises(DataError): as_token_ids([3], 3)
    with pytest.raises(DataError, match="empty"): NGramLM(1, 3).fit(torch.zeros(0, dtype=torch.long))


def test_key_overflow_is_a_config_error():
    with pytest.raises(ConfigError, match="overflows"): NGramCounts([0, 1, 2], 2, 2**61)
