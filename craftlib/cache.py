"""One way to write and reuse derived files: atomic writes, and "load if current, else build".

Every stage that writes something derived (the extracted corpus, the tagged dataset, entity lists, the
augmented set, a trained run) goes through this module, so that

* nothing half-written ever looks valid: files are written to a temporary sibling and renamed, folders
  are built in a temporary sibling folder (``.build-<name>-*``) and renamed into place;
* a cache records the **inputs** it was built from (``inputs.json``: source paths with their size and
  modification time or checksum, parameters, the craftlib cache format) and is rebuilt when they differ;
* temporary folders orphaned by a killed run are removed by the next build of the same cache.

Example::

    inputs = {"sources": [cache.file_fingerprint(p) for p in paths], "min_chars": 3}
    lists = cache.load_or_build(out_dir, inputs, build=lambda tmp: write_lists(tmp), load=read_lists)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Name of the file, inside a cached folder, that records what the folder was built from.
INPUTS_FILE = "inputs.json"
#: Bumped when the meaning of a cached folder changes, so that every old cache is rebuilt.
CACHE_FORMAT = 1
#: Prefix of the temporary folders built beside a cache (removed by :func:`clean_orphans`).
TMP_PREFIX = ".build-"
#: Temporary folders older than this (seconds) are orphans of a killed run, not a concurrent build.
ORPHAN_AGE = 6 * 3600


# ----------------------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs) -> Iterator[Any]:
    """``with atomic_open(path) as fh:`` write a file in pieces (a download, a copy) through a temporary sibling
    renamed into place on success; on any error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_copy(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy the file ``src`` to ``dest`` atomically (see :func:`atomic_open`)."""
    with open(src, "rb") as fin, atomic_open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return Path(dest)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through a temporary sibling file renamed into place."""
    with atomic_open(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """``json.dumps(obj, indent=2)`` written atomically (see :func:`atomic_write_text`)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def replace_dir(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move the finished folder (or file) ``tmp`` to ``final``, replacing an existing ``final``.

    The old folder is first renamed aside and deleted only once the new one is in place, so at every
    moment ``final`` is either the complete old folder or the complete new one.
    """
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(f"{TMP_PREFIX}old-{final.name}-{os.getpid()}-{time.time_ns()}")
        os.replace(final, old)
        try:
            os.replace(tmp, final)
        except BaseException:  # put the complete old folder back rather than leave nothing (or an orphan)
            os.replace(old, final)
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:  # a file replaced the same way
            old.unlink(missing_ok=True)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
    return final


def _owner_tag() -> str:
    """``<host>_<pid>``: which process owns a temporary folder (lets the next run tell an orphan at once)."""
    host = re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname()) or "host"
    return f"{host}_{os.getpid()}"


def _owner_gone(entry_name: str, prefix: str) -> bool:
    """Whether a temporary entry named ``<prefix>-<host>_<pid>-...`` belongs to a process of this machine that
    no longer runs (an orphan of a killed run). Unknown owners (another machine, old names): ``False``."""
    m = re.match(re.escape(prefix) + r"-([A-Za-z0-9.]+)_(\d+)-", entry_name)
    if not m or m.group(1) != _owner_tag().rsplit("_", 1)[0]:
        return False
    pid = int(m.group(2))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but not ours to signal
        return False
    return False


@contextlib.contextmanager
def temp_dir(final: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder ``.build-<name>-<host>_<pid>-*`` beside ``final`` (same file system, so it can be
    renamed into place), removed on exit whatever happens. Orphans of killed runs are removed first."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(final.parent, final.name)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{final.name}-{_owner_tag()}-", dir=final.parent))
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Build a folder atomically: ``with atomic_dir(out) as tmp:`` write into ``tmp``; on success ``tmp``
    replaces ``out``, on any error (or interruption) ``tmp`` is removed and ``out`` is left as it was."""
    with temp_dir(final) as tmp:
        yield tmp
        replace_dir(tmp, final)


#: Prefix of the temporary folders an interrupted build keeps for the next build to resume (:func:`resumable_dir`).
RESUME_PREFIX = ".resume-"
#: File, inside a resumable folder, naming the process (``<host>_<pid>``) that builds in it now.
OWNER_FILE = ".owner"


def _resumable_owner_alive(folder: Path) -> bool:
    """Whether another live process of this machine builds in the resumable ``folder`` now."""
    try:
        owner = (folder / OWNER_FILE).read_text().strip()
    except OSError:
        return False
    return owner != _owner_tag() and not _owner_gone(f"x-{owner}-", "x")


def resumable_folder(final: str | os.PathLike, key: Mapping) -> Path:
    """Where :func:`resumable_dir` builds ``final`` for ``key``: ``.resume-<name>-<12 hex digits of key>``."""
    final = Path(final)
    return final.parent / f"{RESUME_PREFIX}{final.name}-{digest(key)[:12]}"


def drop_resumable(final: str | os.PathLike, but: Path | None = None) -> list[Path]:
    """Remove the folders interrupted builds of ``final`` kept (:func:`resumable_folder`, any key), except ``but``
    and those a live process builds in now; return what was removed. Called when ``final`` is built or reused as it
    is, so that no stale checkpoint outlives the result it was for."""
    final = Path(final)
    mine = re.compile(re.escape(f"{RESUME_PREFIX}{final.name}-") + r"[0-9a-f]{12}")
    dropped = []
    for other in final.parent.glob(f"{RESUME_PREFIX}{final.name}-*"):
        if other != but and mine.fullmatch(other.name) and not _resumable_owner_alive(other):
            shutil.rmtree(other, ignore_errors=True)
            dropped.append(other)
    return dropped


@contextlib.contextmanager
def resumable_dir(final: str | os.PathLike, key: Mapping, keep: Sequence[str] = ()) -> Iterator[Path]:
    """:func:`atomic_dir` for a long build that an interrupt should not throw away.

    The build happens in :func:`resumable_folder` (beside ``final``, named after the digest of ``key``: what the
    build depends on). Success: the ``keep`` entries are removed and the folder replaces ``final``. An interrupt
    (``KeyboardInterrupt``): the folder is kept as it is, never under ``final``'s name, so it never looks like a
    complete result. Any other error: it is removed. The next build with the same ``key`` finds the ``keep``
    entries (e.g. training checkpoints) where they were and everything else removed; a build with another key
    removes the kept folders of ``final``'s other keys. While another live process of this machine builds in the
    same folder, this build uses a plain :func:`atomic_dir` instead (nothing to resume)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = resumable_folder(final, key)
    if _resumable_owner_alive(tmp):
        with atomic_dir(final) as plain:
            yield plain
        return
    drop_resumable(final, but=tmp)
    tmp.mkdir(exist_ok=True)
    for entry in tmp.iterdir():  # what an interrupted build left besides what it keeps for the next one
        if entry.name not in keep:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    (tmp / OWNER_FILE).write_text(_owner_tag())
    try:
        yield tmp
    except KeyboardInterrupt:
        (tmp / OWNER_FILE).unlink(missing_ok=True)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for name in (*keep, OWNER_FILE):
        entry = tmp / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    replace_dir(tmp, final)


def clean_orphans(parent: str | os.PathLike, name: str = "", max_age: float = ORPHAN_AGE,
                  prefix: str = TMP_PREFIX) -> list[Path]:
    """Remove temporary folders/files (``.build-<name>-*``; another ``prefix`` for older names such as
    ``.extract-``) left in ``parent`` by a killed run.

    An entry is removed when the process that created it (named in it, see :func:`temp_dir`) no longer runs
    on this machine, or when it is older than ``max_age`` seconds; a younger entry of unknown owner may belong
    to a build running in another process right now and is kept. Returns what was removed.
    """
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    now = time.time()
    for entry in parent.glob(f"{prefix}{name}*"):
        try:
            if not _owner_gone(entry.name, f"{prefix}{name}") and now - entry.stat().st_mtime < max_age:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
        except OSError:
            continue
    return removed


# ------------------------------------------------------------------------------------------ fingerprints


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike, checksum: bool = False) -> dict:
    """Identity of an input file or folder: resolved path, size, modification time (ns), and with
    ``checksum=True`` the sha256 of a file. Folders: the number of files, their total size and newest mtime."""
    p = Path(path).expanduser().resolve()
    if p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file()]
        stats = [f.stat() for f in files]
        return {"path": str(p), "kind": "folder", "files": len(files), "size": sum(s.st_size for s in stats),
                "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}
    st = p.stat()
    out = {"path": str(p), "kind": "file", "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if checksum:
        out["sha256"] = sha256_file(p)
    return out


def digest(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (a short, stable key for a set of inputs)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------------- load or build


def recorded_inputs(folder: str | os.PathLike) -> dict | None:
    """The inputs a cached folder was built from, or ``None`` (no record, unreadable record)."""
    path = Path(folder) / INPUTS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _record(inputs: Mapping) -> dict:
    return {"format": CACHE_FORMAT, "inputs": json.loads(json.dumps(inputs, sort_keys=True, default=str))}


def is_current(folder: str | os.PathLike, inputs: Mapping) -> bool:
    """Whether ``folder`` holds a complete cache built from exactly ``inputs``."""
    return recorded_inputs(folder) == _record(inputs)


def stale_reason(folder: str | os.PathLike, inputs: Mapping) -> str | None:
    """Why ``folder`` cannot be reused for ``inputs`` (``None`` when it can): for logs and messages."""
    recorded = recorded_inputs(folder)
    if recorded is None:
        return "missing" if not Path(folder).exists() else "no record of its inputs"
    if recorded.get("format") != CACHE_FORMAT:
        return f"cache format {recorded.get('format')} != {CACHE_FORMAT}"
    old, new = recorded.get("inputs", {}), _record(inputs)["inputs"]
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return f"inputs changed: {', '.join(changed)}" if changed else None


def read_stats(folder: str | os.PathLike, build_command: str, error: type[Exception] = FileNotFoundError) -> dict:
    """The ``stats.json`` report a stage wrote into ``folder``; a missing one raises ``error`` saying which
    command builds it (:func:`craftlib.stages.stats` is this call)."""
    path = Path(folder) / "stats.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path} not found: build it first (`{build_command}`).") from None
    except (OSError, ValueError) as err:
        raise error(f"{path} is unreadable ({err}): build it again (`{build_command}`).") from None


def load_or_build(
    folder: str | os.PathLike,
    inputs: Mapping,
    build: Callable[[Path], object],
    load: Callable[[Path], T],
    force: bool = False,
    entries: Sequence[str] | None = None,
) -> T:
    """Return ``load(folder)`` when ``folder`` was built from ``inputs``; otherwise ``build(tmp)`` into a
    temporary folder, record ``inputs`` there, rename it into place, then ``load`` it.

    ``build`` writes the cache's files into the folder it is given (it must not write ``inputs.json``).

    ``entries``: the cache is not the whole ``folder`` but these files/folders inside it (the folder also
    holds other stages' caches, e.g. ``processed/<dataset>/`` holds the tagged dataset's ``dataset/``,
    ``conll/`` and ``stats.json`` beside the entity lists). ``build`` writes each entry into ``tmp``; the
    record ``folder/inputs.json`` is removed before the entries are renamed into place one by one and written
    again last, so the entries are current exactly when the record says so (:func:`commit_entries`).
    """
    folder = Path(folder)
    if not force and is_current(folder, inputs):
        return load(folder)
    if entries is None:
        with atomic_dir(folder) as tmp:
            build(tmp)
            atomic_write_json(tmp / INPUTS_FILE, _record(inputs))
    else:
        with temp_dir(folder / "entries") as tmp:  # folder/.build-entries-<host>_<pid>-*: the same file system
            build(tmp)
            commit_entries(tmp, folder, entries, inputs)
    return load(folder)


def commit_entries(tmp: str | os.PathLike, folder: str | os.PathLike, entries: Sequence[str],
                   inputs: Mapping) -> None:
    """Move the finished ``tmp/<entry>`` files/folders into ``folder`` (each replaced atomically, see
    :func:`replace_dir`), between removing ``folder/inputs.json`` and writing it again for ``inputs``: an
    interruption in between leaves entries without a record, which :func:`is_current` never accepts."""
    tmp, folder = Path(tmp), Path(folder)
    missing = [e for e in entries if not (tmp / e).exists()]
    if missing:
        raise FileNotFoundError(f"the build wrote no {', '.join(missing)} in {tmp}")
    (folder / INPUTS_FILE).unlink(missing_ok=True)
    for entry in entries:
        replace_dir(tmp / entry, folder / entry)
    atomic_write_json(folder / INPUTS_FILE, _record(inputs))
