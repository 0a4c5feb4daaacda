"""Chapter 19b's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import torch

from conftest import rejected, solutions
from llm_course.learner import IGNORE_INDEX
from llm_course.sft import check_render_course, check_restart_positions, check_sft_labels, render_chat

S = solutions("19b_sft")


def test_solutions_pass():
    assert check_sft_labels(S["sft_labels"])
    assert check_restart_positions(S["restart_positions"])
    assert check_render_course(S["render_course"])


def test_stubs_are_not_done():
    def stub(*args): raise NotImplementedError
    for check in (check_sft_labels, check_restart_positions, check_render_course):
        r = check(stub)
        assert not r and not r.done and "not done yet" in repr(r)


# sft_labels ------------------------------------------------------------------------------------------------------------

def test_labels_mask_of_the_input():  # mask[t] instead of mask[t+1]
    def wrong(ids, mask):
        t, m = torch.tensor(ids), torch.tensor(mask)
        return t[:-1], torch.where(m[:-1], t[1:], torch.full_like(t[1:], IGNORE_INDEX))
    rejected(check_sft_labels(wrong), "the mask belongs to the target")


def test_labels_user_tokens():  # the mask inverted: trains on the prompt
    def wrong(ids, mask):
        t, m = torch.tensor(ids), torch.tensor(mask)
        return t[:-1], torch.where(~m[1:], t[1:], torch.full_like(t[1:], IGNORE_INDEX))
    rejected(check_sft_labels(wrong), "assistant's tokens")


def test_labels_not_shifted():  # y = the input tokens, masked
    def wrong(ids, mask):
        t, m = torch.tensor(ids), torch.tensor(mask)
        return t[:-1], torch.where(m[:-1], t[:-1], torch.full_like(t[:-1], IGNORE_INDEX))
    rejected(check_sft_labels(wrong), "shift by one")


def test_labels_zero_instead_of_ignore():  # padding-style 0 targets: they would be trained on
    def wrong(ids, mask):
        x, y = S["sft_labels"](ids, mask)
        return x, y.clamp(min=0)
    rejected(check_sft_labels(wrong), "y")


# restart_positions ------------------------------------------------------------------------------------------------------

def test_positions_never_restart():
    rejected(check_restart_positions(lambda s: torch.arange(s.shape[1]).expand_as(s).clone()), "restart at 0")


def test_positions_from_one():
    rejected(check_restart_positions(lambda s: S["restart_positions"](s) + 1), "position 0, not 1")


def test_positions_column_zero_not_a_start():  # forgets that a window always starts a document
    def wrong(starts):
        T = starts.shape[1]
        t = torch.arange(T).expand_as(starts)
        first = torch.where(starts, t, torch.full_like(t, -1)).cummax(1).values
        return torch.where(first >= 0, t - first, t + 1000)
    rejected(check_restart_positions(wrong), "column 0")


# render_course ----------------------------------------------------------------------------------------------------------

def test_render_calls_the_chapter():  # the forbidden shortcut
    rejected(check_render_course(lambda msgs, gen=False: render_chat(msgs, "course", gen)), "render_", "rules out")


def test_render_via_transformers_jinja():  # the template string run through Jinja: also the chapter's work
    from llm_course.sft import COURSE_JINJA
    import jinja2
    def wrong(msgs, gen=False):
        return jinja2.Environment().from_string(COURSE_JINJA).render(messages=msgs, add_generation_prompt=gen)
    rejected(check_render_course(wrong), "a Jinja template")


def test_render_no_generation_prompt():
    rejected(check_render_course(lambda msgs, gen=False: S["render_course"](msgs, False)), "assistant header")


def test_render_no_end_on_assistant():  # the assistant's turn without its end marker
    def wrong(msgs, gen=False):
        out = "".join(f"<|{m['role']}|>\n{m['content']}" + ("\n" if m["role"] == "assistant" else "<|end|>\n") for m in msgs)
        return out + ("<|assistant|>\n" if gen else "")
    rejected(check_render_course(wrong), "'<|end|>'")


def test_render_no_newlines():
    def wrong(msgs, gen=False):
        return "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in msgs) + ("<|assistant|>\n" if gen else "")
    rejected(check_render_course(wrong), "newline")
