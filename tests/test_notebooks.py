"Every chapter notebook runs under `nbdev-test` (the `#| slow` cells too with `pytest --slow`)."
import os, subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT/"nbs").glob("[0-9]*.ipynb")) + [ROOT/"nbs"/"index.ipynb"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook(nb, request):
    flags = "slow" if request.config.getoption("--slow") else ""
    # Share the cores out between pytest-xdist workers: oversubscribed OpenMP threads spin-wait, and a
    # notebook that takes 10 s alone can take minutes next to another one.
    threads = str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    res = subprocess.run(["nbdev-test", str(nb), "--flags", flags, "--timing"],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert res.returncode == 0, f"{nb.name} failed under nbdev-test:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}"
    print(res.stdout.strip().splitlines()[-1])  # "<nb>: N secs"
