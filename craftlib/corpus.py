"""Getting CRAFT and reading it: download / local archive / folder, checksum, safe extraction, cache.

The CRAFT v5.0.2 release is laid out as::

    CRAFT-5.0.2/
        articles/ids/craft-ids-{train,dev,test}.txt        official split (one PubMed id per line)
        articles/txt/<id>.txt                               document text (UTF-8)
        concept-annotation/<M>/<M>[+extensions]/knowtator/<id>.txt.knowtator.xml
        structural-annotation/sections-and-typography/knowtator/<id>.txt.knowtator.xml
        structural-annotation/dependency/conllu/<id>.conllu  gold sentences and tokens (no offsets)

:func:`fetch_craft` turns a source (URL, ``.tar.gz`` or folder) into the path of that root folder;
:func:`read_document` / :func:`read_corpus` parse it into :class:`Document` objects whose tokens carry
character offsets into the text (every token is checked against the text).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tarfile
import time
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from craftlib import cache, config, session
from craftlib.errors import AlignmentError, CorpusError, StorageError, os_error_message

log = logging.getLogger(__name__)

#: Concept-annotation modules that map to the tutorial's entity types (see ``config.MODULE_TO_TYPE``).
NER_MODULES: tuple[str, ...] = tuple(config.MODULE_TO_TYPE)
#: Typography classes kept from ``sections-and-typography`` (``section`` spans are kept apart).
TYPOGRAPHY_CLASSES = ("italic", "bold", "sup", "sub", "underline")
#: Characters of document text kept on each side of a mention (``Mention.before`` / ``Mention.after``), enough
#: for the words next to it that :mod:`craftlib.tags` reads (the gene-context rule).
CONTEXT_CHARS = 40
#: Name of the extracted folder and of the marker that makes a cached extraction "complete".
CRAFT_DIRNAME = f"CRAFT-{config.CRAFT_VERSION}"
MARKER = ".craftlib-complete.json"
#: Bumped when the marker's content changes (an older marker means: extract again).
MARKER_FORMAT = 2
_REQUIRED = ("articles/ids", "articles/txt", "concept-annotation", "structural-annotation/dependency/conllu")


# ------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Token:
    """One CoNLL-U token with its character offsets ``[start, end)`` in the document text."""

    form: str
    start: int
    end: int


@dataclass
class Sentence:
    """One gold sentence (``sent_id`` from the CoNLL-U file) with its tokens."""

    sentence_id: int
    tokens: list[Token]

    @property
    def start(self) -> int:
        return self.tokens[0].start

    @property
    def end(self) -> int:
        return self.tokens[-1].end


@dataclass(frozen=True)
class Mention:
    """One concept annotation. ``spans`` has several ``(start, end)`` pairs for a discontinuous mention.

    ``before`` / ``after``: the document text just before its first and after its last fragment (up to
    :data:`CONTEXT_CHARS` characters each, filled by :func:`read_mentions`), where the words around the mention
    are read (``craftlib.tags.context_words``).
    """

    mention_id: str
    module: str
    annotation_set: str  # "proper" or "extensions"
    spans: tuple[tuple[int, int], ...]
    class_id: str
    class_label: str
    text: str
    before: str = ""
    after: str = ""

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]

    @property
    def discontinuous(self) -> bool:
        return len(self.spans) > 1


@dataclass(frozen=True)
class Span:
    """A typography (``italic``, ``bold``, ``sup``, ``sub``, ``underline``) or ``section`` span."""

    start: int
    end: int
    label: str


@dataclass
class Document:
    doc_id: str
    split: str | None
    text: str
    sentences: list[Sentence] = field(default_factory=list)
    #: ``{(module, annotation_set): [Mention, ...]}``
    mentions: dict[tuple[str, str], list[Mention]] = field(default_factory=dict)
    typography: list[Span] = field(default_factory=list)
    sections: list[Span] = field(default_factory=list)

    def all_mentions(self, annotation_set: str | None = None) -> list[Mention]:
        return [m for (_, s), ms in self.mentions.items() if annotation_set in (None, s) for m in ms]

    @property
    def n_tokens(self) -> int:
        return sum(len(s.tokens) for s in self.sentences)


# ------------------------------------------------------------------------------------------ fetching


def _is_url(source: str) -> bool:
    return config.is_url(source)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    return cache.sha256_file(path, chunk)


def _storage_error(err: OSError, doing: str) -> StorageError | None:
    """A clear error for a disk-full / read-only failure (``None`` for any other OSError)."""
    message = os_error_message(err, doing)
    return StorageError(message) if message and err.errno is not None else None


def _download(url: str, dest: Path, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` through a temporary file renamed into place, then record the URL beside
    it (``<dest>.source.json``) so that the file is never reused for another URL."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    meta = _download_record(dest)
    meta.unlink(missing_ok=True)  # from now on ``dest`` belongs to no URL until this download completes
    log.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, cache.atomic_open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            received, head = 0, b""
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    head = head or block[:512]
                    received += len(block)
                    bar.update(len(block))
            # raised inside atomic_open: the temporary file is deleted, nothing is kept under ``dest``
            _check_download(url, dest, head, received, total, resp.headers.get("Content-Type") or "")
    except OSError as err:
        storage = _storage_error(err, f"downloading {url}")
        if storage:
            raise storage from err
        raise CorpusError(
            f"Could not download CRAFT from {url} ({err}). Check your connection, or download the archive "
            "yourself and point CRAFT_SOURCE (or --source) at the .tar.gz file or an extracted folder."
        ) from err
    cache.atomic_write_json(meta, {"url": url, "size": dest.stat().st_size})
    return dest


#: How a gzip stream starts (the release archive is a .tar.gz).
GZIP_MAGIC = b"\x1f\x8b"


def _check_download(url: str, dest: Path, head: bytes, received: int, total: int | None, content_type: str) -> None:
    """Refuse a download that cannot be the archive: cut short (fewer bytes than ``Content-Length``), or not a
    gzip file (an HTML page: a login wall, a proxy's or the server's error page)."""
    again = ("Nothing was kept: run the same command again to download it again, or download the archive "
             "yourself and point CRAFT_SOURCE (or --source) at the .tar.gz file.")
    if total is not None and received != total:
        raise CorpusError(f"The download of {url} was cut short: {received} of {total} bytes arrived. {again}")
    if not head.startswith(GZIP_MAGIC) and dest.name.endswith((".gz", ".tgz")):
        start = head.lstrip()[:15].lower()
        what = ("an HTML page" if "html" in content_type.lower() or start.startswith((b"<!doctype", b"<html", b"<"))
                else f"not a gzip archive ({content_type or 'no content type'}, {received} bytes)")
        raise CorpusError(f"{url} served {what}, not the CRAFT .tar.gz archive (a proxy, login or error page?). "
                          f"{again}")


def _download_record(archive: Path) -> Path:
    return archive.with_name(archive.name + ".source.json")


def _downloaded_from(archive: Path) -> str | None:
    """The URL a downloaded archive came from (``None``: unknown, incomplete or changed since)."""
    try:
        meta = json.loads(_download_record(archive).read_text())
        return meta["url"] if archive.stat().st_size == meta["size"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_layout(root: Path) -> Path:
    """Raise :class:`CorpusError` unless ``root`` looks like an extracted CRAFT release."""
    missing = [p for p in _REQUIRED if not (root / p).is_dir()]
    if missing:
        raise CorpusError(
            f"{root} is not a CRAFT {config.CRAFT_VERSION} folder: missing {', '.join(missing)}. Point the "
            f"source at the release archive (.tar.gz) or at the extracted '{CRAFT_DIRNAME}' folder."
        )
    return root


def _find_root(folder: Path) -> Path | None:
    """``folder`` itself or its single sub-folder, whichever holds ``articles/ids``."""
    if (folder / "articles" / "ids").is_dir():
        return folder
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if child.is_dir() and (child / "articles" / "ids").is_dir():
            return child
    return None


def _content(root: Path) -> dict:
    """Number and total size of the files of an extraction (the marker excluded): a damaged copy differs."""
    files = [p for p in root.rglob("*") if p.is_file() and p.name != MARKER]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def _source_identity(src: str, archive: Path) -> dict:
    """What the extraction came from: the URL, or the archive's resolved path, size and modification time."""
    if _is_url(src):
        return {"url": src}
    fp = cache.file_fingerprint(archive)
    return {"path": fp["path"], "size": fp["size"], "mtime_ns": fp["mtime_ns"]}


def resolved_source(source: str | os.PathLike | None = None) -> str:
    """The CRAFT source (default: ``CRAFT_SOURCE`` or the release URL) with a local path made absolute, so that it
    still names the same file from another working directory; a URL as it is."""
    src = config.craft_source(source)
    return src if _is_url(src) else str(Path(src).expanduser().resolve())


def source_identity(source: str | os.PathLike | None = None) -> dict | None:
    """What a CRAFT source is, without fetching it: ``{"url": ...}``, an archive's resolved path, size and
    modification time, or a folder's path, file count, total size and newest modification time. ``None`` when a
    local source does not exist (any more). Later stages record it to know when to rebuild."""
    src = config.craft_source(source)
    if _is_url(src):
        return {"url": src}
    path = Path(src).expanduser()
    if not path.exists():
        return None
    if path.is_dir():
        return cache.file_fingerprint(path)
    return _source_identity(src, path)


def _read_marker(target: Path) -> dict | None:
    try:
        marker = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT else None


def invalidate_extraction(root: str | os.PathLike) -> bool:
    """Mark a cached extraction as not reusable (its next :func:`fetch_craft` re-extracts it). Returns whether
    ``root`` was a cached extraction (a folder used in place has no marker and is left alone)."""
    marker = Path(root) / MARKER
    try:
        marker.unlink()
    except FileNotFoundError:
        return False
    except OSError:
        return False
    log.warning("marked the extraction %s as damaged: the next run re-extracts it", root)
    return True


def _damaged(root: Path, message: str, err_type: type[CorpusError | AlignmentError] = CorpusError):
    """The error for a file found damaged or missing while reading: a cached extraction is invalidated (so
    the next run re-extracts it); for a folder read in place, the message says to replace it."""
    if invalidate_extraction(root):
        return err_type(f"{message} The cached extraction {root} is damaged: it was marked for re-extraction, "
                        "so running the same command again re-extracts it from the archive (or pass --force now).")
    return err_type(f"{message} The CRAFT folder {root} is damaged or incomplete: replace it with a fresh copy "
                    "of the release (or point --source at the archive, whose extraction is checked).")


def _extract(archive: Path, target: Path, expected: str | None, identity: dict | None = None) -> Path:
    """Extract ``archive`` into a temporary folder beside ``target`` and rename its root into place."""
    if not hasattr(tarfile, "data_filter"):
        raise CorpusError(
            f"This Python ({platform.python_version()}) lacks tarfile's filter='data' (Python >= 3.10.12, or "
            ">= 3.11.4 on 3.11), which craftlib needs to extract archives safely. Upgrade Python, or extract "
            f"the archive yourself and point --source at the '{CRAFT_DIRNAME}' folder.")
    cache.clean_orphans(target.parent, prefix=".extract-")  # temporary folders of older craftlib versions
    with cache.temp_dir(target) as tmp:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(tmp, filter="data")
        except tarfile.FilterError as err:
            raise CorpusError(
                f"{archive} contains an unsafe member ({err}); it was refused. This is not the CRAFT release "
                "archive: get the archive from the official release."
            ) from err
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            storage = _storage_error(err, f"extracting {archive.name} into {target.parent}") if isinstance(
                err, OSError) else None
            if storage:
                raise storage from err
            raise CorpusError(
                f"{archive} is truncated or corrupt ({type(err).__name__}: {' '.join(str(err).split())}). Delete "
                "it and download it "
                "again (or pass force=True / --force to re-download), then retry."
            ) from err
        root = _find_root(tmp)
        if root is None:
            raise CorpusError(
                f"{archive} does not contain a CRAFT release (no articles/ids folder inside). "
                "Use the CRAFT v5.0.2 release archive."
            )
        check_layout(root)
        manifest = {
            "format": MARKER_FORMAT,
            "source": identity or {"path": str(archive)},
            "archive": str(archive),
            "sha256": expected,
            "extracted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **_content(root),
        }
        cache.atomic_write_json(root / MARKER, manifest)
        cache.replace_dir(root, target)
    return target


def _verify(archive: Path, expected: str) -> None:
    actual = sha256_file(archive)
    if actual.lower() != expected.lower():
        raise CorpusError(
            f"{archive} has sha256 {actual}, expected {expected}: the file is corrupt, truncated or another "
            "release. Delete it and get the archive again (or fix CRAFT_SHA256 / --sha256)."
        )
    log.info("checksum verified for %s", archive)


def _reusable(target: Path, identity: dict, expected: str | None, archive: Path | None) -> str | None:
    """``None`` when the cached extraction ``target`` can be reused for this source, else why not. An
    extraction made without a checksum is verified now when one is expected (the archive is hashed once and
    the marker updated)."""
    marker = _read_marker(target)
    if marker is None:
        return "no complete extraction" if not target.exists() else "no valid completion marker"
    if marker.get("source") != identity:
        return f"it was extracted from another source ({marker.get('source')})"
    try:
        check_layout(target)
    except CorpusError:
        return "its layout is damaged"
    if {k: marker.get(k) for k in ("files", "bytes")} != _content(target):
        return "its files changed since the extraction (damaged or edited)"
    if expected and (marker.get("sha256") or "").lower() != expected.lower():
        if archive is None or not archive.is_file():
            return "the expected checksum was never verified"
        _verify(archive, expected)  # raises when the archive is not the expected one
        cache.atomic_write_json(target / MARKER, marker | {"sha256": expected, "verified": time.strftime(
            "%Y-%m-%dT%H:%M:%S%z")})
    return None


def fetch_craft(
    source: str | os.PathLike | None = None,
    sha256: str | None = None,
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Return the root of an extracted CRAFT release, getting it first if needed.

    ``source`` (default: ``CRAFT_SOURCE`` or the GitHub release URL) is

    * an extracted folder (the ``CRAFT-5.0.2`` root or its parent): used in place, nothing is copied;
    * a local ``.tar.gz``: checksum-verified when the checksum is known (``sha256`` argument,
      ``CRAFT_SHA256``, or :data:`craftlib.config.KNOWN_SHA256`), extracted with ``filter="data"``
      into ``<data>/raw/`` through a temporary folder and an atomic rename;
    * a URL: downloaded to ``<data>/raw/downloads/`` first (temporary file + rename, progress bar); the
      download is tied to its URL (``.source.json``) and deleted when it fails its checksum.

    A cached extraction (``<data>/raw/CRAFT-5.0.2`` with its marker file) is reused unless ``force`` only when
    it came from the same source (URL, or archive path + size + modification time), its files are still all
    there with the same sizes, and, when a checksum is expected, it was verified against it (an unverified
    extraction is verified now). Anything else re-extracts.
    """
    src = config.craft_source(source)
    raw = config.data_dir(data_dir) / "raw"
    target = raw / CRAFT_DIRNAME

    if not _is_url(src):
        path = Path(src).expanduser()
        if path.is_dir():
            root = _find_root(path)
            if root is None:
                raise CorpusError(
                    f"{path} is a folder but not a CRAFT release (no articles/ids inside it or its sub-folders). "
                    f"Point the source at the '{CRAFT_DIRNAME}' folder or the release .tar.gz."
                )
            log.info("using the CRAFT folder %s in place", root)
            return check_layout(root)
        if not path.is_file():
            raise CorpusError(
                f"CRAFT archive {path} not found. Set CRAFT_SOURCE (or --source) to the CRAFT "
                f"{config.CRAFT_VERSION} .tar.gz, an extracted folder, or a URL (default {config.CRAFT_URL})."
            )
        archive = path
    else:
        archive = raw / "downloads" / f"{CRAFT_DIRNAME}.tar.gz"

    expected = config.craft_sha256(sha256) or config.KNOWN_SHA256.get(archive.name)
    identity = _source_identity(src, archive)
    if not force:
        reason = _reusable(target, identity, expected, archive if not _is_url(src) or
                           _downloaded_from(archive) == src else None)
        if reason is None:
            log.info("reusing the extracted corpus %s", target)
            return target
        if target.exists():
            log.warning("not reusing %s: %s; extracting again", target, reason)

    if _is_url(src) and (force or not archive.is_file() or _downloaded_from(archive) != src):
        _download(src, archive, progress=progress)

    if expected:
        try:
            _verify(archive, expected)
        except CorpusError:
            if _is_url(src):  # a download that failed its checksum is never reused
                archive.unlink(missing_ok=True)
                _download_record(archive).unlink(missing_ok=True)
            raise
    else:
        # not an error (no checksum is published for the release archive): `python -m craftlib data` shows this
        # INFO line; notebook 01 says it once, in words, with checksum_status()
        log.info("no known sha256 for %s: extracting it unverified (pass --sha256 or set CRAFT_SHA256 to verify)",
                 archive)
    try:
        return _extract(archive, target, expected, identity)
    except CorpusError as err:
        if not _is_url(src):
            raise
        archive.unlink(missing_ok=True)  # a download that does not open is never reused
        _download_record(archive).unlink(missing_ok=True)
        cause = err.__cause__ or err
        raise CorpusError(f"The archive downloaded from {src} does not open as the CRAFT release "
                          f"({type(cause).__name__}: {' '.join(str(cause).split())}); it was deleted: run the same "
                          "command again to download it again.") from err


def checksum_status(root: str | os.PathLike) -> str:
    """One plain sentence on how the corpus at ``root`` (from :func:`fetch_craft`) was checked."""
    marker = Path(root) / MARKER
    if not marker.is_file():
        return "CRAFT is read in place from a folder (no archive to check)."
    info = json.loads(marker.read_text())
    if info.get("sha256"):
        return f"The CRAFT archive matched its expected sha256 checksum ({info['sha256'][:12]}...)."
    return ("No checksum is known for this CRAFT archive, so it was extracted without checking it. That is "
            "normal for the release downloaded from GitHub; to have it checked, set the environment variable "
            "CRAFT_SHA256 (or pass sha256=... / --sha256) to the archive's sha256.")


# ------------------------------------------------------------------------------------------ reading


def read_split_ids(root: str | os.PathLike) -> dict[str, list[str]]:
    """Official split: ``{"train": [...], "dev": [...], "test": [...]}`` in the ids files' order."""
    out = {}
    for split in config.SPLITS:
        path = Path(root) / "articles" / "ids" / f"craft-ids-{split}.txt"
        if not path.is_file():
            raise CorpusError(f"Split file {path} is missing: the CRAFT folder is incomplete; fetch it again.")
        out[split] = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return out


def _parse_xml(path: Path, corpus_root: Path) -> ET.Element:
    if not path.is_file():
        raise _damaged(corpus_root, f"Annotation file {path} is missing.")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as err:
        raise _damaged(corpus_root, f"{path} is not well-formed XML ({err}).") from err


def _annotations(path: Path, corpus_root: Path) -> Iterable[tuple[str, tuple[tuple[int, int], ...], str, str, str]]:
    """``(mention_id, spans, text, class_id, class_label)`` for every annotation of a knowtator file."""
    root = _parse_xml(path, corpus_root)
    classes = {}
    for cm in root.iter("classMention"):
        mc = cm.find("mentionClass")
        if mc is not None:
            classes[cm.get("id")] = (mc.get("id", ""), (mc.text or "").strip())
    for ann in root.iter("annotation"):
        mention = ann.find("mention")
        mid = mention.get("id") if mention is not None else None
        try:
            spans = tuple(sorted((int(s.get("start")), int(s.get("end"))) for s in ann.iter("span")))
        except (TypeError, ValueError) as err:
            raise _damaged(corpus_root, f"{path}: annotation {mid} has a span without integer start/end ({err}).") from err
        if not spans or mid is None:  # one GO_BP+extensions annotation has no span at all: nothing to tag
            continue
        class_id, class_label = classes.get(mid, ("", ""))
        text = ann.findtext("spannedText") or ""
        yield mid, spans, text, class_id, class_label


def knowtator_path(root: Path, module: str, annotation_set: str, doc_id: str) -> Path:
    folder = module if annotation_set == "proper" else f"{module}+extensions"
    return root / "concept-annotation" / module / folder / "knowtator" / f"{doc_id}.txt.knowtator.xml"


def available_modules(root: str | os.PathLike) -> list[str]:
    """Concept-annotation modules present in an extracted CRAFT folder (``CHEBI``, ``CL``, ``GO_BP``, ...)."""
    base = Path(root) / "concept-annotation"
    if not base.is_dir():
        raise CorpusError(f"{base} is missing: {root} is not an extracted CRAFT release. Re-fetch the corpus "
                          "(`python -m craftlib data --source ...`).")
    return sorted(p.name for p in base.iterdir() if p.is_dir())


def read_mentions(root: Path, doc_id: str, module: str, annotation_set: str, text: str) -> list[Mention]:
    if annotation_set not in config.ANNOTATION_SETS:
        raise ValueError(f"annotation_set must be one of {config.ANNOTATION_SETS}, not {annotation_set!r}")
    module_dir = root / "concept-annotation" / module
    if not module_dir.is_dir():
        raise CorpusError(
            f"Module folder {module_dir} is missing (available: {', '.join(available_modules(root))}). Check the "
            "module name, or re-fetch a complete CRAFT release (a trimmed copy may lack modules).")
    path = knowtator_path(root, module, annotation_set, doc_id)
    if not path.parent.is_dir():  # e.g. MONDO: <M>_with(out)_genotype_annotations/knowtator-2/ (Knowtator 2 XML)
        found = sorted(str(p.relative_to(module_dir)) for p in module_dir.glob("*/*") if p.is_dir())
        raise CorpusError(
            f"Module {module} has no {path.parent.relative_to(module_dir)}/ folder (found: {', '.join(found) or 'none'}). "
            "craftlib reads the Knowtator XML layout <M>/<M>[+extensions]/knowtator/ used by every module of the "
            "tutorial; this module is stored differently, so leave it out of `modules`.")
    out = []
    for mid, spans, stext, cid, clabel in _annotations(path, root):
        if spans[-1][1] > len(text) or spans[0][0] < 0:
            raise _damaged(root, f"{path}: mention {mid} span {spans} lies outside the text ({len(text)} chars).")
        start, end = spans[0][0], spans[-1][1]
        out.append(Mention(mid, module, annotation_set, spans, cid, clabel, stext,
                           before=text[max(0, start - CONTEXT_CHARS):start], after=text[end:end + CONTEXT_CHARS]))
    out.sort(key=lambda m: (m.start, -m.end, m.mention_id))
    return out


def read_typography(root: Path, doc_id: str) -> tuple[list[Span], list[Span]]:
    """``(typography, sections)`` spans from ``sections-and-typography``."""
    path = root / "structural-annotation" / "sections-and-typography" / "knowtator" / f"{doc_id}.txt.knowtator.xml"
    typo, sections = [], []
    for _mid, spans, _text, cid, _label in _annotations(path, root):
        for start, end in spans:
            if cid in TYPOGRAPHY_CLASSES:
                typo.append(Span(start, end, cid))
            elif cid == "section":
                sections.append(Span(start, end, cid))
    typo.sort(key=lambda s: (s.start, s.end, s.label))
    sections.sort(key=lambda s: (s.start, s.end))
    return typo, sections


def read_sentences(root: Path, doc_id: str, text: str) -> list[Sentence]:
    """Gold sentences from the CoNLL-U file, each token aligned to its offsets in ``text``.

    CoNLL-U has no offsets: tokens are matched left to right, skipping whitespace only. A token that
    is not found exactly at the next non-space position raises :class:`AlignmentError`.
    """
    import conllu

    path = root / "structural-annotation" / "dependency" / "conllu" / f"{doc_id}.conllu"
    if not path.is_file():
        raise _damaged(root, f"CoNLL-U file {path} is missing.")
    try:
        # only id and form are needed: skipping the other eight columns halves the parsing time
        parsed = conllu.parse(path.read_text(encoding="utf-8"), fields=("id", "form"))
    except Exception as err:  # conllu raises ParseException and plain ValueErrors
        raise _damaged(root, f"{path} cannot be parsed as CoNLL-U ({err}).") from err
    sentences, pos, n = [], 0, len(text)
    for i, sent in enumerate(parsed):
        sid = int(sent.metadata.get("sent_id", i))
        tokens = []
        for tok in sent:
            if not isinstance(tok["id"], int):  # multi-word ranges / empty nodes carry no surface text
                continue
            form = tok["form"]
            while pos < n and text[pos].isspace():
                pos += 1
            if not text.startswith(form, pos):
                raise _damaged(root, (
                    f"{path}: token {form!r} (sentence {sid}) does not match the text of document {doc_id} at "
                    f"offset {pos} (text there: {text[pos:pos + len(form) + 10]!r}). The CoNLL-U and .txt "
                    "files do not belong together."), AlignmentError)
            tokens.append(Token(form, pos, pos + len(form)))
            pos += len(form)
        if tokens:
            sentences.append(Sentence(sid, tokens))
    return sentences


def read_document(
    root: str | os.PathLike,
    doc_id: str,
    modules: Sequence[str] = NER_MODULES,
    annotation_sets: Sequence[str] = config.ANNOTATION_SETS,
    split: str | None = None,
    sentences: bool = True,
    typography: bool = True,
) -> Document:
    """Read one document: text, gold sentences/tokens, concept mentions of ``modules`` × ``annotation_sets``,
    typography and section spans."""
    root = Path(root)
    txt = root / "articles" / "txt" / f"{doc_id}.txt"
    if not txt.is_file():
        raise CorpusError(f"Document {doc_id}: text file {txt} is missing. Check the id; if it is listed in "
                          "articles/ids, the extraction is damaged: re-extract it (--force).")
    text = txt.read_text(encoding="utf-8")
    doc = Document(doc_id=doc_id, split=split, text=text)
    if sentences:
        doc.sentences = read_sentences(root, doc_id, text)
    for module in modules:
        for aset in annotation_sets:
            doc.mentions[(module, aset)] = read_mentions(root, doc_id, module, aset, text)
    if typography:
        doc.typography, doc.sections = read_typography(root, doc_id)
    return doc


def select_ids(
    split_ids: dict[str, list[str]],
    splits: Sequence[str] = config.SPLITS,
    max_docs: dict[str, int | None] | int | None = None,
) -> list[tuple[str, str]]:
    """``[(split, doc_id), ...]``: the first ``max_docs`` ids (file order) of each split."""
    out = []
    for split in splits:
        limit = max_docs.get(split) if isinstance(max_docs, dict) else max_docs
        ids = split_ids[split]
        out.extend((split, d) for d in (ids if limit is None else ids[:limit]))
    return out


def read_corpus(
    root: str | os.PathLike,
    splits: Sequence[str] = config.SPLITS,
    max_docs: dict[str, int | None] | int | None = None,
    modules: Sequence[str] = NER_MODULES,
    annotation_sets: Sequence[str] = config.ANNOTATION_SETS,
    progress: bool = False,
    **kwargs,
) -> list[Document]:
    """Read the documents of ``splits`` (at most ``max_docs`` per split, first ids in file order); ``progress``: a
    bar that disappears when done (:func:`craftlib.session.activity`: no widget left in a saved notebook)."""
    wanted = select_ids(read_split_ids(root), splits, max_docs)
    docs = []
    with session.activity(len(wanted), "reading CRAFT", "doc", progress=progress) as advance:
        for split, doc_id in wanted:
            docs.append(read_document(root, doc_id, modules=modules, annotation_sets=annotation_sets, split=split,
                                      **kwargs))
            advance()
    return docs


__all__ = [
    "CRAFT_DIRNAME",
    "NER_MODULES",
    "Document",
    "Mention",
    "Sentence",
    "Span",
    "Token",
    "available_modules",
    "check_layout",
    "checksum_status",
    "fetch_craft",
    "read_corpus",
    "read_document",
    "read_split_ids",
    "resolved_source",
    "select_ids",
    "source_identity",
]
