"Chapter 9's exercise checks reject the usual wrong schedules, each with a message that names the mistake."
import math

from conftest import solutions
from llm_course.schedule import check_warmup_cosine, check_wsd

SOL = solutions("09_schedules")


def test_solutions_pass():
    assert check_warmup_cosine(SOL["warmup_cosine"]) and check_wsd(SOL["wsd"])


def _cosine(step, total_steps, warmup_steps, min_ratio, warm=lambda s, w: s / w, progress=None, clamp=True):
    if step < warmup_steps: return warm(step, warmup_steps)
    p = (progress or (lambda s: (s - warmup_steps) / max(1, total_steps - warmup_steps)))(step)
    if clamp: p = min(1.0, p)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))


def test_warmup_cosine_off_by_one_warmup():  # nanoGPT's (it + 1) / (warmup + 1)
    def wrong(step, *, total_steps, warmup_steps=0, min_ratio=0.0):
        return _cosine(step, total_steps, warmup_steps, min_ratio, warm=lambda s, w: (s + 1) / (w + 1))
    r = check_warmup_cosine(wrong)
    assert not r and r.done and "off by one" in r.message and "step / warmup_steps" in r.message


def test_warmup_cosine_progress_from_step_0():  # progress counted from step 0 over the whole run
    def wrong(step, *, total_steps, warmup_steps=0, min_ratio=0.0):
        return _cosine(step, total_steps, warmup_steps, min_ratio, progress=lambda s: s / total_steps)
    r = check_warmup_cosine(wrong)
    assert not r and "progress from the end of the warmup" in r.message


def test_warmup_cosine_not_reaching_the_floor():  # decay spread over total_steps, so it ends warmup_steps late
    def wrong(step, *, total_steps, warmup_steps=0, min_ratio=0.0):
        return _cosine(step, total_steps, warmup_steps, min_ratio, progress=lambda s: (s - warmup_steps) / total_steps)
    r = check_warmup_cosine(wrong)
    assert not r and "reached the floor" in r.message


def test_warmup_cosine_ignoring_the_floor():
    def wrong(step, *, total_steps, warmup_steps=0, min_ratio=0.0):
        return _cosine(step, total_steps, warmup_steps, 0.0)
    r = check_warmup_cosine(wrong)
    assert not r and "min_ratio=0.1" in r.message and "floor" in r.message


def test_warmup_cosine_rising_after_the_end():  # the transformers cosine does not clamp
    def wrong(step, *, total_steps, warmup_steps=0, min_ratio=0.0):
        return _cosine(step, total_steps, warmup_steps, min_ratio, clamp=False)
    r = check_warmup_cosine(wrong)
    assert not r and "clamp the progress" in r.message


def test_warmup_cosine_not_a_number():
    r = check_warmup_cosine(lambda step, **kw: [1.0])
    assert not r and "expected a number" in r.message


def _wsd(step, total_steps, warmup_steps, decay_steps, min_ratio, warm_from=None, late=0, denom=0):
    lo = min_ratio if warm_from is None else warm_from
    if step < warmup_steps: return lo + (1 - lo) * step / warmup_steps
    start = total_steps - decay_steps + late
    if step < start: return 1.0
    p = min(1.0, (step - start) / max(1, decay_steps + denom))
    return min_ratio + (1 - min_ratio) * (1 - p)


def test_wsd_warmup_from_zero():
    def wrong(step, *, total_steps, warmup_steps=0, decay_steps, min_ratio=0.0):
        return _wsd(step, total_steps, warmup_steps, decay_steps, min_ratio, warm_from=0.0)
    r = check_wsd(wrong)
    assert not r and "warmup starts at the floor" in r.message


def test_wsd_floor_one_step_early():  # progress divided by decay_steps − 1
    def wrong(step, *, total_steps, warmup_steps=0, decay_steps, min_ratio=0.0):
        return _wsd(step, total_steps, warmup_steps, decay_steps, min_ratio, denom=-1)
    r = check_wsd(wrong)
    assert not r and "one step early" in r.message


def test_wsd_decay_starting_one_step_late():
    def wrong(step, *, total_steps, warmup_steps=0, decay_steps, min_ratio=0.0):
        return _wsd(step, total_steps, warmup_steps, decay_steps, min_ratio, late=1)
    r = check_wsd(wrong)
    assert not r and ("stable phase" in r.message or "off by one" in r.message or "floor" in r.message)


def test_wsd_decay_to_zero():
    def wrong(step, *, total_steps, warmup_steps=0, decay_steps, min_ratio=0.0):
        return _wsd(step, total_steps, warmup_steps, decay_steps, 0.0, warm_from=min_ratio)
    r = check_wsd(wrong)
    assert not r and "floor min_ratio" in r.message
