"""The offline room: a small wheelhouse (craftlib's own wheel + one tiny dependency) installs with no index."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from craftlib import bundle, config
from craftlib.corpus import sha256_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


def _run(cmd, **kw):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kw)
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return done


def _clean_env() -> dict:
    """No pip configuration (no extra index, no find-links of this machine): only what the test passes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture
def tiny_wheel(tmp_path) -> Path:
    """A one-module distribution ``craft-tiny-dep`` built locally: the "tiny dependency"."""
    src = tmp_path / "tiny"
    (src / "craft_tiny_dep").mkdir(parents=True)
    (src / "craft_tiny_dep" / "__init__.py").write_text("VALUE = 42\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "craft-tiny-dep"\nversion = "0.1"\n')
    out = tmp_path / "index"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, src], env=_clean_env())
    return out


def test_bundle_installs_with_no_index(tmp_path, tiny_wheel, monkeypatch):
    for var in ("CRAFT_SOURCE", "CRAFT_SHA256", "CRAFTLIB_ONTOLOGY_DIR"):
        monkeypatch.delenv(var, raising=False)
    for var in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    archive = tmp_path / "CRAFT-5.0.2.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(FIXTURES / "craft" / "CRAFT-5.0.2", arcname="CRAFT-5.0.2")
    lock = tmp_path / "lock.txt"
    lock.write_text("craft-tiny-dep==0.1\n")
    dest = tmp_path / "room"
    summary = bundle.make_bundle(
        dest, bundle.Wheels(platforms=("manylinux_2_28_x86_64", "win_amd64"), python_version="3.11", lock=lock,
                            pip_args=("--no-index", "--find-links", str(tiny_wheel)), build_requirements=()),
        config.data_spec(source=str(archive), sha256=sha256_file(archive), ontology_dir=FIXTURES / "obo"))
    names = sorted(p.name for p in (dest / "wheels").glob("*.whl"))
    assert any(n.startswith("craftlib-0") for n in names) and "craft_tiny_dep-0.1-py3-none-any.whl" in names
    assert summary["settings"]["CRAFT_SHA256"] == sha256_file(archive)
    assert (dest / "craft" / "CRAFT-5.0.2.tar.gz").is_file()
    assert sorted(p.name for p in (dest / "ontologies").iterdir()) == sorted(
        p.name for p in (FIXTURES / "obo").iterdir() if p.is_file())
    assert bundle.verify_sums(dest) == []
    (dest / "ontologies" / "cl_mini.obo").write_text("damaged")
    assert bundle.verify_sums(dest) == ["ontologies/cl_mini.obo"]

    # a fresh venv (no pip upgrade, no index): install the tiny dependency and craftlib from the folder only
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    pip = [sys.executable, "-m", "pip", "--python", py, "install", "--no-index", "--find-links", dest / "wheels"]
    # craftlib's own dependencies are torch & co: `--no-deps` here, the real run (docs/instructors.md) covers them
    _run(pip + ["--no-deps", "craftlib", "craft-tiny-dep"], env=_clean_env())
    out = _run([py, "-c", "import craft_tiny_dep, craftlib.config as c; print(craft_tiny_dep.VALUE, c.CRAFT_VERSION)"],
               cwd=tmp_path, env={**_clean_env(), "PYTHONPATH": ""}).stdout.split()
    assert out == ["42", "5.0.2"]


def test_bundle_refuses_a_folder_source(tmp_path):
    with pytest.raises(bundle.BundleError, match="archive"):
        bundle.copy_data(tmp_path / "room", source=str(FIXTURES / "craft"))


def test_make_setup_from_a_wheelhouse_uses_no_index():
    out = _run(["make", "-n", "setup", "WHEELHOUSE=/media/usb/room/wheels", "PYTHON=python"], cwd=ROOT).stdout
    installs = [line for line in out.splitlines() if "pip install" in line]
    assert len(installs) == 3
    assert all("--no-index --find-links /media/usb/room/wheels" in line for line in installs)
    assert "-r requirements/lock.txt" in installs[-1]
    locked = _run(["make", "-n", "setup", "LOCK=1", "PYTHON=python"], cwd=ROOT).stdout
    assert "-r requirements/lock.txt" in locked and "--no-index" not in locked
    plain = _run(["make", "-n", "setup", "PYTHON=python"], cwd=ROOT).stdout
    assert "lock.txt" not in plain and "--no-index" not in plain


def test_lock_torch_line_matches_the_makefile():
    torch = bundle.locked_torch(ROOT / bundle.LOCK_FILE)
    makefile_torch = re.search(r"^TORCH\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    assert torch == f"torch=={makefile_torch}"


def test_lock_markers_are_evaluated_for_the_target(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# header\nnumpy==2.2.6 ; python_full_version < '3.11'\nnumpy==2.4.6 ; python_full_version >= '3.11'\n"
                    "    # via pandas\ncolorama==0.4.6 ; sys_platform == 'win32'\ntorch==2.13.0\n")
    win310 = bundle.lock_for_target(lock, bundle.target_environment(["win_amd64"], "3.10"))
    assert win310 == ["numpy==2.2.6", "colorama==0.4.6", "torch==2.13.0"]
    linux311 = bundle.lock_for_target(lock, bundle.target_environment(["manylinux_2_28_x86_64"], "3.11"))
    assert linux311 == ["numpy==2.4.6", "torch==2.13.0"]
    assert bundle.target_environment(["macosx_11_0_arm64"], "3.12.3")["platform_machine"] == "arm64"
