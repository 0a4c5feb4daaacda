#!/usr/bin/env bash
# One-command set-up for llm_course: PyTorch, the package (editable) with its dev tools,
# and what the browser tests need (Chromium, the static site's JS assets).
# Installs into the Python that `python3` (or $PYTHON) points at: activate a virtual environment first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# 1. PyTorch. Without a GPU we want the CPU build: on Linux an unpinned `torch` pulls
#    several GB of CUDA libraries. 2.13.0 is the CPU wheel our CI machines carry locally.
if ! "$PY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    "$PY" -m pip install torch
  else
    "$PY" -m pip install "torch==2.13.0" || "$PY" -m pip install torch
  fi
fi

# 2. The package and its dev tools (nbdev, JupyterLab, pytest, playwright, ...), and Triton for
#    chapter 12a's kernels (its tests run them on the CPU in Triton's interpreter). If Triton
#    cannot be installed here, install without it: those tests then skip and say why.
"$PY" -m pip install -e ".[dev,kernels]" || {
  echo "note: could not install the 'kernels' extra (triton); installing without it: the Triton tests will be skipped"
  "$PY" -m pip install -e ".[dev]"
}

# 3. Browser tests: Debian/Ubuntu's Chromium (never `playwright install`), and the site's JS assets.
if [ "${LLM_COURSE_SKIP_BROWSER:-0}" != "1" ]; then
  missing=""
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="chromium"
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
  if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) \
        || echo "note: could not install$missing; browser/site tests will be skipped (CI fails instead)"
    else
      echo "note: missing$missing; install it (e.g. 'sudo apt-get install$missing') to run the browser and site tests"
    fi
  fi
  if [ -f tools/site_assets/package.json ] && command -v npm >/dev/null 2>&1; then
    (cd tools/site_assets && npm ci --no-audit --no-fund --silent) \
      || echo "note: npm could not install the site assets; the static-site tests will be skipped"
  fi
fi
echo "llm_course is set up. Try: llm-course info"
