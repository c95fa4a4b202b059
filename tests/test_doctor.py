"""``python -m craftlib doctor`` on fixtures: a missing model, an unreachable source, a full disk, bad checksums."""

from __future__ import annotations

import importlib.util
import shutil
import tarfile
from collections import namedtuple
from pathlib import Path

import pytest

from craftlib import cli, doctor
from craftlib.corpus import MARKER, sha256_file

FIXTURES = Path(__file__).parent / "fixtures"
UNREACHABLE = "http://127.0.0.1:9/CRAFT-5.0.2.tar.gz"  # the discard port on loopback: refused at once


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "CRAFT-5.0.2.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(FIXTURES / "craft" / "CRAFT-5.0.2", arcname="CRAFT-5.0.2")
    return path


@pytest.fixture(autouse=True)
def no_settings(monkeypatch):
    for var in ("CRAFT_SOURCE", "CRAFT_SHA256", "CRAFTLIB_ONTOLOGY_DIR", "CRAFTLIB_PROFILE", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)


def test_missing_model_fails_with_the_fix():
    check = doctor.check_model("/nonexistent/base-model")
    assert check.status == doctor.FAIL
    assert "--base-model minilm" in check.fix


def test_unreachable_source_fails_unless_cached(tmp_path):
    check = doctor.check_source(UNREACHABLE, data_dir=tmp_path)
    assert check.status == doctor.FAIL
    assert "unreachable" in check.detail and "CRAFT_SOURCE" in check.fix
    cached = tmp_path / "raw" / "CRAFT-5.0.2"
    cached.mkdir(parents=True)
    (cached / MARKER).write_text('{"sha256": "abc"}')
    check = doctor.check_source(UNREACHABLE, data_dir=tmp_path)
    assert check.status == doctor.OK and "cached" in check.detail


def test_reachable_url_is_ok_without_download(tmp_path):
    check = doctor.check_source("https://example.org/CRAFT.tar.gz", data_dir=tmp_path, reachable=lambda url: None)
    assert check.status == doctor.OK and "reachable" in check.detail


def test_archive_is_verified_against_its_checksum(archive, tmp_path):
    good = sha256_file(archive)
    assert doctor.check_source(str(archive), good, data_dir=tmp_path).status == doctor.OK
    bad = doctor.check_source(str(archive), "0" * 64, data_dir=tmp_path)
    assert bad.status == doctor.FAIL and "expected 000000000000" in bad.detail
    unverified = doctor.check_source(str(archive), data_dir=tmp_path)
    assert unverified.status == doctor.WARN and "CRAFT_SHA256" in unverified.fix
    missing = doctor.check_source(str(tmp_path / "nope.tar.gz"), data_dir=tmp_path)
    assert missing.status == doctor.FAIL and "does not exist" in missing.detail


def test_folder_source(tmp_path):
    assert doctor.check_source(str(FIXTURES / "craft"), data_dir=tmp_path).status == doctor.OK
    assert doctor.check_source(str(tmp_path), data_dir=tmp_path).status == doctor.FAIL


def test_ontology_folder():
    assert doctor.check_ontologies(FIXTURES / "obo").status == doctor.OK
    assert doctor.check_ontologies(FIXTURES / "missing").status == doctor.FAIL
    assert doctor.check_ontologies(FIXTURES / "craft").status == doctor.FAIL  # no .obo file in it
    assert doctor.check_ontologies(None).status == doctor.WARN


def test_full_disk_fails(monkeypatch, tmp_path):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    disk, _memory = doctor.check_resources("quick", tmp_path / "data", tmp_path / "models")
    assert disk.status == doctor.FAIL and "needs 1 GB" in disk.detail and "CRAFTLIB_DATA_DIR" in disk.fix


def test_required_free_space_option(tmp_path):
    ok, _ = doctor.check_resources("smoke", tmp_path, tmp_path, min_free_gb=0)
    full, _ = doctor.check_resources("smoke", tmp_path, tmp_path, min_free_gb=10**9)
    assert ok.status == doctor.OK and full.status == doctor.FAIL


def test_low_memory_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "available_memory_gb", lambda: 0.1)
    _, memory = doctor.check_resources("quick", tmp_path, tmp_path)
    assert memory.status == doctor.FAIL and "smoke" in memory.fix


def test_every_profile_has_its_needs():
    from craftlib.config import PROFILES

    assert set(doctor.PROFILE_NEEDS) == set(PROFILES)


def test_python_version():
    assert doctor.check_python((3, 9, 18)).status == doctor.FAIL
    assert doctor.check_python((3, 11, 7)).status == doctor.OK


def test_cpu_bf16_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx2 avx512f avx512_bf16\n")
    assert doctor.cpu_bf16(info)[0] is True
    info.write_text("processor : 0\nflags : fpu sse avx2\n")
    assert doctor.cpu_bf16(info)[0] is False


def test_lines_are_plain_words_without_a_terminal():
    check = doctor.Check("disk", doctor.FAIL, "0.0 GB free", "free some space")
    assert check.line() == "[FAIL] disk: 0.0 GB free\n       fix: free some space"
    assert "\033[31m" in check.line(color=True)
    assert doctor.Check("x", doctor.OK, "fine", "unused").line() == "[ok]   x: fine"


def test_cli_exit_code(capsys, tmp_path):
    common = ["doctor", "--no-model", "--data-dir", str(tmp_path), "--models-dir", str(tmp_path),
              "--ontology-dir", str(FIXTURES / "obo"), "--profile", "smoke"]
    assert cli.main(common + ["--source", UNREACHABLE]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] CRAFT source" in out and "\033[" not in out  # no colour codes when not a terminal
    rc = cli.main(common + ["--source", str(FIXTURES / "craft")])
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("[FAIL]")]
    if importlib.util.find_spec("jupyterlab") is None:  # a required item: `make setup` installs it
        assert rc == 1 and [line.split(":")[0] for line in failed] == ["[FAIL] JupyterLab"]
    else:
        assert rc == 0 and failed == [], out


def test_notebook_07_packages(monkeypatch):
    import importlib.util

    assert doctor.check_use().status == doctor.OK  # installed with the package's dependencies
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    check = doctor.check_use()
    assert check.status == doctor.FAIL and "onnxruntime not installed" in check.line() and "make setup" in check.line()
