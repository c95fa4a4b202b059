"""Entity lists per type from the official OBO ontologies (input of the augmentation and the dictionary baseline).

Where the terms come from, per entity type (``TYPE_PREFIX``)::

    Sequence  SO         names + EXACT synonyms
    Cell      CL         names + EXACT synonyms
    Taxon     NCBITaxon  names + EXACT synonyms
    Chemical  CHEBI      names + EXACT synonyms
    Protein   PR         names + EXACT synonyms that are not gene-symbol short labels
    Gene      PR         the EXACT ``PRO-short-label`` synonyms that look like gene symbols (``CD4``)

PR terms are kept only for organism-generic categories (:data:`PR_CATEGORIES`: gene, family, complex).

Only **EXACT** synonyms are kept: a replacement must name the same kind of thing as the mention it
replaces. NARROW/BROAD/RELATED synonyms are often not names at all (PR's ``"cow-"`` RELATED short
labels, ChEBI formulas, CL's lab jargon), so they would put non-entities into the lists.

Sources (strongest first): ``sources={"Gene": [path, ...]}`` / ``--obo Gene=PATH`` /
``CRAFTLIB_ONTOLOGY_SOURCES="Gene=a.obo,b.obo;Taxon=c.obo.gz"`` replace the defaults of that type (an empty
list means "no ontology"); otherwise the defaults are the ontology zips bundled in the CRAFT release
(``concept-annotation/<M>/<M>/<M>.obo.zip``) plus every ``*.obo``, ``*.obo.gz``, ``*.obo.zip`` of the
ontology directory (``ontology_dir=`` / ``--ontology-dir`` / ``CRAFTLIB_ONTOLOGY_DIR``) whose file name starts
with the prefix (``chebi_slice.obo.gz`` → CHEBI, ``pr_*.obo.gz`` → PR). Only terms whose id has the
type's prefix are read (import files carry foreign terms), obsolete terms are dropped.

A type with no ontology source at all falls back to the class labels (ontology names) of that type's
**train-split** CRAFT annotations, and the build prints a warning; dev/test are never used for lists.

Terms are normalised (whitespace), filtered (``MIN_CHARS``..``MAX_CHARS`` characters, at most
``MAX_TOKENS`` tokens, at least one letter or digit) and de-duplicated case-insensitively on their
token sequence (:func:`term_key`), then written one per line to
``<processed>/entity_lists/<Type>.txt`` with ``stats.json``.

:func:`craft_tokenize` splits a term the way CRAFT's CoNLL-U files tokenize text (see its docstring).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from craftlib import config
from craftlib.errors import CraftlibError, OntologyError

log = logging.getLogger(__name__)

#: Entity type → OBO id prefix of its ontology.
TYPE_PREFIX: dict[str, str] = {
    "Sequence": "SO",
    "Cell": "CL",
    "Protein": "PR",
    "Gene": "PR",
    "Taxon": "NCBITaxon",
    "Chemical": "CHEBI",
}
#: CRAFT concept-annotation module of each type (for the bundled zips and the fallback).
TYPE_MODULE: dict[str, str] = dict(TYPE_PREFIX)
OBO_SUFFIXES = (".obo", ".obo.gz", ".obo.zip")
MIN_CHARS = 2
MAX_CHARS = 80
MAX_TOKENS = 12
SOURCES_ENV = "CRAFTLIB_ONTOLOGY_SOURCES"
SHORT_LABEL = "PRO-short-label"

# ------------------------------------------------------------------------------------------ tokenizer

#: Prefixes CRAFT keeps attached with their hyphen (``anti-mouse``, ``non-invasive``, ``co-expressed``).
_HYPHEN_PREFIXES = frozenset({
    "anti", "non", "co", "pre", "post", "multi", "over", "sub", "pan", "inter", "semi", "pro", "mid", "auto", "re",
    "intra", "extra", "trans", "mono", "hetero", "homo", "neo", "peri", "ultra",
})
_PREFIX_HYPHEN = re.compile(r"^([A-Za-z]+|\d+(?:\.\d+)?)-(?=[A-Za-z])")
_PUNCT = re.compile(
    r"""((?<!\d),|,(?!\d{3}\b)|[–—/()\[\]{};:"“”‘’′″%=<>×~∼±&*#]|'s\b|'|-|(?<=\w)[+−]+(?=\W|$))"""
)


def craft_tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens like CRAFT's CoNLL-U files (spaCy-like rules, checked on the corpus).

    Split on whitespace; then split off as separate tokens ``- / ( ) [ ] { } , ; : " ' % = < > × ~ & * #``,
    typographic quotes and primes, a possessive ``'s`` and trailing ``+``/``−`` (``Sam68+`` → ``Sam68 +``).
    Kept whole: ``.`` inside a token (``0.05``, ``sp.``), digit groups (``1,000``), and a hyphen after a
    common prefix (``anti-mouse``, ``non-invasive``) or in ``N-fold``. A final ``.``/``!``/``?`` is split off.
    Re-tokenizing the ``# text`` of all 30,830 CRAFT CoNLL-U sentences with these rules gives exactly the
    gold tokens for 95.8% of them (the rest: ``°C``, ``Ca2+``, ``X-gal``, URLs, ``cannot``).
    """
    out: list[str] = []
    for chunk in text.split():
        m = _PREFIX_HYPHEN.match(chunk)
        if m and (m.group(1).lower() in _HYPHEN_PREFIXES or (m.group(1)[0].isdigit() and chunk[m.end():].lower().startswith("fold"))):
            rest = chunk[m.end():]
            nxt = _PUNCT.search(rest)
            cut = nxt.start() if nxt else len(rest)
            out.append(chunk[: m.end() + cut])
            chunk = rest[cut:]
        out.extend(t for t in _PUNCT.split(chunk) if t)
    if out and len(out[-1]) > 1 and out[-1][-1] in ".!?":
        out[-1:] = [out[-1][:-1], out[-1][-1]]
    return out


def term_key(tokens: Sequence[str]) -> str:
    """Case-insensitive key of a token sequence: how terms, mentions and dictionary matches are compared."""
    return " ".join(t.casefold() for t in tokens)


# ------------------------------------------------------------------------------------------ OBO reading


@dataclass(frozen=True)
class Synonym:
    text: str
    scope: str  # EXACT, NARROW, BROAD, RELATED
    type: str | None = None  # e.g. PRO-short-label


@dataclass(frozen=True)
class Term:
    id: str
    name: str
    synonyms: tuple[Synonym, ...] = ()
    #: PR's ``comment: Category=...`` (gene, family, organism-gene, modification, ...); ``None`` elsewhere.
    category: str | None = None

    def exact(self, type: str | None = None, exclude_type: str | None = None) -> list[str]:
        """EXACT synonyms, optionally only of ``type`` or excluding ``exclude_type``."""
        return [
            s.text for s in self.synonyms
            if s.scope == "EXACT" and (type is None or s.type == type) and (exclude_type is None or s.type != exclude_type)
        ]


_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(EXACT|NARROW|BROAD|RELATED)(?:\s+([^\s\[]+))?')


_CATEGORY = re.compile(r"Category=([\w-]+)")
#: PR categories kept: organism-generic classes. Organism-specific (``organism-gene``: "CD4 (mouse)",
#: ``mCD4``), proteoform (``modification``: "CD4/SigPep-") and ``external`` terms are not names a text uses.
PR_CATEGORIES = (None, "gene", "family", "complex")
_GENE_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*[A-Za-z0-9]$")


def _parse_synonym(value: str) -> Synonym | None:
    m = _SYNONYM.match(value)
    if m is None:
        return None
    return Synonym(m.group(1).replace('\\"', '"'), m.group(2), m.group(3))


def _open_obo(path: Path):
    """Text handle of an ``.obo`` / ``.obo.gz`` / ``.obo.zip`` file (zip: its first ``.obo`` member)."""
    name = path.name.lower()
    if name.endswith(".zip"):
        zf = zipfile.ZipFile(path)
        members = [n for n in zf.namelist() if n.lower().endswith(".obo")]
        if not members:
            raise OntologyError(f"{path} contains no .obo file. Use a zip holding one OBO file, or the .obo itself.")
        return io.TextIOWrapper(zf.open(members[0]), encoding="utf-8")
    if name.endswith(".gz"):
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_obo_terms(path: str | os.PathLike, prefix: str) -> list[Term]:
    """Non-obsolete terms of ``path`` (``.obo``, ``.obo.gz``, ``.obo.zip``) whose id starts with ``prefix:``.

    Parsed with ``obonet`` (one linear pass; fine for the full PR/ChEBI/NCBITaxon files, memory grows with
    the file). Terms without a name are skipped.
    """
    import obonet

    path = Path(path)
    if not path.is_file():
        raise OntologyError(f"Ontology file {path} not found. Fix the path (--obo TYPE=PATH / --ontology-dir).")
    try:
        with _open_obo(path) as handle:
            graph = obonet.read_obo(handle, ignore_obsolete=True)
    except (ValueError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise OntologyError(f"Cannot read {path} as OBO ({err}). Check that it is an OBO 1.2/1.4 file.") from err
    want = prefix + ":"
    terms = []
    for node_id, data in graph.nodes(data=True):
        if not node_id.startswith(want) or "name" not in data or data.get("is_obsolete") == "true":
            continue
        syns = tuple(s for s in (_parse_synonym(v) for v in data.get("synonym", [])) if s is not None)
        cat = _CATEGORY.search(data.get("comment", ""))
        terms.append(Term(node_id, data["name"], syns, cat.group(1) if cat else None))
    return terms


def terms_for_type(terms: Iterable[Term], entity_type: str) -> list[str]:
    """The strings a type takes from its ontology's terms (see the module docstring)."""
    out: list[str] = []
    for term in terms:
        if TYPE_PREFIX[entity_type] == "PR" and term.category not in PR_CATEGORIES:
            continue
        if entity_type == "Gene":
            out.extend(x for x in term.exact(type=SHORT_LABEL) if _GENE_SYMBOL.match(x))
        elif entity_type == "Protein":
            out.append(term.name)
            out.extend(term.exact(exclude_type=SHORT_LABEL))
        else:
            out.append(term.name)
            out.extend(term.exact())
    return out


def normalize_terms(
    terms: Iterable[str], min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS, max_tokens: int = MAX_TOKENS
) -> list[str]:
    """Collapse whitespace (``_`` counts as a space: SO names), drop terms out of bounds or without a letter/digit, de-duplicate
    case-insensitively on the token sequence (first spelling wins), sort case-insensitively."""
    seen: dict[str, str] = {}
    for raw in terms:
        term = " ".join(str(raw).replace("_", " ").split())
        if not (min_chars <= len(term) <= max_chars):
            continue
        if ":" in term and re.match(r"^[a-z]+:\S", term):  # PR family labels like "fam:TRPC"
            continue
        tokens = craft_tokenize(term)
        if not tokens or len(tokens) > max_tokens or not any(ch.isalnum() for ch in term):
            continue
        seen.setdefault(term_key(tokens), term)
    return sorted(seen.values(), key=lambda t: (t.casefold(), t))


# ------------------------------------------------------------------------------------------ sources


@dataclass
class Source:
    path: Path
    kind: str  # "bundled", "directory", "explicit"


def _matches_prefix(filename: str, prefix: str) -> bool:
    name = filename.lower()
    p = prefix.lower()
    return name.startswith(p) and len(name) > len(p) and name[len(p)] in "._-"


def _env_sources() -> dict[str, list[str]]:
    raw = os.environ.get(SOURCES_ENV, "").strip()
    out: dict[str, list[str]] = {}
    for item in filter(None, (x.strip() for x in raw.split(";"))):
        t, _, paths = item.partition("=")
        out[t.strip()] = [p for p in (x.strip() for x in paths.split(",")) if p]
    return out


def resolve_sources(
    source: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    ontology_dir: str | os.PathLike | None = None,
    sources: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    craft_root: str | os.PathLike | None = None,
) -> dict[str, list[Source]]:
    """OBO files per entity type (see the module docstring for the order of precedence)."""
    explicit = {**_env_sources(), **dict(sources or {})}
    for t in explicit:
        if t not in TYPE_PREFIX:
            raise CraftlibError(f"Unknown entity type {t!r} in ontology sources: choose from {', '.join(TYPE_PREFIX)}.")
    root = Path(craft_root) if craft_root else None
    if root is None and any(t not in explicit for t in TYPE_PREFIX):
        from craftlib import corpus

        root = corpus.fetch_craft(source, data_dir=data_dir, progress=False)
    odir = config.ontology_dir(ontology_dir)
    if odir is not None and not odir.is_dir():
        raise OntologyError(f"Ontology directory {odir} does not exist. Fix --ontology-dir / CRAFTLIB_ONTOLOGY_DIR.")
    extra = sorted(p for p in odir.iterdir() if p.name.lower().endswith(OBO_SUFFIXES)) if odir else []
    out: dict[str, list[Source]] = {}
    for t, prefix in TYPE_PREFIX.items():
        if t in explicit:
            out[t] = [Source(Path(p).expanduser(), "explicit") for p in explicit[t]]
            continue
        found = []
        module = TYPE_MODULE[t]
        bundled = root / "concept-annotation" / module / module / f"{module}.obo.zip"
        if bundled.is_file():
            found.append(Source(bundled, "bundled"))
        found.extend(Source(p, "directory") for p in extra if _matches_prefix(p.name, prefix))
        out[t] = found
    return out


def _fallback_labels(entity_type: str, profile, annotation_set: str, data_dir, source) -> list[str]:
    """Class labels (ontology names) of the **train-split** CRAFT annotations typed ``entity_type``.

    Mentions come from :func:`craftlib.corpus.read_corpus` (train documents of the profile only); PR
    mentions are split into Gene/Protein with :func:`craftlib.tags.mention_type` and the dataset's gene rule.
    """
    from craftlib import corpus, tags

    prof = config.get_profile(profile)
    try:
        rule = tags.load_stats(prof, annotation_set, data_dir)["policies"]["gene_rule"]
    except (CraftlibError, KeyError):
        rule = tags.TagPolicies().gene_rule
    policies = tags.TagPolicies(gene_rule=rule)
    root = corpus.fetch_craft(source, data_dir=data_dir, progress=False)
    docs = corpus.read_corpus(
        root, splits=("train",), max_docs=prof.max_docs, modules=(TYPE_MODULE[entity_type],),
        annotation_sets=(annotation_set,), sentences=False,
    )
    labels = []
    for doc in docs:
        italics = [(s.start, s.end) for s in doc.typography if s.label == "italic"]
        labels.extend(
            m.class_label for m in doc.all_mentions(annotation_set)
            if m.class_label and tags.mention_type(m, italics, policies) == entity_type
        )
    return labels


# ------------------------------------------------------------------------------------------ coverage


def mention_keys(dsd, split: str) -> dict[str, list[str]]:
    """``{type: [term_key of each gold mention]}`` of one split of a tagged DatasetDict."""
    from craftlib.viz import bio_spans

    ds = dsd[split]
    names = ds.features["ner_tags"].feature.names
    out: dict[str, list[str]] = {t: [] for t in config.ENTITY_TYPES}
    for tokens, tags in zip(ds["tokens"], ds["ner_tags"]):
        for start, end, kind in bio_spans([names[i] for i in tags]):
            out.setdefault(kind, []).append(term_key(tokens[start:end]))
    return out


def coverage(entity_lists: Mapping[str, Sequence[str]], dsd, splits: Sequence[str] = ("train", "test")) -> dict:
    """Share of gold mentions (and of distinct surface strings) of each split found in each type's list.

    Comparison is on :func:`term_key` (case-insensitive, same tokenization). Returns
    ``{type: {split: {"mentions", "covered", "share", "distinct", "distinct_covered", "distinct_share"}}}``.
    """
    keys = {t: {term_key(craft_tokenize(x)) for x in terms} for t, terms in entity_lists.items()}
    out: dict = {t: {} for t in config.ENTITY_TYPES}
    for split in splits:
        for t, ms in mention_keys(dsd, split).items():
            lst = keys.get(t, set())
            covered = sum(m in lst for m in ms)
            distinct = set(ms)
            dcov = len(distinct & lst)
            out.setdefault(t, {})[split] = {
                "mentions": len(ms), "covered": covered, "share": covered / len(ms) if ms else 0.0,
                "distinct": len(distinct), "distinct_covered": dcov,
                "distinct_share": dcov / len(distinct) if distinct else 0.0,
            }
    return out


# ------------------------------------------------------------------------------------------ build / load


def lists_dir(profile=None, annotation_set: str = "proper", data_dir=None) -> Path:
    return config.processed_dir(profile, annotation_set, data_dir) / "entity_lists"


def build_entity_lists(
    profile: str | config.Profile | None = None,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    ontology_dir: str | os.PathLike | None = None,
    sources: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    force: bool = False,
    dataset=None,
) -> dict[str, list[str]]:
    """Build (or reuse, unless ``force``) the entity lists of one dataset; return ``{type: [term, ...]}``.

    Writes ``<processed>/entity_lists/<Type>.txt`` and ``stats.json`` (terms per type and per source,
    which types fell back to train annotations, coverage of train/test mentions) atomically.
    ``dataset`` (a DatasetDict) skips loading the tagged dataset for coverage (used by tests).
    """
    out_dir = lists_dir(profile, annotation_set, data_dir)
    if not force and (out_dir / "stats.json").is_file():
        return _read_lists(out_dir)
    t0 = time.perf_counter()
    resolved = resolve_sources(source, data_dir, ontology_dir, sources)
    cache: dict[tuple[Path, str], list[Term]] = {}
    lists: dict[str, list[str]] = {}
    stats: dict = {"types": {}, "fallback": [], "min_chars": MIN_CHARS, "max_chars": MAX_CHARS, "max_tokens": MAX_TOKENS,
                   "synonym_scopes": ["EXACT"]}
    for t, prefix in TYPE_PREFIX.items():
        per_source, raw = [], []
        for src in resolved[t]:
            key = (src.path.resolve(), prefix)
            if key not in cache:
                cache[key] = read_obo_terms(src.path, prefix)
            strings = terms_for_type(cache[key], t)
            per_source.append({"path": str(src.path), "kind": src.kind, "prefix": prefix,
                               "ontology_terms": len(cache[key]), "strings": len(strings),
                               "unique_terms": len(normalize_terms(strings))})
            raw.extend(strings)
        fallback = not resolved[t]
        if fallback:
            raw = _fallback_labels(t, profile, annotation_set, data_dir, source)
            per_source.append({"path": None, "kind": "fallback: class labels of train-split annotations",
                               "prefix": prefix, "ontology_terms": 0, "strings": len(raw),
                               "unique_terms": len(normalize_terms(raw))})
            stats["fallback"].append(t)
            msg = (f"WARNING: no ontology source for {t} ({prefix}); its entity list is the class labels of the "
                   f"{len(raw)} train-split {TYPE_MODULE[t]} annotations. Give one with --obo {t}=PATH.obo "
                   "or --ontology-dir.")
            log.warning(msg)
            print(msg)
        lists[t] = normalize_terms(raw)
        stats["types"][t] = {"terms": len(lists[t]), "fallback": fallback, "sources": per_source}
    if dataset is None:
        from craftlib import tags

        dataset = tags.load_dataset(profile=profile, annotation_set=annotation_set, data_dir=data_dir, source=source)
    stats["coverage"] = coverage(lists, dataset)
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    _write_lists(out_dir, lists, stats)
    return lists


def _write_lists(out_dir: Path, lists: Mapping[str, Sequence[str]], stats: dict) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".entity_lists-", dir=out_dir.parent))
    try:
        for t, terms in lists.items():
            (tmp / f"{t}.txt").write_text("".join(f"{x}\n" for x in terms), encoding="utf-8")
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _read_lists(out_dir: Path) -> dict[str, list[str]]:
    lists = {}
    for t in TYPE_PREFIX:
        path = out_dir / f"{t}.txt"
        if not path.is_file():
            raise OntologyError(f"{path} is missing: rebuild with `python -m craftlib entity-lists --force`.")
        lists[t] = [x for x in path.read_text(encoding="utf-8").splitlines() if x]
    return lists


def load_entity_lists(
    profile: str | config.Profile | None = None,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    ontology_dir: str | os.PathLike | None = None,
    sources: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    build_if_missing: bool = True,
) -> dict[str, list[str]]:
    """The saved entity lists of a dataset, built first when missing (and ``build_if_missing``)."""
    out_dir = lists_dir(profile, annotation_set, data_dir)
    if (out_dir / "stats.json").is_file():
        return _read_lists(out_dir)
    if not build_if_missing:
        raise OntologyError(f"No entity lists in {out_dir}. Run `python -m craftlib entity-lists` first.")
    return build_entity_lists(profile, annotation_set, data_dir, source, ontology_dir, sources)


def load_stats(profile=None, annotation_set: str = "proper", data_dir=None) -> dict:
    """``stats.json`` of the entity lists (build them first)."""
    path = lists_dir(profile, annotation_set, data_dir) / "stats.json"
    if not path.is_file():
        raise OntologyError(f"{path} not found. Run `python -m craftlib entity-lists` first.")
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------------ CLI


def parse_source_options(values: Sequence[str] | None) -> dict[str, list[str]]:
    """``["Gene=a.obo", "Gene=b.obo", "Taxon="]`` → ``{"Gene": ["a.obo", "b.obo"], "Taxon": []}``."""
    out: dict[str, list[str]] = {}
    for v in values or []:
        t, sep, path = v.partition("=")
        if not sep or t not in TYPE_PREFIX:
            raise CraftlibError(f"--obo expects TYPE=PATH with TYPE in {', '.join(TYPE_PREFIX)}; got {v!r}.")
        out.setdefault(t, [])
        if path:
            out[t].append(path)
    return out


def add_common_options(p: argparse.ArgumentParser) -> None:
    from craftlib.cli import add_profile_option

    add_profile_option(p)
    p.add_argument("--annotation-set", default="proper", choices=config.ANNOTATION_SETS)
    p.add_argument("--data-dir", default=None, help="data directory (default: CRAFTLIB_DATA_DIR or ./data)")
    p.add_argument("--source", default=None, help="CRAFT archive/folder/URL (default: $CRAFT_SOURCE)")


def _cmd_entity_lists(args: argparse.Namespace) -> int:
    lists = build_entity_lists(
        args.profile, args.annotation_set, args.data_dir, args.source, args.ontology_dir,
        parse_source_options(args.sources) or None, force=True,
    )
    stats = load_stats(args.profile, args.annotation_set, args.data_dir)
    print(f"{'type':<9} {'terms':>8}  {'train cov':>9}  {'test cov':>8}  sources")
    for t, terms in lists.items():
        cov = stats["coverage"].get(t, {})
        srcs = ", ".join(Path(s["path"]).name if s["path"] else "TRAIN FALLBACK" for s in stats["types"][t]["sources"])
        print(f"{t:<9} {len(terms):>8}  {cov.get('train', {}).get('share', 0):>9.1%}  "
              f"{cov.get('test', {}).get('share', 0):>8.1%}  {srcs}")
    print(f"wrote {lists_dir(args.profile, args.annotation_set, args.data_dir)} in {stats['seconds']:.1f} s")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("entity-lists", help="build per-type entity lists from OBO ontologies")
    add_common_options(p)
    p.add_argument("--ontology-dir", default=None, help="extra OBO files (default: CRAFTLIB_ONTOLOGY_DIR)")
    p.add_argument("--obo", dest="sources", action="append", metavar="TYPE=PATH",
                   help="OBO file for a type (repeatable; replaces that type's defaults; TYPE= means none)")
    p.set_defaults(func=_cmd_entity_lists)


__all__ = [
    "TYPE_PREFIX", "Source", "Synonym", "Term", "build_entity_lists", "coverage", "craft_tokenize",
    "load_entity_lists", "load_stats", "normalize_terms", "read_obo_terms", "resolve_sources", "term_key",
    "terms_for_type",
]
