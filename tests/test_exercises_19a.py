"""Chapter 19a's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import re

import numpy as np

from conftest import rejected, solutions
from llm_course.evaluate import check_acc_norm_pick, check_is_contaminated, check_split_pair

S = solutions("19a_evaluation")


def test_solutions_pass():
    assert check_acc_norm_pick(S["acc_norm_pick"])
    assert check_split_pair(S["split_pair"])
    assert check_is_contaminated(S["is_contaminated"])


def test_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check in (check_acc_norm_pick, check_split_pair, check_is_contaminated):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


# acc_norm_pick -------------------------------------------------------------------------------------------------------

def test_pick_raw_sum():  # that is acc
    rejected(check_acc_norm_pick(lambda lls, ch: int(np.argmax(lls))), "largest raw sum", "that is acc")


def test_pick_bytes():  # acc_bytes
    rejected(check_acc_norm_pick(lambda lls, ch: int(np.argmax(np.array(lls) / [len(c.encode()) for c in ch]))), "UTF-8 bytes")


def test_pick_counts_the_delimiter():  # len(" " + choice)
    rejected(check_acc_norm_pick(lambda lls, ch: int(np.argmax(np.array(lls) / [len(c) + 1 for c in ch]))), "space before the choice")


def test_pick_last_on_ties():
    rejected(check_acc_norm_pick(lambda lls, ch: max(range(len(lls)), key=lambda i: (lls[i] / len(ch[i]), i))), "FIRST best choice")


def test_pick_by_tokens_of_a_word_count():  # divides by the number of words: a plausible "length"
    r = check_acc_norm_pick(lambda lls, ch: int(np.argmax(np.array(lls) / [max(1, len(c.split())) for c in ch])))
    assert not r and r.done


# split_pair ----------------------------------------------------------------------------------------------------------

def test_split_separately():
    rejected(check_split_pair(lambda enc, a, b: (enc(a), enc(b))), "encoded the two parts separately")


def test_split_without_moving_spaces():
    rejected(check_split_pair(lambda enc, a, b: (enc(a), enc(a + b)[len(enc(a)):])), "trailing whitespace")


def test_split_strips_the_space_away():  # drops the trailing space instead of moving it
    r = check_split_pair(lambda enc, a, b: (enc(a.rstrip()), enc(b)))
    assert not r and r.done


# is_contaminated -----------------------------------------------------------------------------------------------------

def _grams(words, n): return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_contaminated_without_normalising():  # split on whitespace only: 'Alpha,' is not 'alpha'
    rejected(check_is_contaminated(lambda it, tr, n: bool(_grams(it.split(), n) & _grams(tr.split(), n))), "normalise first")


def test_contaminated_off_by_one():  # (n-1)-grams
    rejected(check_is_contaminated(lambda it, tr, n: S["is_contaminated"](it, tr, n - 1)), "only 12 consecutive words")


def test_contaminated_by_characters():  # a 50-character substring instead of words
    def chars(it, tr, n):
        a, b = re.sub(r"\W+", "", it.lower()), re.sub(r"\W+", "", tr.lower())
        return any(a[i:i + 50] in b for i in range(max(1, len(a) - 49)))
    rejected(check_is_contaminated(chars), "word n-grams, not characters")
