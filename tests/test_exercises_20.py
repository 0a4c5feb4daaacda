"""Chapter 20's exercise checks reject the usual wrong answers, each with a message naming the mistake, and accept the solution."""
import argparse

from conftest import rejected, solutions
from llm_course.cli import check_as_flags, check_exit_code, check_generate_parser
from llm_course.core import ConfigError, DataError, LLMCourseError

S = solutions("20_cli")



def test_exit_code():
    assert check_exit_code(S["exit_code"])
    right = S["exit_code"]
    table = {type(None): 0, LLMCourseError: 2, ConfigError: 2, DataError: 2, KeyboardInterrupt: 130, BrokenPipeError: 141}
    exact_type = lambda e: e.code if isinstance(e, SystemExit) else table.get(type(e), 1)   # MissingPathError is not in the table
    rejected(check_exit_code(exact_type), "isinstance")
    rejected(check_exit_code(lambda e: 2 if isinstance(e, ValueError) else right(e)), "bug")
    rejected(check_exit_code(lambda e: 1 if isinstance(e, KeyboardInterrupt) else right(e)), "130", "not an Exception")
    rejected(check_exit_code(lambda e: 1 if isinstance(e, BrokenPipeError) else right(e)), "141")
    rejected(check_exit_code(lambda e: 141 if isinstance(e, OSError) else right(e)), "test LLMCourseError first")
    rejected(check_exit_code(lambda e: 1 if isinstance(e, SystemExit) else right(e)), ".code")


def _parser(drop=(), **changes):
    "The solution's parser with one option changed (or dropped): a plausible wrong answer."
    p = argparse.ArgumentParser()
    opts = {"--checkpoint": dict(required=True), "--prompt": dict(default=""), "--max-new-tokens": dict(type=int, default=200),
            "--temperature": dict(type=float, default=0.8), "--top-k": dict(type=int, default=None),
            "--top-p": dict(type=float, default=None), "--seed": dict(type=int, default=0)}
    for flag, kw in opts.items():
        if flag in drop: continue
        p.add_argument(flag, **{**kw, **changes.get(flag, {})})
    return p


def test_generate_parser():
    assert check_generate_parser(S["generate_parser"])
    rejected(check_generate_parser(lambda: _parser(**{"--max-new-tokens": dict(type=str, default=200)})), "type=int")
    rejected(check_generate_parser(lambda: _parser(**{"--temperature": dict(type=float, default=1.0)})), "temperature", "default")
    rejected(check_generate_parser(lambda: _parser(**{"--checkpoint": dict(required=False)})), "required=True")
    rejected(check_generate_parser(lambda: _parser(drop=("--seed",))), "seed")
    rejected(check_generate_parser(lambda: _parser(**{"--top-k": dict(type=float, default=None)})), "usage error", "top-k")
    rejected(check_generate_parser(lambda: "not a parser"), "ArgumentParser")


def test_as_flags():
    import re
    assert check_as_flags(S["as_flags"])
    options = lambda p: [a for a in p._actions if a.option_strings and a.dest != "help"]
    def naive(m, p):                # str.replace: `steps=` inside `max_steps=`
        for a in options(p): m = m.replace(f"{a.dest}=", a.option_strings[-1] + " ")
        return m
    def no_bare(m, p):              # store_true options keep their value
        for a in options(p): m = re.sub(rf"(?<![\w.\-]){a.dest}=", a.option_strings[-1] + " ", m)
        return m
    def any_name(m, p):             # every name=… becomes a flag, option or not
        return re.sub(r"(?<![\w.\-])(\w+)=(True\b)?", lambda x: "--" + x.group(1).replace("_", "-") + ("" if x.group(2) else " "), m)
    def underscores(m, p):          # the dest, not the flag
        for a in options(p):
            if isinstance(a, argparse._StoreTrueAction): m = re.sub(rf"(?<![\w.\-]){a.dest}=True\b", "--" + a.dest, m)
            else: m = re.sub(rf"(?<![\w.\-]){a.dest}=", "--" + a.dest + " ", m)
        return m
    rejected(check_as_flags(naive), "inside a longer one")
    rejected(check_as_flags(no_bare), "store_true option takes no value")
    rejected(check_as_flags(any_name), "not options of this command")
    rejected(check_as_flags(underscores), "dashes")
