"""Entity linking: the ontology identifiers whose names or synonyms match a mention after normalisation.

CRAFT is annotated with ontology concepts (``PR:000004804``, ``NCBITaxon:10090``, ``CHEBI:15377``, ``CL:0000540``,
``SO:0000704``); the tagger finds mentions and their type, this module gives each one its candidate ids.

The index is built from the same OBO files as the entity lists (:func:`craftlib.ontology.resolve_sources`) and with
the same selection per term (:func:`craftlib.ontology.terms_for_type`, :func:`craftlib.ontology.normalize_terms`:
EXACT synonyms, PR's organism-generic categories, the name filters), applied **term by term**, so every string
keeps the id it came from. Gene and Protein share the PR index (a gene and its product have one PR id in CRAFT).

Matching is exact after :func:`normalize` (case, Greek letters spelled out, hyphens, spaces and punctuation
ignored, a plural last word made singular): ``TGF-β1`` = ``TGF beta 1`` = ``tgfbeta1``; ``T cells`` = ``T cell``;
``mice`` = ``mouse``. A mention gets ``status`` ``"unique"`` (one id), ``"ambiguous"`` (several ids, all listed,
those matching a term's *name* first) or ``"none"``. What this cannot do, and what the scores in
``results/linking-*.json`` show it missing: abbreviations and short forms absent from the ontology (``Shh``),
names that differ by more than the normalisation (word order, extra words: ``Pax6 protein``), and the choice among
several ids (``"ambiguous"``: no context is used).

The index is the ``linking`` stage of :data:`craftlib.stages.STAGES` (``<data>/processed/linking/index.json``, one
for every profile; rebuilt when an OBO file changes): ``stages.load("linking", spec)`` gives the :class:`Linker`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from craftlib import cache, config
from craftlib.errors import CraftlibError, OntologyError
from craftlib.ontology import (
    FILTERS,
    NAME_SYNONYM_TYPES,
    PR_CATEGORIES,
    TYPE_PREFIX,
    normalize_terms,
    read_obo_terms,
    resolve_sources,
    terms_for_type,
)

#: Version of the index's content rules: bumped when normalisation or selection changes.
INDEX_FORMAT = 1
#: Entity type → the ontology whose ids it links to (Gene and Protein both link to PR).
TYPE_ONTOLOGY: dict[str, str] = dict(TYPE_PREFIX)

_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta", "η": "eta",
    "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi", "ο": "omicron",
    "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi", "ϕ": "phi",
    "χ": "chi", "ψ": "psi", "ω": "omega", "µ": "mu",
}
#: Irregular plurals of the corpus's frequent head nouns.
_IRREGULAR = {"mice": "mouse", "children": "child", "teeth": "tooth", "feet": "foot", "geese": "goose",
              "lice": "louse", "men": "man", "women": "woman", "people": "person", "bacteria": "bacterium",
              "nuclei": "nucleus", "fungi": "fungus", "larvae": "larva", "embryos": "embryo", "indices": "index"}
_NOT_PLURAL = ("ss", "us", "is", "ous", "ics")
_WORDS = re.compile(r"[^\W_]+")


def normalize(text: str) -> str:
    """The matching key of a name or mention: NFKC, case-folded, Greek letters spelled out, the last word made
    singular, then every non-alphanumeric character (space, hyphen, slash, punctuation) dropped."""
    s = unicodedata.normalize("NFKC", text).casefold()
    s = "".join(f" {_GREEK[ch]} " if ch in _GREEK else ch for ch in s)
    words = _WORDS.findall(s)
    if not words:
        return ""
    last = words[-1]
    if last in _IRREGULAR:
        words[-1] = _IRREGULAR[last]
    elif len(last) > 3 and last.isalpha() and last.endswith("ies"):
        words[-1] = last[:-3] + "y"
    elif len(last) > 3 and last.isalpha() and last.endswith("s") and not last.endswith(_NOT_PLURAL):
        words[-1] = last[:-1]
    return "".join(words)


@dataclass(frozen=True)
class Link:
    """The candidate ids of one mention: ``status`` ``"unique"``, ``"ambiguous"`` or ``"none"``; ``ids`` best first
    (a match on a term's name before a match on a synonym, then id order); ``names`` the ontology name of each."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    status: str

    @property
    def top(self) -> str | None:
        return self.ids[0] if self.ids else None

    def to_dict(self) -> dict:
        return {"ids": list(self.ids), "names": list(self.names), "status": self.status}


NO_LINK = Link((), (), "none")


class Linker:
    """Look mentions up in an index ``{ontology: {key: [[id, is_name], ...]}}`` with names ``{id: name}``."""

    def __init__(self, index: Mapping[str, Mapping[str, Sequence]], names: Mapping[str, str]):
        self.index, self.names = index, names

    def __len__(self) -> int:
        return sum(len(v) for v in self.index.values())

    def link(self, text: str, entity_type: str) -> Link:
        """The ids of ``entity_type``'s ontology whose names/synonyms normalise like ``text``."""
        onto = TYPE_ONTOLOGY.get(entity_type)
        if onto is None:
            raise CraftlibError(f"Unknown entity type {entity_type!r}: choose one of {', '.join(TYPE_ONTOLOGY)}.")
        hits = self.index.get(onto, {}).get(normalize(text))
        if not hits:
            return NO_LINK
        ids = tuple(i for i, _ in sorted(hits, key=lambda h: (not h[1], h[0])))
        return Link(ids, tuple(self.names.get(i, "") for i in ids), "unique" if len(ids) == 1 else "ambiguous")


def build_index(resolved: Mapping[str, Sequence], filters: Sequence[str] = FILTERS,
                synonym_types: Sequence[str] = NAME_SYNONYM_TYPES) -> tuple[dict, dict]:
    """``(index, names)`` from the OBO sources of each type (``{type: [Source, ...]}``), term by term with the
    entity lists' selection, so each string keeps its id."""
    index: dict[str, dict[str, dict[str, bool]]] = {}
    names: dict[str, str] = {}
    read: dict[tuple, list] = {}
    for etype, prefix in TYPE_PREFIX.items():
        onto = index.setdefault(prefix, {})
        for src in resolved.get(etype, []):
            key = (str(Path(src.path).resolve()), prefix)
            if key not in read:
                read[key] = read_obo_terms(src.path, prefix)
            for term in read[key]:
                if prefix == "PR" and term.category not in PR_CATEGORIES:
                    continue
                strings = normalize_terms(terms_for_type([term], etype, filters, synonym_types), filters=filters)
                if etype != "Gene":
                    strings = [term.name, *strings]
                names.setdefault(term.id, term.name)
                for s in strings:
                    k = normalize(s)
                    if k:
                        ids = onto.setdefault(k, {})
                        ids[term.id] = ids.get(term.id, False) or s == term.name
    out = {p: {k: sorted([i, n] for i, n in v.items()) for k, v in onto.items()} for p, onto in index.items()}
    return out, names


def index_inputs(spec: config.DataSpec, needs: dict) -> dict:
    """What the index is built from (recorded in its ``inputs.json``): the OBO files of every type (path, size,
    modification time, kind), the index format, the filters. Whatever the profile: one index per set of files."""
    resolved = resolve_sources(spec.source, spec.data_dir, spec.ontology_dir, spec.sources)
    return {"index_format": INDEX_FORMAT,
            "sources": {t: [{**cache.file_fingerprint(s.path), "kind": s.kind} for s in resolved[t]]
                        for t in TYPE_PREFIX},
            "filters": list(FILTERS), "synonym_types": list(NAME_SYNONYM_TYPES)}


def write_index(tmp: Path, spec: config.DataSpec, needs: dict) -> None:
    """Write ``index.json`` (ontology ids by normalised name, and each id's name) into ``tmp``."""
    # the stage loader computed index_inputs (which resolved and reported the same sources) just before
    resolved = resolve_sources(spec.source, spec.data_dir, spec.ontology_dir, spec.sources, report=False)
    index, names = build_index(resolved)
    (tmp / "index.json").write_text(json.dumps({"index": index, "names": names}), encoding="utf-8")


def read_index(folder: Path, spec: config.DataSpec) -> Linker:
    """The :class:`Linker` of a written index."""
    try:
        data = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        return Linker(data["index"], data["names"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OntologyError(f"{folder / 'index.json'} does not read ({err}).") from err


__all__ = [
    "INDEX_FORMAT",
    "NO_LINK",
    "TYPE_ONTOLOGY",
    "Link",
    "Linker",
    "build_index",
    "index_inputs",
    "normalize",
    "read_index",
    "write_index",
]
