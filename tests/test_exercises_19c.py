"""Chapter 19c's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import torch
import torch.nn.functional as F

from conftest import rejected, solutions
from llm_course.learner import IGNORE_INDEX
from llm_course.dpo import check_answer_logps, check_my_dpo_loss, dpo_loss, trl_dpo_loss

S = solutions("19c_dpo")


def test_solutions_pass():
    assert check_my_dpo_loss(S["my_dpo_loss"])
    assert check_answer_logps(S["answer_logps"])


def test_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check in (check_my_dpo_loss, check_answer_logps):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


# my_dpo_loss ------------------------------------------------------------------------------------------------------------

def test_dpo_calls_the_chapter():  # the forbidden shortcuts: the chapter's loss, or TRL's
    rejected(check_my_dpo_loss(lambda pc, pr, rc, rr, beta: dpo_loss(pc, pr, rc, rr, beta)[0]), "dpo_loss")


def test_dpo_calls_trl():
    def wrong(pc, pr, rc, rr, beta):
        z = torch.zeros(len(pc), 1)
        loss, _, _ = trl_dpo_loss(pc[:, None], pr[:, None], rc, rr, torch.ones(2 * len(pc), 1), beta)
        return loss.expand(len(pc))
    rejected(check_my_dpo_loss(wrong), "called")


def test_dpo_calls_trl_directly():  # TRL's method on a hand-made stand-in, without the chapter's wrapper
    import trl.trainer.dpo_trainer as t
    def wrong(pc, pr, rc, rr, beta):
        t.DPOTrainer._compute_loss(None, None, None, False)
    rejected(check_my_dpo_loss(wrong), "TRL")


def test_dpo_unstable():  # log(sigmoid(z)) underflows
    rejected(check_my_dpo_loss(lambda pc, pr, rc, rr, beta: -torch.log(torch.sigmoid(beta * ((pc - rc) - (pr - rr))))), "logsigmoid")


def test_dpo_no_beta():
    rejected(check_my_dpo_loss(lambda pc, pr, rc, rr, beta: -F.logsigmoid((pc - rc) - (pr - rr))), "β")


def test_dpo_no_reference():
    rejected(check_my_dpo_loss(lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * (pc - pr))), "reference")


def test_dpo_swapped():
    rejected(check_my_dpo_loss(lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((pr - rr) - (pc - rc)))), "comes first")


def test_dpo_mean():
    rejected(check_my_dpo_loss(lambda pc, pr, rc, rr, beta: S["my_dpo_loss"](pc, pr, rc, rr, beta).mean()), "[B]")


def test_dpo_no_gradient():  # computed in Python floats / detached
    rejected(check_my_dpo_loss(lambda pc, pr, rc, rr, beta: S["my_dpo_loss"](pc, pr, rc, rr, beta).detach()), "gradient")


# answer_logps -----------------------------------------------------------------------------------------------------------

def _kept_logps(logits, y):
    return logits.log_softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0], y != IGNORE_INDEX


def test_logps_raw_logits():
    def wrong(logits, y):
        keep = y != IGNORE_INDEX
        return (logits.gather(-1, y.clamp(min=0)[..., None])[..., 0] * keep).sum(1)
    rejected(check_answer_logps(wrong), "log_softmax")


def test_logps_ignored_targets_counted():
    rejected(check_answer_logps(lambda logits, y: _kept_logps(logits, y)[0].sum(1)), "IGNORE_INDEX")


def test_logps_mean():
    def wrong(logits, y):
        lp, keep = _kept_logps(logits, y)
        return (lp * keep).sum(1) / keep.sum(1).clamp(min=1)
    rejected(check_answer_logps(wrong), "sum, don't average")


def test_logps_empty_row_nan():  # a mean over zero kept targets
    def wrong(logits, y):
        lp, keep = _kept_logps(logits, y)
        return (lp * keep).sum(1) / keep.sum(1) * keep.sum(1)
    rejected(check_answer_logps(wrong))
