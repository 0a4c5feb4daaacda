"""Solutions to chapter 19a's exercises — try first, then compare."""
import re


def acc_norm_pick(lls: list[float], choices: list[str]) -> int:
    "The index of the best choice by log-likelihood per character (lm-eval's acc_norm); the first one on a tie."
    scores = [ll / len(c) for ll, c in zip(lls, choices)]   # characters of the choice itself, not bytes, not the space before it
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def split_pair(encode, context: str, continuation: str) -> tuple[list[int], list[int]]:
    "(context ids, continuation ids) as lm-eval cuts them: trailing spaces move right, the whole text is encoded once."
    n = len(context) - len(context.rstrip())
    if n: context, continuation = context[:-n], context[-n:] + continuation
    whole, ctx = encode(context + continuation), encode(context)
    return ctx, whole[len(ctx):]


def is_contaminated(item: str, train_text: str, n: int = 13) -> bool:
    "Does `item` share a run of n consecutive normalised words (lower case, \\w+) with `train_text`?"
    words = lambda t: re.findall(r"\w+", t.lower())
    grams = lambda w: {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
    return bool(grams(words(item)) & grams(words(train_text)))
