"""craftlib.corpus on the hand-made miniature CRAFT folder (tests/fixtures/craft)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from craftlib import corpus
from craftlib.errors import AlignmentError, CorpusError
from tests.conftest import FIXTURES, require_local_craft

FIXTURE_ROOT = FIXTURES / "craft" / "CRAFT-5.0.2"


@pytest.fixture(autouse=True)
def _no_checksum_setting(monkeypatch):
    """The fixture archives are not the release: ignore a CRAFT_SHA256 set in the environment."""
    monkeypatch.delenv("CRAFT_SHA256", raising=False)


@pytest.fixture
def craft_copy(tmp_path) -> Path:
    """A writable copy of the fixture folder (for tests that damage it)."""
    dest = tmp_path / "CRAFT-5.0.2"
    shutil.copytree(FIXTURE_ROOT, dest)
    return dest


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "CRAFT-5.0.2.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(FIXTURE_ROOT, arcname="CRAFT-5.0.2")
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------ reading


def test_split_ids_follow_the_ids_files():
    assert corpus.read_split_ids(FIXTURE_ROOT) == {"train": ["1001"], "dev": [], "test": ["1002"]}


def test_sentences_tokens_are_aligned_to_the_text():
    doc = corpus.read_document(FIXTURE_ROOT, "1001", split="train")
    assert [s.sentence_id for s in doc.sentences] == [0, 1]
    assert len(doc.sentences[1].tokens) == 8
    for sent in doc.sentences:
        for tok in sent.tokens:
            assert doc.text[tok.start:tok.end] == tok.form
    assert doc.sentences[1].tokens[0].start == doc.text.index("The")


def test_mentions_classes_and_discontinuous_spans():
    doc = corpus.read_document(FIXTURE_ROOT, "1002")
    pr = doc.mentions[("PR", "proper")]
    assert [m.class_id for m in pr] == ["PR:000012315", "PR:000016561", "PR:000016565"]
    pax = pr[0]
    assert pax.discontinuous and pax.spans == ((0, 3), (6, 7))
    assert pax.class_label == "paired box protein Pax-2"
    assert [doc.text[s:e] for s, e in pr[1].spans] == ["alpha-", "tubulin"]
    assert not pr[2].discontinuous and pr[2].text == "beta-tubulin"
    assert doc.mentions[("CHEBI", "extensions")] == []


def test_both_annotation_sets_are_read():
    doc = corpus.read_document(FIXTURE_ROOT, "1001", modules=["PR"])
    assert len(doc.mentions[("PR", "proper")]) == 3
    ext = doc.mentions[("PR", "extensions")]
    assert len(ext) == 4 and any(m.class_id.startswith("PR_EXT:") for m in ext)


def test_typography_and_sections():
    doc = corpus.read_document(FIXTURE_ROOT, "1001")
    italic = [doc.text[s.start:s.end] for s in doc.typography if s.label == "italic"]
    assert italic == ["Shh", "Fgf8"]
    assert [s.label for s in doc.typography] == ["italic", "italic", "bold"]
    assert len(doc.sections) == 1


def test_read_corpus_limits_documents_per_split():
    docs = corpus.read_corpus(FIXTURE_ROOT, max_docs={"train": 1, "dev": 1, "test": 0})
    assert [(d.split, d.doc_id) for d in docs] == [("train", "1001")]
    assert [d.doc_id for d in corpus.read_corpus(FIXTURE_ROOT)] == ["1001", "1002"]


def test_misaligned_token_is_an_error_naming_document_and_offset(craft_copy):
    path = craft_copy / "structural-annotation/dependency/conllu/1001.conllu"
    path.write_text(path.read_text().replace("\tretinal\t", "\tretina\t", 1).replace("\tneurons\t", "\tneuron\t", 1))
    with pytest.raises(AlignmentError, match=r"1001.*offset \d+"):
        corpus.read_document(craft_copy, "1001")


def test_malformed_xml_names_the_file(craft_copy):
    path = craft_copy / "concept-annotation/CL/CL/knowtator/1001.txt.knowtator.xml"
    path.write_text(path.read_text()[:-40])
    with pytest.raises(CorpusError, match="1001.txt.knowtator.xml.*not well-formed"):
        corpus.read_document(craft_copy, "1001")


def test_missing_module_and_document(craft_copy):
    with pytest.raises(CorpusError, match="GO_BP.*missing"):
        corpus.read_document(craft_copy, "1001", modules=["GO_BP"])
    with pytest.raises(CorpusError, match="available: CHEBI, CL, NCBITaxon, PR, SO"):
        corpus.read_document(craft_copy, "1001", modules=["GO_BP"])
    with pytest.raises(CorpusError, match="9999"):
        corpus.read_document(craft_copy, "9999")
    (craft_copy / "concept-annotation/SO/SO/knowtator/1002.txt.knowtator.xml").unlink()
    with pytest.raises(CorpusError, match="1002.txt.knowtator.xml is missing"):
        corpus.read_document(craft_copy, "1002")


# ------------------------------------------------------------------------------------------ fetching


def test_folder_source_is_used_in_place(tmp_path):
    assert corpus.fetch_craft(FIXTURE_ROOT, data_dir=tmp_path) == FIXTURE_ROOT
    assert corpus.fetch_craft(FIXTURE_ROOT.parent, data_dir=tmp_path) == FIXTURE_ROOT  # parent folder too
    assert not (tmp_path / "raw").exists()


def test_wrong_layout_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="not a CRAFT release"):
        corpus.fetch_craft(tmp_path / "empty", data_dir=tmp_path)


def test_archive_is_verified_extracted_and_cached(tmp_path, archive, monkeypatch):
    data = tmp_path / "data"
    root = corpus.fetch_craft(archive, sha256=sha(archive), data_dir=data)
    assert root == data / "raw" / "CRAFT-5.0.2"
    assert json.loads((root / corpus.MARKER).read_text())["sha256"] == sha(archive)
    assert corpus.read_split_ids(root)["test"] == ["1002"]
    assert not [p for p in (data / "raw").iterdir() if p.name.startswith(".extract-")]

    def boom(*args, **kwargs):
        raise AssertionError("the cache should have been reused")

    with monkeypatch.context() as m:
        m.setattr(corpus, "_extract", boom)
        assert corpus.fetch_craft(archive, sha256=sha(archive), data_dir=data) == root
    marker_time = (root / corpus.MARKER).stat().st_mtime_ns
    corpus.fetch_craft(archive, data_dir=data, force=True)  # force re-extracts
    assert (root / corpus.MARKER).stat().st_mtime_ns != marker_time


def test_incomplete_cache_is_not_reused(tmp_path, archive):
    data = tmp_path / "data"
    half = data / "raw" / "CRAFT-5.0.2"
    half.mkdir(parents=True)  # no marker: looks like an interrupted extraction
    root = corpus.fetch_craft(archive, data_dir=data)
    assert (root / corpus.MARKER).is_file() and (root / "articles/ids").is_dir()


def test_checksum_mismatch(tmp_path, archive):
    with pytest.raises(CorpusError, match="sha256"):
        corpus.fetch_craft(archive, sha256="0" * 64, data_dir=tmp_path / "data")
    assert not (tmp_path / "data" / "raw" / "CRAFT-5.0.2").exists()


def test_truncated_archive(tmp_path, archive):
    bad = tmp_path / "truncated.tar.gz"
    bad.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(CorpusError, match="truncated.tar.gz is truncated or corrupt"):
        corpus.fetch_craft(bad, data_dir=tmp_path / "data")
    raw = tmp_path / "data" / "raw"
    assert not (raw / "CRAFT-5.0.2").exists() and not list(raw.glob(".extract-*"))


def test_archive_without_craft_inside(tmp_path):
    path = tmp_path / "other.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(CorpusError, match="does not contain a CRAFT release"):
        corpus.fetch_craft(path, data_dir=tmp_path / "data")


def test_missing_archive(tmp_path):
    with pytest.raises(CorpusError, match="nope.tar.gz not found"):
        corpus.fetch_craft(tmp_path / "nope.tar.gz", data_dir=tmp_path)


def test_unsafe_archive_member_is_refused(tmp_path):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(CorpusError, match="unsafe member"):
        corpus.fetch_craft(path, data_dir=tmp_path / "data")
    assert not (tmp_path / "data" / "escape.txt").exists()


def test_real_corpus_split_sizes(tmp_path):
    """The real corpus gives the official 60/7/30 split (skipped without a local CRAFT copy)."""
    src = require_local_craft()
    root = corpus.fetch_craft(src, data_dir=tmp_path)
    ids = corpus.read_split_ids(root)
    assert {k: len(v) for k, v in ids.items()} == {"train": 60, "dev": 7, "test": 30}
    assert len(set(ids["train"]) | set(ids["dev"]) | set(ids["test"])) == 97



def test_module_in_another_layout_is_named_not_misread(craft_copy):
    """CRAFT's MONDO module is Knowtator-2 XML in <M>_with(out)_genotype_annotations/knowtator-2/."""
    (craft_copy / "concept-annotation/MONDO/MONDO_with_genotype_annotations/knowtator-2").mkdir(parents=True)
    assert "MONDO" in corpus.available_modules(craft_copy)
    with pytest.raises(CorpusError, match="MONDO has no MONDO/knowtator/ folder.*MONDO_with_genotype_annotations/knowtator-2"):
        corpus.read_document(craft_copy, "1001", modules=["MONDO"])


# ------------------------------------------------------------------- the extraction cache and its source


def _archive_from(folder: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="CRAFT-5.0.2")
    return path


@pytest.fixture
def bad_archive(tmp_path, craft_copy) -> Path:
    """A well-formed archive whose CL annotation file of document 1001 is damaged XML."""
    xml = craft_copy / "concept-annotation/CL/CL/knowtator/1001.txt.knowtator.xml"
    xml.write_text(xml.read_text()[:-40])
    (tmp_path / "bad").mkdir()
    return _archive_from(craft_copy, tmp_path / "bad" / "CRAFT-5.0.2.tar.gz")


def test_bad_archive_then_the_good_one_is_re_extracted(tmp_path, bad_archive, archive):
    data = tmp_path / "data"
    root = corpus.fetch_craft(bad_archive, data_dir=data)
    with pytest.raises(CorpusError, match="not well-formed.*marked for re-extraction"):
        corpus.read_document(root, "1001")
    assert not (root / corpus.MARKER).exists()  # the damage found while reading invalidated the cache
    root = corpus.fetch_craft(archive, sha256=sha(archive), data_dir=data)  # the good archive, no --force
    assert corpus.read_document(root, "1001").doc_id == "1001"
    assert json.loads((root / corpus.MARKER).read_text())["source"]["path"] == str(archive.resolve())


def test_another_archive_at_the_same_path_is_re_extracted(tmp_path, craft_copy, archive):
    data = tmp_path / "data"
    root = corpus.fetch_craft(archive, data_dir=data)
    (craft_copy / "articles/txt/1001.txt").write_text("changed text\n")
    _archive_from(craft_copy, archive)  # same path, other content (size and mtime differ)
    corpus.fetch_craft(archive, data_dir=data)
    assert (root / "articles/txt/1001.txt").read_text() == "changed text\n"


def test_wrong_checksum_after_an_unverified_extraction_is_refused(tmp_path, archive, monkeypatch):
    data = tmp_path / "data"
    root = corpus.fetch_craft(archive, data_dir=data)  # unverified
    assert json.loads((root / corpus.MARKER).read_text())["sha256"] is None
    with pytest.raises(CorpusError, match="expected " + "0" * 64):
        corpus.fetch_craft(archive, sha256="0" * 64, data_dir=data)
    monkeypatch.setenv("CRAFT_SHA256", "1" * 64)
    with pytest.raises(CorpusError, match="expected " + "1" * 64):
        corpus.fetch_craft(archive, data_dir=data)


def test_unverified_extraction_is_verified_once_without_re_extracting(tmp_path, archive, monkeypatch):
    data = tmp_path / "data"
    root = corpus.fetch_craft(archive, data_dir=data)
    monkeypatch.setattr(corpus, "_extract", lambda *a, **k: pytest.fail("should verify, not re-extract"))
    assert corpus.fetch_craft(archive, sha256=sha(archive), data_dir=data) == root
    assert json.loads((root / corpus.MARKER).read_text())["sha256"] == sha(archive)


def test_damaged_extraction_is_not_reused(tmp_path, archive):
    data = tmp_path / "data"
    root = corpus.fetch_craft(archive, data_dir=data)
    (root / "articles/txt/1002.txt").unlink()  # damaged after the extraction
    corpus.fetch_craft(archive, data_dir=data)
    assert (root / "articles/txt/1002.txt").is_file()
    (root / "structural-annotation/dependency/conllu/1001.conllu").write_text("truncated")
    corpus.fetch_craft(archive, data_dir=data)
    assert corpus.read_document(root, "1001").sentences


@pytest.mark.parametrize("damage", ["conllu", "alignment"])
def test_conllu_problem_while_reading_invalidates_the_cache(tmp_path, archive, damage):
    data = tmp_path / "data"
    root = corpus.fetch_craft(archive, data_dir=data)
    path = root / "structural-annotation/dependency/conllu/1001.conllu"
    marker = json.loads((root / corpus.MARKER).read_text())
    if damage == "conllu":
        path.write_text("1\tonly-two-columns\n")
    else:
        path.write_text(path.read_text().replace("\tretinal\t", "\tretina\t", 1))
    # keep the recorded size so that only reading can find the damage
    marker.update(corpus._content(root))
    (root / corpus.MARKER).write_text(json.dumps(marker))
    with pytest.raises((CorpusError, AlignmentError), match="--force"):
        corpus.read_document(root, "1001")
    corpus.fetch_craft(archive, data_dir=data)  # the next run re-extracts
    assert corpus.read_document(root, "1001").sentences


class _FakeResponse(io.BytesIO):
    headers: dict = {}  # noqa: RUF012 - a stand-in for urllib responses

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_is_tied_to_its_url(tmp_path, archive, monkeypatch):
    served = {"https://a.example/craft.tar.gz": gzip.compress(b"not an archive"),
              "https://b.example/craft.tar.gz": archive.read_bytes()}
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return _FakeResponse(served[url])

    monkeypatch.setattr(corpus.urllib.request, "urlopen", fake_urlopen)
    data = tmp_path / "data"
    good = sha(archive)
    with pytest.raises(CorpusError, match="sha256"):
        corpus.fetch_craft("https://a.example/craft.tar.gz", sha256=good, data_dir=data, progress=False)
    assert not list((data / "raw" / "downloads").iterdir())  # the failed download is deleted, not reused
    root = corpus.fetch_craft("https://b.example/craft.tar.gz", sha256=good, data_dir=data, progress=False)
    assert calls == ["https://a.example/craft.tar.gz", "https://b.example/craft.tar.gz"]
    assert corpus.read_split_ids(root)["test"] == ["1002"]
    # without a checksum, another URL never reuses the file downloaded from the first one
    with pytest.raises(CorpusError, match="does not open .*it was deleted") as err:
        corpus.fetch_craft("https://a.example/craft.tar.gz", data_dir=data, progress=False)
    assert "\n" not in str(err.value)  # one line
    assert calls[-1] == "https://a.example/craft.tar.gz"
    assert not (data / "raw" / "downloads" / "CRAFT-5.0.2.tar.gz").exists()  # what does not open is not kept
    # the failed extraction left B's complete extraction in place: it is still B's, reused without a download
    assert corpus.fetch_craft("https://b.example/craft.tar.gz", sha256=good, data_dir=data, progress=False) == root
    assert len(calls) == 3


def test_orphaned_temporary_folders_are_cleaned(tmp_path, archive):
    import os
    import socket
    import subprocess
    import sys

    raw = tmp_path / "data" / "raw"
    old = raw / ".extract-abc123"  # left by an older craftlib killed mid-extraction
    (old / "CRAFT-5.0.2").mkdir(parents=True)
    os.utime(old, (0, 0))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c == ".")
    orphan = raw / f".build-CRAFT-5.0.2-{host}_{dead}-xyz"  # killed a moment ago: removed at once
    orphan.mkdir()
    young_unknown = raw / ".extract-running-now"  # young, owner unknown: maybe a concurrent run; kept
    young_unknown.mkdir()
    corpus.fetch_craft(archive, data_dir=tmp_path / "data")
    assert not old.exists() and not orphan.exists() and young_unknown.exists()


def test_disk_full_while_extracting_is_not_called_a_corrupt_archive(tmp_path, archive, monkeypatch):
    import errno

    from craftlib.errors import StorageError

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "data" / "raw"))

    monkeypatch.setattr(tarfile.TarFile, "extractall", full)
    with pytest.raises(StorageError, match="No space left") as info:
        corpus.fetch_craft(archive, data_dir=tmp_path / "data")
    assert "corrupt" not in str(info.value) and "Delete it" not in str(info.value)
    raw = tmp_path / "data" / "raw"
    assert not (raw / "CRAFT-5.0.2").exists() and not [p for p in raw.iterdir() if p.name.startswith(".")]


def test_extraction_without_the_data_filter_is_refused(tmp_path, archive, monkeypatch):
    monkeypatch.delattr(tarfile, "data_filter")
    with pytest.raises(CorpusError, match="filter='data'.*3.10.12"):
        corpus.fetch_craft(archive, data_dir=tmp_path / "data")
    assert not (tmp_path / "data" / "raw" / "CRAFT-5.0.2").exists()


@pytest.fixture
def http_server():
    """A web server on 127.0.0.1 serving ``routes[path] = (headers, body, declared length or None)``."""
    import http.server
    import threading

    routes: dict[str, tuple[dict, bytes, int | None]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            headers, body, length = routes[self.path]
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(length if length is not None else len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)  # a declared length above len(body): the connection closes early

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("case", ["html", "cut short"])
def test_a_bad_download_is_never_cached(tmp_path, archive, http_server, case, capsys):
    from craftlib import cli

    base, routes = http_server
    good = archive.read_bytes()
    if case == "html":
        routes["/craft.tar.gz"] = ({"Content-Type": "text/html; charset=utf-8"},
                                   b"<!DOCTYPE html><html><body>Sign in to continue</body></html>", None)
        message = "served an HTML page"
    else:
        routes["/craft.tar.gz"] = ({"Content-Type": "application/gzip"}, good[: len(good) // 2], len(good))
        message = "cut short"
    data = tmp_path / "data"
    url = f"{base}/craft.tar.gz"
    assert cli.main(["data", "--source", url, "--data-dir", str(data), "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # after the download's bar
    assert len(errors) == 1 and message in errors[0] and "run the same command again" in errors[0]
    assert "Traceback" not in err
    downloads = data / "raw" / "downloads"
    assert not downloads.exists() or not [p for p in downloads.iterdir()]  # nothing kept, not even a temp file
    # the server is fixed: the same command downloads again and works
    routes["/craft.tar.gz"] = ({"Content-Type": "application/gzip"}, good, None)
    root = corpus.fetch_craft(url, data_dir=data, progress=False)
    assert corpus.read_split_ids(root)["test"] == ["1002"]
