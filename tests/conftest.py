import os, shutil, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run slow tests and `#| slow` notebook cells")


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"): return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords: item.add_marker(skip)


@pytest.fixture(scope="session")
def full_size(request) -> bool:
    "True under `pytest --slow`: fault-injection tests try every moment; by default (CI) a fixed sample of them."
    return request.config.getoption("--slow")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def require_chromium() -> str:
    "Path to Chromium; skip without it locally, fail in CI (so CI can't silently skip browser tests)."
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path: return path
    msg = "Chromium not found: install it (Debian/Ubuntu: apt-get install chromium) to run browser tests"
    if os.environ.get("CI"): pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def browser():
    "One headless Chromium per pytest process, shared by the JupyterLab and site tests: Playwright's sync API allows one instance per thread."
    sys.path.insert(0, str(ROOT/"tests"/"browser"))
    from browser_support import chromium
    with chromium() as b: yield b


def raises(exc, fn, *args, hint: str, **kwargs):
    "Call fn and check the error's type, that it is one of ours, and that the message carries the fix hint."
    from llm_course.core import LLMCourseError
    with pytest.raises(exc) as info: fn(*args, **kwargs)
    assert isinstance(info.value, LLMCourseError)
    assert hint in str(info.value), f"no fix hint {hint!r} in: {info.value}"
    return info.value


def solutions(stem: str) -> dict:
    "The names defined by `solutions/<stem>.py` (e.g. stem '04_cross_entropy'): the reference answers to a chapter's exercises."
    path = ROOT/"solutions"/f"{stem}.py"
    ns = {"__name__": f"solutions_{stem}", "__file__": str(path)}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), ns)
    return ns


def rejected(result, *words: str):
    "An exercise check rejected a wrong answer (not a stub) with a message containing every one of `words`."
    assert not result and result.done, f"expected a rejection, got {result!r}"
    for w in words: assert w in result.message, f"{w!r} not in {result.message!r}"


def cpu_bf16_lstm() -> bool:
    "Can this CPU run an LSTM under bf16 autocast? oneDNN needs hardware bf16 (e.g. AVX512-BF16); without it the op fails."
    import torch
    try: return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError): return False


needs_cpu_bf16_lstm = pytest.mark.skipif(not cpu_bf16_lstm(), reason="this CPU has no bf16 support for oneDNN's LSTM (PyTorch fails "
                                         "with 'could not create a primitive descriptor'); the bf16 LSTM tests need AVX512-BF16 or AMX")
