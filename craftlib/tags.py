"""From CRAFT concept annotations to one flat IOB2 layer of six entity types.

Pipeline per document (every step is a named option of :class:`TagPolicies` and every mention it
changes is counted in ``stats.json``):

1. **Type**: module → type (``config.MODULE_TO_TYPE``). CRAFT ≥ v3 annotates genes *and* their products
   with PR only, so the **Gene rule** splits PR: a PR mention that overlaps an ``italic`` typography span
   is a ``Gene`` (gene symbols are italic by nomenclature convention), otherwise a ``Protein``.
2. **Discontinuous** mentions (several ``<span>``) become one contiguous span or are dropped.
3. **Boundaries inside a token** (CRAFT allows affix boundaries such as "anti-[chromatin]") are expanded to
   whole tokens or the mention is dropped. Mentions crossing a gold sentence boundary are dropped.
4. **Overlaps** (nested/crossing/identical mentions, within and across modules) cannot live in one flat
   layer: one mention is kept per overlapping group (longest first by default, ties broken by
   :attr:`TagPolicies.module_priority`).
5. IOB2 tags, checked by :func:`validate_iob2`.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import json
import logging
import os
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from craftlib import cache, config
from craftlib.corpus import (
    NER_MODULES,
    Document,
    Mention,
    fetch_craft,
    read_document,
    read_split_ids,
    select_ids,
)
from craftlib.errors import BIOError, CraftlibError, DatasetError
from craftlib.viz import bio_spans

log = logging.getLogger(__name__)

DISCONTINUOUS_CHOICES = ("bridge_or_longest", "covering", "first", "last", "longest", "drop")
BOUNDARY_CHOICES = ("expand", "drop")
OVERLAP_CHOICES = ("longest", "shortest", "priority")
GENE_RULE_CHOICES = ("italic", "none")


@dataclass(frozen=True)
class TagPolicies:
    """The named choices that turn CRAFT's overlapping, discontinuous annotations into flat IOB2.

    * ``gene_rule``: ``"italic"`` (default) — a PR mention overlapping an italic span is a Gene, else a
      Protein; ``"none"`` — every PR mention is a Protein.
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

    gene_rule: str = "italic"
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


# ------------------------------------------------------------------------------------------ BIO helpers


def validate_iob2(tags: Sequence[str], where: str = "") -> None:
    """Raise :class:`BIOError` (naming the position) unless ``tags`` is valid IOB2 over :data:`config.LABELS`."""
    prev = "O"
    for i, tag in enumerate(tags):
        if tag not in config.LABEL2ID:
            raise BIOError(f"{where}position {i}: unknown tag {tag!r} (expected one of {', '.join(config.LABELS)}).")
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            raise BIOError(
                f"{where}position {i}: {tag} follows {prev}; in IOB2 an I- tag must continue a B-/I- of the "
                "same type."
            )
        prev = tag


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


def bio_entities(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entities ``(start, end_exclusive, type)`` of an IOB2 sequence (same as :func:`craftlib.viz.bio_spans`)."""
    return bio_spans(tags)


def spans_to_bio(n_tokens: int, spans: Sequence[tuple[int, int, str]]) -> list[str]:
    """IOB2 tags of ``n_tokens`` tokens from non-overlapping token spans ``(start, end_exclusive, type)``."""
    tags = ["O"] * n_tokens
    for start, end, kind in spans:
        if any(t != "O" for t in tags[start:end]):
            raise BIOError(f"spans_to_bio: span {start}-{end} {kind} overlaps another span.")
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end):
            tags[i] = f"I-{kind}"
    return tags


# ------------------------------------------------------------------------------------------ policies


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def mention_type(mention: Mention, italics: list[tuple[int, int]], policies: TagPolicies) -> str:
    """Entity type of a mention; PR → Gene when it overlaps an italic span (``gene_rule="italic"``)."""
    kind = config.MODULE_TO_TYPE[mention.module]
    if mention.module == "PR" and policies.gene_rule == "italic":
        if any(_overlaps(it, frag) for frag in mention.spans for it in italics):
            return "Gene"
        return "Protein"
    return kind


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
            if tok_starts[first] < span[0] or tok_ends[last] > span[1]:
                counts["boundary:inside_token"] += 1
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


def _write_conll(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.writelines(f"{tok}\t{tag}\n" for tok, tag in zip(r["tokens"], r["ner_tags"]))
            fh.write("\n")


def _dataset_files(folder: Path) -> dict[str, int]:
    """``{relative path: size}`` of every file of a saved dataset (checked when it is loaded)."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def _corpus_identity(root: Path) -> dict:
    """Where the corpus read came from: the extraction's recorded source, or the folder read in place."""
    from craftlib.corpus import MARKER

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


def build_dataset(
    profile: str | config.Profile | None = None,
    annotation_set: str = "proper",
    source: str | os.PathLike | None = None,
    sha256: str | None = None,
    data_dir: str | os.PathLike | None = None,
    policies: TagPolicies | None = None,
    force: bool = False,
    progress: bool = True,
    workers: int | None = None,
):
    """Build the IOB2 ``DatasetDict`` (train/validation/test) of a profile and annotation set.

    Writes ``config.processed_dir(profile, annotation_set, data_dir)`` / ``dataset/`` (``save_to_disk``),
    ``stats.json`` and ``conll/{train,validation,test}.conll``, each through a temporary path renamed
    into place. ``force`` also re-extracts the corpus. Documents are read in ``workers`` processes
    (default: one per CPU when there are more than a few documents; ``1`` reads them in this process);
    the result does not depend on it.
    Returns the DatasetDict.
    """
    import datasets
    from datasets import Dataset, DatasetDict
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    prof = config.get_profile(profile)
    policies = policies or TagPolicies()
    out_dir = config.processed_dir(prof, annotation_set, data_dir)
    root = fetch_craft(source, sha256=sha256, data_dir=data_dir, force=force, progress=progress)
    split_ids = read_split_ids(root)
    wanted = select_ids(split_ids, config.SPLITS, prof.max_docs)

    records: dict[str, list[dict]] = {s: [] for s in config.SPLITS}
    counts: dict[str, Counter] = {s: Counter() for s in config.SPLITS}
    docs: Counter = Counter()
    jobs = [(root, doc_id, split, annotation_set, policies) for split, doc_id in wanted]
    if workers is None:  # processes pay off beyond a few documents
        workers = min(os.cpu_count() or 1, len(jobs) // 8 or 1)
    bar = tqdm(total=len(jobs), desc=f"building {out_dir.name}", unit="doc", disable=not progress)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(workers))
            results = pool.map(_tag_one, jobs, chunksize=2)  # map keeps the ids-file order
        else:
            results = map(_tag_one, jobs)
        for (_, _, split, _, _), (recs, c) in zip(jobs, results):
            records[split].extend(recs)
            counts[split].update(c)
            docs[split] += 1
            bar.update()
    bar.close()

    feats = features()
    dsd = DatasetDict(
        {  # from_dict (not from_list): an empty split keeps its columns
            config.HF_SPLITS[s]: Dataset.from_dict({k: [r[k] for r in records[s]] for k in feats}, features=feats)
            for s in config.SPLITS
        }
    )
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar (documents) is enough
    try:
        # built in a temporary folder; stats.json (which lists every file with its size) is removed first and
        # renamed into place last, so a dataset folder is complete exactly when its stats.json is there
        with cache.temp_dir(out_dir / "dataset") as tmp:
            dsd.save_to_disk(str(tmp / "dataset"))
            (tmp / "conll").mkdir()
            for s in config.SPLITS:
                _write_conll(tmp / "conll" / f"{config.HF_SPLITS[s]}.conll", records[s])
            total = Counter()
            for c in counts.values():
                total.update(c)
            n_records = [r for s in config.SPLITS for r in records[s]]
            stats = {
                "dataset": out_dir.name,
                "annotation_set": annotation_set,
                "profile": prof.name,
                "max_docs": prof.max_docs,
                "craft_version": config.CRAFT_VERSION,
                "source": str(config.craft_source(source)),
                "corpus_root": str(root),
                "corpus": _corpus_identity(root),
                "labels": list(config.LABELS),
                "policies": policies.to_dict(),
                "splits": {
                    config.HF_SPLITS[s]: dict(_split_stats(records[s], docs[s], counts[s]), doc_ids=[
                        d for sp, d in wanted if sp == s
                    ])
                    for s in config.SPLITS
                },
                "total": _split_stats(n_records, sum(docs.values()), total),
                "files": _dataset_files(tmp / "dataset"),
                "build_seconds": round(time.perf_counter() - t0, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            cache.atomic_write_json(tmp / "stats.json", stats)
            (out_dir / "stats.json").unlink(missing_ok=True)
            cache.replace_dir(tmp / "dataset", out_dir / "dataset")
            cache.replace_dir(tmp / "conll", out_dir / "conll")
            os.replace(tmp / "stats.json", out_dir / "stats.json")
    finally:
        if bars:
            datasets.enable_progress_bars()
    log.info("wrote %s in %.1f s", out_dir, time.perf_counter() - t0)
    return dsd


def load_dataset(
    profile: str | config.Profile | None = None,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    build_if_missing: bool = True,
    progress: bool = True,
):
    """The saved ``DatasetDict`` of a profile/annotation set; built first when missing (``build_if_missing``).

    A saved dataset is checked before it is used: every file listed in its ``stats.json`` must be there with
    its recorded size (a missing or truncated ``*.arrow`` / ``state.json`` is refused), and every split must hold
    craftlib's labels in valid IOB2 (:func:`check_dataset`). A damaged dataset raises
    :class:`~craftlib.errors.DatasetError` saying how to rebuild it.
    """
    out_dir = config.processed_dir(profile, annotation_set, data_dir)
    path = out_dir / "dataset"
    if not (path.is_dir() and (out_dir / "stats.json").is_file()):
        if not build_if_missing:
            raise CraftlibError(
                f"No dataset at {path}. Build it with `python -m craftlib data --annotation-set {annotation_set}"
                f"{' --profile ' + config.get_profile(profile).name if profile else ''}` or pass build_if_missing=True."
            )
        return build_dataset(profile, annotation_set, source=source, data_dir=data_dir, progress=progress)
    rebuild = (f"rebuild it with `python -m craftlib data --annotation-set {annotation_set} --profile "
               f"{config.get_profile(profile).name}`")
    try:
        recorded = json.loads((out_dir / "stats.json").read_text()).get("files")
    except (OSError, ValueError, AttributeError) as err:
        raise DatasetError(f"{out_dir / 'stats.json'} is unreadable ({err}): {rebuild}.") from err
    if recorded:  # datasets built before craftlib recorded their files are checked by loading only
        actual = _dataset_files(path)
        for name, size in recorded.items():
            if name not in actual:
                raise DatasetError(f"The saved dataset {path} lacks {name}: it is incomplete or damaged; {rebuild}.")
            if actual[name] != size:
                raise DatasetError(f"The saved dataset file {path / name} has {actual[name]} bytes, {size} were "
                                   f"written: it is truncated or damaged; {rebuild}.")
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


def load_stats(
    profile: str | config.Profile | None = None,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """The ``stats.json`` written beside the dataset."""
    path = config.processed_dir(profile, annotation_set, data_dir) / "stats.json"
    if not path.is_file():
        raise CraftlibError(f"No {path}: build the dataset first (`python -m craftlib data`).")
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------------ CLI


def _cmd_data(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    policies = TagPolicies(
        gene_rule=args.gene_rule, discontinuous=args.discontinuous, boundary=args.boundary, overlap=args.overlap
    )
    dsd = build_dataset(
        profile=args.profile,
        annotation_set=args.annotation_set,
        source=args.source,
        sha256=args.sha256,
        data_dir=args.data_dir,
        policies=policies,
        force=args.force,
    )
    elapsed = time.perf_counter() - t0
    stats = load_stats(args.profile, args.annotation_set, args.data_dir)
    out = config.processed_dir(args.profile, args.annotation_set, args.data_dir)
    print(f"dataset {stats['dataset']} -> {out}")
    for name in dsd:
        s = stats["splits"][name]
        ents = ", ".join(f"{t} {n}" for t, n in s["entities"].items())
        print(f"  {name:<10} {s['documents']:>3} docs {s['sentences']:>6} sentences {s['tokens']:>7} tokens | {ents}")
    g = stats["total"]["gene_rule"]
    print(f"  Gene rule: {g['Gene']} Gene / {g['Protein']} Protein PR mentions ({g['gene_share']:.1%} Gene)")
    print(f"built in {elapsed:.1f} s")
    return 0


def add_commands(subparsers) -> None:
    from craftlib.cli import add_profile_option

    p = subparsers.add_parser(
        "data",
        help="get CRAFT and build the IOB2 dataset + stats.json + CoNLL export",
        description="Get CRAFT (URL, .tar.gz or folder) and build data/processed/<dataset>/.",
    )
    p.add_argument("--source", default=None, help="URL, .tar.gz or extracted folder (default: $CRAFT_SOURCE or the release URL)")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive (default: $CRAFT_SHA256)")
    p.add_argument("--annotation-set", default="proper", choices=config.ANNOTATION_SETS)
    add_profile_option(p)
    p.add_argument("--data-dir", default=None, help="default: $CRAFTLIB_DATA_DIR or <repo>/data")
    p.add_argument("--force", action="store_true", help="re-extract the corpus and rebuild")
    d = TagPolicies()
    p.add_argument("--gene-rule", default=d.gene_rule, choices=GENE_RULE_CHOICES)
    p.add_argument("--discontinuous", default=d.discontinuous, choices=DISCONTINUOUS_CHOICES)
    p.add_argument("--boundary", default=d.boundary, choices=BOUNDARY_CHOICES)
    p.add_argument("--overlap", default=d.overlap, choices=OVERLAP_CHOICES)
    p.set_defaults(func=_cmd_data)


__all__ = [
    "TagPolicies",
    "add_commands",
    "bio_entities",
    "build_dataset",
    "features",
    "load_dataset",
    "load_stats",
    "spans_to_bio",
    "tag_document",
    "validate_iob2",
]
