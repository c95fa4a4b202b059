"""The worked solutions (solutions/NN_slug.md) run, in order, on the smoke profile, in a temporary workspace.

Each file's ```python blocks are run as one script; its first block holds the parameters (literals, like
a notebook's ``parameters`` cell) and the test appends its own values after it, as papermill does. Nothing
may be written into the repository. Needs the local corpus, like the notebook tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_local_craft

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.md"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: Per-solution parameter overrides on top of the workspace folders (fewer runs to train on smoke).
OVERRIDES = {"04_two_step_transfer.md": {"RECIPES": ["single"], "SEEDS": [42]}}  # runs exercise 1 trained


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


def test_every_notebook_has_its_solutions():
    assert [p.stem for p in SOLUTIONS] == [p.stem for p in NOTEBOOKS]
    for sol, nb in zip(SOLUTIONS, NOTEBOOKS):
        text = sol.read_text()
        assert f"notebooks/{nb.name}" in text
        cells = json.loads(nb.read_text())["cells"]
        markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        turn = markdown.split("## Your turn", 1)[1].split("\n## ", 1)[0]
        n_exercises = len(re.findall(r"^\d+\. ", turn, re.MULTILINE))
        headings = re.findall(r"^## (\d+)\. ", text, re.MULTILINE)
        assert headings == [str(i) for i in range(1, n_exercises + 1)], f"{sol.name}: one section per exercise"
        first = python_blocks(sol)[0]
        assert all(re.match(r"^[A-Z_]+ = ", line) for line in first.strip().splitlines()), "first block: parameters"


def _untracked() -> set[str]:
    # where the lessons write by default (a solution must use the workspace instead)
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored", "--",
                          "data", "models", "results", "notebooks", "build", "solutions"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return {line[3:] for line in out.splitlines() if "__pycache__" not in line and ".pytest_cache" not in line}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """What notebooks 01-03 write, built through craftlib (the smoke profile) in a temporary folder."""
    require_local_craft()
    from craftlib import baseline, config, stages

    root = tmp_path_factory.mktemp("solutions")
    dirs = {k: root / k for k in ("data", "models", "results")}
    stages.load("dataset", config.data_spec("smoke", "proper", dirs["data"], progress=False), force=True)
    stages.load("entity_lists", config.data_spec("smoke", "proper", dirs["data"]))
    stages.load("augmented", config.data_spec("smoke", "proper", dirs["data"]))
    baseline.run_dictionary_baseline(config.data_spec("smoke", "proper", dirs["data"]), dirs["models"])
    return root, dirs


@pytest.mark.notebooks
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_runs_on_smoke(path, workspace):
    root, dirs = workspace
    blocks = python_blocks(path)
    # PROFILE stays None, as in the files: CRAFTLIB_PROFILE=smoke below sets it, the way a workshop host does
    params = {"DATA_DIR": str(dirs["data"]), "MODELS_DIR": str(dirs["models"]),
              "RESULTS_DIR": str(dirs["results"]), **OVERRIDES.get(path.name, {})}
    declared = set(re.findall(r"^([A-Z_]+) = ", blocks[0], re.MULTILINE))
    injected = "\n".join(f"{k} = {v!r}" for k, v in params.items() if k in declared)
    script = root / f"{path.stem}.py"
    script.write_text("\n\n".join([blocks[0], "# injected by the test\n" + injected, *blocks[1:]]))
    env = {**os.environ, "CRAFTLIB_PROFILE": "smoke", "CRAFTLIB_DATA_DIR": str(dirs["data"]),
           "CRAFTLIB_MODELS_DIR": str(dirs["models"]), "CRAFTLIB_RESULTS_DIR": str(dirs["results"]),
           "MPLBACKEND": "Agg"}
    before = _untracked()
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT / "notebooks", env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert _untracked() == before, "a solution wrote into the repository"
