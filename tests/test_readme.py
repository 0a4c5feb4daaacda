"README.md is the rendering of nbs/index.ipynb, and the commands it gives exist."
import re, subprocess, sys

from conftest import ROOT

sys.path.insert(0, str(ROOT/"tools"))
from render_readme import render


def test_readme_matches_index_notebook():
    assert (ROOT/"README.md").read_text(encoding="utf-8") == render(), \
        "README.md is out of date: run `python tools/render_readme.py` and commit it"


def test_readme_test_command_is_what_ci_runs():
    readme, ci = (ROOT/"README.md").read_text(), (ROOT/".ci"/"run").read_text()
    test_cmd = re.search(r"<!-- test-command -->\s*```(?:bash|sh)\n(.+?)\n```", readme, re.S).group(1).strip()
    setup_cmd = re.search(r"<!-- setup-command -->\s*```(?:bash|sh)\n(.+?)\n```", readme, re.S).group(1).strip()
    ci_lines = [l.strip() for l in ci.splitlines()]
    assert test_cmd in ci_lines and setup_cmd in ci_lines
