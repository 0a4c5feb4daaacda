"""The GitHub Actions workflows: they parse, and they run what the README tells a person to run.

test.yaml runs `.ci/run` (the README's set-up command, then its test command); deploy.yaml sets up the same way,
builds the site with tools/build_site.py (or `nbdev-docs` where Quarto exists) and publishes it with GitHub's Pages
actions. The README's commands are the bash blocks under its `<!-- setup-command -->` / `<!-- test-command -->` markers.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT/".github"/"workflows"


def readme_command(marker: str) -> str:
    "The command in the bash block right after `<!-- {marker} -->` in README.md."
    m = re.search(rf"<!-- {re.escape(marker)} -->\s*```bash\n(.*?)\n```", (ROOT/"README.md").read_text(encoding="utf-8"), re.S)
    assert m, f"README.md has no bash block after <!-- {marker} -->"
    return m.group(1).strip()


def load(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS/name).read_text(encoding="utf-8"))
    assert isinstance(wf, dict) and wf.get("jobs"), f"{name}: no jobs"
    wf["on"] = wf.pop(True, wf.get("on"))   # YAML 1.1 reads the key `on` as the boolean True
    return wf


def steps(wf: dict) -> list[dict]:
    return [s for job in wf["jobs"].values() for s in job.get("steps", [])]


def runs(wf: dict) -> list[str]:
    "Every shell line the workflow runs (multi-line `run:` blocks split, comments dropped)."
    return [l.strip() for s in steps(wf) for l in s.get("run", "").splitlines() if l.strip() and not l.strip().startswith("#")]


def uses(wf: dict) -> list[str]:
    return [s["uses"] for s in steps(wf) if "uses" in s]


def python_versions(wf: dict) -> set[str]:
    return {str(s["with"]["python-version"]) for s in steps(wf) if s.get("uses", "").startswith("actions/setup-python")}


@pytest.mark.parametrize("name", ["test.yaml", "deploy.yaml"])
def test_workflow_parses(name):
    wf = load(name)
    assert wf.get("name") and wf["on"], f"{name}: a name and triggers"
    for job_name, job in wf["jobs"].items():
        assert str(job.get("runs-on", "")).startswith("ubuntu"), f"{name}/{job_name} runs on {job.get('runs-on')}"
        assert job.get("steps"), f"{name}/{job_name} has no steps"
    for u in uses(wf):   # official actions, pinned to a major version
        assert re.fullmatch(r"actions/[\w-]+@v\d+", u), f"{name}: {u} is not an official action pinned to a version"


def test_ci_runs_ci_run_on_python_311():
    wf = load("test.yaml")
    assert {"push", "pull_request"} <= set(wf["on"]), wf["on"]
    assert python_versions(wf) == {"3.11"}
    assert "bash .ci/run" in runs(wf), runs(wf)
    assert "actions/checkout@v4" in uses(wf)


def test_ci_run_is_the_readmes_commands():
    "`.ci/run` runs the README's set-up command, and ends with its test command, exactly."
    lines = [l.strip() for l in (ROOT/".ci"/"run").read_text(encoding="utf-8").splitlines() if l.strip() and not l.strip().startswith("#")]
    setup, test = readme_command("setup-command"), readme_command("test-command")
    assert setup in lines, f".ci/run does not run the README's set-up command {setup!r}"
    assert lines[-1] == test, f".ci/run ends with {lines[-1]!r}, the README's test command is {test!r}"
    assert lines.index(setup) < lines.index(test)


def test_deploy_builds_the_site_and_publishes_it():
    wf = load("deploy.yaml")
    assert "push" in wf["on"] and python_versions(wf) == {"3.11"}
    lines = runs(wf)
    assert readme_command("setup-command") in lines, "the deploy job must set up as the README says"
    assert "python tools/build_site.py" in lines and "nbdev-docs" in lines, lines
    perms = wf.get("permissions", {})
    assert perms.get("pages") == "write" and perms.get("id-token") == "write", perms
    names = [u.split("@")[0] for u in uses(wf)]
    for action in ("actions/checkout", "actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in names, f"deploy.yaml does not use {action}"
    upload = next(s for s in steps(wf) if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert "steps.site.outputs.dir" in upload["with"]["path"]
    # the folders it may publish are where the two builders write
    site_step = next(s for s in steps(wf) if s.get("id") == "site")
    assert "dir=_site" in site_step["run"] and "dir=_docs" in site_step["run"]
    import inspect, sys
    sys.path.insert(0, str(ROOT/"tools"))
    import build_site
    assert inspect.signature(build_site.build).parameters["out"].default == ROOT/"_site", "build_site.py writes _site/"
    from nbdev.config import get_config
    assert Path(get_config(ROOT).doc_path).name == "_docs", "nbdev-docs writes doc_path: the workflow publishes _docs"
    deploy = wf["jobs"]["deploy"]
    assert deploy.get("needs") == "build" and deploy["environment"]["name"] == "github-pages"


def test_python_version_meets_the_projects_floor():
    "The workflows' Python is one the package supports (pyproject's requires-python)."
    import tomllib
    floor = tomllib.loads((ROOT/"pyproject.toml").read_text())["project"]["requires-python"]
    m = re.fullmatch(r">=\s*(\d+)\.(\d+)", floor.strip())
    assert m, floor
    for name in ("test.yaml", "deploy.yaml"):
        for v in python_versions(load(name)):
            assert tuple(map(int, v.split("."))) >= (int(m.group(1)), int(m.group(2))), f"{name}: Python {v} < {floor}"
