"""What the browser tests share: Debian's Chromium driven by Playwright, a JupyterLab server, a static file server.

Chromium comes from the OS (`apt-get install chromium`), never from `playwright install` (which downloads a
browser). Without it the tests skip locally and fail when `CI` is set, so CI cannot skip them silently.
"""
from __future__ import annotations

import functools, http.server, json, os, re, shutil, signal, socket, subprocess, sys, threading, time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT/"artifacts"
# flags that work in containers and never reach the network on their own
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage"]


def skip_or_fail(msg: str):
    "Skip locally; fail under CI (env var CI set), where a skipped browser test would hide a broken set-up."
    if os.environ.get("CI"): pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def chromium_path() -> str:
    "Path of the system Chromium (tests/conftest.py's `require_chromium`: skip locally, fail in CI), Playwright checked."
    from conftest import require_chromium   # tests/ is on sys.path under pytest (rootdir conftest, no packages)
    path = require_chromium()
    try: import playwright.sync_api  # noqa: F401
    except ImportError: skip_or_fail("the `playwright` package is missing: `pip install playwright` (not `playwright install`)")
    return path


@contextmanager
def chromium():
    "A headless Chromium browser (Playwright), closed on exit."
    path = chromium_path()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROME_FLAGS)
        try: yield browser
        finally: browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 20):
    "Stop a process we started, by its PID only (SIGTERM, then SIGKILL)."
    if proc.poll() is not None: return
    proc.send_signal(signal.SIGTERM)
    try: proc.wait(timeout)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait()


# ------------------------------------------------------------------ JupyterLab

LAB_SETTINGS = {  # user settings: no autosave (the notebooks on disk stay untouched), no news/update pop-ups
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def lab_env(threads: int) -> dict:
    "The server's (and so the kernels') environment: test size, inline plots, `threads` CPU threads per kernel."
    env = dict(os.environ, IN_TEST="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONUNBUFFERED="1", TQDM_MININTERVAL="0.5")
    env.pop("MPLBACKEND", None)   # tests/conftest.py sets Agg for pytest; kernels must use the inline backend
    env.pop("JUPYTER_PLATFORM_DIRS", None)
    return env


@contextmanager
def jupyterlab(root: Path, tmp: Path, threads: int = 1):
    "Start `jupyter lab` on a free loopback port serving `root`; yield its URL; stop it (and its kernels)."
    port, sdir = free_port(), tmp/"settings"
    for name, val in LAB_SETTINGS.items():
        (sdir/name).parent.mkdir(parents=True, exist_ok=True); (sdir/name).write_text(json.dumps(val))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           "--ServerApp.disable_check_xsrf=True", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={sdir}", f"--LabApp.workspaces_dir={tmp/'ws'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0: cmd.append("--allow-root")
    log_path = tmp/"lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=lab_env(threads), cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{log_path.read_text()[-3000:]}")
            try: urllib.request.urlopen(url + "/api/status", timeout=1); break
            except OSError:
                if time.time() > deadline: raise RuntimeError(f"jupyter lab did not start in 90 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
        yield url
    finally:
        stop_process(proc)


def lab_api(url: str, path: str, method: str = "GET"):
    req = urllib.request.Request(url + path, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def shutdown_sessions(url: str, rel_path: str):
    "Shut down the kernels of sessions on `rel_path` (frees memory before the next notebook)."
    for s in lab_api(url, "/api/sessions") or []:
        if s.get("path") == rel_path:
            try: lab_api(url, f"/api/sessions/{s['id']}", "DELETE")
            except OSError: pass


# status bar says "<kernel> | Idle" only once the kernel is really connected (the toolbar says idle too early)
KERNEL_IDLE = """() => { const t = document.querySelector('#jp-main-statusbar')?.innerText || '';
    return /\\|\\s*Idle/.test(t) && !/No Kernel|Connecting|Starting/.test(t); }"""

# Run the cells whose ids are given, one at a time, through JupyterLab's own command ("Run Selected Cell"),
# so outputs, widgets and errors appear exactly as for a person pressing Shift+Enter. Progress goes to
# window.__llmRun, which the test polls.
RUN_CELLS_JS = """async (ids) => {
  const st = window.__llmRun = {done: false, ok: true, ran: 0, current: null, error: null, times: []};
  try {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.sessionContext.ready;
    const nb = panel.content;
    const want = new Set(ids);
    for (let i = 0; i < nb.widgets.length; i++) {
      const cell = nb.widgets[i];
      if (!want.has(cell.model.id)) continue;
      st.current = i;
      nb.activeCellIndex = i;
      nb.deselectAll();
      const t0 = performance.now();
      const ok = await app.commands.execute('notebook:run-cell');
      st.times.push([i, (performance.now() - t0) / 1000]);
      st.ran++;
      if (ok === false) { st.ok = false; st.error = 'cell ' + i + ' failed'; break; }
    }
  } catch (e) { st.ok = false; st.error = String(e && e.stack || e); }
  st.done = true;
}"""

ERROR_OUTPUT_SEL = ('[data-mime-type="application/vnd.jupyter.stderr"], '
                    '[data-mime-type="application/vnd.jupyter.error"]')
TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b.*$", re.M)


def cell_ids_to_run(nb_path: Path) -> list[str]:
    "Ids of the cells `nbdev-test` would run (skips `#| eval: false` and the project's test flags, e.g. slow)."
    from nbdev.config import get_config
    from nbdev.test import nb_test_cells
    flags = get_config(ROOT).get("tst_flags", "").split()
    return [c["id"] for c in nb_test_cells(str(nb_path), skip_flags=flags)]


def open_notebook(page, lab_url: str, rel_path: str, workspace: str, timeout_s: float = 90):
    "Open `rel_path` in a fresh JupyterLab workspace and wait until its kernel is connected and idle."
    page.goto(f"{lab_url}/lab/workspaces/{workspace}/tree/{rel_path}?reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout_s * 1000)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_s * 1000, polling=250)


def clear_outputs(page):
    "Start from no outputs, as saved outputs would satisfy the checks by themselves."
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.wait_for_function("() => document.querySelectorAll('.jp-Notebook .jp-OutputArea-output').length === 0",
                           timeout=10_000)


def run_cells(page, ids: list[str], timeout_s: float) -> dict:
    "Run the cells with `ids` in order; stop at the first failure; return the run record."
    page.evaluate(f"(ids) => {{ ({RUN_CELLS_JS})(ids); }}", ids)
    page.wait_for_function("() => window.__llmRun && window.__llmRun.done", timeout=timeout_s * 1000, polling=500)
    return page.evaluate("() => window.__llmRun")


def error_outputs(page) -> list[str]:
    "Texts of error outputs (tracebacks; Lab renders them as stderr), ignoring plain warnings on stderr."
    return [t for t in page.locator(ERROR_OUTPUT_SEL).all_inner_texts() if TRACEBACK_RE.search(t)]


# ------------------------------------------------------------------ static site

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@contextmanager
def static_server(folder: Path):
    "Serve `folder` on a free 127.0.0.1 port from a thread; yield the base URL."
    handler = functools.partial(_QuietHandler, directory=str(folder))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try: yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown(); srv.server_close()


# ------------------------------------------------------------------ editing cells (exercises)

def set_cell_source(page, cell_id: str, text: str):
    "Replace the text of the cell with id `cell_id` in the open notebook (what a learner typing over the stub ends with)."
    ok = page.evaluate("""([id, text]) => {
      const cell = window.jupyterapp.shell.currentWidget.content.widgets.find(w => w.model.id === id);
      if (!cell) return false;
      cell.model.sharedModel.setSource(text);
      return true; }""", [cell_id, text])
    if not ok: raise LookupError(f"no cell with id {cell_id} in the open notebook")
    page.wait_for_function("""([id, n]) => { const c = window.jupyterapp.shell.currentWidget.content.widgets.find(w => w.model.id === id);
      return c && c.model.sharedModel.getSource().length === n; }""", arg=[cell_id, len(text)], timeout=10_000)


def cell_output_text(page, cell_id: str) -> str:
    "The text of the outputs of the cell with id `cell_id` in the open notebook, as the page shows them."
    return page.evaluate("""(id) => {
      const cell = window.jupyterapp.shell.currentWidget.content.widgets.find(w => w.model.id === id);
      return cell ? [...cell.node.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText).join('\\n') : null; }""", cell_id) or ""
