"""An exercise as a learner does it, in JupyterLab: the check first says "not done yet", then, with the stub replaced by an
answer, "✓".

Opens one chapter that has an `## Exercises` section and a solutions file (a fast chapter first: PREFERRED), runs the
cells `nbdev-test` would run up to the first exercise's check (IN_TEST=1: chapters at test size), and reads the check's
output. Then it replaces the first stub cell's text with the answer from solutions/<chapter>.py (the function's source,
with the imports and helpers it uses), runs that cell and the check again, and reads "✓".
Screenshot: artifacts/screenshots/exercise-<chapter>.png.
Run:  python -m pytest -m browser tests/test_browser_exercises.py
"""
from __future__ import annotations

import ast, re, sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent/"browser"))
from browser_support import (ARTIFACTS, ROOT, cell_ids_to_run, chromium_path, clear_outputs, error_outputs,  # noqa: E402
                             jupyterlab, open_notebook, run_cells, set_cell_source, cell_output_text, shutdown_sessions)

pytestmark = pytest.mark.browser

PREFERRED = ["09_schedules", "04_cross_entropy", "21_cli", "13_transformer", "12_attention"]   # quick at test size
TIMEOUT_S = 300


def first_exercise(nb_path: Path) -> tuple[str, str, str] | None:
    "`(stub cell id, check cell id, stubbed name)` of the first exercise under `## Exercises`, or None."
    inside, stub = False, None
    for c in nbformat.read(nb_path, as_version=4).cells:
        if c.cell_type == "markdown" and re.search(r"^## ", c.source, re.M):
            inside = bool(re.search(r"^## Exercises\b", c.source, re.M)); continue
        if not inside or c.cell_type != "code": continue
        if stub is None and "raise NotImplementedError" in c.source:
            names = [n.name for n in ast.parse(c.source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
            if names: stub = (c.id, names[0])
        elif stub and re.match(r"\s*(print\()?check_\w+\(", (c.source.strip().splitlines() or [""])[-1]):
            return stub[0], c.id, stub[1]
    return None


def solution_source(stem: str, name: str) -> str:
    "The answer to paste: solutions/<stem>.py's imports, then `name` and the top-level definitions it uses (in file order)."
    src = (ROOT/"solutions"/f"{stem}.py").read_text(encoding="utf-8")
    tree = ast.parse(src)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
    if name not in defs: raise LookupError(f"solutions/{stem}.py does not define {name}")
    need, todo = set(), [name]
    while todo:   # the helpers `name` calls, and theirs
        n = todo.pop()
        if n in need: continue
        need.add(n)
        todo += [x.id for x in ast.walk(defs[n]) if isinstance(x, ast.Name) and x.id in defs]
    imports = [ast.get_source_segment(src, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    lines = src.splitlines()
    blocks = ["\n".join(lines[(n.decorator_list[0].lineno if n.decorator_list else n.lineno) - 1:n.end_lineno])
              for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.name in need]
    return "\n".join(imports) + "\n\n" + "\n\n".join(blocks) + "\n"


def chapter_to_try() -> tuple[Path, tuple[str, str, str]] | None:
    "The first chapter (PREFERRED first, then by number) with an exercise whose answer is in solutions/."
    chapters = sorted((ROOT/"nbs").glob("[0-9][0-9]*_*.ipynb"), key=lambda p: (p.stem not in PREFERRED,
                      PREFERRED.index(p.stem) if p.stem in PREFERRED else 0, p.name))
    for nb in chapters:
        ex = first_exercise(nb)
        if ex and (ROOT/"solutions"/f"{nb.stem}.py").exists():
            try: solution_source(nb.stem, ex[2])
            except LookupError: continue
            return nb, ex
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    chromium_path()
    with jupyterlab(ROOT, tmp_path_factory.mktemp("lab-exercise"), threads=1) as url:
        yield url


def test_an_exercise_goes_from_not_done_to_passed(lab, browser):
    found = chapter_to_try()
    if found is None: pytest.skip("no chapter has an exercise with a solution yet")
    nb, (stub_id, check_id, name) = found
    rel = f"nbs/{nb.name}"
    ids = cell_ids_to_run(nb)
    assert stub_id in ids and check_id in ids, f"{nb.name}: the first exercise's cells are skipped by the test flags"
    upto = ids[:ids.index(check_id) + 1]
    answer = solution_source(nb.stem, name)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = ctx.new_page()
    try:
        open_notebook(page, lab, rel, workspace=f"ex-{nb.stem}")
        clear_outputs(page)
        run = run_cells(page, upto, TIMEOUT_S)
        assert run["ok"] and run["ran"] == len(upto), f"{nb.name}: running up to the first check failed: {run['error']}"
        before = cell_output_text(page, check_id)
        set_cell_source(page, stub_id, answer)
        run = run_cells(page, [stub_id, check_id], 120)
        after = cell_output_text(page, check_id)
        errors = error_outputs(page)
        shots = ARTIFACTS/"screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.evaluate("(id) => { const c = window.jupyterapp.shell.currentWidget.content.widgets.find(w => w.model.id === id);"
                      " c && c.node.scrollIntoView(); }", stub_id)
        page.screenshot(path=str(shots/f"exercise-{nb.stem}.png"))
    finally:
        ctx.close()
        shutdown_sessions(lab, rel)
    print(f"{nb.name}, exercise `{name}`: before {before.strip()[:120]!r}; after {after.strip()[:160]!r}")
    assert "not done yet" in before and "✓" not in before, f"{nb.name}: the stub's check should say 'not done yet', says {before!r}"
    assert run["ok"], f"{nb.name}: running the answer and its check failed: {run['error']}"
    assert not errors, f"{nb.name}: error output after pasting the answer:\n" + "\n---\n".join(errors)[-3000:]
    assert "✓" in after and "not done yet" not in after, f"{nb.name}: with the solution, the check says {after!r}"
