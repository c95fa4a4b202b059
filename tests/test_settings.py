"""Relative path settings mean the same everywhere (issue 18): in notebooks (kernels start in ``notebooks/``),
under ``make``, in the tests and on the command line; ``doctor`` says where each resolves; the offline room's
folder is accepted as it is; ``make tutorial`` shows the learner no kernel noise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from craftlib import cli, config, doctor
from craftlib.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch):
    for var in (*config.PATH_SETTINGS, "CRAFT_SHA256"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_relative_settings_are_taken_from_the_repository_root_whatever_the_cwd(clean_env, tmp_path):
    clean_env.chdir(tmp_path)  # as a notebook's kernel in notebooks/, or a shell in any folder
    assert config.base_dir() == ROOT
    clean_env.setenv("CRAFT_SOURCE", "../shared/craft/CRAFT-5.0.2.tar.gz")
    clean_env.setenv("CRAFTLIB_ONTOLOGY_DIR", "../shared/ontologies")
    clean_env.setenv("CRAFTLIB_DATA_DIR", "scratch/data")
    clean_env.setenv("CRAFTLIB_MODELS_DIR", "~/m")
    clean_env.setenv("CRAFTLIB_RESULTS_DIR", "r")
    assert config.craft_source() == str(ROOT.parent / "shared" / "craft" / "CRAFT-5.0.2.tar.gz")
    assert config.ontology_dir() == ROOT.parent / "shared" / "ontologies"
    assert config.data_dir() == ROOT / "scratch" / "data"
    assert config.models_dir() == Path("~/m").expanduser()
    assert config.results_dir() == ROOT / "r"
    assert config.processed_dir("smoke").is_relative_to(ROOT / "scratch" / "data")
    # a notebook parameter / keyword argument is a setting too; a URL stays a URL
    assert config.data_dir("d") == ROOT / "d" and config.craft_source(config.CRAFT_URL) == config.CRAFT_URL


def test_a_relative_command_line_option_is_taken_from_the_current_directory(clean_env, tmp_path):
    clean_env.chdir(tmp_path)
    args = cli.build_parser().parse_args(["data", "--data-dir", "d", "--source", "a/CRAFT.tar.gz"])
    cli._absolute_options(args)
    assert args.data_dir == str(tmp_path / "d") and args.source == str(tmp_path / "a" / "CRAFT.tar.gz")
    args = cli.build_parser().parse_args(["data", "--source", config.CRAFT_URL])
    cli._absolute_options(args)
    assert args.source == config.CRAFT_URL


def test_doctor_prints_where_each_setting_resolves(clean_env, tmp_path, capsys):
    clean_env.chdir(tmp_path)
    clean_env.setenv("CRAFT_SOURCE", "../shared/craft/CRAFT-5.0.2.tar.gz")
    clean_env.setenv("CRAFTLIB_ONTOLOGY_DIR", str(tmp_path))
    text = doctor.settings_report({"CRAFTLIB_DATA_DIR": str(tmp_path / "d")})
    assert f"a relative path is taken from {ROOT}" in text
    assert (f"CRAFT_SOURCE=../shared/craft/CRAFT-5.0.2.tar.gz -> "
            f"{ROOT.parent / 'shared' / 'craft' / 'CRAFT-5.0.2.tar.gz'}") in text
    assert f"option {tmp_path / 'd'} -> {tmp_path / 'd'}" in text
    assert f"CRAFTLIB_MODELS_DIR    default -> {ROOT / 'models'}" in text
    cli.main(["doctor", "--no-model", "--profile", "smoke"])
    assert "CRAFTLIB_RESULTS_DIR" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["not-a-checksum", "0" * 63, "g" * 64])
def test_a_sha256_that_is_not_hex_is_an_error(clean_env, value, capsys):
    clean_env.setenv("CRAFT_SHA256", value)
    with pytest.raises(ConfigError, match="not a sha256 checksum"):
        config.craft_sha256()
    assert config.craft_sha256("AB" * 32) == "ab" * 32
    rc = cli.main(["data", "--source", str(ROOT / "tests" / "fixtures" / "craft"), "--data-dir", "/nonexistent/x"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: CRAFT_SHA256=") and len(err.strip().splitlines()) == 1
    check = doctor.check_source(str(ROOT / "tests" / "fixtures" / "craft" / "x.tar.gz"))
    assert check.status == doctor.FAIL and "not a sha256" in check.fix


def _make(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def test_make_setup_accepts_the_bundle_folder_or_its_wheels(tmp_path):
    room = tmp_path / "room"
    (room / "wheels").mkdir(parents=True)
    (room / "wheels" / "tiny-0.1-py3-none-any.whl").write_bytes(b"")
    for given in (room, room / "wheels", f"{room}/"):
        out = _make("-n", "setup", f"WHEELHOUSE={given}", "PYTHON=python").stdout
        installs = [line for line in out.splitlines() if "pip install" in line]
        assert len(installs) == 3 and all(f"--find-links {room}/wheels " in x for x in installs), out


def test_the_bundle_exports_absolute_paths(tmp_path, monkeypatch):
    import tarfile

    from craftlib import bundle

    monkeypatch.chdir(tmp_path)
    archive = tmp_path / "CRAFT-5.0.2.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(ROOT / "tests" / "fixtures" / "obo", arcname="x")
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    settings = bundle.copy_data(Path("room"), source=str(archive), ontology_dir=ROOT / "tests" / "fixtures" / "obo")
    assert settings["CRAFT_SOURCE"] == str(tmp_path / "room" / "craft" / "CRAFT-5.0.2.tar.gz")
    assert settings["CRAFTLIB_ONTOLOGY_DIR"] == str(tmp_path / "room" / "ontologies")


def test_make_tutorial_runs_a_notebook_without_kernel_noise(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("PROFILE = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import os\nprint('cwd', os.getcwd(), PROFILE)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "00_tiny.ipynb"
    nbformat.write(nb, path)
    build = tmp_path / "build"
    run = _make("tutorial", f"NOTEBOOKS={path}", f"BUILD={build}", "PROFILE=smoke", f"PYTHON={sys.executable}")
    assert run.returncode == 0, run.stderr
    out = json.loads((build / path.name).read_text())["cells"][-1]["outputs"][0]["text"]
    assert "".join(out).strip() == f"cwd {ROOT / 'notebooks'} smoke"
    assert "without encryption" not in run.stdout + run.stderr
