#!/usr/bin/env python
"""Render nbs/index.ipynb to README.md without Quarto (which `nbdev-readme` needs).

`python tools/render_readme.py` writes README.md; `--check` exits 1 if README.md differs.
Hidden cells (`#| hide`) are left out, directive lines are dropped, code is fenced as Python and
text outputs are fenced as plain text, like nbdev's own README rendering."""
import re, sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"^\s*#\|\s*(.*)$")


def _directives(src: str) -> tuple[list[str], str]:
    lines = src.splitlines()
    flags = [m.group(1).strip() for l in lines if (m := DIRECTIVE.match(l))]
    return flags, "\n".join(l for l in lines if not DIRECTIVE.match(l)).strip()


def _frontmatter(src: str) -> str:
    "`# Title` + `> description` become the README's heading and lead paragraph."
    return re.sub(r"^> (.*)$", r"\1", src.strip(), count=1, flags=re.M)


def _outputs(cell) -> list[str]:
    out = []
    for o in cell.get("outputs", []):
        text = o.get("text") if o.output_type == "stream" else o.get("data", {}).get("text/markdown") or o.get("data", {}).get("text/plain")
        if text: out.append(f"```\n{text.rstrip()}\n```" if "text/markdown" not in o.get("data", {}) else text.rstrip())
    return out


def render(nb_path: Path = ROOT/"nbs"/"index.ipynb") -> str:
    nb = nbformat.read(nb_path, as_version=4)
    parts = []
    for i, cell in enumerate(nb.cells):
        flags, src = _directives(cell.source)
        if any(f.startswith(("hide", "export")) for f in flags) or not src and cell.cell_type == "code": continue
        if cell.cell_type == "markdown": parts.append(_frontmatter(src) if i == 0 else src)
        elif cell.cell_type == "code":
            if not any(f.startswith("echo: false") for f in flags): parts.append(f"```python\n{src}\n```")
            parts += _outputs(cell)
    banner = "<!-- Generated from nbs/index.ipynb by tools/render_readme.py: edit the notebook, not this file. -->"
    return banner + "\n\n" + "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    text, readme = render(), ROOT/"README.md"
    if "--check" in sys.argv:
        if not readme.exists() or readme.read_text(encoding="utf-8") != text:
            sys.exit("README.md is out of date: run `python tools/render_readme.py`")
    else: readme.write_text(text, encoding="utf-8")
