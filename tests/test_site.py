"""The documentation site: its Quarto configuration (what `nbdev-docs` reads where Quarto exists) and the
Quarto-free static build (tools/build_site.py) opened in Debian's Chromium.

The session fixture `site` builds the site once (nbdev's processing into _proc/, then HTML into _site/), so
`python -m pytest` needs no separate build step. Every test here is in the xdist group "site": one worker
builds the site and starts one browser. Browser checks: each page loads with no script error, no failed
request and no request leaving 127.0.0.1 (no CDN); saved widget state renders; maths renders; pictures load; no raw
Markdown shows (table pipes, backticks as text), every code block is boxed and scrolls instead of running off the page.
Exercises: every chapter page with an `## Exercises` section shows the heading, the stubs and the checks' saved
"not done yet"; solutions/ lies outside what nbdev-docs and build_site render, and no solution's code is on any page.
Screenshots: artifacts/screenshots/site-<page>.png.
Run:  python -m pytest -p no:xdist tests/test_site.py
"""
from __future__ import annotations

import json, os, re, subprocess, sys, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/"tools"))
sys.path.insert(0, str(Path(__file__).parent/"browser"))
import build_site  # noqa: E402
from browser_support import ARTIFACTS, skip_or_fail, static_server  # noqa: E402

pytestmark = pytest.mark.xdist_group("site")
SITE = ROOT/"_site"
NOTEBOOKS = build_site.notebook_names()
MATH_RE = re.compile(r"\$\$.+?\$\$|(?<![\\$\w])\$[^$\s`][^$`\n]*?\$(?!\w)|\\begin\{\w+\*?\}", re.S)


# ------------------------------------------------------------------ site structure (no build needed)

def test_sidebar_lists_every_notebook_in_chapter_order():
    expected = build_site.make_sidebar()
    assert (ROOT/"nbs"/"sidebar.yml").read_text(encoding="utf-8") == expected, \
        "nbs/sidebar.yml is out of date with the notebooks: run `python tools/build_site.py --write-sidebar`"
    hrefs = [h for h, _, _ in build_site.sidebar_entries(yaml.safe_load(expected))]
    assert hrefs == NOTEBOOKS and hrefs[0] == "index.ipynb"
    numbers = [build_site.chapter_key(h) for h in hrefs[1:]]
    assert numbers == sorted(numbers), "chapters must appear in numeric order"


def test_every_chapter_has_a_title_and_a_description():
    "nbdev (and the sidebar) read `# Title` and `> description` from each notebook's first cell."
    missing = [n for n in NOTEBOOKS if None in build_site.frontmatter(ROOT/"nbs"/n)]
    assert not missing, f"first cell of {missing} lacks `# Title` or `> one-line description`"


def test_quarto_config_is_what_nbdev_docs_needs():
    nbs = ROOT/"nbs"
    quarto = yaml.safe_load((nbs/"_quarto.yml").read_text())
    assert quarto["project"]["type"] == "website"
    assert {"nbdev.yml", "sidebar.yml"} <= set(quarto["metadata-files"])
    assert "contents" not in quarto["website"].get("sidebar", {}), "chapters belong in sidebar.yml, not _quarto.yml"
    # nbdev-docs rewrites nbdev.yml from pyproject.toml: keep it identical, so building the docs leaves git clean
    expected = build_site.expected_nbdev_yml()
    if expected is not None:
        assert (nbs/"nbdev.yml").read_text() == expected, \
            "nbs/nbdev.yml differs from what nbdev writes from pyproject.toml: copy nbdev's version " \
            "(python -c 'import sys; sys.path.insert(0, \"tools\"); import build_site; print(build_site.expected_nbdev_yml(), end=\"\")' > nbs/nbdev.yml)"
    from nbdev.config import get_config
    assert get_config(ROOT).custom_sidebar, "pyproject.toml needs `custom_sidebar = true`, or nbdev-docs overwrites sidebar.yml"


@pytest.mark.slow
def test_nbdev_docs_builds_with_quarto(tmp_path):
    "Where Quarto is installed (not on CI machines here), the real `nbdev-docs` build succeeds."
    import shutil
    if not shutil.which("quarto"): pytest.skip("Quarto is not installed")
    res = subprocess.run(["nbdev-docs"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (ROOT/"_docs"/"index.html").exists()


# ------------------------------------------------------------------ the static build

def _build_site():
    t0 = time.time()
    res = subprocess.run([sys.executable, str(ROOT/"tools"/"build_site.py"), "--out", str(SITE)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"tools/build_site.py failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    print(f"site built in {time.time() - t0:.1f}s")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> dict:
    "Build _site/ once per test run; return `{page file: manifest entry}`."
    if not (build_site.ASSETS/"mathjax").exists():
        skip_or_fail("the site's JS assets are missing: run `npm ci` in tools/site_assets")
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None: _build_site()
    else:  # xdist: the first worker to get here builds, the others wait (the xdist_group alone is not enough: some
        # pytest/xdist versions ignore it, and two builds into one _site/ delete each other's files)
        shared = tmp_path_factory.getbasetemp().parent  # common to this run's workers
        with FileLock(str(shared/"site.lock")):
            if not (done := shared/f"site-{run_id}.built").exists(): _build_site(); done.touch()
    return {p["file"]: p for p in json.loads((SITE/"_static"/"pages.json").read_text())}


def test_every_notebook_has_a_page(site):
    by_nb = {p["notebook"]: f for f, p in site.items()}
    assert [n for n in NOTEBOOKS if n not in by_nb] == [], "notebooks without a page"
    assert by_nb["index.ipynb"] == "index.html"
    for f, p in site.items():
        text = (SITE/f).read_text(encoding="utf-8")
        assert f"<title>{p['title']}</title>" in text.replace("\n", ""), f"{f}: wrong <title>"
        assert 'class="llm-sidebar"' in text and text.count('class="llm-pager"') == 1


def test_pages_load_nothing_from_the_network(site):
    "require.js, the widget renderer and MathJax are served from _site/_static, not from a CDN."
    for f in site:
        text = (SITE/f).read_text(encoding="utf-8")
        remote = re.findall(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//[^"']+""", text)
        assert not remote, f"{f} loads {remote}"
        assert "cdn.jsdelivr" not in text and "cdnjs" not in text and "unpkg.com" not in text, f"{f} names a CDN"
    for asset in ["require.js", "html-manager/embed-amd.js", "mathjax/tex-chtml-full.js"]:
        assert (SITE/"_static"/asset).is_file(), f"_site/_static/{asset} missing"


class _Links(HTMLParser):
    "Collects link targets (href/src) and element ids of one page."
    def __init__(self):
        super().__init__(); self.links, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"): self.ids.add(a["id"])
        if tag == "a" and a.get("name"): self.ids.add(a["name"])
        for k in ("href", "src"):
            if a.get(k) and not (tag == "script" and a.get("type", "").startswith("application/vnd.jupyter")):
                self.links.append(a[k])


def _parse(path: Path) -> _Links:
    p = _Links(); p.feed(path.read_text(encoding="utf-8")); return p


def test_no_broken_internal_links(site):
    "Every relative link resolves to a file in _site/, and every #anchor to an element id on its page."
    parsed = {f: _parse(SITE/f) for f in site}
    broken = []
    for f, p in parsed.items():
        for link in p.links:
            u = urlsplit(link)
            if u.scheme or u.netloc or link.startswith(("data:", "javascript:", "mailto:")): continue
            target = f if not u.path else unquote(u.path)
            if not (SITE/target).is_file(): broken.append(f"{f} -> {link} (no such file)"); continue
            if u.fragment and target.endswith(".html"):
                ids = parsed[target].ids if target in parsed else _parse(SITE/target).ids
                # browsers try the fragment as written, then percent-decoded (nbconvert writes ids percent-encoded)
                if not {u.fragment, unquote(u.fragment)} & ids: broken.append(f"{f} -> {link} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:50])


# ------------------------------------------------------------------ the static build in a real browser

def _expectations(nb_name: str) -> dict:
    "What a page must show, from the processed notebook it is built from: widget outputs, maths."
    nb = nbformat.read(ROOT/"_proc"/nb_name, as_version=4)
    has_state = bool(nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state"))
    views = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    md = "\n".join(re.sub(r"```.*?```|`[^`\n]*`", "", c.source, flags=re.S) for c in nb.cells if c.cell_type == "markdown")
    return {"widgets": views > 0 and has_state, "math": bool(MATH_RE.search(md))}


PAGE_STATE_JS = """() => {
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
  const rendered = [...views].filter(s => s.parentElement.querySelector('.widget-subarea .jupyter-widgets, .widget-subarea .lm-Widget'));
  const imgs = [...document.querySelectorAll('main img')];
  return {views: views.length, rendered: rendered.length,
          widgetErrors: [...document.querySelectorAll('.jupyter-widgets')].filter(e => /Error displaying widget/.test(e.innerText)).length,
          math: document.querySelectorAll('mjx-container').length, mathErrors: document.querySelectorAll('mjx-merror').length,
          mathReady: !!(window.MathJax && window.MathJax.startup && window.MathJax.startup.document),
          brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80)),
          title: document.title};
}"""


# What a reader must never see: Markdown the renderer left as text, code without its box, code that runs off the page.
RAW_MARKDOWN_JS = r"""() => {
  const main = document.querySelector('main') || document.body;
  const clip = t => t.trim().replace(/\s+/g, ' ').slice(0, 100);
  const pipes = [], ticks = [];
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode());) {
    const el = n.parentElement;
    if (!el || el.closest('pre, code, kbd, samp, script, style, textarea, svg, mjx-container, .MathJax')) continue;
    const t = n.textContent;
    if (/\|\s*:?-{3,}:?\s*\|/.test(t) || /^[ \t]*\|[^\n]*\|[^\n]*\|[ \t]*$/m.test(t)) pipes.push(clip(t));
    if (t.includes('`')) ticks.push(clip(t));
  }
  const shown = p => p.getClientRects().length > 0;
  const codeBlocks = [...main.querySelectorAll('.jp-RenderedMarkdown pre, .jp-InputArea pre')].filter(shown);
  const unboxed = codeBlocks.filter(p => {
    const s = getComputedStyle(p);
    return s.backgroundColor === 'rgba(0, 0, 0, 0)' && s.borderTopStyle === 'none' && s.borderLeftStyle === 'none';
  }).map(p => clip(p.textContent));
  const unscrolled = [...main.querySelectorAll('pre')].filter(shown).filter(p => {
    const s = getComputedStyle(p);
    return !(['auto', 'scroll'].includes(s.overflowX) || /^(pre-wrap|break-spaces|pre-line|normal)$/.test(s.whiteSpace));
  }).map(p => clip(p.textContent));
  const right = main.getBoundingClientRect().right;
  const sticking = [...main.querySelectorAll('pre, table, img, .jp-Cell')].filter(shown)
    .filter(e => e.getBoundingClientRect().right > right + 1).map(e => e.tagName + ': ' + clip(e.textContent).slice(0, 60));
  return {pipes, ticks, unboxed, unscrolled, sticking,
          pageOverflow: document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth};
}"""


def raw_markdown_problems(page_file: str, r: dict) -> list[str]:
    "Readable complaints from RAW_MARKDOWN_JS's result (empty when the page is clean)."
    why = {"pipes": "pipe-table text shown as text (a table that did not render)",
           "ticks": "literal backticks in rendered text (code spans that did not render)",
           "unboxed": "code blocks without a background or border (unstyled <pre>)",
           "unscrolled": "<pre> that neither scrolls nor wraps (long lines run off the page)",
           "sticking": "elements that stick out of the page's column"}
    out = [f"{page_file}: {why[k]}: {r[k][:3]}" for k in why if r[k]]
    if r["pageOverflow"] > 1: out.append(f"{page_file}: the page scrolls sideways by {r['pageOverflow']} px")
    return out


@pytest.fixture(scope="module")
def site_browser(site, browser):
    with static_server(SITE) as url:
        yield url, browser


@pytest.mark.browser
@pytest.mark.parametrize("nb_name", NOTEBOOKS, ids=lambda n: Path(n).stem)
def test_page_renders_in_browser(nb_name, site, site_browser):
    url, browser = site_browser
    page_file = next((f for f, p in site.items() if p["notebook"] == nb_name), None)
    assert page_file, f"no page for {nb_name}"
    want = _expectations(nb_name)
    ctx = browser.new_context(viewport={"width": 1300, "height": 1500})
    page = ctx.new_page()
    errors, outside = [], []
    def route(r):   # anything not served by our static server counts as a CDN/network dependency
        if r.request.url.startswith(url): r.continue_()
        else: outside.append(r.request.url); r.abort()
    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(f"script error: {e}"))
    page.on("console", lambda m: m.type == "error" and "favicon.ico" not in str(m.location.get("url"))
            and errors.append(f"console error: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("favicon.ico")
            and errors.append(f"HTTP {r.status}: {r.url}"))
    try:
        page.goto(f"{url}/{page_file}", wait_until="load", timeout=60_000)
        # MathJax has typeset the page once its startup promise resolves (it typesets on load)
        page.wait_for_function("() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise",
                               timeout=30_000)
        page.evaluate("() => window.MathJax.startup.promise.then(() => true)")
        # every saved widget view drawn by the HTML manager (or failed: the assertions below say which)
        page.wait_for_function("""() => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
            .every(s => s.parentElement.querySelector('.widget-subarea .jupyter-widgets, .widget-subarea .lm-Widget')
                        || /Error displaying widget/.test(s.parentElement.innerText))""", timeout=30_000)
        page.evaluate("() => document.fonts.ready.then(() => true)")
        state = page.evaluate(PAGE_STATE_JS)
        raw = page.evaluate(RAW_MARKDOWN_JS)
        shots = ARTIFACTS/"screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        first = page.locator("main .widget-subarea, main mjx-container, main img").first
        if first.count(): first.scroll_into_view_if_needed(timeout=5000)
        page.screenshot(path=str(shots/f"site-{Path(page_file).stem}.png"))
    finally:
        ctx.close()
    print(f"{page_file}: {state}")
    assert not outside, f"{page_file} requested resources outside the site: {outside[:5]}"
    assert not errors, f"{page_file}: " + "\n".join(errors[:10])
    assert not state["brokenImages"], f"{page_file}: pictures that did not load: {state['brokenImages']}"
    if want["widgets"]: assert state["views"] > 0, f"{page_file}: the notebook has widget outputs and state, the page none"
    assert state["rendered"] == state["views"] and not state["widgetErrors"], \
        f"{page_file}: {state['rendered']} of {state['views']} widgets rendered from saved state"
    if want["math"]:
        assert state["math"] > 0, f"{page_file}: the notebook has maths but MathJax rendered none"
    assert not state["mathErrors"], f"{page_file}: {state['mathErrors']} formulas failed to render"
    problems = raw_markdown_problems(page_file, raw)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ the Markdown renderer (no build needed)

def _md(source: str) -> str:
    "A Markdown cell rendered as build_site renders it (nbconvert's lab exporter with the site's fixes)."
    ex = build_site._site_exporter_class()(template_name="lab")
    return ex.markdown2html({"cell": {}, "resources": {}}, source)


def test_a_pipe_in_a_code_span_keeps_its_table():
    "A `|` inside backticks in a table row (the home page's `#| slow`) stays in its cell, as Quarto's pandoc keeps it."
    out = _md("Measured (test size):\n| chapter | note |\n|---|---:|\n| 15 | the race (`#| slow`) |\n| 17 | `a\\|b` |\n")
    assert "<table>" in out and "|---" not in out, out
    assert "<code>#| slow</code>" in out and "<code>a|b</code>" in out, out
    assert out.count("<tr>") == 3, out
    fenced = _md("```\n| `a|b` |\n|---|\n```\n")   # inside a fence nothing changes
    assert "| `a|b` |" in fenced and "<table>" not in fenced, fenced


def test_descriptions_render_their_markdown():
    "Chapter subtitles render `code` and *emphasis*; HTML in them is escaped; tooltips get plain text."
    assert build_site.inline_markdown("one `train` behind *two* <b>") == \
        "one <code>train</code> behind <em>two</em> &lt;b&gt;"
    assert build_site.plain_text("one `train` behind **two**") == "one train behind two"
    bad = [n for n in NOTEBOOKS if (d := build_site.frontmatter(ROOT/"nbs"/n)[1]) and "`" in build_site.inline_markdown(d)]
    assert not bad, f"descriptions whose backticks would show: {bad}"


# ------------------------------------------------------------------ exercises shown, solutions hidden

SOLUTIONS = ROOT/"solutions"


class _Text(HTMLParser):
    "The text a reader sees on a page (code included, as it reads after syntax highlighting), without scripts and styles."
    def __init__(self):
        super().__init__(); self.parts, self._skip = [], 0
    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"): self._skip += 1
    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip: self._skip -= 1
    def handle_data(self, data):
        if not self._skip: self.parts.append(data)


def _squash(text: str) -> str: return " ".join(text.split())


def page_text(path: Path) -> str:
    "A page's visible text with whitespace runs squashed to one space (so code compares line-ending- and indent-blind)."
    p = _Text(); p.feed(path.read_text(encoding="utf-8")); return _squash("".join(p.parts).replace("\xa0", " "))


def exercise_stubs(nb_path: Path) -> list[str]:
    "Names defined by the stub cells (`raise NotImplementedError`) under a notebook's `## Exercises` heading."
    import ast
    names, inside = [], False
    for c in nbformat.read(nb_path, as_version=4).cells:
        if c.cell_type == "markdown" and re.search(r"^## ", c.source, re.M):
            inside = bool(re.search(r"^## Exercises\b", c.source, re.M)); continue
        if inside and c.cell_type == "code" and "raise NotImplementedError" in c.source and not c.source.startswith("#| export"):
            names += [n.name for n in ast.parse(c.source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    return names


def solution_bodies(path: Path) -> dict[str, str]:
    """`{function: body}` of a solutions file: each function's code after its signature and docstring, whitespace squashed.
    The signature and docstring are the stub's too (the pages show those); the body is the answer, which no page may show."""
    import ast
    src = path.read_text(encoding="utf-8")
    lines, out = src.splitlines(), {}
    for node in ast.walk(ast.parse(src)):
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)): continue
        body = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
        text = _squash("\n".join(lines[body[0].lineno - 1:node.end_lineno]))
        if len(text) >= 40: out[node.name] = text   # too short to be told apart from ordinary course code
    return out


def test_solutions_are_outside_what_the_docs_render():
    "nbdev-docs (Quarto) and tools/build_site.py render the notebooks of nbs/ only: solutions/ is not among them."
    from nbdev.config import get_config
    nbs = Path(get_config(ROOT).nbs_path).resolve()
    assert SOLUTIONS.resolve() != nbs and nbs not in SOLUTIONS.resolve().parents, "solutions/ must not lie inside nbs/"
    assert not list(nbs.rglob("*solution*")), "nothing in nbs/ may hold solutions: the docs render that folder"
    quarto = yaml.safe_load((nbs/"_quarto.yml").read_text())
    render = quarto.get("project", {}).get("render", [])
    assert not any("solution" in str(r) for r in render), f"_quarto.yml renders solutions: {render}"
    assert all((nbs/n).parent == nbs for n in NOTEBOOKS), "the static site builds pages from nbs/ alone"


def test_chapters_show_their_exercises(site):
    "Every chapter with an `## Exercises` section shows it on its page: the heading, each stub, and its check's 'not done yet'."
    by_nb = {p["notebook"]: f for f, p in site.items()}
    shown, problems = 0, []
    for name in NOTEBOOKS:
        if (build_site.chapter_number(name) or 0) < 1: continue   # chapter 00 explains the checks; chapters 01- have exercises
        stubs = exercise_stubs(ROOT/"nbs"/name)
        if not stubs: continue
        f = by_nb[name]
        text, html_ = page_text(SITE/f), (SITE/f).read_text(encoding="utf-8")
        if not re.search(r"<h2[^>]*>\s*Exercises\b", html_): problems.append(f"{f}: no 'Exercises' heading")
        problems += [f"{f}: the exercise stub `{s}` is not on the page" for s in stubs if f"def {s}(" not in text and f"class {s}" not in text]
        if "raise NotImplementedError" not in text or "check_" not in text: problems.append(f"{f}: the stubs or their checks are missing")
        if "not done yet" not in text: problems.append(f"{f}: no check output says 'not done yet' (re-run the notebook: its saved outputs are what the page shows)")
        shown += 1
    if not shown: pytest.skip("no chapter has an Exercises section yet")
    assert not problems, f"{len(problems)} problem(s) in {shown} chapters with exercises:\n" + "\n".join(problems)


def taught_code(nb_path: Path) -> str:
    "The code of a notebook before its `## Exercises` heading, whitespace squashed: what the chapter itself teaches."
    cells = nbformat.read(nb_path, as_version=4).cells
    out = []
    for c in cells:
        if c.cell_type == "markdown" and re.search(r"^## Exercises\b", c.source, re.M): break
        if c.cell_type == "code": out.append(c.source)
    return _squash("\n".join(out))


def test_no_page_shows_a_solution(site):
    """No page is built from solutions/, no file of it is copied into the site, and no solution's code appears on any page
    (unless a chapter teaches that very code before its exercises: then the page shows the chapter, not the solution)."""
    assert all(p["notebook"] is None or p["notebook"] in NOTEBOOKS for p in site.values()), "a page from outside nbs/"
    assert not [p for p in SITE.rglob("*") if "solution" in p.name.lower()], "the site holds a solutions file"
    bodies = {f"solutions/{p.name}: {fn}": body for p in sorted(SOLUTIONS.glob("*.py")) for fn, body in solution_bodies(p).items()}
    if not bodies: pytest.skip("no solutions yet")
    taught = " ".join(taught_code(ROOT/"nbs"/n) for n in NOTEBOOKS)
    bodies = {where: body for where, body in bodies.items() if body not in taught}
    leaks = []
    for f in site:
        text = page_text(SITE/f)
        if "try first, then compare" in text and "Solutions to chapter" in text: leaks.append(f"{f}: a solutions file's docstring")
        leaks += [f"{f}: the body of {where}" for where, body in bodies.items() if body in text]
    assert not leaks, "solutions shown on the site:\n" + "\n".join(leaks[:20])
