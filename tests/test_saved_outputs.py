"""Saved outputs show no path of the machine that ran them, and their figures as pictures.

The docs render what each notebook printed, so an absolute path in an output or in saved widget state (a temporary
folder, the checkout, a home folder) would publish where the author's files lived, and goes stale on every re-run.
Demo folders are made with `tempfile.mkdtemp(dir=".")`, and messages name relative paths. This test reads every
notebook in nbs/ (outputs of code cells, and the widget state in the notebook's metadata) and names the notebook,
the cell and the text around each absolute path it finds.

Saved plots are pictures: an output holding only matplotlib's `<Figure size …>` repr is a Figure that did not render
(no inline backend in that kernel), and the docs would show that line instead of the plot.
"""
from __future__ import annotations

import json, re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT/"nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))
BINARY = ("image/png", "image/jpeg", "image/gif", "application/pdf")   # base64 data, no paths to find


def machine_paths() -> list[str]:
    "Absolute folders that must not appear: the usual roots of temporary and user files, this checkout, this user's home."
    roots = ["/tmp", "/work", "/root", "/home", "/var/folders", "/private/var", str(ROOT), str(Path.home())]
    return sorted({r.rstrip("/") for r in roots if r.rstrip("/")}, key=len, reverse=True)


def path_pattern(roots: list[str]) -> re.Pattern:
    "An absolute path under one of `roots`: not the tail of a URL or of a relative path (`https://x.org/home/`, `runs/tmp/`)."
    alts = "|".join(re.escape(r) for r in roots)
    return re.compile(rf"(?<![\w.~\-])(?:{alts})(?=/|\b)")


PATTERN = path_pattern(machine_paths())


def output_texts(output) -> list[tuple[str, str]]:
    "`(where, text)` for every textual part of one saved output: stream text, each mime type of data, tracebacks."
    out = []
    if "text" in output: out.append((f"{output.output_type} {output.get('name', '')}".strip(), output.text))
    for mime, val in output.get("data", {}).items():
        if mime in BINARY: continue
        out.append((mime, val if isinstance(val, str) else json.dumps(val)))
    if output.output_type == "error":
        out.append(("error", "\n".join([output.get("evalue", ""), *output.get("traceback", [])])))
    return out


def findings(nb_path: Path, pattern: re.Pattern = PATTERN) -> list[str]:
    "Every absolute machine path in `nb_path`'s saved outputs and widget state, as 'cell N (id …), <where>: …text…'."
    nb = nbformat.read(nb_path, as_version=4)
    found = []
    def scan(label, text):
        for m in pattern.finditer(text):
            a, b = max(0, m.start() - 60), m.end() + 60
            found.append(f"{label}: …{text[a:b]!r}…")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code": continue
        for output in cell.get("outputs", []):
            for where, text in output_texts(output): scan(f"cell {i} (id {cell.get('id')}), {where}", text)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    if state: scan("widget state (notebook metadata)", json.dumps(state))
    return found


def test_pattern_finds_machine_paths_and_nothing_else():
    p = path_pattern(["/tmp", "/work", "/home", "/root"])
    for bad in ["wrote /tmp/tmpab12/run", "'/work/main/nbs/x'", "cwd=/root", "file:///home/me/a.png", "(/tmp)"]:
        assert p.search(bad), bad
    for ok in ["https://example.org/home/page", "runs/tmp/x", "cli-demo-x6ipbq4n/run", "~/tmp", "a.tmp/x", "/tmpfs-like"]:
        assert not p.search(ok), ok


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_outputs_hold_no_machine_paths(nb_path):
    found = findings(nb_path)
    assert not found, (f"nbs/{nb_path.name} saved {len(found)} absolute path(s) of the machine that ran it (make demo folders "
                       "with tempfile.mkdtemp(dir='.') and print relative paths, then re-run the notebook):\n" + "\n".join(found[:20]))


UNRENDERED = re.compile(r"^<Figure size \d+(?:\.\d+)?x\d+(?:\.\d+)? with \d+ Axes>$")


def unrendered_figures(nb_path: Path) -> list[str]:
    "Outputs that hold only a matplotlib Figure's repr, `<Figure size …>`: a plot the docs would show as that line of text."
    nb, found = nbformat.read(nb_path, as_version=4), []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code": continue
        for output in cell.get("outputs", []):
            if any(m in output.get("data", {}) for m in ("image/png", "image/svg+xml", "image/jpeg")): continue
            texts = [t for _, t in output_texts(output)]
            if texts and all(UNRENDERED.match(t.strip()) for t in texts):
                found.append(f"cell {i} (id {cell.get('id')}): {texts[0].strip()!r}")
    return found


def test_unrendered_pattern():
    for bad in ["<Figure size 700x330 with 1 Axes>", "<Figure size 640x480 with 0 Axes>\n", "<Figure size 700.5x330 with 12 Axes>"]:
        assert UNRENDERED.match(bad.strip()), bad
    for ok in ["figure: <Figure size 700x330 with 1 Axes> saved", "Figure size 700x330", "<Figure size 700x330 with 1 Axes> and more"]:
        assert not UNRENDERED.match(ok.strip()), ok


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_figures_are_pictures(nb_path):
    found = unrendered_figures(nb_path)
    assert not found, (f"nbs/{nb_path.name} saved {len(found)} figure(s) as text only (matplotlib's repr, no picture): display "
                       "the Figure as a PNG (e.g. `%matplotlib inline` in the notebook's first hidden cell, or "
                       "`display(Image(figure_to_png(fig)))`), then re-run the notebook:\n" + "\n".join(found))
