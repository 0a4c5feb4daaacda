"""The course as a learner meets it in JupyterLab: every notebook in nbs/ (a fixed sample by default, all with --slow) opens,
runs at test size, and shows its plots and widgets; the viz widgets respond to a person's clicks.

A real JupyterLab server (IN_TEST=1 in its environment, so chapters shrink their workloads) and Debian's
Chromium driven by Playwright. Each pytest-xdist worker starts one server and one browser and runs its
share of the notebooks through them (starting JupyterLab costs ~5 s; a notebook usually more).
Cells run one by one through JupyterLab's own "Run Selected Cell" command; the cells `nbdev-test` skips
(`#| eval: false`, `#| slow` and the other `tst_flags`) are skipped here too.
Screenshots: artifacts/screenshots/<notebook>.png.
Run:  python -m pytest -m browser tests/test_browser_lab.py
"""
from __future__ import annotations

import os, sys, time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent/"browser"))
from browser_support import (ARTIFACTS, ROOT, cell_ids_to_run, chromium_path, clear_outputs,  # noqa: E402
                             error_outputs, jupyterlab, open_notebook, run_cells, shutdown_sessions)

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted(p for p in (ROOT/"nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))
FIXTURE = ROOT/"tests"/"browser"/"viz_widgets.ipynb"
NOTEBOOK_TIMEOUT_S = 300   # one notebook, all cells; nbdev-test allows ~60 s, the browser adds rendering
SHOTS = ARTIFACTS/"screenshots"


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    "One JupyterLab server per pytest(-xdist) worker; the CPU cores are shared out between workers' kernels."
    chromium_path()   # skip (or fail in CI) before spending time on the server
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    with jupyterlab(ROOT, tmp_path_factory.mktemp("lab"), threads=max(1, (os.cpu_count() or 1) // workers)) as url:
        yield url


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1600})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def _is_progress_bar(model_id: str, state: dict) -> bool:
    "True for a tqdm-style progress bar (an HBox holding a progress widget): shown or not depending on caches and sizes."
    m = state.get(model_id, {})
    if m.get("model_name") in ("FloatProgressModel", "IntProgressModel"): return True
    kids = [k.removeprefix("IPY_MODEL_") for k in m.get("state", {}).get("children", [])]
    return any(state.get(k, {}).get("model_name") in ("FloatProgressModel", "IntProgressModel") for k in kids)


def visual_cells(nb_path: Path, ids: list[str]) -> list[str]:
    "Ids of the cells whose saved outputs show a picture or a widget (progress bars aside): they must show one here too."
    nb, run = nbformat.read(nb_path, as_version=4), set(ids)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    def visual(o):
        d = o.get("data", {})
        if any(k in d for k in ("image/png", "image/jpeg", "image/svg+xml")): return True
        view = d.get("application/vnd.jupyter.widget-view+json")
        return bool(view) and not _is_progress_bar(view.get("model_id", ""), state)
    return [c.id for c in nb.cells if c.cell_type == "code" and c.id in run and any(map(visual, c.get("outputs", [])))]


# Per output: pictures loaded, widget views drawn (not "Loading widget…", not "Error displaying widget").
OUTPUT_STATE_JS = """(visualIds) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const res = {images: 0, broken_images: [], widgets: 0, pending_widgets: 0, widget_errors: [], missing_visual: []};
  const want = new Set(visualIds);
  nb.widgets.forEach((cell, i) => {
    const outs = [...cell.node.querySelectorAll('.jp-OutputArea-output')];
    let visual = 0;
    for (const o of outs) {
      for (const img of o.querySelectorAll('img')) {
        if (img.complete && img.naturalWidth > 0) { res.images++; visual++; }
        else res.broken_images.push(i);
      }
      visual += o.querySelectorAll('canvas, svg').length;
      if (o.dataset.mimeType === 'application/vnd.jupyter.widget-view+json') {
        const txt = o.innerText || '';
        if (/Error displaying widget/.test(txt)) res.widget_errors.push(i + ': ' + txt.slice(0, 300));
        else if (/Loading widget/.test(txt) || !o.querySelector('.jupyter-widgets')) res.pending_widgets++;
        else { res.widgets++; visual++; }
      }
    }
    if (want.has(cell.model.id) && visual === 0) res.missing_visual.push(i);
  });
  return res;
}"""


def wait_for_outputs(page, visual_ids: list[str], timeout_s: float = 30) -> dict:
    "Poll until widgets finished drawing and every expected picture is there (or time runs out); return the state."
    deadline = time.time() + timeout_s
    while True:
        st = page.evaluate(OUTPUT_STATE_JS, visual_ids)
        done = not st["pending_widgets"] and not st["broken_images"] and not st["missing_visual"]
        if done or time.time() > deadline: return st
        page.wait_for_timeout(500)


def screenshot(page, name: str):
    "Viewport screenshot with the first picture or widget scrolled into view."
    SHOTS.mkdir(parents=True, exist_ok=True)
    first = page.locator(".jp-OutputArea-output img, .jp-OutputArea-output .jupyter-widgets").first
    try:
        if first.count(): first.scroll_into_view_if_needed(timeout=5000)
    except Exception: pass
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS/f"{name}.png"))


# By default (CI) a fixed sample that covers what the browser adds over nbdev-test (which runs every notebook anyway): the
# landing page, plain output, plots, the interactive widgets, a table-heavy chapter; every notebook with `pytest --slow`.
CI_SAMPLE = ("index", "00_core", "10_viz", "12_attention", "21_cli")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab(nb, lab, page, record_property, full_size):
    if not full_size and nb.stem not in CI_SAMPLE: pytest.skip("JupyterLab runs a sample of the notebooks by default; all of them with --slow")
    rel, ids = f"nbs/{nb.name}", cell_ids_to_run(nb)
    t0 = time.time()
    try:
        open_notebook(page, lab, rel, workspace=f"t-{nb.stem}")
        t_open = time.time() - t0
        clear_outputs(page)
        run = run_cells(page, ids, NOTEBOOK_TIMEOUT_S)
        errors = error_outputs(page)
        state = wait_for_outputs(page, visual_cells(nb, ids))
        screenshot(page, nb.stem)
    finally:
        shutdown_sessions(lab, rel)
    slowest = sorted(run["times"], key=lambda t: -t[1])[:3]
    record_property("seconds", round(time.time() - t0, 1))
    print(f"{nb.name}: open {t_open:.1f}s, {run['ran']}/{len(ids)} cells, total {time.time() - t0:.1f}s; "
          f"slowest cells {[(i, round(s, 1)) for i, s in slowest]}; {state['images']} pictures, {state['widgets']} widgets")
    assert not errors, f"{nb.name}: error output in JupyterLab (cell {run['current']}):\n" + "\n---\n".join(errors)[-6000:]
    assert run["ok"], f"{nb.name}: running cell {run['current']} failed: {run['error']}"
    assert run["ran"] == len(ids), f"{nb.name}: ran {run['ran']} of {len(ids)} cells"
    assert not state["widget_errors"], f"{nb.name}: widgets failed to display: {state['widget_errors']}"
    assert not state["pending_widgets"], f"{nb.name}: {state['pending_widgets']} widget(s) never finished drawing"
    assert not state["broken_images"], f"{nb.name}: pictures that did not load in cells {state['broken_images']}"
    assert not state["missing_visual"], (f"{nb.name}: cells {state['missing_visual']} show a plot or widget in the saved "
                                         "notebook but none in JupyterLab")


# ------------------------------------------------------------------ the viz widgets, driven like a person would

HEATMAP_HASH_JS = """async () => {
  const img = document.querySelector('img.llm-attn-heatmap, .llm-attn-heatmap img');
  if (!img || !img.src) return null;
  const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let h = 2166136261;                       // FNV-1a over the PNG bytes
  for (const b of buf) { h ^= b; h = Math.imul(h, 16777619) >>> 0; }
  return h + ':' + buf.length;
}"""

LOSSPLOT_JS = """() => {
  const w = document.querySelector('.llm-lossplot');
  if (!w) return null;
  const img = w.querySelector('img');
  const m = /step\\s*(\\d+)/.exec(w.querySelector('.llm-lossplot-stats')?.innerText || w.innerText);
  return {step: m ? +m[1] : null, src: img ? img.src : null, running: !window.__llmRun.done};
}"""


def wait_heatmap_change(page, before: str, what: str) -> str:
    for _ in range(60):
        now = page.evaluate(HEATMAP_HASH_JS)
        if now and now != before: return now
        page.wait_for_timeout(250)
    pytest.fail(f"the attention heatmap did not change after changing {what}")


def test_viz_widgets_respond_in_jupyterlab(lab, page):
    if not (ROOT/"llm_course"/"viz.py").exists(): pytest.skip("llm_course/viz.py does not exist yet")
    rel = FIXTURE.relative_to(ROOT).as_posix()
    ids = [c.id for c in nbformat.read(FIXTURE, as_version=4).cells if c.cell_type == "code"]
    try:
        open_notebook(page, lab, rel, workspace="t-viz-widgets")
        clear_outputs(page)
        run = run_cells(page, ids[:2], 120)
        assert run["ok"] and not error_outputs(page), f"fixture setup failed: {run['error']} {error_outputs(page)}"
        page.wait_for_selector(".llm-attn-viewer .llm-attn-heatmap", timeout=30_000)
        h0 = page.evaluate(HEATMAP_HASH_JS)
        assert h0, "the attention explorer shows no heatmap"

        # head: focus the slider's handle and press the arrow key, as a keyboard user would
        page.locator(".llm-attn-head .noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        h1 = wait_heatmap_change(page, h0, "the head slider")
        page.locator(".llm-attn-layer .noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        h2 = wait_heatmap_change(page, h1, "the layer slider")
        page.locator(".llm-attn-query select").select_option(index=3)
        wait_heatmap_change(page, h2, "the query dropdown")
        assert page.locator(".llm-attn-head .widget-readout").inner_text().strip() == "1"
        assert page.locator(".llm-attn-layer .widget-readout").inner_text().strip() == "1"
        screenshot(page, "viz_widgets-attention")

        # LossPlot: start the training cell and watch the dashboard while the cell is still running
        page.evaluate(f"() => {{ const b = document.querySelector('.llm-attn-viewer'); b && b.scrollIntoView(); }}")
        from browser_support import RUN_CELLS_JS
        page.evaluate(f"(ids) => {{ ({RUN_CELLS_JS})(ids); }}", ids[2:3])
        seen, srcs, deadline = set(), set(), time.time() + 120
        while time.time() < deadline:
            st = page.evaluate(LOSSPLOT_JS)
            if st and st["running"] and st["step"] is not None: seen.add(st["step"]); srcs.add(st["src"])
            if page.evaluate("() => window.__llmRun.done"): break
            page.wait_for_timeout(150)
        run = page.evaluate("() => window.__llmRun")
        assert run["ok"] and not error_outputs(page), f"training cell failed: {run['error']} {error_outputs(page)}"
        final = page.evaluate(LOSSPLOT_JS)
        screenshot(page, "viz_widgets-lossplot")
    finally:
        shutdown_sessions(lab, rel)
    # LossPlot throttles itself (at most one redraw per 20 drawing times), so ask for one frame mid-run, not many
    assert any(0 < s < 40 for s in seen) and len(srcs) >= 3, \
        f"LossPlot did not redraw during the training cell: saw steps {sorted(seen)}, {len(srcs)} pictures"
    assert final["step"] == 40, f"LossPlot's final frame shows step {final['step']}, expected 40"
