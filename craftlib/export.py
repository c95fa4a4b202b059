"""Tagged documents and the formats of the field: JSON lines, BioC (XML and JSON), brat standoff, PubTator, CoNLL,
and an HTML view.

A :class:`TaggedDocument` is the original text with its :class:`Entity` mentions; every offset is a character
offset into that text (Python ``str`` indices, i.e. Unicode code points), so ``text[e.start:e.end] == e.text``
always holds (:func:`check_offsets`). Every writer keeps these offsets as they are:

* ``jsonl``    one JSON object per document: ``id``, ``text``, ``entities`` (start, end, type, text, score, ids...)
* ``bioc``     BioC XML (``bioc`` package), one passage at offset 0 holding the whole text; each annotation has
               its location, ``type``, ``score``, ``identifier`` (ids, comma-separated) and ``link`` infons
* ``bioc-json``the same collection in BioC JSON
* ``brat``     ``<id>.txt`` (the text, unchanged) and ``<id>.ann``: ``T`` lines, ``N`` normalisation lines per id,
               ``#`` AnnotatorNotes with the score and link status; a mention across a line break is written
               as fragments (``start end;start end``), since brat lines cannot hold a newline
* ``pubtator`` ``id|t|`` first line, ``id|a|`` the rest (line breaks become spaces, offsets unchanged), one
               tab-separated line per mention (ids comma-separated)
* ``conll``    ``token TAB tag`` per token, a blank line between sentences, ``# doc = id`` before each document
* ``html``     one page, the entities highlighted by type (ids and score on hover)

Readers (:func:`read_bioc`, :func:`read_brat`) read these files back with the ``bioc`` package.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from craftlib import cache
from craftlib.errors import CraftlibError

#: Output formats :func:`write` knows, and the file suffix of each (brat writes a folder).
FORMATS: dict[str, str] = {"jsonl": ".jsonl", "bioc": ".xml", "bioc-json": ".json", "brat": "", "pubtator": ".txt",
                           "conll": ".conll", "html": ".html"}
#: Highlight colour per type (the colours of craftlib.viz).
COLORS = {"Sequence": "#fde68a", "Cell": "#a7f3d0", "Protein": "#bfdbfe", "Gene": "#fbcfe8", "Taxon": "#ddd6fe",
          "Chemical": "#fecaca"}


@dataclass
class Entity:
    """One predicted mention: ``text[start:end]`` of its document, its type, the model's score (mean probability of
    its words' tags) and, when linked, its ontology ids (best first), their names and ``link`` status."""

    start: int
    end: int
    type: str
    text: str
    score: float = 1.0
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    link: str | None = None  # "unique", "ambiguous", "none"; None: not linked

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TaggedDocument:
    """A document's original text, its entities (sorted by offset), and its sentences as lists of token spans
    ``(start, end)`` with their IOB2 tags (what the CoNLL writer prints)."""

    id: str
    text: str
    entities: list[Entity] = field(default_factory=list)
    tokens: list[list[tuple[int, int]]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    source: str | None = None

    def to_dict(self, text: bool = True) -> dict:
        out = {"id": self.id, "source": self.source, "entities": [e.to_dict() for e in self.entities]}
        return {**out, "text": self.text} if text else out


def check_offsets(doc: TaggedDocument) -> None:
    """Raise ``AssertionError`` unless every entity's offsets slice its text out of the document."""
    for e in doc.entities:
        assert 0 <= e.start < e.end <= len(doc.text), (doc.id, e)
        assert doc.text[e.start:e.end] == e.text, (doc.id, e, doc.text[e.start:e.end])


def _safe_name(doc_id: str) -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in doc_id).strip(".")
    return name or "document"


# ------------------------------------------------------------------------------------------------ BioC


def to_bioc(docs: Iterable[TaggedDocument], source: str = "craftlib"):
    """A ``bioc.BioCCollection``: one document per tagged document, one passage (offset 0) with the whole text."""
    import bioc

    collection = bioc.BioCCollection()
    collection.source = source
    collection.key = "craftlib.key"
    for doc in docs:
        bdoc = bioc.BioCDocument()
        bdoc.id = doc.id
        passage = bioc.BioCPassage()
        passage.offset = 0
        passage.text = doc.text
        for k, e in enumerate(doc.entities):
            ann = bioc.BioCAnnotation()
            ann.id = f"T{k + 1}"
            ann.text = e.text
            ann.infons["type"] = e.type
            ann.infons["score"] = f"{e.score:.4f}"
            if e.link is not None:
                ann.infons["identifier"] = ",".join(e.ids)
                ann.infons["link"] = e.link
            ann.add_location(bioc.BioCLocation(e.start, e.end - e.start))
            passage.add_annotation(ann)
        bdoc.add_passage(passage)
        collection.add_document(bdoc)
    return collection


def from_bioc(collection) -> list[TaggedDocument]:
    """Tagged documents back from a BioC collection written by :func:`to_bioc` (or any BioC file whose
    annotations have a ``type`` infon and one location each)."""
    out = []
    for bdoc in collection.documents:
        text = "".join(p.text or "" for p in bdoc.passages)
        entities = []
        for p in bdoc.passages:
            for ann in p.annotations:
                loc = ann.total_span
                ids = [i for i in (ann.infons.get("identifier") or "").split(",") if i]
                entities.append(Entity(loc.offset, loc.offset + loc.length, ann.infons.get("type", ""), ann.text,
                                       float(ann.infons.get("score", 1.0)), ids, [], ann.infons.get("link")))
        out.append(TaggedDocument(bdoc.id, text, entities))  # in file order: the order they were written
    return out


def read_bioc(path: str | os.PathLike) -> list[TaggedDocument]:
    """Read a BioC XML (``.xml``) or BioC JSON (``.json``) file with the ``bioc`` package."""
    import bioc
    from bioc import biocjson

    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        collection = biocjson.load(fh) if path.suffix == ".json" else bioc.load(fh)
    return from_bioc(collection)


# ------------------------------------------------------------------------------------------------ brat


def _breaks(ch: str) -> bool:
    return ch != " " and ch.isspace()


def _fragments(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut at every whitespace character but the plain space (a brat standoff line cannot hold a
    line break, and a tab separates its fields)."""
    out, pos = [], start
    for k in range(start, end):
        if _breaks(text[k]):
            if k > pos:
                out.append((pos, k))
            pos = k + 1
    if end > pos:
        out.append((pos, end))
    return out


def brat_ann(doc: TaggedDocument) -> str:
    """The ``.ann`` standoff of a document."""
    lines, n_norm = [], 0
    for k, e in enumerate(doc.entities, 1):
        frags = _fragments(doc.text, e.start, e.end)
        locs = ";".join(f"{s} {t}" for s, t in frags)
        lines.append(f"T{k}\t{e.type} {locs}\t{' '.join(doc.text[s:t] for s, t in frags)}")
        for i, name in zip(e.ids, e.names or [""] * len(e.ids)):
            n_norm += 1
            lines.append(f"N{n_norm}\tReference T{k} {i}\t{' '.join(name.split())}")
        note = f"score={e.score:.4f}" + (f" link={e.link}" if e.link is not None else "")
        lines.append(f"#{k}\tAnnotatorNotes T{k}\t{note}")
    return "".join(f"{x}\n" for x in lines)


def read_brat(txt_path: str | os.PathLike) -> TaggedDocument:
    """A brat ``.txt`` and its ``.ann`` read back with ``bioc.brat``; the ids come from the ``N`` lines (which
    ``bioc.brat`` skips) and the score from the AnnotatorNotes."""
    from bioc import brat

    txt_path = Path(txt_path)
    ann_path = txt_path.with_suffix(".ann")
    with open(txt_path, encoding="utf-8", newline="") as fh:  # newline="": a \r stays, offsets stay
        text = fh.read()
    with open(ann_path, encoding="utf-8", newline="") as fh:
        ann = fh.read()
    bdoc = brat.loads(text, ann, docid=txt_path.stem)
    ids: dict[str, list[str]] = {}
    for line in ann.split("\n"):
        if line.startswith("N"):
            _, middle, _ = line.split("\t")
            _, ref, oid = middle.split(" ", 2)
            ids.setdefault(ref, []).append(oid)
    notes = {n.refid: dict(kv.split("=", 1) for kv in n.text.split()) for n in bdoc.notes}
    entities = []
    for ent in bdoc.entities:
        start, end = ent.total_span
        note = notes.get(ent.id, {})
        entities.append(Entity(start, end, ent.type, text[start:end], float(note.get("score", 1.0)),
                               ids.get(ent.id, []), [], note.get("link")))
    return TaggedDocument(bdoc.id, text, entities)  # in file order: the order they were written


# ------------------------------------------------------------------------------------------ other formats


def pubtator(doc: TaggedDocument) -> str:
    """One PubTator record: the first line as title, the rest as abstract (line breaks as spaces)."""
    head, sep, rest = doc.text.partition("\n")  # offsets of the rest: len(head) + 1, as PubTator counts
    flat = (lambda s: "".join(" " if _breaks(c) else c for c in s))
    pid = _safe_name(doc.id).replace("|", "_")
    lines = [f"{pid}|t|{flat(head)}"] + ([f"{pid}|a|{flat(rest)}"] if sep else [])
    for e in doc.entities:
        lines.append("\t".join([pid, str(e.start), str(e.end), flat(e.text), e.type, ",".join(e.ids)]))
    return "\n".join(lines) + "\n"


def conll(doc: TaggedDocument) -> str:
    out = [f"# doc = {doc.id}"]
    for spans, tags in zip(doc.tokens, doc.tags):
        out.extend(f"{doc.text[s:e]}\t{t}" for (s, e), t in zip(spans, tags))
        out.append("")
    return "\n".join(out) + "\n"


def html_view(doc: TaggedDocument) -> str:
    """The text with its entities highlighted by type; ids, names and score in each mark's tooltip."""
    parts, pos = [], 0
    for e in doc.entities:
        if e.start < pos:
            continue
        parts.append(html.escape(doc.text[pos:e.start]))
        tip = f"{e.type}, score {e.score:.2f}"
        if e.link is not None:
            tip += f", {e.link}: " + ", ".join(f"{i} {n}".strip() for i, n in zip(e.ids, e.names or e.ids)) \
                if e.ids else ", no id"
        color = COLORS.get(e.type, "#dddddd")
        parts.append(f'<mark title="{html.escape(tip)}" style="background:{color};padding:0 2px;border-radius:3px">'
                     f"{html.escape(e.text)}<sub style=\"font-size:0.65em;font-weight:bold;margin-left:2px\">"
                     f"{html.escape(e.type)}{'' if not e.ids else ' ' + html.escape(e.ids[0])}</sub></mark>")
        pos = e.end
    parts.append(html.escape(doc.text[pos:]))
    body = "".join(parts).replace("\n", "<br>\n")
    return (f'<section><h3>{html.escape(doc.id)}</h3><div style="font-family:sans-serif;line-height:1.9">{body}'
            "</div></section>")


def write(docs: Sequence[TaggedDocument], fmt: str, out: str | os.PathLike) -> list[Path]:
    """Write ``docs`` in format ``fmt`` (:data:`FORMATS`) to the file ``out`` (brat: the folder ``out``, one
    ``.txt``/``.ann`` pair per document); every file written atomically. Returns the paths written."""
    if fmt not in FORMATS:
        raise CraftlibError(f"Unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    out = Path(out)
    if fmt == "brat":
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for doc in docs:
            stem = out / _safe_name(doc.id)
            for suffix, content in ((".txt", doc.text), (".ann", brat_ann(doc))):
                with cache.atomic_open(stem.with_suffix(suffix), "w", encoding="utf-8", newline="") as fh:
                    fh.write(content)
                written.append(stem.with_suffix(suffix))
        return written
    if fmt == "bioc":
        import bioc

        content = bioc.dumps(to_bioc(docs))
    elif fmt == "bioc-json":
        from bioc import biocjson

        content = biocjson.dumps(to_bioc(docs), indent=1)
    else:
        content = render(docs, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    with cache.atomic_open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write(content)
    return [out]


def render(docs: Sequence[TaggedDocument], fmt: str) -> str:
    """``docs`` as one string in a text format (``jsonl``, ``pubtator``, ``conll``, ``html``, ``bioc``,
    ``bioc-json``)."""
    if fmt == "jsonl":
        return "".join(json.dumps(d.to_dict()) + "\n" for d in docs)  # ASCII: no raw U+2028 in a line
    if fmt == "pubtator":
        return "\n".join(pubtator(d) for d in docs)
    if fmt == "conll":
        return "\n".join(conll(d) for d in docs)
    if fmt == "html":
        legend = " ".join(f'<mark style="background:{c}">{t}</mark>' for t, c in COLORS.items())
        return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>craftlib predictions</title></head>"
                f"<body><p>{legend}</p>{''.join(html_view(d) for d in docs)}</body></html>\n")
    if fmt == "bioc":
        import bioc

        return bioc.dumps(to_bioc(docs))
    if fmt == "bioc-json":
        from bioc import biocjson

        return biocjson.dumps(to_bioc(docs), indent=1)
    raise CraftlibError(f"Format {fmt!r} is written to a folder, not a string: use write(docs, {fmt!r}, folder).")


__all__ = ["FORMATS", "Entity", "TaggedDocument", "brat_ann", "check_offsets", "conll", "from_bioc", "html_view",
           "pubtator", "read_bioc", "read_brat", "render", "to_bioc", "write"]
