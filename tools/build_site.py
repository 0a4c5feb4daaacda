#!/usr/bin/env python
"""Build the course's documentation site without Quarto.

Where Quarto is installed, `nbdev-docs` builds the real site (into `_docs/`) from the same notebooks,
`nbs/_quarto.yml` and `nbs/sidebar.yml`; nothing here changes that. On machines without Quarto (CI):

    python tools/build_site.py                  # nbdev's processing into _proc/, then HTML into _site/
    python tools/build_site.py --no-proc        # re-render _proc/ only (fast)
    python tools/build_site.py --write-sidebar  # rewrite nbs/sidebar.yml from the notebooks' titles
    python -m http.server -d _site              # then open http://localhost:8000

1. `nbdev-proc-nbs` (nbdev's own processing: show_doc, doc links, directives) writes `_proc/`,
   minus its attempt to download Quarto and its rewrite of `nbs/nbdev.yml`.
2. Every notebook in nbs/ (index first, then chapters by number: whatever exists) becomes
   `<output-file>.html` (nbdev's name, e.g. `core.html`, so nbdev's links like `core.html#in_test` resolve)
   through nbconvert's `lab` template, with the same sidebar as `sidebar.yml` (chapter titles, parts, and
   descriptions as tooltips), previous/next links, and a chapter map with descriptions on the home page.
3. No CDN: require.js, `@jupyter-widgets/html-manager` (renders widget state saved in a notebook's metadata)
   and MathJax come from npm (`cd tools/site_assets && npm ci`) and are copied to `_site/_static/`.
"""
from __future__ import annotations

import argparse, html, json, re, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, PROC, ASSETS = ROOT/"nbs", ROOT/"_proc", ROOT/"tools"/"site_assets"/"node_modules"

# Sidebar sections by chapter number (first number of each part); keep in step with DESIGN.md's chapter table.
# A chapter slotted between two others carries a letter (`12a_kernels` after `12_attention`), as fastai's course does.
PARTS = [((0, ""), "Groundwork"), ((4, ""), "Learning from data"), ((12, ""), "Transformers"), ((15, ""), "Training for real"),
         ((17, ""), "Scaling to 7B"), ((19, "a"), "After pretraining"), ((20, ""), "Appendix and reference")]
LABELS = {(20, ""): "Appendix A", (21, ""): "Reference"}  # pages after the course's chapters: named, not numbered

# (source inside node_modules, destination inside _site/_static); MathJax loads its fonts and lazy
# components relative to its own script, so its layout is kept.
STATIC_FILES = [
    ("requirejs/require.js", "require.js"),
    ("@jupyter-widgets/html-manager/dist", "html-manager"),
    ("mathjax/es5/tex-chtml-full.js", "mathjax/tex-chtml-full.js"),
    ("mathjax/es5/output/chtml/fonts/woff-v2", "mathjax/output/chtml/fonts/woff-v2"),
    ("mathjax/es5/ui", "mathjax/ui"),
    ("mathjax/es5/a11y", "mathjax/a11y"),
    ("mathjax/es5/input/tex/extensions", "mathjax/input/tex/extensions"),
]
CDN = {"require": "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.8/require.min.js",
       "widgets": "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.15/dist/embed-amd.js",
       "mathjax": "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-chtml-full.js"}


# ---------------------------------------------------------------- notebooks and the sidebar

def notebook_names(nbs: Path = NBS) -> list[str]:
    "The site's notebooks, in chapter order: index first, then by file name (`00_core`, `01_data`, …)."
    names = [p.name for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", "."))]
    return sorted(names, key=lambda n: (n != "index.ipynb", n))


def chapter_key(name: str) -> tuple[int, str] | None:
    "`(12, 'a')` for `12a_kernels.ipynb`, `(3, '')` for `03_ngram.ipynb`, None for pages that are not chapters."
    m = re.match(r"(\d+)([a-z]?)_", name)
    return (int(m.group(1)), m.group(2)) if m else None


def chapter_number(name: str) -> int | None:
    "The chapter's number without its letter (`12a_kernels` -> 12)."
    k = chapter_key(name)
    return None if k is None else k[0]


def frontmatter(nb_path: Path) -> tuple[str | None, str | None]:
    "`(title, description)` from the notebook's first cell: `# Title` then `> description` (what nbdev reads)."
    import nbformat
    cells = nbformat.read(nb_path, as_version=4).cells
    if not cells or cells[0].cell_type != "markdown": return None, None
    src = cells[0].source
    title = re.search(r"^#\s+(.+?)\s*$", src, re.M)
    desc = re.search(r"^>\s*(.+?)\s*$", src, re.M)
    return (title.group(1) if title else None), (desc.group(1) if desc else None)


def sidebar_text(name: str, title: str) -> str:
    "What the sidebar shows for a notebook: `3. N-gram models` for chapters, the bare title otherwise."
    k = chapter_key(name)
    if k in LABELS: return f"{LABELS[k]}: {title}"
    return title if k is None else f"{k[0]}{k[1]}. {title}"


def part_of(name: str) -> str | None:
    "The sidebar section a chapter belongs to (None for pages outside the numbered chapters, like index)."
    k = chapter_key(name)
    return None if k is None else [p for start, p in PARTS if k >= start][-1]


def site_pages(nbs: Path = NBS) -> list[dict]:
    "The site's pages in order: `{href, text, section, description}` per notebook in `nbs` (titles from first cells)."
    pages = []
    for name in notebook_names(nbs):
        title, desc = frontmatter(nbs/name)
        pages.append({"href": name, "text": sidebar_text(name, title or Path(name).stem),
                      "section": part_of(name), "description": desc})
    return pages


def _yaml_str(s: str) -> str:
    "A YAML scalar for `s` (quoted only when YAML needs it)."
    import yaml
    return yaml.safe_dump(s, allow_unicode=True, width=10_000, default_style=None).removesuffix("\n...\n").strip()


def make_sidebar(nbs: Path = NBS) -> str:
    """sidebar.yml text for the notebooks in `nbs`: index, then chapters grouped in PARTS, titled from their first cell.
    Each entry is preceded by the chapter's one-line description as a YAML comment (Quarto's sidebar items have no
    description field, and an unknown key would fail its schema check)."""
    lines = ["# Chapter order for the site (Quarto's `nbdev-docs` and tools/build_site.py both read it).",
             "# Generated from the notebooks' `# Title` and `> description`; after adding or renaming a chapter run:",
             "#   python tools/build_site.py --write-sidebar",
             "website:", "  sidebar:", "    contents:"]
    section = None
    for p in site_pages(nbs):
        ind = "    "
        if p["section"]:
            if p["section"] != section:
                lines += [f"    - section: {_yaml_str(p['section'])}", "      contents:"]
            ind = "      "
        section = p["section"]
        if p["description"]: lines.append(f"{ind}# {' '.join(p['description'].split())}")
        lines += [f"{ind}- text: {_yaml_str(p['text'])}", f"{ind}  href: {p['href']}"]
    return "\n".join(lines) + "\n"


def sidebar_entries(sidebar: dict) -> list[tuple[str, str | None, str | None]]:
    "Flatten Quarto sidebar contents to `[(href, text, section)]`, in order."
    out = []
    def walk(items, section):
        for it in items or []:
            if isinstance(it, str): out.append((it, None, section))
            elif "section" in it and "contents" in it: walk(it["contents"], it["section"])
            elif "href" in it: out.append((it["href"], it.get("text"), section))
            elif "contents" in it: walk(it["contents"], section)
    walk(sidebar["website"]["sidebar"]["contents"], None)
    return out


# ---------------------------------------------------------------- nbdev processing

def expected_nbdev_yml() -> str | None:
    "The nbs/nbdev.yml that `nbdev-proc-nbs`/`nbdev-docs` would write from pyproject.toml (None if nbdev changed)."
    try:
        from nbdev.config import get_config
        from nbdev.quarto import _nbdev_yml
    except ImportError: return None
    cfg = get_config(ROOT)
    vals = {k: cfg[k] for k in ["title", "description", "branch", "git_url", "doc_host", "doc_baseurl"]}
    vals["doc_path"] = cfg.doc_path.name
    return _nbdev_yml.format(**vals)


def proc_notebooks():
    "`nbdev-proc-nbs` into _proc/, without downloading Quarto and without rewriting tracked files in nbs/."
    import os
    import nbdev.quarto as q
    # nbdev runs every cell that holds an import while processing (to resolve names for show_doc): at test size,
    # as only saved outputs reach the pages. Spawned workers inherit the environment.
    os.environ["IN_TEST"] = "1"
    if not shutil.which("quarto"): q._ensure_quarto = lambda: None
    q.refresh_quarto_yml = lambda: None   # would rewrite nbs/nbdev.yml; tests/test_site.py checks it is current
    cwd = os.getcwd()
    try: q.nbdev_proc_nbs.__wrapped__(path=str(NBS))
    finally: os.chdir(cwd)


# ---------------------------------------------------------------- rendering

_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*)$")
_CELL_KEYS = {"code": {"cell_type", "id", "metadata", "source", "outputs", "execution_count"},
              "markdown": {"cell_type", "id", "metadata", "source", "attachments"},
              "raw": {"cell_type", "id", "metadata", "source"}}


def pop_front_matter(nb) -> dict:
    "Remove the YAML raw cell nbdev puts first; return it as a dict."
    import yaml
    if nb.cells and nb.cells[0].cell_type == "raw" and nb.cells[0].source.startswith("---"):
        return yaml.safe_load(nb.cells.pop(0).source.strip().strip("-")) or {}
    return {}


def apply_directives(nb):
    "Quarto cell options `echo/output/include: false` -> nbconvert tags; other leading `#|` lines are dropped."
    for c in nb.cells:
        for k in set(c) - _CELL_KEYS[c.cell_type]: del c[k]   # nbdev adds keys nbformat's schema lacks
        c.metadata.pop("execution", None)
        if c.cell_type != "code": continue
        lines, tags, i = c.source.splitlines(), set(c.metadata.get("tags", [])), 0
        while i < len(lines) and (m := _DIRECTIVE.match(lines[i])):
            key, val = m.group(1), m.group(2).strip().lower()
            if val == "false" and key in ("echo", "output", "include"):
                tags.add({"echo": "remove_input", "output": "remove_output", "include": "remove_cell"}[key])
            i += 1
        c.source = "\n".join(lines[i:])
        for o in c.get("outputs", []):   # show_doc markdown carries pandoc attributes: [source](url){target=...}
            md = o.get("data", {}).get("text/markdown")
            if isinstance(md, str): o["data"]["text/markdown"] = re.sub(r"\)\{[^{}\n]*\}", ")", md)
        if tags: c.metadata["tags"] = sorted(tags)


# ---- Markdown: nbconvert's renderer (mistune, with its maths handling), made to read pipe tables as Quarto's pandoc does

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_TABLE_ROW = re.compile(r"^ {0,3}\|.*\|\s*$")


def escape_code_pipes(md: str) -> str:
    """Escape `|` inside code spans on pipe-table rows (outside fenced code): pandoc (Quarto) keeps such a pipe in the
    cell, GFM wants it written `\\|`, and mistune drops a table whose row then has one cell too many (it printed the
    whole table as text)."""
    out, fence = [], None
    for line in md.split("\n"):
        m = _FENCE.match(line)
        if fence is None and m: fence = m.group(1)[0] * len(m.group(1))
        elif fence is not None and m and m.group(1).startswith(fence): fence = None
        elif fence is None and _TABLE_ROW.match(line):
            line = _CODE_SPAN.sub(lambda c: c.group(1) + re.sub(r"(?<!\\)\|", r"\\|", c.group(2)) + c.group(1), line)
        out.append(line)
    return "\n".join(out)


def unescape_cell_pipes(html_: str) -> str:
    "Inside table cells, `\\|` in code is the pipe itself (GFM); mistune leaves the backslash."
    code = lambda m: m.group(0).replace("\\|", "|")
    return re.sub(r"<t([dh])\b[^>]*>.*?</t\1>", lambda m: re.sub(r"<code>.*?</code>", code, m.group(0), flags=re.S),
                  html_, flags=re.S)


def inline_markdown(text: str) -> str:
    "One line of Markdown (a chapter's description) as inline HTML: `code`, *emphasis*, links; HTML in it escaped."
    import mistune
    out = mistune.create_markdown(escape=True, plugins=["strikethrough"])(text).strip()
    return out[3:-4] if out.startswith("<p>") and out.endswith("</p>") else out


def plain_text(markdown_line: str) -> str:
    "A description for a tooltip (`title=` shows text, not HTML): without the backticks and asterisks of Markdown."
    return re.sub(r"`([^`]*)`|\*\*?([^*]+)\*\*?", lambda m: m.group(1) or m.group(2), markdown_line)


def _site_exporter_class():
    import jinja2
    from nbconvert import HTMLExporter
    class SiteExporter(HTMLExporter):
        "nbconvert's lab HTML exporter with the Markdown fixes above (cells and `text/markdown` outputs alike)."
        @jinja2.pass_context   # as nbconvert's own filter: it reads the cell's attachments from the template context
        def markdown2html(self, context, source):
            return unescape_cell_pipes(super().markdown2html(context, escape_code_pipes(source)))
    return SiteExporter


SITE_CSS = """
body.llm-site { margin: 0; }
.llm-sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 260px; overflow-y: auto; box-sizing: border-box;
  padding: 16px 12px; border-right: 1px solid #e0e0e0; background: #fafafa;
  font-family: var(--jp-ui-font-family, sans-serif); font-size: 14px; }
.llm-sidebar .llm-site-title { display: block; font-weight: 600; font-size: 17px; margin-bottom: 12px; color: #222; text-decoration: none; }
.llm-sidebar .llm-section { margin: 14px 0 4px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #777; }
.llm-sidebar ul { list-style: none; margin: 0; padding: 0; }
.llm-sidebar li a { display: block; padding: 3px 6px; border-radius: 4px; color: #1a5fb4; text-decoration: none; }
.llm-sidebar li a:hover { background: #eaeef5; }
.llm-sidebar li a[aria-current="page"] { background: #dde6f3; font-weight: 600; color: #111; }
main.llm-page { margin-left: 260px; padding: 16px 32px; max-width: 1100px; }
.llm-pager { display: flex; justify-content: space-between; margin: 40px 0 16px; padding-top: 12px;
  border-top: 1px solid #e0e0e0; font-family: var(--jp-ui-font-family, sans-serif); }
.llm-pager a { text-decoration: none; color: #1a5fb4; }
.llm-description { font-style: italic; font-size: 125%; opacity: .75; }
/* Code: the lab template's CSS leaves code blocks in Markdown unboxed; long lines scroll inside their box, never the page */
main.llm-page .jp-Cell, main.llm-page .jp-InputArea, main.llm-page .jp-OutputArea, main.llm-page .jp-InputArea-editor,
main.llm-page .jp-OutputArea-child, main.llm-page .jp-OutputArea-output, main.llm-page .jp-RenderedHTMLCommon { min-width: 0; max-width: 100%; }
main.llm-page pre { overflow-x: auto; max-width: 100%; box-sizing: border-box; }
main.llm-page .jp-RenderedMarkdown pre, main.llm-page .jp-InputArea-editor .highlight pre {
  background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 4px; padding: 8px 12px; margin: 8px 0; line-height: 1.45; }
main.llm-page .jp-InputArea-editor { border: 0; background: transparent; }
main.llm-page .jp-OutputArea-output pre { padding: 2px 4px; }
main.llm-page .jp-RenderedMarkdown :not(pre) > code { background: #f0f2f4; padding: 1px 4px; border-radius: 3px; }
main.llm-page .jp-RenderedHTMLCommon table { display: block; overflow-x: auto; max-width: 100%; }
.llm-description code { font-style: normal; font-size: 90%; background: #f0f2f4; padding: 1px 4px; border-radius: 3px; }
@media (max-width: 800px) { .llm-sidebar { position: static; width: auto; border-right: 0; }
  main.llm-page { margin-left: 0; padding: 12px; } }
"""

# MathJax 3, plus the one MathJax 2 call the ipywidgets renderer makes (`MathJax.Hub.Queue(['Typeset', hub, el])`,
# for maths in widget labels): without it every widget page throws "Cannot read properties of undefined (reading 'Queue')".
MATHJAX_CONFIG = """<script>
(function () {
  const hub = {Queue: function () {
    const els = [...arguments].filter(c => Array.isArray(c) && c[0] === 'Typeset' && c[2]).map(c => c[2]);
    const mj = window.MathJax;
    if (els.length && mj && mj.startup && mj.startup.promise)
      mj.startup.promise.then(() => mj.typesetPromise(els)).catch(e => console.warn('MathJax:', e));
  }};
  window.MathJax = {
    tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
          processEscapes: true, processEnvironments: true, tags: 'ams'},
    options: {ignoreHtmlClass: 'tex2jax_ignore', processHtmlClass: 'tex2jax_process'},
    startup: {ready: () => { window.MathJax.startup.defaultReady(); window.MathJax.Hub = hub; }},
    Hub: hub   // until MathJax has loaded and replaced this configuration object
  };
})();
</script>
<script id="MathJax-script" src="%s"></script>"""

TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}<script src="{{ resources.site.require_js }}"></script>{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{{ resources.site.mathjax }}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}<link rel="stylesheet" href="_static/site.css">{%- endblock html_head_css -%}
{%- block body_header -%}
<body class="jp-Notebook llm-site" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{{ resources.site.sidebar }}
<main class="llm-page">
{%- endblock body_header -%}
{% block body_footer %}
{{ resources.site.pager }}
</main>
</body>
{% endblock body_footer %}
"""


def sidebar_html(site_title: str, pages: list[dict], current: str) -> str:
    "The left-hand navigation: the home page, then the chapters grouped by part (descriptions as tooltips)."
    out, section = [f'<nav class="llm-sidebar" aria-label="Chapters"><a class="llm-site-title" href="index.html">'
                    f'{html.escape(site_title)}</a>'], object()
    for i, p in enumerate(pages):
        if p["section"] != section:  # a new part: close the previous list (if any), then title and open this one
            section = p["section"]
            out.append(("</ul>" if i else "") + (f'<div class="llm-section">{html.escape(section)}</div>' if section else "") + "<ul>")
        cur = ' aria-current="page"' if p["file"] == current else ""
        tip = f' title="{html.escape(plain_text(p["description"]))}"' if p.get("description") else ""
        out.append(f'<li><a href="{p["file"]}"{cur}{tip}>{html.escape(p["text"])}</a></li>')
    out.append("</ul></nav>")
    return "".join(out)


def pager_html(pages: list[dict], i: int) -> str:
    prev = f'<a rel="prev" href="{pages[i-1]["file"]}">← {html.escape(pages[i-1]["text"])}</a>' if i > 0 else "<span></span>"
    nxt = (f'<a rel="next" href="{pages[i+1]["file"]}">{html.escape(pages[i+1]["text"])} →</a>'
           if i + 1 < len(pages) else "<span></span>")
    return f'<nav class="llm-pager" aria-label="Previous and next chapter">{prev}{nxt}</nav>'


def chapter_map_cell(pages: list[dict]):
    "A markdown cell listing every chapter with its one-line description (appended to the home page)."
    import nbformat
    rows, section = [], object()
    for p in pages:
        if p["file"] == "index.html": continue
        if p["section"] != section:
            section = p["section"]
            if section: rows.append(f"\n### {section}\n")
        rows.append(f"- [{p['text']}]({p['file']})" + (f": {p['description']}" if p.get("description") else ""))
    return nbformat.v4.new_markdown_cell("## Chapters\n" + "\n".join(rows), metadata={"tags": ["llm-chapter-map"]})


class SiteBuildError(RuntimeError): pass


def copy_static(out: Path, assets: Path | None) -> dict:
    "Copy the JS assets into out/_static; return the URLs the pages use (CDN URLs when `assets` is None)."
    static = out/"_static"
    static.mkdir(parents=True, exist_ok=True)
    (static/"site.css").write_text(SITE_CSS, encoding="utf-8")
    if assets is None:
        return {"require_js": CDN["require"], "widgets": CDN["widgets"], "mathjax": CDN["mathjax"]}
    for src, dst in STATIC_FILES:
        s, d = assets/src, static/dst
        if not s.exists(): raise SiteBuildError(f"{s} is missing: run `npm ci` in tools/site_assets (or pass --allow-cdn)")
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir(): shutil.copytree(s, d, ignore=shutil.ignore_patterns("*.map", "embed.js", "*.LICENSE.txt"))
        else: shutil.copy2(s, d)
    return {"require_js": "_static/require.js", "widgets": "_static/html-manager/embed-amd.js",
            "mathjax": "_static/mathjax/tex-chtml-full.js"}


def copy_files(proc: Path, out: Path):
    "Images and other files the notebooks link to (everything in _proc/ that is not a notebook or Quarto config)."
    for p in proc.rglob("*"):
        rel = p.relative_to(proc)
        if p.is_dir() or p.suffix in (".ipynb", ".yml", ".yaml") or rel.parts[0].startswith((".", "_")): continue
        (out/rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, out/rel)


def render(proc: Path = PROC, out: Path = ROOT/"_site", assets: Path | None = ASSETS,
           pages: list[dict] | None = None) -> list[Path]:
    "Render the processed notebooks in `proc` to `out`: one page per entry of `pages` (default: `site_pages()`)."
    import jinja2, nbformat
    from nbconvert.preprocessors import TagRemovePreprocessor
    if pages is None: pages = site_pages()
    missing = [p["href"] for p in pages if not (proc/p["href"]).exists()]
    if missing: raise SiteBuildError(f"{proc} lacks {missing}: run without --no-proc (nbdev's processing) first")
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    urls = copy_static(out, assets)
    copy_files(proc, out)

    docs = []
    for p in pages:
        nb = nbformat.read(proc/p["href"], as_version=4)
        fm = pop_front_matter(nb)
        title = fm.get("title") or Path(p["href"]).stem
        fname = fm.get("output-file") or Path(p["href"]).with_suffix(".html").name
        desc = fm.get("description") or p["description"]
        head = f"# {title}"
        if desc: head += f'\n\n<p class="llm-description">{inline_markdown(desc)}</p>'
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(head))
        apply_directives(nb)
        docs.append({"file": fname, "notebook": p["href"], "text": p["text"], "title": title,
                     "section": p["section"], "description": desc, "nb": nb})
    if not docs or docs[0]["file"] != "index.html":   # no nbs/index.ipynb: a generated home page
        from nbdev.config import get_config
        cfg = get_config(ROOT)
        home = {"file": "index.html", "text": cfg.title, "title": cfg.title, "section": None,
                "description": cfg.get("description"),
                "nb": nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {cfg.title}")])}
        docs.insert(0, home)
    docs[0]["nb"].cells.append(chapter_map_cell(docs))

    ex = _site_exporter_class()(template_name="lab", extra_loaders=[jinja2.DictLoader({"llm_site.html.j2": TEMPLATE})],
                      template_file="llm_site.html.j2")
    ex.require_js_url, ex.widget_renderer_url = urls["require_js"], urls["widgets"]
    ex.exclude_input_prompt = ex.exclude_output_prompt = True   # docs, not a notebook: no `In [ ]:` / `Out[4]:`
    ex.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"remove_cell"},
        remove_input_tags={"remove_input"}, remove_all_outputs_tags={"remove_output"}), enabled=True)
    site_title = docs[0]["title"]
    written = []
    for i, d in enumerate(docs):
        site = {"require_js": urls["require_js"], "mathjax": MATHJAX_CONFIG % urls["mathjax"],
                "sidebar": sidebar_html(site_title, docs, d["file"]), "pager": pager_html(docs, i)}
        body, _ = ex.from_notebook_node(d["nb"], resources={"metadata": {"name": d["title"]}, "site": site})
        (out/d["file"]).write_text(body, encoding="utf-8")
        written.append(out/d["file"])
    manifest = [{"file": d["file"], "notebook": d.get("notebook"), "title": d["title"], "section": d["section"]}
                for d in docs]   # which page came from which notebook (tests/test_site.py reads it)
    (out/"_static"/"pages.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return written


def build(out: Path = ROOT/"_site", proc: bool = True, allow_cdn: bool = False) -> list[Path]:
    "nbdev's processing (unless `proc` is False), then the static site in `out`; return the pages written."
    assets = ASSETS
    if not (ASSETS/"mathjax").exists() or not (ASSETS/"@jupyter-widgets"/"html-manager").exists():
        if not allow_cdn: raise SiteBuildError("JS assets missing: run `npm ci` in tools/site_assets (or pass --allow-cdn)")
        assets = None
    pages = site_pages()   # taken first, so a notebook that appears while nbdev processes is left for next time
    if proc: proc_notebooks()
    if not PROC.exists(): raise SiteBuildError("no _proc/: run without --no-proc first")
    return render(PROC, Path(out).resolve(), assets, pages)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-proc", action="store_true", help="skip nbdev's processing; render the existing _proc/")
    ap.add_argument("--out", default=str(ROOT/"_site"), help="output folder (default: _site/)")
    ap.add_argument("--allow-cdn", action="store_true", help="load require.js/widgets/MathJax from CDNs if npm assets are missing")
    ap.add_argument("--write-sidebar", action="store_true", help="rewrite nbs/sidebar.yml from the notebooks, then exit")
    a = ap.parse_args(argv)
    if a.write_sidebar:
        (NBS/"sidebar.yml").write_text(make_sidebar(), encoding="utf-8")
        print(f"wrote {NBS/'sidebar.yml'}"); return
    t0 = time.time()
    try: pages = build(Path(a.out), proc=not a.no_proc, allow_cdn=a.allow_cdn)
    except SiteBuildError as e: sys.exit(f"build_site: {e}")
    print(f"build_site: {len(pages)} pages in {a.out} ({time.time()-t0:.1f}s)")


if __name__ == "__main__": main()
