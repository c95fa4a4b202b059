"""Use a trained model: tag texts, files, folders, PMC/JATS articles and CRAFT documents, with character offsets.

:func:`predict` takes what a learner has — a string, a ``.txt`` file, a folder of them, a PMC/JATS XML article
(``.xml``/``.nxml``) or a CRAFT document id — and returns :class:`~craftlib.export.TaggedDocument` objects whose
entities carry **character offsets into the original text** (``doc.text[e.start:e.end] == e.text``), a type, a
score and, with ``link=True``, ontology ids (:mod:`craftlib.linking`). The steps, each a function here:

1. :func:`split_sentences`: line breaks, then sentence-final ``.!?`` before an upper-case letter, a digit or an
   opening bracket (not after a common abbreviation such as ``Fig.``, ``e.g.``, ``et al.`` or an initial);
   a CRAFT document keeps its gold sentences and tokens;
2. :func:`tokenize`: CRAFT's tokenisation (:func:`craftlib.ontology.craft_tokenize`), each token located in the
   text, so a token is always a slice of it;
3. the sentences go through the model in windows (:func:`craftlib.windows.encode_windows`, length-sorted batches,
   :func:`craftlib.windows.merge_windows`), on an engine of :mod:`craftlib.engines` (torch, ONNX, ONNX int8);
4. IOB2 tags → token spans → character spans; the score of a mention is the mean probability of its words' tags.

The ``predict`` command writes the field's formats (:mod:`craftlib.export`): JSON lines, BioC XML/JSON, brat,
PubTator, CoNLL, HTML.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from craftlib import config, corpus, session, stages
from craftlib.bio import bio_spans
from craftlib.engines import ENGINES, export_onnx, file_size_mb, load_engine
from craftlib.errors import CraftlibError
from craftlib.evaluate import score
from craftlib.export import FORMATS, Entity, TaggedDocument, render, write
from craftlib.models import check_max_length, load_tokenizer
from craftlib.ontology import craft_tokenize
from craftlib.options import positive_int
from craftlib.runtime import detect_device
from craftlib.tags import merge_spans, overlap_flags
from craftlib.train import check_model_dir, check_model_labels, refuse_italic_model
from craftlib.windows import (
    META_COLUMNS,
    Markers,
    check_decode,
    decode_words,
    encode_windows,
    merge_windows,
    o_scores,
)


class InputError(CraftlibError):
    """An input the tagger cannot read: empty, binary, not UTF-8, or neither a file, a folder nor a CRAFT id."""


#: File suffixes read as text, and as PMC/JATS XML, when a folder is given.
TEXT_SUFFIXES = (".txt",)
XML_SUFFIXES = (".xml", ".nxml")
#: Words after which a full stop does not end a sentence (compared case-insensitively, without the stop).
ABBREVIATIONS = frozenset({
    "fig", "figs", "e.g", "i.e", "al", "et al", "vs", "cf", "ca", "approx", "no", "nos", "dr", "prof", "mr", "mrs",
    "ms", "st", "sp", "spp", "resp", "ref", "refs", "eq", "eqs", "vol", "suppl", "tab", "sec", "ch",
    "inc", "ltd", "co", "corp", "dept", "univ", "min", "mol", "wt", "var", "subsp", "sect",
})
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_LAST_WORD = re.compile(r"(\S+)$")
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1f]")


# ------------------------------------------------------------------------------------------- text → tokens


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``: every line is cut at sentence ends; empty lines give none; each
    span starts and ends on a non-space character."""
    out = []
    for line in re.finditer(r"[^\n\r\u2028\u2029\x0b\x0c\x85]+", text):
        start = line.start()
        for m in _SENTENCE_END.finditer(line.group()):
            head = line.group()[: m.start()]
            word = _LAST_WORD.search(head)
            w = word.group(1).casefold().lstrip("([\"'") if word else ""
            if w in ABBREVIATIONS or (len(w) == 1 and w.isalpha()) or head.casefold().endswith("et al"):
                continue
            out.append((start, line.start() + m.start() + 1))
            start = line.start() + m.end()
        out.append((start, line.end()))
    spans = []
    for s, e in out:  # trim spaces
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Token spans of ``text[start:end]`` (CRAFT's tokenisation), as offsets into ``text``."""
    end = len(text) if end is None else end
    piece = text[start:end]
    spans, pos = [], 0
    for tok in craft_tokenize(piece):
        k = piece.find(tok, pos)
        if k < 0:  # never expected (craft_tokenize returns pieces in order); fall back to whitespace chunks
            return [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", piece)]
        spans.append((start + k, start + k + len(tok)))
        pos = k + len(tok)
    return spans


# ------------------------------------------------------------------------------------------------ inputs


@dataclass
class Input:
    """One document to tag: an id, its text, (for a CRAFT document) its gold sentences as token spans, and the
    character spans its typesetting puts in italics (a PMC/JATS article, a CRAFT document; ``None``: plain text,
    which has none to show)."""

    id: str
    text: str
    source: str
    sentences: list[list[tuple[int, int]]] | None = None
    italics: list[tuple[int, int]] | None = None


def _decode(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{where} is not UTF-8 text (byte {err.start}: {data[err.start:err.start + 1]!r}): give a "
                         "UTF-8 .txt file, or convert it (iconv -f latin1 -t utf-8).") from err
    if _BINARY.search(text):
        raise InputError(f"{where} looks binary (control characters), not text: give a .txt file, a folder of them, "
                         "a PMC/JATS .xml article or a CRAFT document id.")
    return text


def _check_text(text: str, where: str) -> str:
    if not text.strip():
        raise InputError(f"{where} is empty: there is nothing to tag.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # bytes that were not UTF-8, kept as surrogates by Python (argv)
        raise InputError(f"The text to tag is not UTF-8 (byte {text[err.start].encode('utf-8', 'surrogateescape')!r}"
                         f" near {text[max(0, err.start - 20):err.start].encode('utf-8', 'replace').decode()!r}):"
                         " convert it first (e.g. `iconv -f latin1 -t utf-8`), or pass it as UTF-8.") from None
    return text


def jats_text(data: bytes, where: str = "the XML") -> str:
    """The readable text of a PMC/JATS article: title, abstract, then body section titles and paragraphs, one per
    line (whitespace inside each collapsed). Tables, figures (with their captions), references and formulas are
    left out; a paragraph nested in another (a list inside a paragraph) is part of the outer one's text."""
    return jats_document(data, where)[0]


def _styled_chars(el, italic: bool = False) -> list[tuple[str, bool]]:
    """The characters of ``el`` (its text, its children's, their tails) with whether an ``<italic>`` holds them."""
    italic = italic or el.tag == "italic"
    out = [(c, italic) for c in el.text or ""]
    for child in el:
        out += _styled_chars(child, italic)
        out += [(c, italic) for c in child.tail or ""]
    return out


def jats_document(data: bytes, where: str = "the XML") -> tuple[str, list[tuple[int, int]]]:
    """:func:`jats_text` and the character spans of that text the article sets in ``<italic>`` (gene symbols,
    species names: the typesetting a model trained with ``--italic-markers`` reads)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise InputError(f"{where} is not well-formed XML ({err}): give a PMC/JATS article (.xml/.nxml).") from err
    parts: list[str] = []
    italics: list[tuple[int, int]] = []
    offset = 0

    def add(el) -> None:
        nonlocal offset
        if el is None:
            return
        line: list[tuple[str, bool]] = []
        for c, it in _styled_chars(el):  # whitespace collapsed to one space, none at either end
            if c.isspace():
                if line and line[-1][0] != " ":
                    line.append((" ", it))
            else:
                line.append((c, it))
        while line and line[-1][0] == " ":
            line.pop()
        if not line:
            return
        if parts:
            offset += 1  # the newline before this part
        k = 0
        while k < len(line):  # each run of italic characters, without the spaces at its ends
            if not line[k][1]:
                k += 1
                continue
            end = k
            while end < len(line) and line[end][1]:
                end += 1
            lo, hi = k, end
            while lo < hi and line[lo][0] == " ":
                lo += 1
            while hi > lo and line[hi - 1][0] == " ":
                hi -= 1
            if hi > lo:
                italics.append((offset + lo, offset + hi))
            k = end
        parts.append("".join(c for c, _ in line))
        offset += len(parts[-1])

    add(root.find(".//article-meta//article-title"))
    for block in root.iterfind(".//abstract"):
        for el in block.iter():
            if el.tag in ("title", "p"):
                add(el)
    body = root.find(".//body")
    if body is not None:
        parents = {c: p for p in body.iter() for c in p}
        for el in body.iter():
            if el.tag in ("title", "p") and not _inside(parents, el, ("table-wrap", "disp-formula", "fig", "p")):
                add(el)
    if not parts:
        raise InputError(f"{where} holds no article title, abstract or body paragraph: is it a PMC/JATS article?")
    return "\n".join(parts), italics


def _inside(parents: dict, target, tags: Sequence[str]) -> bool:
    node = parents.get(target)
    while node is not None:
        if node.tag in tags:
            return True
        node = parents.get(node)
    return False


def _read_file(path: Path) -> Input:
    data = path.read_bytes()
    if path.suffix.lower() in XML_SUFFIXES:
        text, italics = jats_document(data, str(path))
        return Input(path.stem, _check_text(text, str(path)), str(path), italics=italics)
    return Input(path.stem, _check_text(_decode(data, str(path)), str(path)), str(path))


def _craft_input(doc_id: str, data: config.DataSpec) -> Input | None:
    root = corpus.fetch_craft(data.source, data_dir=data.data_dir, progress=False)
    if doc_id not in {d for ids in corpus.read_split_ids(root).values() for d in ids}:
        return None
    doc = corpus.read_document(root, doc_id, modules=(), annotation_sets=())
    sentences = [[(t.start, t.end) for t in s.tokens] for s in doc.sentences]
    italics = merge_spans((s.start, s.end) for s in doc.typography if s.label == "italic")
    return Input(doc_id, doc.text, f"CRAFT {doc_id}", sentences, italics)


def read_inputs(items: Iterable[str | os.PathLike], texts: Sequence[str] = (),
                data: config.DataSpec | None = None) -> list[Input]:
    """The documents named by ``items`` (files, folders, CRAFT ids) and the literal ``texts``; an empty, binary or
    unknown input raises :class:`InputError` (one line saying what to give instead). ``data``: where CRAFT is
    (:func:`craftlib.config.data_spec`; ``None``: the settings), for CRAFT ids."""
    out = [Input(f"text-{k + 1}", _check_text(t, f"text {k + 1}"), "text") for k, t in enumerate(texts)]
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES + XML_SUFFIXES)
            if not files:
                raise InputError(f"{path} holds no .txt, .xml or .nxml file: there is nothing to tag.")
            out.extend(_read_file(p) for p in files)
        elif path.is_file():
            out.append(_read_file(path))
        elif re.fullmatch(r"\d{1,10}", str(item)):
            doc = _craft_input(str(item), data or config.data_spec())
            if doc is None:
                raise InputError(f"{item} is not a CRAFT document id (see articles/ids in the corpus) nor a file.")
            out.append(doc)
        else:
            raise InputError(f"{item}: no such file or folder, and not a CRAFT document id. Give a .txt file, a "
                             "folder of them, a PMC/JATS .xml article, a CRAFT id (e.g. 11532192) or --text.")
    return out


# ------------------------------------------------------------------------------------------------ tagging


class Tagger:
    """A trained model ready to tag: its engine (:func:`craftlib.engines.load_engine`), tokenizer and window
    settings, and optionally a :class:`craftlib.linking.Linker`."""

    def __init__(self, model_dir: str | os.PathLike, engine: str = "auto", linker=None, batch_size: int = 16):
        self.model_dir = Path(model_dir)
        metrics = check_model_dir(self.model_dir)
        model_config = check_model_labels(self.model_dir)  # refuses a model without the 13 CRAFT labels
        hp = (metrics or {}).get("hyperparameters") or {}
        self.max_length = int(hp.get("max_length", 128))
        check_max_length(self.model_dir, self.max_length, model_config)
        self.stride = int(hp.get("window_stride", 32))
        # a record without them: a run made before they existed (the reference recipe's values), or no record
        self.case_markers = bool(config.recorded_setting(hp, "case_markers"))
        # the typography ablation's model: it tags only documents that kept their italics (PMC XML, CRAFT ids)
        self.italic_markers = bool(hp.get("italic_markers", False))
        self.decode = check_decode(config.recorded_setting(hp, "decode"))  # how the run read its tags
        self.tokenizer = load_tokenizer(self.model_dir)
        Markers(self.case_markers, self.italic_markers).add_to(self.tokenizer)
        self.engine = load_engine(self.model_dir, engine)
        self.linker = linker
        self.batch_size = batch_size

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def tag_tokens(self, sentences: Sequence[Sequence[str]], progress: bool = False,
                   italic: Sequence[Sequence[bool]] | None = None) -> tuple[list[list[str]], list[list[float]]]:
        """IOB2 tags and their probabilities for pre-split sentences (lists of words); ``italic``: per sentence,
        which words are set in italics (what a model trained with ``--italic-markers`` needs, and only it)."""
        import numpy as np

        if self.italic_markers and italic is None:
            refuse_italic_model(self.model_dir, {"italic_markers": True})
        sentences = [list(s) for s in sentences]
        feats = encode_windows(self.tokenizer, sentences, None, self.max_length, self.stride,
                               case_markers=self.case_markers, italic=italic if self.italic_markers else None)
        n = len(feats["input_ids"])
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in feats]
        pad = self.tokenizer.pad_token_id or 0
        order = sorted(range(n), key=lambda i: len(feats["input_ids"][i]))
        ids: list = [None] * n
        probs: list = [None] * n
        logp: list = [None] * n  # viterbi: every label's log-probability
        with session.activity(math.ceil(n / self.batch_size), "tagging", progress=progress) as advance:
            for b in range(0, n, self.batch_size):
                advance()
                idx = order[b:b + self.batch_size]
                width = len(feats["input_ids"][idx[-1]])
                batch = {k: np.array([feats[k][i] + [pad if k == "input_ids" else 0] * (width - len(feats[k][i]))
                                      for i in idx], dtype=np.int64) for k in names}
                logits = self.engine.logits(batch)
                z = logits - logits.max(-1, keepdims=True)
                p = np.exp(z)
                p /= p.sum(-1, keepdims=True)
                for row, i in enumerate(idx):
                    m = len(feats["input_ids"][i])
                    if self.decode != "argmax":
                        logp[i] = np.log(np.maximum(p[row, :m], 1e-30))
                        continue
                    ids[i] = p[row, :m].argmax(-1).tolist()
                    probs[i] = p[row, :m].max(-1).tolist()
        meta = [{k: feats[k][i] for k in META_COLUMNS} for i in range(n)]
        lengths = [len(s) for s in sentences]
        id2label = self.engine.id2label
        if self.decode != "argmax":  # the best valid IOB2 sequence; each word's probability is its chosen label's
            labels = [id2label[i] for i in range(len(id2label))]
            word_scores, _ = merge_windows(lengths, meta, logp, fill=o_scores(len(labels), labels.index("O")),
                                           keep=True)
            word_ids = decode_words(word_scores, labels, self.decode)
            return ([[id2label[i] for i in row] for row in word_ids],
                    [[round(float(np.exp(w[i])), 6) for w, i in zip(ws, row)] for ws, row in zip(word_scores, word_ids)])
        word_ids, _ = merge_windows(lengths, meta, ids)
        # the same windows win for every word whatever the values, so this merges the matching probabilities
        word_p, _ = merge_windows(lengths, meta, [[round(x * 1e6) for x in row] for row in probs], fill=10 ** 6)
        tags = [[id2label[i] for i in row] for row in word_ids]
        return tags, [[x / 1e6 for x in row] for row in word_p]

    def tag(self, inputs: Sequence[Input], progress: bool = False) -> list[TaggedDocument]:
        """Tag documents: split, tokenize, predict all their sentences together (batching across documents),
        and build entities with character offsets (linked when the tagger has a linker)."""
        docs = []
        for doc in inputs:
            spans = doc.sentences if doc.sentences is not None else [
                tokenize(doc.text, s, e) for s, e in split_sentences(doc.text)]
            docs.append((doc, [s for s in spans if s]))
        out = []
        # documents one by one (a folder shows a bar per document); their sentences in length-sorted batches
        with session.activity(len(docs), "documents", "doc", progress=progress and len(docs) > 1) as advance:
            for doc, spans in docs:
                words = [[doc.text[s:e] for s, e in sent] for sent in spans]
                italic = self._italic_words(doc, spans)
                tags, probs = self.tag_tokens(words, italic=italic) if words else ([], [])
                out.append(self._document(doc, spans, tags, probs))
                advance()
        return out

    def _italic_words(self, doc: Input, spans) -> list[list[bool]] | None:
        """Per sentence, whether each token overlaps an italic span of ``doc`` (``None`` for a model without italic
        markers); a document without typesetting is refused for a model with them."""
        if not self.italic_markers:
            return None
        if doc.italics is None:
            raise InputError(f"{doc.source}: {self.model_dir} was trained with --italic-markers and reads the words "
                             "a journal sets in italics, which plain text does not have. Give it a PMC/JATS article "
                             "(.xml/.nxml) or a CRAFT id, or tag this text with a model trained without them.")
        merged = merge_spans(doc.italics)
        return [overlap_flags(merged, sent) for sent in spans]

    def tag_text(self, text: str, doc_id: str = "text") -> TaggedDocument:
        """One text, tagged (an empty text gives a document without mentions)."""
        return self.tag([Input(doc_id, text, "text")])[0]

    def _document(self, doc: Input, spans, tags, probs) -> TaggedDocument:
        entities = []
        for sent, tg, pr in zip(spans, tags, probs):
            for s, e, kind in bio_spans(tg):
                start, end = sent[s][0], sent[e - 1][1]
                ent = Entity(start, end, kind, doc.text[start:end], round(sum(pr[s:e]) / (e - s), 4))
                if self.linker is not None:
                    link = self.linker.link(ent.text, kind)
                    ent.ids, ent.names, ent.link = list(link.ids), list(link.names), link.status
                entities.append(ent)
        return TaggedDocument(doc.id, doc.text, entities, [list(s) for s in spans], tags, doc.source)


def predict(model_dir: str | os.PathLike, inputs: str | os.PathLike | Sequence = (), texts: Sequence[str] = (),
            engine: str = "auto", link: bool = False, batch_size: int = 16, progress: bool = False,
            data: config.DataSpec | None = None) -> list[TaggedDocument]:
    """Tag ``texts`` (strings) and ``inputs`` (paths of .txt / .xml files or folders, CRAFT document ids) with the
    model in ``model_dir`` on ``engine`` (:data:`craftlib.engines.ENGINES`); ``link=True`` adds ontology ids.
    ``data``: where CRAFT and the ontology files are (:func:`craftlib.config.data_spec`; ``None``: the settings),
    for CRAFT ids and linking."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if isinstance(texts, str):
        texts = [texts]
    data = data or config.data_spec()
    docs = read_inputs(inputs, texts, data)
    linker = stages.load("linking", data, say=lambda line: None) if link else None
    return Tagger(model_dir, engine, linker, batch_size).tag(docs, progress=progress)


# ------------------------------------------------------------------------------------------------ engines


def engines_to_compare() -> list[str]:
    """torch fp32, torch bf16 (only where bf16 is native: a CPU with AVX512-BF16/AMX, or a GPU), ONNX fp32, ONNX int8
    (the ONNX ones when onnxruntime is installed)."""
    out = ["torch"] + (["torch-bf16"] if detect_device("auto").bf16 else [])
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return out
    return out + ["onnx", "onnx-int8"]


def compare_engines(model_dir: str | os.PathLike, sentences: Sequence[Sequence[str]],
                    gold: Sequence[Sequence[str]] | None = None, engines: Sequence[str] | None = None,
                    batch_size: int = 16, rounds: int = 1, progress: bool = False) -> list[dict]:
    """Tag the same pre-split ``sentences`` with each engine (exporting the ONNX models first when needed); one
    row per engine: ``sentences_per_s`` (best of ``rounds``, engines alternating within a round, after a short
    warm-up), ``f1`` against ``gold`` (seqeval, as every system is scored), ``size_mb`` of what it loads, and
    ``same_tags`` (the share of words tagged as torch fp32 tags them)."""
    engines = list(engines or engines_to_compare())
    if any(e.startswith("onnx") for e in engines):
        export_onnx(model_dir, quantize="onnx-int8" in engines)
    taggers = {e: Tagger(model_dir, engine=e, batch_size=batch_size) for e in engines}
    best: dict[str, float] = {}
    tags: dict[str, list] = {}
    for r in range(rounds):
        for e, t in taggers.items():
            t.tag_tokens(sentences[:batch_size])  # warm-up: lazy initialisation, caches
            t0 = time.perf_counter()
            tags[e], _ = t.tag_tokens(sentences, progress=progress)
            best[e] = min(best.get(e, float("inf")), time.perf_counter() - t0)
    ref = tags[engines[0]]
    n_words = sum(map(len, ref))
    rows = []
    for e in engines:
        same = sum(a == b for x, y in zip(ref, tags[e]) for a, b in zip(x, y)) / max(n_words, 1)
        row = {"engine": e, "sentences": len(sentences), "seconds": round(best[e], 3),
               "sentences_per_s": round(len(sentences) / best[e], 2), "size_mb": file_size_mb(model_dir, e),
               "same_tags": round(same, 5)}
        if gold is not None:
            row["f1"] = round(score(list(gold), tags[e])["f1"], 4)
        rows.append(row)
    base = rows[0]["sentences_per_s"]
    for row in rows:
        row["speedup"] = round(row["sentences_per_s"] / base, 2)
        if gold is not None:
            row["f1_difference"] = round(row["f1"] - rows[0]["f1"], 4)
    return rows


# ------------------------------------------------------------------------------------------------ CLI


def _print_plain(docs: Sequence[TaggedDocument]) -> None:
    for doc in docs:
        print(f"{doc.id}: {len(doc.entities)} mention(s)")
        if not doc.entities:
            print("  no entities found")
        for e in doc.entities:
            ids = "" if e.link is None else f"  {e.link}: {', '.join(e.ids) or '-'}"
            print(f"  {e.start:>6}-{e.end:<6} {e.type:<9} {e.score:.2f}  {e.text}{ids}")


def _cmd_predict(args: argparse.Namespace) -> int:
    if not args.inputs and not args.text:
        raise InputError("Nothing to tag: give --text \"...\", a .txt/.xml file, a folder or a CRAFT document id.")
    fmt = "jsonl" if args.json else args.format
    if fmt == "brat" and not args.out:
        raise CraftlibError("--format brat writes a folder of .txt/.ann files: give it with --out DIR.")
    progress = not args.no_progress and sys.stderr.isatty()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # standard output carries the tagged documents alone
        docs = predict(args.model, args.inputs, args.text or (), engine=args.engine, link=args.link,
                       batch_size=args.batch_size, progress=progress or (args.out is not None and not args.no_progress),
                       data=config.data_spec(data=args.data_dir, source=args.source))
    if fmt is None:
        _print_plain(docs)
    elif args.out:
        written = write(docs, fmt, args.out)
        n = sum(len(d.entities) for d in docs)
        print(f"{len(docs)} document(s), {n} mention(s) in {time.perf_counter() - t0:.1f} s → "
              f"{args.out if fmt == 'brat' else written[0]}", file=sys.stderr)
    else:
        sys.stdout.write(render(docs, fmt))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    paths = export_onnx(args.model, quantize=not args.no_quantize, force=args.force)
    for name, path in paths.items():
        print(f"{name:<10} {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def add_commands(subparsers) -> None:
    """``predict`` and ``export-onnx``."""
    q = subparsers.add_parser(
        "predict", help="tag texts, files, folders, PMC/JATS articles or CRAFT documents with a trained model",
        description="Tag documents with a model written by `train`; mentions come with character offsets into the "
                    "original text, a score and (--link) ontology ids. Without --format: a readable list.")
    q.add_argument("inputs", nargs="*", help=".txt file, folder of .txt/.xml files, PMC/JATS .xml/.nxml article, "
                                             "or CRAFT document id")
    q.add_argument("--model", required=True, help="a models/<run> directory")
    q.add_argument("--text", action="append", help="text to tag (repeat for several)")
    q.add_argument("--format", choices=tuple(FORMATS), default=None, help="output format (default: a readable list)")
    q.add_argument("--out", default=None, help="output file (brat: a folder); default: standard output")
    q.add_argument("--json", action="store_true", help="the same as --format jsonl")
    q.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto (default): ONNX int8 when exported (`export-onnx`), else torch")
    q.add_argument("--link", action="store_true", help="add the ontology ids whose names match each mention")
    q.add_argument("--batch-size", type=positive_int, default=16)
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.add_argument("--source", default=None, help="CRAFT source, for CRAFT document ids and --link")
    q.add_argument("--data-dir", default=None)
    q.set_defaults(func=_cmd_predict)

    e = subparsers.add_parser("export-onnx", help="export a trained model to ONNX (fp32 and int8) for fast CPU use",
                              description="Write <model>/onnx/model.onnx and model-int8.onnx (ONNX Runtime dynamic "
                                          "quantisation); `predict --engine auto` then uses the int8 model.")
    e.add_argument("--model", required=True, help="a models/<run> directory")
    e.add_argument("--no-quantize", action="store_true", help="only the fp32 ONNX model")
    e.add_argument("--force", action="store_true", help="export again even when current")
    e.set_defaults(func=_cmd_export)


__all__ = ["ABBREVIATIONS", "Input", "InputError", "Tagger", "compare_engines", "engines_to_compare", "jats_text",
           "predict", "read_inputs", "split_sentences", "tokenize"]
