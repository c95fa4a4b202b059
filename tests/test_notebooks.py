"""Execute every notebook in order with papermill (smoke profile) and check what each one wrote.

The notebooks share one temporary workspace (data/, models/, results/), as a learner's checkout
would, so later notebooks find what earlier ones wrote. Run alone with ``pytest -m notebooks``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require_local_craft

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tutorial")
    dirs = {name: root / name for name in ("data", "models", "results", "executed")}
    for d in dirs.values():
        d.mkdir()
    return dirs


def run_notebook(name: str, workspace: dict[str, Path], **parameters) -> dict:
    """Execute ``notebooks/<name>`` into the workspace with the smoke profile; return the executed nb."""
    import papermill as pm

    require_local_craft()
    defaults = {
        "PROFILE": "smoke",
        "DATA_DIR": str(workspace["data"]),
        "MODELS_DIR": str(workspace["models"]),
        "RESULTS_DIR": str(workspace["results"]),
    }
    declared = pm.inspect_notebook(str(NOTEBOOKS / name))  # pass only what the notebook declares
    params = {k: v for k, v in defaults.items() if k in declared}
    params.update(parameters)
    out = workspace["executed"] / name
    nb = pm.execute_notebook(
        str(NOTEBOOKS / name),
        str(out),
        parameters=params,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    return nb


def load_json(path: Path) -> dict:
    assert path.is_file(), f"expected {path} to be written"
    return json.loads(path.read_text())


# One test per notebook, in the order a learner runs them. Each asserts on what its notebook wrote.
# --- 01_explore_craft ---

# --- 02_normalize_tags ---

# --- 03_augment_with_ontologies ---

# --- 04_two_step_transfer ---

# --- 05_error_analysis ---

# --- 06_compare_toolkits ---
