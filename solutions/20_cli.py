"""Solutions to chapter 20's exercises — try first, then compare."""
import argparse, re

from llm_course.core import LLMCourseError


def exit_code(error: BaseException | None) -> int:
    "The exit status of `llm-course` after `error` (None: the command succeeded)."
    if error is None: return 0
    if isinstance(error, LLMCourseError): return 2      # first: OutputError is an OSError too, but it is ours
    if isinstance(error, KeyboardInterrupt): return 130  # 128 + SIGINT
    if isinstance(error, BrokenPipeError): return 141    # 128 + SIGPIPE
    if isinstance(error, SystemExit): return error.code if isinstance(error.code, int) else 1
    return 1                                             # anything else is a bug


def generate_parser() -> argparse.ArgumentParser:
    "A parser for the options of `llm-course generate`."
    p = argparse.ArgumentParser(prog="llm-course generate", description="stream text from a trained checkpoint")
    p.add_argument("--checkpoint", required=True, help="a folder written by `llm-course train`")
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p


def as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    "`message` with each `dest=value` of one of `parser`'s options written as the command-line flag."
    for action in parser._actions:
        if not action.option_strings or action.dest == "help": continue
        flag = action.option_strings[-1]                       # the long form, e.g. --batch-size
        if isinstance(action, argparse._StoreTrueAction):
            # `compile=True` is the bare flag; the lookbehind keeps `max_steps=` from matching `steps=`
            message = re.sub(rf"(?<![\w.\-]){action.dest}=True\b", flag, message)
        else:
            message = re.sub(rf"(?<![\w.\-]){action.dest}=", flag + " ", message)
    return message
