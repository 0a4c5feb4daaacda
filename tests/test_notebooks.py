"Every chapter notebook runs under `nbdev-test` (the `#| slow` cells too with `pytest --slow`)."
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT/"nbs").glob("[0-9]*.ipynb")) + [ROOT/"nbs"/"index.ipynb"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook(nb, request):
    flags = "slow" if request.config.getoption("--slow") else ""
    res = subprocess.run(["nbdev-test", str(nb), "--flags", flags, "--timing"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, f"{nb.name} failed under nbdev-test:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}"
    print(res.stdout.strip().splitlines()[-1])  # "<nb>: N secs"
