"""Every chapter's exercises, as a learner meets them and as CI keeps them.

Each chapter 01–20 ends with `## Exercises`: 2–5 exercises, each a stub cell (`raise NotImplementedError`) and a
check cell (`check_<name>(<name>)`) whose saved output says "not done yet". The solutions in `solutions/<chapter>.py`
define every stubbed function, and each passes the chapter's own check, called exactly as the notebook calls it.
The wrong answers each check must reject are tested per chapter (tests/test_exercises_<NN>.py).
"""
from __future__ import annotations

import ast, importlib, re
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, solutions

CHAPTERS = sorted(p for p in (ROOT/"nbs").glob("[0-9][0-9]*_*.ipynb") if int(p.name[:2]) >= 1)


def exercise_cells(nb) -> list:
    "The cells after the `## Exercises` heading (up to the next `## ` heading)."
    cells, inside = [], False
    for c in nb.cells:
        if c.cell_type == "markdown" and re.search(r"^## ", c.source, re.M):
            inside = bool(re.search(r"^## Exercises\b", c.source, re.M))
            continue
        if inside: cells.append(c)
    return cells


def stubs_and_checks(nb_path: Path):
    nb = nbformat.read(nb_path, as_version=4)
    code = [c for c in exercise_cells(nb) if c.cell_type == "code"]
    stubs = [c for c in code if "raise NotImplementedError" in c.source]
    checks = [c for c in code if re.match(r"\s*(print\()?check_\w+\(", c.source.strip().splitlines()[-1] if c.source.strip() else "")]
    return nb, stubs, checks


def stub_names(stubs) -> list[str]:
    return [n.name for c in stubs for n in ast.parse(c.source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_exercises(nb_path):
    nb, stubs, checks = stubs_and_checks(nb_path)
    assert 2 <= len(stubs) <= 5, f"{nb_path.name}: {len(stubs)} exercise stubs under '## Exercises' (want 2-5)"
    assert len(checks) >= len(stubs), f"{nb_path.name}: {len(checks)} check cells for {len(stubs)} exercises"
    for c in checks:   # the saved outputs show the polite "not done yet", never a traceback
        text = "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", "")) for o in c.get("outputs", []))
        assert not any(o.output_type == "error" for o in c.outputs), f"{nb_path.name}: a check cell saved an error"
        assert "not done yet" in text, f"{nb_path.name}: check cell {c.source!r} should show 'not done yet', shows {text[:200]!r}"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_solutions_pass_the_checks(nb_path):
    nb, stubs, checks = stubs_and_checks(nb_path)
    answers = solutions(nb_path.stem)
    missing = [n for n in stub_names(stubs) if n not in answers]
    assert not missing, f"solutions/{nb_path.stem}.py lacks {missing}"
    module = re.search(r"#\|\s*default_exp\s+(\S+)", "\n".join(c.source for c in nb.cells[:3]))
    ns = vars(importlib.import_module(f"llm_course.{module.group(1)}")).copy()
    ns.update(answers)
    for c in checks:
        call = c.source.strip().splitlines()[-1]
        result = eval(call.removeprefix("print(").removesuffix(")") if call.startswith("print(") else call, ns)
        assert result, f"{nb_path.stem}: the solution fails `{call}`: {result!r}"
