"""From CRAFT concept annotations to one flat IOB2 layer of six entity types.

Pipeline per document (every step is a named option of :class:`TagPolicies` and every mention it
changes is counted in ``stats.json``):

1. **Type**: module → type (``config.MODULE_TO_TYPE``). CRAFT annotates genes, transcripts *and* proteins
   with the same PR classes, on purpose. Its ``concept-annotation/README.md`` (v5.0.2) says: "as in v1.0,
   we have also used them to mark up their corresponding genes and transcripts, as differentiation among
   these types of sequences is a long-known issue in biomedical text annotation (which we are cognizantly
   sidestepping)". What v3.0 changed was removing the separate Entrez Gene layer (``CHANGES.md``: "The
   Entrez Gene annotations have been removed from the distribution, as we believe they do not match the
   quality of the other concept annotations"). A six-type scheme with a Gene type (SO, CL, PR, Entrez Gene,
   NCBITaxon, ChEBI: CRAFT v1–2's modules), like the reference card's, most likely took Gene from that
   Entrez Gene layer (the card does not say); CRAFT v5 has no Gene annotation at all. So the **Gene rule**
   (:data:`GENE_RULE_CHOICES`) is *this project's substitute*, a heuristic that splits PR mentions into
   ``Gene`` and ``Protein``; nothing says that the reference used italics or context words:

   * ``italic``: the mention overlaps an italic typography span (gene symbols are italic by nomenclature
     convention, but full gene names are not, and some journals italicise nothing);
   * ``context``: a word of :data:`GENE_CONTEXT_WORDS` (gene, mRNA, allele, promoter, locus, knockout,
     null, mutant, ...) stands directly before or after the mention ("myocilin gene", "Shh-null"), and no
     word of :data:`PROTEIN_CONTEXT_WORDS` (protein, antibody, anti-, "gene product", ...) does;
   * ``italic+context`` (default): italic *or* a gene-context word, unless a protein-context word stands next
     to the mention (explicit words beat typography: "mutant BRCA2 protein", "the *mon* gene product");
   * ``none``: every PR mention is a ``Protein``.

   **How the default was chosen** (measured on all 97 documents by :func:`craftlib.gene_rules.gene_rule_report`:
   ``python -m craftlib gene-rules --profile quick --out results/gene_rules.json`` wrote the committed
   ``results/gene_rules.json``): (1) no *contradiction* — a mention
   with only a gene-context word next to it labelled Protein ("myocilin gene" → Protein), or one with only
   a protein-context word labelled Gene ("Shh protein" → Gene); (2) among the rules that pass, the fewest
   documents with PR mentions but no Gene at all (a document without any Gene says more about its
   typesetting than about its biology). ``italic`` contradicts 765 cue words (760 "X gene/mRNA/allele…" →
   Protein) and leaves 15 of 97 documents without Gene; ``context`` and ``italic+context`` have no
   contradiction by construction; ``context`` leaves 5 documents without Gene and calls only 9–14 % of PR
   mentions Gene (it ignores the italic symbols that have no context word), ``italic+context`` leaves 1.
   The contradiction counts use the word lists the rules use, so they measure consistency with explicit
   cues, not correctness: no CRAFT annotation says which PR mention is a gene, and 13,547 of the 23,447 PR
   mentions have neither italics nor a gene-context word (they are Protein under every rule).
2. **Discontinuous** mentions (several ``<span>``) become one contiguous span or are dropped.
3. **Boundaries inside a token** (CRAFT allows affix boundaries such as "anti-[chromatin]", and boundaries
   where the formatting changes, such as the italic/superscript border inside the plain-text token
   ``XpdTTD``) are expanded to whole tokens or the mention is dropped. Mentions crossing a gold sentence
   boundary are dropped.
4. **Overlaps** (nested/crossing/identical mentions, within and across modules) cannot live in one flat
   layer: one mention is kept per overlapping group (longest first by default, ties broken by
   :attr:`TagPolicies.module_priority`).
5. IOB2 tags, checked by :func:`validate_iob2`.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import logging
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from craftlib import cache, config, session
from craftlib.bio import spans_to_bio, validate_iob2
from craftlib.corpus import (
    MARKER,
    NER_MODULES,
    Document,
    Mention,
    fetch_craft,
    read_document,
    read_split_ids,
    resolved_source,
    select_ids,
    source_identity,
)
from craftlib.errors import DatasetError

log = logging.getLogger(__name__)

DISCONTINUOUS_CHOICES = ("bridge_or_longest", "covering", "first", "last", "longest", "drop")
BOUNDARY_CHOICES = ("expand", "drop")
OVERLAP_CHOICES = ("longest", "shortest", "priority")
GENE_RULE_CHOICES = ("italic", "context", "italic+context", "none")
#: Words that, directly before or after a PR mention (separated by spaces or one hyphen, any case), say that
#: the gene (or its transcript, allele, locus, mutant) is meant: the ``context`` Gene rule. Kept: words whose
#: gene-level reading is unambiguous. Left out on purpose: "expression", "deficient", "deficiency", "deletion"
#: (used for proteins as well), "Cre" (a driver line names a promoter *and* a recombinase).
GENE_CONTEXT_WORDS: frozenset[str] = frozenset({
    "gene", "genes", "mrna", "mrnas", "cdna", "cdnas", "transcript", "transcripts", "allele", "alleles",
    "promoter", "promoters", "locus", "loci", "knockout", "knockouts", "ko", "kos", "cko", "dko", "null",
    "mutant", "mutants", "mutation", "mutations", "transgene", "transgenes", "exon", "exons", "intron", "introns",
})
#: Words that, next to a PR mention, say that the protein is meant ("Shh protein", "anti-Pax6", and "X gene
#: product"). In the ``context`` and ``italic+context`` rules they win over everything else ("mutant BRCA2
#: protein" has a gene word before and a protein word after it: a Protein); they also count contradictions.
PROTEIN_CONTEXT_WORDS: frozenset[str] = frozenset({
    "protein", "proteins", "polypeptide", "polypeptides", "antibody", "antibodies", "anti",
    "immunoreactivity", "immunostaining",
})
#: "X gene product(s)" is the protein: "gene" followed by "product" is not a gene-context word.
_GENE_PRODUCT = re.compile(r"^(?:[ \t\u00a0]+|-)genes?[ \t\u00a0]+products?\b", re.IGNORECASE)
_WORD_AFTER = re.compile(r"^(?:[ \t\u00a0]+|-)([A-Za-z]+)")
_WORD_BEFORE = re.compile(r"([A-Za-z]+)(?:[ \t\u00a0]+|-)$")


@dataclass(frozen=True)
class TagPolicies:
    """The named choices that turn CRAFT's overlapping, discontinuous annotations into flat IOB2.

    * ``gene_rule``: which PR mentions become ``Gene`` (the others are ``Protein``): ``"italic"`` — those
      overlapping an italic span; ``"context"`` — those with a :data:`GENE_CONTEXT_WORDS` word directly
      before or after them; ``"italic+context"`` (default) — either; ``"none"`` — no PR mention is a Gene.
      See the module docstring for why the default was chosen and what the rule substitutes for.
    * ``discontinuous``: what a mention with several fragments becomes.
      ``"bridge_or_longest"`` (default): the covering span when the gaps between fragments hold only
      whitespace/punctuation (the fragments are really one phrase), otherwise its longest fragment (for
      "alpha- and beta-tubulin" the fragment "tubulin", which the boundary step widens to "beta-tubulin");
      ``"covering"``: always first start → last end; ``"first"`` / ``"last"`` / ``"longest"``: that
      fragment; ``"drop"``: the mention is dropped.
    * ``boundary``: a mention starting or ending inside a token: ``"expand"`` (default) to whole tokens,
      or ``"drop"`` it.
    * ``overlap``: which mention of an overlapping group is kept: ``"longest"`` (default; most tokens,
      ties by ``module_priority`` then position), ``"shortest"`` (innermost), ``"priority"`` (module
      priority first, then length).
    * ``module_priority``: specific named entities before generic terms: PR (genes/proteins), NCBITaxon,
      CL, CHEBI, SO (SO annotates many generic words such as "gene", "mutation", "allele").
    """

    gene_rule: str = "italic+context"
    discontinuous: str = "bridge_or_longest"
    boundary: str = "expand"
    overlap: str = "longest"
    module_priority: tuple[str, ...] = ("PR", "NCBITaxon", "CL", "CHEBI", "SO")

    def __post_init__(self) -> None:
        for name, choices in (
            ("gene_rule", GENE_RULE_CHOICES),
            ("discontinuous", DISCONTINUOUS_CHOICES),
            ("boundary", BOUNDARY_CHOICES),
            ("overlap", OVERLAP_CHOICES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"TagPolicies.{name}={getattr(self, name)!r}: choose one of {', '.join(choices)}.")
        if sorted(self.module_priority) != sorted(NER_MODULES):
            raise ValueError(f"module_priority must order exactly the modules {NER_MODULES}.")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["module_priority"] = list(self.module_priority)
        return d


# ------------------------------------------------------------------------------------------ checks and subsets


def check_dataset(dataset, where: str = "") -> None:
    """Refuse a ``datasets.Dataset`` that training or scoring cannot trust: ``ner_tags`` that are not
    craftlib's 13 labels, label ids out of range, or a sentence that is not valid IOB2. The
    :class:`~craftlib.errors.DatasetError` names the first offending sentence (``doc_id``, ``sentence_id``)."""
    where = f"{where}: " if where else ""
    if "ner_tags" not in dataset.column_names:
        raise DatasetError(f"{where}the dataset has no ner_tags column: rebuild it with `python -m craftlib data`.")
    feature = getattr(dataset.features["ner_tags"], "feature", None)
    names = list(getattr(feature, "names", None) or config.LABELS)
    if names != list(config.LABELS):
        raise DatasetError(f"{where}the dataset's labels {names} are not craftlib's {list(config.LABELS)}: rebuild "
                           "it with `python -m craftlib data`.")
    n = len(config.LABELS)
    # label ids: 0 = O, odd = B-X, even = I-X (the I- of B-X = id + 1); valid IOB2 means an I- id follows
    # its own B- id or itself
    for row, ids in enumerate(dataset["ner_tags"]):
        prev = 0
        for pos, i in enumerate(ids):
            bad = None
            if not (isinstance(i, int) and 0 <= i < n):
                bad = f"label id {i!r} out of range (0..{n - 1})"
            elif i and i % 2 == 0 and prev not in (i - 1, i):
                bad = f"{config.LABELS[i]} follows {config.LABELS[prev]} (not valid IOB2)"
            if bad:
                rec = dataset[row]
                raise DatasetError(
                    f"{where}sentence {rec.get('sentence_id')} of document {rec.get('doc_id')} (row {row}), token "
                    f"{pos}: {bad}. The saved dataset is damaged or was edited: rebuild it with "
                    "`python -m craftlib data --force` (and `augment` for the augmented set).")
            prev = i


def train_subset(dataset, limit: int | None, seed: int):
    """The training sentences a profile uses: the first ``limit`` sentences after a seeded shuffle (all sentences,
    in order, when ``limit`` is ``None``). Every system draws the same ones (``max_train_sentences``)."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit))


def eval_subset(dataset, limit: int | None):
    """The evaluation sentences a profile uses: the first ``limit`` sentences of dev or test (all when ``None``;
    ``max_eval_sentences``)."""
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


def profile_splits(dataset, profile: config.Profile, seed: int) -> dict:
    """``{"train", "validation", "test"}`` of a DatasetDict cut to a profile's limits (:func:`train_subset`,
    :func:`eval_subset`): the sentences every system of the project trains and is scored on."""
    return {"train": train_subset(dataset["train"], profile.max_train_sentences, seed),
            "validation": eval_subset(dataset["validation"], profile.max_eval_sentences),
            "test": eval_subset(dataset["test"], profile.max_eval_sentences)}


# ------------------------------------------------------------------------------------------ policies


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def context_words(mention: Mention) -> tuple[str, str]:
    """The words directly before and after a mention, lower-cased (``""`` when none).

    Read from the document text around the mention (``Mention.before`` / ``Mention.after``, filled by
    :func:`craftlib.corpus.read_mentions`); a word counts only when spaces or a single hyphen separate it
    from the mention ("Pax6 gene", "Shh-null", "anti-Pax6"), not punctuation or a line break.
    """
    after = _WORD_AFTER.match(mention.after)
    before = _WORD_BEFORE.search(mention.before)
    return (before.group(1).lower() if before else "", after.group(1).lower() if after else "")


def has_gene_context(mention: Mention) -> bool:
    """A word of :data:`GENE_CONTEXT_WORDS` directly before or after the mention (not "gene product")."""
    before, after = context_words(mention)
    if after in ("gene", "genes") and _GENE_PRODUCT.match(mention.after):
        after = ""
    return before in GENE_CONTEXT_WORDS or after in GENE_CONTEXT_WORDS


def has_protein_context(mention: Mention) -> bool:
    """A word of :data:`PROTEIN_CONTEXT_WORDS` directly before or after the mention, or "X gene product"."""
    before, after = context_words(mention)
    return (before in PROTEIN_CONTEXT_WORDS or after in PROTEIN_CONTEXT_WORDS
            or bool(_GENE_PRODUCT.match(mention.after)))


def is_italic(mention: Mention, italics: Sequence[tuple[int, int]]) -> bool:
    """Whether any fragment of the mention overlaps an italic span ``(start, end)``."""
    return any(_overlaps(it, frag) for frag in mention.spans for it in italics)


def mention_type(mention: Mention, italics: Sequence[tuple[int, int]], policies: TagPolicies) -> str:
    """Entity type of a mention; a PR mention is a Gene or a Protein by ``policies.gene_rule``.

    ``italics``: the document's italic typography spans. The context words are read from the document text
    kept on the mention (``Mention.before`` / ``after``, filled by :func:`craftlib.corpus.read_mentions`; a
    hand-made ``Mention`` without them has no context).
    """
    kind = config.MODULE_TO_TYPE[mention.module]
    if mention.module != "PR":
        return kind
    rule = policies.gene_rule
    if rule == "italic":
        return "Gene" if is_italic(mention, italics) else "Protein"
    if rule == "none" or has_protein_context(mention):
        return "Protein"
    if has_gene_context(mention) or (rule == "italic+context" and is_italic(mention, italics)):
        return "Gene"
    return "Protein"


def _gap_is_punct(text: str) -> bool:
    return all(c.isspace() or unicodedata.category(c).startswith("P") for c in text)


def contiguous_span(mention: Mention, text: str, policy: str) -> tuple[tuple[int, int] | None, str]:
    """``(span or None, what happened)`` for the discontinuous policy; contiguous mentions pass unchanged."""
    spans = mention.spans
    if len(spans) == 1:
        return spans[0], "contiguous"
    covering = (spans[0][0], spans[-1][1])
    longest = max(reversed(spans), key=lambda s: s[1] - s[0])  # ties: the last fragment (head-final English)
    if policy == "drop":
        return None, "dropped"
    if policy == "covering":
        return covering, "covering"
    if policy == "first":
        return spans[0], "fragment"
    if policy == "last":
        return spans[-1], "fragment"
    if policy == "longest":
        return longest, "fragment"
    gaps = [text[a[1]:b[0]] for a, b in itertools.pairwise(spans)]
    if all(_gap_is_punct(g) for g in gaps):
        return covering, "bridged"
    return longest, "fragment"


@dataclass
class _Candidate:
    start: int  # token index within the sentence
    end: int  # exclusive
    kind: str
    module: str
    order: int


def _resolve_overlaps(cands: list[_Candidate], policies: TagPolicies, counts: Counter) -> list[_Candidate]:
    """Keep one mention per overlapping group; count what is removed and why."""
    prio = {m: i for i, m in enumerate(policies.module_priority)}

    def key(c: _Candidate):
        length = c.end - c.start
        if policies.overlap == "longest":
            return (-length, prio[c.module], c.start, c.order)
        if policies.overlap == "shortest":
            return (length, prio[c.module], c.start, c.order)
        return (prio[c.module], -length, c.start, c.order)

    kept: list[_Candidate] = []
    for c in sorted(cands, key=key):
        clash = next((k for k in kept if c.start < k.end and k.start < c.end), None)
        if clash is None:
            kept.append(c)
            continue
        scope = "same_module" if clash.module == c.module else "cross_module"
        if (clash.start, clash.end) == (c.start, c.end):
            what = "duplicate" if clash.kind == c.kind else f"same_span_other_type_{scope}"
        elif clash.start <= c.start and c.end <= clash.end:
            what = f"nested_{scope}" if policies.overlap != "shortest" else f"enclosing_{scope}"
        elif c.start <= clash.start and clash.end <= c.end:
            what = f"enclosing_{scope}"
        else:
            what = f"crossing_{scope}"
        counts[f"overlap:{what}"] += 1
    return sorted(kept, key=lambda c: c.start)


def tag_document(
    doc: Document,
    annotation_set: str = "proper",
    policies: TagPolicies | None = None,
) -> tuple[list[dict], Counter]:
    """IOB2 records ``{tokens, ner_tags, doc_id, sentence_id}`` of one document and the policy counts."""
    policies = policies or TagPolicies()
    counts: Counter = Counter()
    italics = sorted((s.start, s.end) for s in doc.typography if s.label == "italic")
    tok_starts, tok_ends, tok_sent, tok_local = [], [], [], []
    for si, sent in enumerate(doc.sentences):
        for ti, tok in enumerate(sent.tokens):
            tok_starts.append(tok.start)
            tok_ends.append(tok.end)
            tok_sent.append(si)
            tok_local.append(ti)

    per_sentence: dict[int, list[_Candidate]] = {}
    order = 0
    for (module, aset), mentions in doc.mentions.items():
        if aset != annotation_set or module not in config.MODULE_TO_TYPE:
            continue
        for m in mentions:
            counts[f"read:{module}"] += 1
            kind = mention_type(m, italics, policies)
            if m.module == "PR":
                counts[f"gene_rule:{kind}"] += 1
            if m.discontinuous:
                counts["discontinuous:mentions"] += 1
            span, what = contiguous_span(m, doc.text, policies.discontinuous)
            if what != "contiguous":
                counts[f"discontinuous:{what}"] += 1
            if span is None:
                continue
            first = bisect.bisect_right(tok_ends, span[0])  # first token ending after the span start
            last = bisect.bisect_left(tok_starts, span[1]) - 1  # last token starting before the span end
            if first > last or first >= len(tok_starts):
                counts["dropped:no_token"] += 1
                continue
            if tok_starts[first] < span[0] or tok_ends[last] > span[1]:  # counted once: expanded or dropped
                if policies.boundary == "drop":
                    counts["boundary:dropped"] += 1
                    continue
                counts["boundary:expanded"] += 1
            if tok_sent[first] != tok_sent[last]:
                counts["dropped:cross_sentence"] += 1
                continue
            per_sentence.setdefault(tok_sent[first], []).append(
                _Candidate(tok_local[first], tok_local[last] + 1, kind, module, order)
            )
            order += 1

    records = []
    for si, sent in enumerate(doc.sentences):
        kept = _resolve_overlaps(per_sentence.get(si, []), policies, counts)
        tags = spans_to_bio(len(sent.tokens), [(c.start, c.end, c.kind) for c in kept])
        validate_iob2(tags, where=f"document {doc.doc_id} sentence {sent.sentence_id}: ")
        for c in kept:
            counts[f"entities:{c.kind}"] += 1
        records.append(
            {
                "tokens": [t.form for t in sent.tokens],
                "ner_tags": tags,
                "doc_id": doc.doc_id,
                "sentence_id": sent.sentence_id,
            }
        )
    return records, counts


# ------------------------------------------------------------------------------------------ typography


def merge_spans(spans) -> list[tuple[int, int]]:
    """``(start, end)`` character spans as sorted, disjoint intervals (overlapping or touching ones merged)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlap_flags(merged: Sequence[tuple[int, int]], tokens: Sequence[tuple[int, int]]) -> list[bool]:
    """For each ``(start, end)`` token, whether it overlaps one of the :func:`merge_spans` intervals ``merged``."""
    starts = [s for s, _ in merged]
    flags = []
    for start, end in tokens:  # the last interval starting before the token's end overlaps it, or none does
        k = bisect.bisect_left(starts, end) - 1
        flags.append(k >= 0 and merged[k][1] > start)
    return flags


def italic_flags(dataset, root: str | os.PathLike) -> list[list[bool]]:
    """For every sentence of ``dataset`` (rows with ``doc_id``, ``sentence_id`` and ``tokens``), whether each token
    overlaps an italic span of its document in CRAFT's typography layer (the extracted corpus at ``root``).

    The input of ``Profile.italic_markers``: what a tagger could see if its text kept the journal's typesetting
    (a PMC XML article does; plain text does not). An ablation, never a default. A sentence whose tokens differ from
    the corpus's (another CRAFT version, a stale dataset) is an error that says how to rebuild."""
    rows = list(zip(dataset["doc_id"], dataset["sentence_id"], dataset["tokens"]))
    flags_of: dict[tuple[str, str], list[bool]] = {}
    for doc_id in sorted({d for d, _, _ in rows}):
        doc = read_document(root, doc_id, modules=(), annotation_sets=())
        merged = merge_spans((s.start, s.end) for s in doc.typography if s.label == "italic")
        for sent in doc.sentences:
            flags_of[(doc_id, sent.sentence_id)] = overlap_flags(merged, [(t.start, t.end) for t in sent.tokens])
    out = []
    for doc_id, sentence_id, tokens in rows:
        flags = flags_of.get((doc_id, sentence_id))
        if flags is None or len(flags) != len(tokens):
            raise DatasetError(f"Sentence {sentence_id} of document {doc_id} does not match the CRAFT corpus at "
                               f"{root}: rebuild the dataset from it (`python -m craftlib data --force`).")
        out.append(flags)
    return out


# ------------------------------------------------------------------------------------------ dataset


def features():
    """The dataset's ``datasets.Features`` (see ARCHITECTURE.md, "Dataset records")."""
    from datasets import ClassLabel, Features, List, Value

    return Features(
        {
            "tokens": List(Value("string")),
            "ner_tags": List(ClassLabel(names=list(config.LABELS))),
            "doc_id": Value("string"),
            "sentence_id": Value("int32"),
        }
    )


def _split_stats(records: list[dict], n_docs: int, counts: Counter) -> dict:
    entities = {t: counts.get(f"entities:{t}", 0) for t in config.ENTITY_TYPES}
    gene, protein = counts.get("gene_rule:Gene", 0), counts.get("gene_rule:Protein", 0)
    return {
        "documents": n_docs,
        "sentences": len(records),
        "tokens": sum(len(r["tokens"]) for r in records),
        "entities": entities,
        "entities_total": sum(entities.values()),
        "mentions_read": {m: counts.get(f"read:{m}", 0) for m in NER_MODULES},
        "gene_rule": {
            "Gene": gene,
            "Protein": protein,
            "gene_share": round(gene / (gene + protein), 4) if gene + protein else 0.0,
        },
        "policy_counts": {
            k: v for k, v in sorted(counts.items()) if not k.startswith(("read:", "entities:", "gene_rule:"))
        },
    }


def export_conll(records: dict[str, list[dict]], folder: str | os.PathLike) -> Path:
    """Write ``<folder>/{train,validation,test}.conll`` (token TAB tag, a blank line between sentences) from the
    tagged records of each corpus split (:func:`tag_corpus`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, recs in records.items():
        with open(folder / f"{config.HF_SPLITS[split]}.conll", "w", encoding="utf-8") as fh:
            for r in recs:
                fh.writelines(f"{tok}\t{tag}\n" for tok, tag in zip(r["tokens"], r["ner_tags"]))
                fh.write("\n")
    return folder


def _dataset_files(folder: Path) -> dict[str, int]:
    """``{relative path: size}`` of every file of a saved dataset (checked when it is loaded)."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def _dataset_checksums(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file of a saved dataset (checked when it is loaded: a damaged Arrow
    file of the right size can make pyarrow crash the process instead of raising)."""
    return {p.relative_to(folder).as_posix(): cache.sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _corpus_identity(root: Path) -> dict:
    """Where the corpus read came from: the extraction's recorded source, or the folder read in place."""
    try:
        marker = json.loads((Path(root) / MARKER).read_text())
        return {"extraction": str(root), "source": marker.get("source"), "sha256": marker.get("sha256")}
    except (OSError, ValueError):
        return {"folder": str(Path(root).resolve())}


def _tag_one(job: tuple) -> tuple[list[dict], Counter]:
    """Read and tag one document (a top-level function so that worker processes can run it)."""
    root, doc_id, split, annotation_set, policies = job
    doc = read_document(root, doc_id, modules=NER_MODULES, annotation_sets=(annotation_set,), split=split)
    return tag_document(doc, annotation_set, policies)


def tag_corpus(
    root: Path, wanted: Sequence[tuple[str, str]], annotation_set: str, policies: TagPolicies,
    workers: int | None = None, progress: bool = True, desc: str = "tagging",
) -> tuple[dict[str, list[dict]], dict[str, Counter], Counter]:
    """Read and tag the documents ``wanted`` (``(split, doc_id)`` pairs, in order) of the corpus at ``root``.

    Returns per corpus split the sentence records (``tokens``, ``ner_tags`` as tag names, ``doc_id``,
    ``sentence_id``) and the policy counts, and the number of documents per split. Documents are read in
    ``workers`` processes (default: one per CPU when there are more than a few documents; ``1`` reads them in
    this process); the result does not depend on it."""
    records: dict[str, list[dict]] = {s: [] for s in config.SPLITS}
    counts: dict[str, Counter] = {s: Counter() for s in config.SPLITS}
    docs: Counter = Counter()
    jobs = [(root, doc_id, split, annotation_set, policies) for split, doc_id in wanted]
    if workers is None:  # processes pay off beyond a few documents
        workers = min(os.cpu_count() or 1, len(jobs) // 8 or 1)
    with contextlib.ExitStack() as stack:
        # a bar that disappears when done (craftlib.session: no widget left in a saved notebook)
        advance = stack.enter_context(session.activity(len(jobs), desc, "doc", progress=progress))
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(workers))
            results = pool.map(_tag_one, jobs, chunksize=2)  # map keeps the ids-file order
        else:
            results = map(_tag_one, jobs)
        for (_, _, split, _, _), (recs, c) in zip(jobs, results):
            records[split].extend(recs)
            counts[split].update(c)
            docs[split] += 1
            advance()
    return records, counts, docs


def to_dataset_dict(records: dict[str, list[dict]]):
    """The ``DatasetDict`` (train / validation / test, :func:`features`) of the tagged records of each corpus split."""
    from datasets import Dataset, DatasetDict

    feats = features()
    return DatasetDict(
        {  # from_dict (not from_list): an empty split keeps its columns
            config.HF_SPLITS[s]: Dataset.from_dict({k: [r[k] for r in records[s]] for k in feats}, features=feats)
            for s in config.SPLITS
        }
    )


def dataset_stats(records: dict[str, list[dict]], counts: dict[str, Counter], docs: Counter,
                  wanted: Sequence[tuple[str, str]]) -> dict:
    """The counts of ``stats.json``: per split (documents, sentences, tokens, entities per type, Gene rule, policy
    counts, document ids) and in total."""
    total = Counter()
    for c in counts.values():
        total.update(c)
    n_records = [r for s in config.SPLITS for r in records[s]]
    return {
        "splits": {
            config.HF_SPLITS[s]: dict(_split_stats(records[s], docs[s], counts[s]), doc_ids=[
                d for sp, d in wanted if sp == s
            ])
            for s in config.SPLITS
        },
        "total": _split_stats(n_records, sum(docs.values()), total),
    }


#: Bumped when the tagged dataset's meaning changes without its recorded inputs changing: every saved one is rebuilt.
TAGS_FORMAT = 1
#: What the tagged-dataset stage writes into ``processed/<dataset>/`` (recorded together in its ``inputs.json``).
DATASET_ENTRIES = ("dataset", "conll", "stats.json")


def settle_dataset(spec: config.DataSpec, folder: Path) -> config.DataSpec:
    """``spec`` with what its caller left unstated taken from the dataset saved in ``folder`` (its ``stats.json``):
    a dataset built by ``python -m craftlib data --source X --gene-rule italic`` stays built from ``X`` with that
    rule (and is rebuilt when ``X`` changed); without a saved one, the setting (``CRAFT_SOURCE``) and the default
    :class:`TagPolicies`."""
    try:
        saved = json.loads((folder / "stats.json").read_text())
    except (OSError, ValueError):
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    policies = spec.policies
    if policies is None:
        try:
            policies = TagPolicies(**{**saved["policies"],
                                      "module_priority": tuple(saved["policies"]["module_priority"])})
        except (KeyError, TypeError, ValueError):
            policies = TagPolicies()
    return spec.but(source=spec.source or saved.get("source") or None, policies=policies)


def dataset_inputs(spec: config.DataSpec, needs: dict) -> dict | None:
    """What a tagged dataset is built from, as recorded in ``processed/<dataset>/inputs.json``: the corpus
    source (:func:`craftlib.corpus.source_identity`), the documents (profile's ``max_docs``), annotation set,
    policies and labels. ``None`` when the source no longer exists (nothing to compare a saved dataset with)."""
    source_id = source_identity(spec.source)
    if source_id is None:
        return None
    return {"tags_format": TAGS_FORMAT, "craft_version": config.CRAFT_VERSION, "source": source_id,
            "annotation_set": spec.annotation_set, "max_docs": spec.profile.max_docs,
            "policies": spec.policies.to_dict(), "labels": list(config.LABELS)}


def write_dataset(tmp: Path, spec: config.DataSpec, needs: dict) -> None:
    """Get the corpus (:func:`craftlib.corpus.fetch_craft`), tag the profile's documents (:func:`tag_corpus`) and
    write ``dataset/`` (:func:`to_dataset_dict`, ``save_to_disk``), ``conll/`` (:func:`export_conll`) and
    ``stats.json`` (:func:`dataset_stats`) into ``tmp`` (the stage loader renames them into place)."""
    import datasets

    t0 = time.perf_counter()
    root = fetch_craft(spec.source, sha256=spec.sha256, data_dir=spec.data_dir, progress=spec.progress)
    wanted = select_ids(read_split_ids(root), config.SPLITS, spec.profile.max_docs)
    records, counts, docs = tag_corpus(root, wanted, spec.annotation_set, spec.policies, spec.workers,
                                       spec.progress, desc=f"building {spec.dataset_name}")
    dsd = to_dataset_dict(records)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar (documents) is enough
    try:
        dsd.save_to_disk(str(tmp / "dataset"))
    finally:
        if bars:
            datasets.enable_progress_bars()
    export_conll(records, tmp / "conll")
    cache.atomic_write_json(tmp / "stats.json", {
        "dataset": spec.dataset_name,
        "annotation_set": spec.annotation_set,
        "profile": spec.profile.name,
        "max_docs": spec.profile.max_docs,
        "craft_version": config.CRAFT_VERSION,
        "source": resolved_source(spec.source),  # reused by the next load from any working directory
        "corpus_root": str(root),
        "corpus": _corpus_identity(root),
        "labels": list(config.LABELS),
        "policies": spec.policies.to_dict(),
        **dataset_stats(records, counts, docs, wanted),
        "files": _dataset_files(tmp / "dataset"),  # checked by every load
        "sha256": _dataset_checksums(tmp / "dataset"),  # so is their content: a damaged .arrow can crash pyarrow
        "build_seconds": round(time.perf_counter() - t0, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })


def read_dataset(folder: Path, spec: config.DataSpec):
    """Load a saved dataset after checking its files against ``stats.json`` and its tags: every file listed
    there must be present with its recorded size (a missing or truncated ``*.arrow`` / ``state.json`` is refused)
    and its recorded sha256 (a damaged ``.arrow`` of the right size can make pyarrow crash the process instead of
    raising), and every split must hold craftlib's labels in valid IOB2 (:func:`check_dataset`); a damaged dataset raises
    :class:`~craftlib.errors.DatasetError` saying how to rebuild it."""
    path = folder / "dataset"
    rebuild = (f"rebuild it with `python -m craftlib data --annotation-set {spec.annotation_set} --profile "
               f"{spec.profile.name}`")
    try:
        saved_stats = json.loads((folder / "stats.json").read_text())
        recorded, checksums = saved_stats.get("files"), saved_stats.get("sha256") or {}
    except (OSError, ValueError, AttributeError) as err:
        raise DatasetError(f"{folder / 'stats.json'} is unreadable ({err}): {rebuild}.") from err
    if recorded:  # datasets built before craftlib recorded their files are checked by loading only
        actual = _dataset_files(path)
        for name, size in recorded.items():
            if name not in actual:
                raise DatasetError(f"The saved dataset {path} lacks {name}: it is incomplete or damaged; {rebuild}.")
            if actual[name] != size:
                raise DatasetError(f"The saved dataset file {path / name} has {actual[name]} bytes, {size} were "
                                   f"written: it is truncated or damaged; {rebuild}.")
    for name, digest in checksums.items():  # verified before pyarrow maps the files (datasets built before: sizes)
        if not (path / name).is_file() or cache.sha256_file(path / name) != digest:
            raise DatasetError(f"The saved dataset file {path / name} is not what was written (its sha256 differs): "
                               f"it is damaged; {rebuild}.")
    try:
        dsd = _load_from_disk(path)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"The saved dataset {path} cannot be loaded ({type(err).__name__}: {err}); {rebuild}."
                           ) from err
    except Exception as err:  # pyarrow's ArrowInvalid (a ValueError subclass in recent pyarrow) and the like
        if type(err).__module__.startswith(("pyarrow", "datasets")):
            raise DatasetError(f"The saved dataset {path} cannot be loaded ({type(err).__name__}: {err}); "
                               f"{rebuild}.") from err
        raise
    for name, split in dsd.items():
        check_dataset(split, f"{path} [{name}]")
    return dsd


def _load_from_disk(path: Path):
    """``datasets.load_from_disk`` of a saved DatasetDict, tolerating empty splits.

    datasets 5.x saves a 0-row split without any data file and then cannot load it; such a split (a
    profile with ``max_docs=0`` for it) is rebuilt empty with the dataset's features.
    """
    from datasets import Dataset, DatasetDict, load_from_disk

    splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
    out = {}
    for name in splits:
        state = json.loads((path / name / "state.json").read_text())
        if state.get("_data_files"):
            out[name] = load_from_disk(str(path / name))
        else:
            feats = features()
            out[name] = Dataset.from_dict({k: [] for k in feats}, features=feats)
    return DatasetDict(out)


__all__ = [
    "GENE_CONTEXT_WORDS",
    "GENE_RULE_CHOICES",
    "PROTEIN_CONTEXT_WORDS",
    "TagPolicies",
    "check_dataset",
    "context_words",
    "dataset_inputs",
    "dataset_stats",
    "eval_subset",
    "export_conll",
    "features",
    "has_gene_context",
    "has_protein_context",
    "is_italic",
    "mention_type",
    "profile_splits",
    "read_dataset",
    "settle_dataset",
    "tag_corpus",
    "tag_document",
    "to_dataset_dict",
    "train_subset",
    "write_dataset",
]
