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

Name filters (:data:`FILTERS`, each counted per type in ``stats.json`` under ``filter_counts``; a build can
skip any of them with ``filters=`` / ``--skip-filter``), because ontologies also hold strings that are not names:

    typed_synonym    EXACT synonyms with a synonym type are dropped unless the type names a name
                     (:data:`NAME_SYNONYM_TYPES`: PR's ``PRO-short-label``, NCBITaxon's common/equivalent names,
                     ...): SO's ``VAR`` annotation-tool codes (``snpEff:UPSTREAM``), ``RNAMOD`` codes (``m1I``),
                     ``aa1``/``aa3``, PR's proteoform ids (``PRO_0000016283``)
    ncbi_qualifier   NCBI disambiguation qualifiers are stripped (``Drosophila <flies,genus>`` → ``Drosophila``);
                     the string is kept, the count says how many were changed
    tool_code        ``Tool:code`` strings (``ANNOVAR:exonic``, ``Jannovar:exon variant``, PR's ``fam:HH``)
    imgt_label       IMGT segment labels (``(VJ)-J-C-CLUSTER``, ``V-GENE``, ``J-HEPTAMER``)
    charged_form     charged species written with their charge (ChEBI ``urate(1-)``, ``sphingosine(1+)``):
                     articles name the neutral compound

then the bounds below (``length``, ``tokens``, ``no_alnum``) and case-insensitive de-duplication
(``duplicate``) are counted the same way.

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
``<processed>/entity_lists/<Type>.txt`` with ``stats.json`` and ``inputs.json`` (what they were built from:
the source files' fingerprints, the tagged dataset, the filter parameters). The lists are rebuilt when any of
these changes (:mod:`craftlib.cache`).

:func:`craft_tokenize` splits a term the way CRAFT's CoNLL-U files tokenize text (see its docstring).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from craftlib import cache, config
from craftlib.bio import bio_spans, tag_names
from craftlib.corpus import fetch_craft, read_corpus
from craftlib.errors import CraftlibError, OntologyError
from craftlib.tags import TagPolicies, mention_type

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
#: Synonym types that name the thing (kept by the ``typed_synonym`` filter); every other typed EXACT synonym is
#: dropped. PR: short labels (gene symbols). NCBITaxon: GenBank/common names (``OMO:0003003`` is how current
#: NCBITaxon files type common names such as "mouse"), equivalent and scientific names. ChEBI (full file):
#: IUPAC names and international non-proprietary names.
NAME_SYNONYM_TYPES: tuple[str, ...] = (
    SHORT_LABEL, "genbank_common_name", "common_name", "OMO:0003003", "equivalent_name", "scientific_name",
    "IUPAC_NAME", "INN",
)
#: The name filters, in the order they are applied (see the module docstring).
FILTERS: tuple[str, ...] = ("typed_synonym", "ncbi_qualifier", "tool_code", "imgt_label", "charged_form")
#: Version of the lists' content rules: bumped when the selection changes, so old caches are rebuilt.
LISTS_FORMAT = 3

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
        return io.TextIOWrapper(zf.open(members[0]), encoding="utf-8-sig")
    if name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")  # utf-8-sig: a file saved with a byte-order mark is still OBO


def _compression_damage(path: Path) -> str | None:
    """Why the compressed file ``path`` does not decompress (``None``: it does, or it is not compressed).
    Checked when parsing failed: a damaged ``.gz`` can decompress into garbage lines before its checksum is
    reached, so the parser's complaint would hide the real cause."""
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        elif name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad:
                return f"corrupt zip: member {bad} fails its CRC check"
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        return f"corrupt {'zip' if name.endswith('.zip') else 'gzip'} ({type(err).__name__}: {err})"
    return None


def _check_header(path: Path) -> None:
    """Refuse an empty file and one without the OBO header (``format-version: ...`` before the first stanza)."""
    with _open_obo(path) as handle:
        header = []
        for line in handle:
            if line.startswith("["):
                break
            if line.strip() and not line.startswith("!"):
                header.append(line.strip())
        else:
            if not header:
                raise OntologyError(f"{path} is empty. Replace it with the complete OBO file (a truncated "
                                    "download?), or leave it out (--obo TYPE= for none).")
    if not any(h.startswith("format-version:") for h in header):
        raise OntologyError(f"{path} has no OBO header (no 'format-version:' line before the first stanza): "
                            "it is not an OBO file or was cut. Use the complete OBO 1.2/1.4 file.")


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
        try:
            _check_header(path)
        except OntologyError:
            if _compression_damage(path):  # a damaged archive, not a file without a header
                raise ValueError("no OBO header") from None
            raise
        with _open_obo(path) as handle:
            graph = obonet.read_obo(handle, ignore_obsolete=True)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, zlib.error) as err:
        damage = _compression_damage(path)
        if damage:
            raise OntologyError(f"{path} is a {damage}: the file is damaged or was cut while copying. Copy it "
                                "again (from the shared folder / USB stick), or leave it out (--obo TYPE= for none)."
                                ) from err
        raise OntologyError(f"Cannot read {path} as OBO ({err}). Check that it is an OBO 1.2/1.4 file.") from err
    if graph.number_of_nodes() == 0:
        raise OntologyError(f"{path} holds no [Term] stanza: it is not an ontology (or a truncated download). "
                            "Replace it with the complete OBO file, or leave it out (--obo TYPE= for none).")
    want = prefix + ":"
    terms = []
    for node_id, data in graph.nodes(data=True):
        if not node_id.startswith(want) or "name" not in data or data.get("is_obsolete") == "true":
            continue
        syns = tuple(s for s in (_parse_synonym(v) for v in data.get("synonym", [])) if s is not None)
        cat = _CATEGORY.search(data.get("comment", ""))
        terms.append(Term(node_id, data["name"], syns, cat.group(1) if cat else None))
    return terms


def terms_for_type(
    terms: Iterable[Term],
    entity_type: str,
    filters: Sequence[str] = FILTERS,
    synonym_types: Sequence[str] = NAME_SYNONYM_TYPES,
    counts: Counter | None = None,
) -> list[str]:
    """The strings a type takes from its ontology's terms (see the module docstring).

    With ``"typed_synonym"`` in ``filters``, EXACT synonyms whose type is not in ``synonym_types`` are dropped
    (counted in ``counts["typed_synonym"]``). ``counts`` also receives ``pr_category`` (PR terms skipped
    for their category) and ``not_gene_symbol`` (Gene short labels that do not look like a symbol).
    """
    counts = counts if counts is not None else Counter()
    typed = "typed_synonym" in filters
    allowed = set(synonym_types)

    def keep(syns: list[Synonym]) -> list[str]:
        out = [x.text for x in syns if not typed or x.type is None or x.type in allowed]
        counts["typed_synonym"] += len(syns) - len(out)
        return out

    out: list[str] = []
    for term in terms:
        if TYPE_PREFIX[entity_type] == "PR" and term.category not in PR_CATEGORIES:
            counts["pr_category"] += 1
            continue
        exact = [x for x in term.synonyms if x.scope == "EXACT"]
        if entity_type == "Gene":
            labels = [x.text for x in exact if x.type == SHORT_LABEL]
            symbols = [x for x in labels if _GENE_SYMBOL.match(x)]
            counts["not_gene_symbol"] += len(labels) - len(symbols)
            out.extend(symbols)
        elif entity_type == "Protein":
            out.append(term.name)
            out.extend(keep([x for x in exact if x.type != SHORT_LABEL]))
        else:
            out.append(term.name)
            out.extend(keep(exact))
    return out


#: ``Drosophila <flies,genus>``: NCBI's disambiguation qualifier (a space, then ``<`` and a word, then a space or the end;
#: ChEBI's linkage ``(1<->1)`` is not one).
_NCBI_QUALIFIER = re.compile(r"\s+<[A-Za-z][^<>]*>(?=\s|$)")
#: ``ANNOVAR:exonic``, ``snpEff:UPSTREAM``, ``fam:HH``: a letters-only prefix, a colon, no space. Lipid
#: notations (``fatty acid 18:1``, ``C24:1-CoA``) have a digit before the colon and are kept.
_TOOL_CODE = re.compile(r"^[A-Za-z]+:(?=\S)")
#: IMGT labels: V/D/J/C segments (or bracketed rearranged ones) joined by hyphens, then an upper-case label.
_IMGT_LABEL = re.compile(r"^(?:(?:[VDJC]|\([VDJ]+\))-)+(?:CLUSTER|GENE|RS|HEPTAMER|NONAMER|SPACER)$")
#: A charge in brackets right after the name, with its number (``urate(1-)``, ``sphingosine(1+)``,
#: ``citrate(3-) residue``); optical rotation (``(+)-abscisate``), ``NAD(+)`` and CL's ``CD5(+) B1 cell``
#: carry no number and are kept.
_CHARGE = re.compile(r"(?<=[^\s(])\(\d+[+\-\u2212]\)(?=[\s,-]|$)")


def normalize_terms(
    terms: Iterable[str],
    min_chars: int = MIN_CHARS,
    max_chars: int = MAX_CHARS,
    max_tokens: int = MAX_TOKENS,
    filters: Sequence[str] = FILTERS,
    counts: Counter | None = None,
) -> list[str]:
    """Apply the string filters, collapse whitespace (``_`` counts as a space: SO names), drop terms out of
    bounds or without a letter/digit, de-duplicate case-insensitively on the token sequence (first spelling
    wins), sort case-insensitively.

    ``counts`` (optional) receives how many strings each step removed (``tool_code``, ``imgt_label``,
    ``charged_form``, ``length``, ``tokens``, ``no_alnum``, ``duplicate``) or changed (``ncbi_qualifier``).
    """
    counts = counts if counts is not None else Counter()
    seen: dict[str, str] = {}
    for raw in terms:
        term = " ".join(str(raw).replace("_", " ").split())
        if "ncbi_qualifier" in filters and "<" in term:
            stripped = _NCBI_QUALIFIER.sub("", term)
            if stripped != term and stripped:
                counts["ncbi_qualifier"] += 1
                term = stripped
        if "tool_code" in filters and _TOOL_CODE.match(term):
            counts["tool_code"] += 1
            continue
        if "imgt_label" in filters and _IMGT_LABEL.match(term):
            counts["imgt_label"] += 1
            continue
        if "charged_form" in filters and _CHARGE.search(term):
            counts["charged_form"] += 1
            continue
        if not (min_chars <= len(term) <= max_chars):
            counts["length"] += 1
            continue
        if not any(ch.isalnum() for ch in term):
            counts["no_alnum"] += 1
            continue
        tokens = craft_tokenize(term)
        if not tokens or len(tokens) > max_tokens:
            counts["tokens"] += 1
            continue
        key = term_key(tokens)
        if key in seen:
            counts["duplicate"] += 1
            continue
        seen[key] = term
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
        out[t.strip()] = [str(config.resolve_path(p)) for p in (x.strip() for x in paths.split(",")) if p]
    return out


def resolve_sources(
    source: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    ontology_dir: str | os.PathLike | None = None,
    sources: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    craft_root: str | os.PathLike | None = None,
    report: bool = True,
) -> dict[str, list[Source]]:
    """OBO files per entity type (see the module docstring for the order of precedence). ``report``: warn about
    the files of the ontology folder that nothing reads (``False`` when the same folder was just reported)."""
    explicit = {**_env_sources(), **dict(sources or {})}
    for t in explicit:
        if t not in TYPE_PREFIX:
            raise CraftlibError(f"Unknown entity type {t!r} in ontology sources: choose from {', '.join(TYPE_PREFIX)}.")
    root = Path(craft_root) if craft_root else None
    if root is None and any(t not in explicit for t in TYPE_PREFIX):
        root = fetch_craft(source, data_dir=data_dir, progress=False)
    odir = config.ontology_dir(ontology_dir)
    if odir is not None and not odir.is_dir():
        raise OntologyError(f"Ontology directory {odir} does not exist. Fix --ontology-dir / CRAFTLIB_ONTOLOGY_DIR.")
    extra = sorted(p for p in odir.iterdir() if p.name.lower().endswith(OBO_SUFFIXES)) if odir else []
    if odir is not None and report:
        _report_ignored(odir, extra, [t for t in TYPE_PREFIX if t not in explicit])
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


def _warn(message: str) -> None:
    """Print a warning once (a notebook shows it; logging too would print it twice on the command line)."""
    print(f"WARNING: {message}")


def ignored_ontology_files(odir: Path, types: Sequence[str] = tuple(TYPE_PREFIX)) -> dict[str, str]:
    """Files of an ontology folder that no entity type of ``types`` reads, with why: ``{file name: reason}``."""
    out = {}
    prefixes = sorted({TYPE_PREFIX[t] for t in types})
    for p in sorted(odir.iterdir()):
        if p.name.startswith("."):
            continue
        if not p.name.lower().endswith(OBO_SUFFIXES):
            out[p.name] = "not an ontology file (.obo, .obo.gz or .obo.zip)"
        elif not any(_matches_prefix(p.name, prefix) for prefix in prefixes):
            out[p.name] = (f"its name starts with no ontology prefix ({', '.join(x.lower() for x in prefixes)}; "
                           "e.g. chebi.obo.gz, pr_slice.obo)")
    return out


def _report_ignored(odir: Path, extra: Sequence[Path], types: Sequence[str]) -> None:
    ignored = ignored_ontology_files(odir, types)
    if not ignored or not types:
        return
    used = [p for p in extra if p.name not in ignored]
    listed = "; ".join(f"{name}: {why}" for name, why in ignored.items())
    if not used:
        _warn(f"no file of the ontology folder {odir} is used ({listed}). Rename the files after their "
              "ontology (so_*, cl_*, pr_*, ncbitaxon_*, chebi_*), or fix --ontology-dir / CRAFTLIB_ONTOLOGY_DIR.")
    else:
        _warn(f"ignored in the ontology folder {odir}: {listed}.")


def _fallback_labels(entity_type: str, spec: config.DataSpec, gene_rule: str) -> list[str]:
    """Class labels (ontology names) of the **train-split** CRAFT annotations typed ``entity_type``.

    Mentions come from :func:`craftlib.corpus.read_corpus` (train documents of the profile only); PR
    mentions are split into Gene/Protein with :func:`craftlib.tags.mention_type` and the dataset's gene rule.
    """
    policies = TagPolicies(gene_rule=gene_rule)
    root = fetch_craft(spec.source, data_dir=spec.data_dir, progress=False)
    docs = read_corpus(
        root, splits=("train",), max_docs=spec.profile.max_docs, modules=(TYPE_MODULE[entity_type],),
        annotation_sets=(spec.annotation_set,), sentences=False,
    )
    labels = []
    for doc in docs:
        italics = [(s.start, s.end) for s in doc.typography if s.label == "italic"]
        labels.extend(
            m.class_label for m in doc.all_mentions(spec.annotation_set)
            if m.class_label and mention_type(m, italics, policies) == entity_type
        )
    return labels


# ------------------------------------------------------------------------------------------ coverage


def mention_keys(dsd, split: str) -> dict[str, list[str]]:
    """``{type: [term_key of each gold mention]}`` of one split of a tagged DatasetDict."""
    ds = dsd[split]
    names = ds.features["ner_tags"].feature.names
    out: dict[str, list[str]] = {t: [] for t in config.ENTITY_TYPES}
    for tokens, tags in zip(ds["tokens"], ds["ner_tags"]):
        for start, end, kind in bio_spans(tag_names(tags, names)):
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


def dataset_key(dsd) -> dict:
    """Content key of a tagged DatasetDict: per split, the sha256 of its Arrow table (one chunk, IPC stream).

    The same content gives the same key whether the dataset was just built in memory or loaded from disk, and
    whenever it was rebuilt; any changed token, tag or column changes it (~0.1 s for the full train split)."""
    import hashlib

    import pyarrow as pa

    out = {}
    for split in sorted(dsd):
        ds = dsd[split]
        ds = ds.flatten_indices() if ds._indices is not None else ds  # a .select()ed split: its own rows
        table = ds.data.table.combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        out[split] = hashlib.sha256(sink.getvalue()).hexdigest()
    return out


def _source_record(src: Source) -> dict:
    try:
        return {**cache.file_fingerprint(src.path), "kind": src.kind}
    except OSError:  # a missing file is reported by read_obo_terms; here it only needs to differ
        return {"path": str(src.path), "kind": src.kind, "missing": True}


def _explicit_sources(spec: config.DataSpec) -> dict:
    return {**_env_sources(), **dict(spec.sources or {})}


def settle_lists(spec: config.DataSpec, folder: Path) -> config.DataSpec:
    """``spec`` with unstated ontology sources taken from the lists saved in ``folder``: a caller that names no
    source (no ``ontology_dir``/``sources``, no ``CRAFTLIB_ONTOLOGY_DIR`` / ``CRAFTLIB_ONTOLOGY_SOURCES``), such as
    training, uses the settings the saved lists were built with (``stats.json`` ``settings``): lists built by
    ``entity-lists --ontology-dir X`` stay built from ``X``, and are still rebuilt when a file of ``X`` or the
    dataset changed."""
    unstated = spec.ontology_dir is None and spec.sources is None and not os.environ.get(SOURCES_ENV, "").strip()
    if not (unstated and (folder / cache.INPUTS_FILE).is_file()):
        return spec
    try:
        settings = json.loads((folder / "stats.json").read_text()).get("settings") or {}
    except (OSError, ValueError):
        settings = {}
    odir = settings.get("ontology_dir")
    return spec.but(ontology_dir=Path(odir) if odir else None, sources=settings.get("sources"))


def _filters(spec: config.DataSpec) -> tuple[str, ...]:
    filters = tuple(FILTERS if spec.filters is None else spec.filters)
    unknown = [f for f in filters if f not in FILTERS]
    if unknown:
        raise CraftlibError(f"Unknown entity-list filter(s) {', '.join(unknown)}: choose from {', '.join(FILTERS)}.")
    return filters


def lists_inputs(spec: config.DataSpec, needs: dict) -> dict:
    """What a set of entity lists is built from (recorded in ``inputs.json``; a difference means rebuild):
    each type's source files (path, size, modification time), the tagged dataset (coverage and the train
    fallback use it), and every selection parameter."""
    resolved = resolve_sources(spec.source, spec.data_dir, spec.ontology_dir, spec.sources)
    return {
        "lists_format": LISTS_FORMAT,
        "sources": {t: [_source_record(x) for x in resolved[t]] for t in TYPE_PREFIX},
        "dataset": dataset_key(needs["dataset"]),
        "profile": spec.profile.name, "annotation_set": spec.annotation_set,
        "params": {"min_chars": MIN_CHARS, "max_chars": MAX_CHARS, "max_tokens": MAX_TOKENS,
                   "synonym_scopes": ["EXACT"], "synonym_types": list(NAME_SYNONYM_TYPES),
                   "pr_categories": [str(c) for c in PR_CATEGORIES],
                   "filters": [f for f in FILTERS if f in _filters(spec)]},
    }


def write_lists(tmp: Path, spec: config.DataSpec, needs: dict) -> None:
    """Write ``<Type>.txt`` and ``stats.json`` (terms per type and per source, what each filter removed per type,
    which types fell back to train annotations, coverage of train/test mentions) into ``tmp``."""
    # the stage loader computed lists_inputs (which resolved and reported the same sources) just before
    resolved = resolve_sources(spec.source, spec.data_dir, spec.ontology_dir, spec.sources, report=False)
    lists, stats = _build_lists(resolved, spec, needs, _filters(spec))
    stats["settings"] = {  # what the next load reuses when its caller names no source (settle_lists)
        "ontology_dir": str(spec.ontology_dir) if spec.ontology_dir else None,
        "sources": {t: [str(x) for x in v] for t, v in _explicit_sources(spec).items()} or None}
    for t, terms in lists.items():
        (tmp / f"{t}.txt").write_text("".join(f"{x}\n" for x in terms), encoding="utf-8")
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")


def _build_lists(resolved, spec: config.DataSpec, needs: dict, filters) -> tuple[dict, dict]:
    t0 = time.perf_counter()
    synonym_types = NAME_SYNONYM_TYPES
    term_cache: dict[tuple[Path, str], list[Term]] = {}
    lists: dict[str, list[str]] = {}
    stats: dict = {"types": {}, "fallback": [], "min_chars": MIN_CHARS, "max_chars": MAX_CHARS, "max_tokens": MAX_TOKENS,
                   "synonym_scopes": ["EXACT"], "synonym_types": list(synonym_types),
                   "filters": [f for f in FILTERS if f in filters]}
    for t, prefix in TYPE_PREFIX.items():
        per_source, raw = [], []
        counts: Counter = Counter()
        for src in resolved[t]:
            key = (src.path.resolve(), prefix)
            if key not in term_cache:
                term_cache[key] = read_obo_terms(src.path, prefix)
            strings = terms_for_type(term_cache[key], t, filters, synonym_types, counts)
            per_source.append({"path": str(src.path), "kind": src.kind, "prefix": prefix,
                               "ontology_terms": len(term_cache[key]), "strings": len(strings),
                               "unique_terms": len(normalize_terms(strings, filters=filters))})
            if not term_cache[key]:
                _warn(f"{src.path} holds no {prefix} term; it adds nothing to the {t} list.")
            raw.extend(strings)
        fallback = not resolved[t]
        if fallback:
            gene_rule = needs["dataset_stats"].get("policies", {}).get("gene_rule", TagPolicies().gene_rule)
            raw = _fallback_labels(t, spec, gene_rule)
            per_source.append({"path": None, "kind": "fallback: class labels of train-split annotations",
                               "prefix": prefix, "ontology_terms": 0, "strings": len(raw),
                               "unique_terms": len(normalize_terms(raw, filters=filters))})
            stats["fallback"].append(t)
            _warn(f"no ontology source for {t} ({prefix}); its entity list is the class labels of the "
                  f"{len(raw)} train-split {TYPE_MODULE[t]} annotations. Give one with --obo {t}=PATH.obo "
                  "or --ontology-dir.")
        strings_in = len(raw) + counts["typed_synonym"]
        lists[t] = normalize_terms(raw, filters=filters, counts=counts)
        stats["types"][t] = {
            "terms": len(lists[t]), "fallback": fallback, "sources": per_source,
            "strings_read": strings_in,
            "filter_counts": {k: counts[k] for k in
                              ("pr_category", "not_gene_symbol", *FILTERS, "length", "no_alnum", "tokens", "duplicate")},
        }
    stats["coverage"] = coverage(lists, needs["dataset"])
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    return lists, stats


def read_lists(folder: Path, spec: config.DataSpec | None = None) -> dict[str, list[str]]:
    """The saved entity lists ``{type: [term, ...]}``."""
    lists = {}
    for t in TYPE_PREFIX:
        path = folder / f"{t}.txt"
        if not path.is_file():
            raise OntologyError(f"{path} is missing: rebuild with `python -m craftlib entity-lists --force`.")
        lists[t] = [x for x in path.read_text(encoding="utf-8").splitlines() if x]
    return lists


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


__all__ = [
    "FILTERS",
    "NAME_SYNONYM_TYPES",
    "TYPE_PREFIX",
    "Source",
    "Synonym",
    "Term",
    "coverage",
    "craft_tokenize",
    "dataset_key",
    "lists_inputs",
    "normalize_terms",
    "read_lists",
    "read_obo_terms",
    "resolve_sources",
    "settle_lists",
    "term_key",
    "terms_for_type",
    "write_lists",
]
