"""craftlib.cache: atomic writes, orphan cleanup, load-if-current-else-build keyed on recorded inputs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from craftlib import cache


def test_atomic_write_text_and_json(tmp_path):
    p = cache.atomic_write_text(tmp_path / "a" / "x.txt", "hello")
    assert p.read_text() == "hello"
    cache.atomic_write_json(tmp_path / "x.json", {"b": 1})
    assert (tmp_path / "x.json").read_text().strip().startswith("{")
    assert not [f for f in tmp_path.rglob("*.tmp")]


def test_atomic_dir_keeps_old_folder_on_error(tmp_path):
    out = tmp_path / "out"
    with cache.atomic_dir(out) as tmp:
        (tmp / "f").write_text("old")
    with pytest.raises(RuntimeError), cache.atomic_dir(out) as tmp:
        (tmp / "f").write_text("new")
        raise RuntimeError("killed half-way")
    assert (out / "f").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_load_or_build_rebuilds_when_inputs_change(tmp_path):
    out, calls = tmp_path / "lists", []

    def build(folder):
        calls.append(1)
        (folder / "n.txt").write_text(str(len(calls)))

    def load(folder):
        return (folder / "n.txt").read_text()

    assert cache.load_or_build(out, {"src": "a"}, build, load) == "1"
    assert cache.load_or_build(out, {"src": "a"}, build, load) == "1"  # reused
    assert cache.stale_reason(out, {"src": "b"}) == "inputs changed: src"
    assert cache.load_or_build(out, {"src": "b"}, build, load) == "2"  # rebuilt
    assert cache.load_or_build(out, {"src": "b"}, build, load, force=True) == "3"


def test_folder_without_record_is_not_current(tmp_path):
    (tmp_path / "c").mkdir()
    assert not cache.is_current(tmp_path / "c", {})
    assert cache.stale_reason(tmp_path / "c", {}) == "no record of its inputs"
    assert cache.stale_reason(tmp_path / "missing", {}) == "missing"


def test_file_fingerprint_changes_with_content(tmp_path):
    f = tmp_path / "a.obo"
    f.write_text("one")
    before = cache.file_fingerprint(f, checksum=True)
    f.write_text("other content")
    after = cache.file_fingerprint(f, checksum=True)
    assert before["sha256"] != after["sha256"] and before["size"] != after["size"]
    assert cache.file_fingerprint(tmp_path)["kind"] == "folder"


def test_clean_orphans_removes_only_old_temporaries(tmp_path):
    old, young = tmp_path / ".build-lists-old", tmp_path / ".build-lists-young"
    old.mkdir()
    young.mkdir()
    past = time.time() - 2 * cache.ORPHAN_AGE
    os.utime(old, (past, past))
    removed = cache.clean_orphans(tmp_path, "lists")
    assert removed == [old] and young.exists() and not old.exists()


def test_load_or_build_entries_of_a_shared_folder(tmp_path):
    """A stage whose cache is some entries of a folder shared with other stages (processed/<dataset>/)."""
    folder = tmp_path / "processed"
    (folder / "other-stage").mkdir(parents=True)  # must survive every build
    calls = []

    def build(tmp):
        calls.append(1)
        (tmp / "data").mkdir()
        (tmp / "data" / "x.txt").write_text(str(len(calls)))
        (tmp / "stats.json").write_text("{}")

    def load(d):
        return (d / "data" / "x.txt").read_text()

    entries = ("data", "stats.json")
    assert cache.load_or_build(folder, {"k": 1}, build, load, entries=entries) == "1"
    assert cache.load_or_build(folder, {"k": 1}, build, load, entries=entries) == "1" and len(calls) == 1
    assert cache.load_or_build(folder, {"k": 2}, build, load, entries=entries) == "2"
    assert sorted(p.name for p in folder.iterdir()) == ["data", "inputs.json", "other-stage", "stats.json"]


def test_interrupted_commit_of_entries_leaves_no_record(tmp_path, monkeypatch):
    folder = tmp_path / "processed"

    def build(tmp):
        for name in ("a", "b"):
            (tmp / name).write_text(name)

    cache.load_or_build(folder, {"k": 1}, build, lambda d: None, entries=("a", "b"))
    real = cache.replace_dir

    def killed(tmp, final):
        if Path(final).name == "b":
            raise KeyboardInterrupt
        return real(tmp, final)

    monkeypatch.setattr(cache, "replace_dir", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.load_or_build(folder, {"k": 2}, build, lambda d: None, entries=("a", "b"))
    assert not cache.is_current(folder, {"k": 1}) and not cache.is_current(folder, {"k": 2})
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # the temporary folder is gone


def test_atomic_open_leaves_the_old_file_on_error(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), cache.atomic_open(path) as fh:
        fh.write(b"half")
        raise RuntimeError("connection lost")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert cache.atomic_copy(path, tmp_path / "g.bin").read_bytes() == b"old"


def test_resumable_dir_keeps_its_work_on_an_interrupt_only(tmp_path):
    final = tmp_path / "run"
    key = {"run": "run", "seed": 42}
    with pytest.raises(KeyboardInterrupt), cache.resumable_dir(final, key, keep=("checkpoints",)) as tmp:
        (tmp / "checkpoints").mkdir()
        (tmp / "checkpoints" / "step-3").write_text("weights")
        (tmp / "model.bin").write_text("half")
        raise KeyboardInterrupt
    assert not final.exists()  # never a half-written run under its own name
    kept = cache.resumable_folder(final, key)
    assert kept.name.startswith(".resume-run-") and (kept / "checkpoints" / "step-3").is_file()
    with cache.resumable_dir(final, key, keep=("checkpoints",)) as tmp:  # the next build finds what it kept
        assert tmp == kept and (tmp / "checkpoints" / "step-3").is_file() and not (tmp / "model.bin").exists()
        (tmp / "model.bin").write_text("whole")
    assert (final / "model.bin").read_text() == "whole" and not (final / "checkpoints").exists()
    assert not kept.exists() and not (final / cache.OWNER_FILE).exists()
    with pytest.raises(KeyboardInterrupt), cache.resumable_dir(final, key, keep=("checkpoints",)):
        raise KeyboardInterrupt
    other = tmp_path / "run-seed7"  # a run whose name extends this one's keeps its own folder
    with pytest.raises(KeyboardInterrupt), cache.resumable_dir(other, key):
        raise KeyboardInterrupt
    with cache.resumable_dir(final, {**key, "seed": 7}):  # another key: the old kept folder is dropped
        pass
    assert not kept.exists() and cache.resumable_folder(other, key).exists()
    with pytest.raises(ValueError), cache.resumable_dir(other, key):  # any other error: removed
        raise ValueError("boom")
    assert not cache.resumable_folder(other, key).exists()
