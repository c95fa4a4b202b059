"""The derived artefacts of a dataset, declared once: what each is built from, where it lives, what builds it.

:data:`STAGES` is the table (ARCHITECTURE.md shows it); :func:`load` is the one loader. For a stage and a
:class:`craftlib.config.DataSpec` it loads the stages the stage needs, settles what the caller left unstated from
the saved artefact (``settle``), computes the stage's recorded inputs, and then either loads the saved artefact
(current: built from exactly these inputs) or builds it in a temporary folder renamed into place
(:func:`craftlib.cache.load_or_build`), saying which and why. The ``data``, ``entity-lists`` and ``augment``
commands are this loader with options; their "reused ... / wrote ..." line is :func:`load`'s.

The extracted corpus (``data/raw/CRAFT-5.0.2``) is the first row: :func:`craftlib.corpus.fetch_craft` keeps it
(keyed on the archive, extracted atomically) and the tagged dataset's build calls it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from craftlib import cache, config
from craftlib.augment import DEFAULT_SAMPLING, SAMPLINGS, augmented_inputs, read_augmented, write_augmented
from craftlib.corpus import fetch_craft
from craftlib.errors import CraftlibError, DatasetError, OntologyError
from craftlib.linking import index_inputs, read_index, write_index
from craftlib.ontology import (
    FILTERS,
    lists_inputs,
    parse_source_options,
    read_lists,
    settle_lists,
    write_lists,
)
from craftlib.options import (
    add_dataset_options,
    add_ontology_options,
    probability,
    seed_value,
)
from craftlib.runtime import datasets_bars
from craftlib.tags import (
    BOUNDARY_CHOICES,
    DATASET_ENTRIES,
    DISCONTINUOUS_CHOICES,
    GENE_RULE_CHOICES,
    OVERLAP_CHOICES,
    TagPolicies,
    dataset_inputs,
    read_dataset,
    settle_dataset,
    write_dataset,
)


@dataclass(frozen=True)
class Stage:
    """One derived artefact of a dataset (a row of :data:`STAGES`)."""

    #: what it is, in messages ("the tagged dataset")
    title: str
    #: its folder under ``processed/<dataset>/`` (``""``: that folder itself, shared with the later stages)
    folder: str
    #: the stages it is built from, loaded (current) before it
    needs: tuple[str, ...]
    #: ``(spec, needs) -> dict``: what it is built from, recorded in its ``inputs.json``
    inputs: Callable
    #: ``(tmp, spec, needs)``: writes it into a temporary folder
    build: Callable
    #: ``(folder, spec) -> artefact``
    read: Callable
    #: the command that builds it
    command: str
    error: type[CraftlibError] = CraftlibError
    #: ``(spec, folder) -> spec``: what the caller left unstated, from the saved artefact
    settle: Callable | None = None
    #: the entries of a shared folder that are this stage's (``None``: the whole folder)
    entries: tuple[str, ...] | None = None
    #: one artefact for every dataset: its folder is under ``processed/``, not ``processed/<dataset>/``
    every_dataset: bool = False


#: Every derived artefact of a dataset, in build order. ``needs`` name earlier rows; a build sees each need's
#: artefact (``needs["dataset"]``) and its ``stats.json`` (``needs["dataset_stats"]``).
STAGES: dict[str, Stage] = {
    "dataset": Stage("the tagged dataset", "", (), dataset_inputs, write_dataset, read_dataset,
                     "python -m craftlib data", DatasetError, settle_dataset, DATASET_ENTRIES),
    "entity_lists": Stage("the entity lists", "entity_lists", ("dataset",), lists_inputs, write_lists, read_lists,
                          "python -m craftlib entity-lists", OntologyError, settle_lists),
    "augmented": Stage("the augmented set", "augmented", ("dataset", "entity_lists"), augmented_inputs,
                       write_augmented, read_augmented, "python -m craftlib augment"),
    "linking": Stage("the linking index", "linking", (), index_inputs, write_index, read_index,
                     "python -m craftlib predict --link", OntologyError, every_dataset=True),
}


def _stage(name: str) -> Stage:
    if name not in STAGES:
        raise CraftlibError(f"Unknown stage {name!r}: choose one of {', '.join(STAGES)}.")
    return STAGES[name]


def folder(name: str, spec: config.DataSpec) -> Path:
    """Where stage ``name`` of ``spec``'s dataset lives."""
    stage = _stage(name)
    return (spec.data_dir / "processed" if stage.every_dataset else spec.processed_dir) / stage.folder


def _complete(stage: Stage, where: Path) -> bool:
    """Every entry there and the record of its inputs written last (see :func:`craftlib.cache.commit_entries`)."""
    entries = stage.entries or ()
    return (where / cache.INPUTS_FILE).is_file() and all((where / e).exists() for e in entries)


def stats(name: str, spec: config.DataSpec) -> dict:
    """The ``stats.json`` report of stage ``name`` (build it first: the error names the command)."""
    stage, where = _stage(name), folder(name, spec)
    return cache.read_stats(where, stage.command, stage.error)


def load(name: str, spec: config.DataSpec, build: bool = True, force: bool = False, say=print):
    """Stage ``name``'s artefact for ``spec``: loaded when current, else (re)built atomically.

    ``build=False``: the saved artefact as it is (its needs too), and an error naming the command that builds
    it when there is none, or, for a stage built from its needs alone (the augmented set), when they changed. ``force``: rebuilt
    even when current (its needs are not). A current artefact that does not read (a damaged file: the read raises
    the stage's error) is rebuilt once, saying so; a second failure is the error. ``say`` receives one line:
    ``reused <folder>`` or ``wrote <folder> in N s``, after ``Rebuilding <title> in <folder> (<why>)`` when a saved
    one is replaced."""
    stage = _stage(name)
    where = folder(name, spec)
    if not build and not _complete(stage, where):
        raise stage.error(f"No complete {stage.title.removeprefix('the ')} in {where} (never built, interrupted, or "
                          "built by an older craftlib). "
                          f"Build it with `{stage.command}` (same --profile, --annotation-set, --data-dir).")
    spec = stage.settle(spec, where) if stage.settle and build else spec
    needs = {}
    for need in stage.needs:
        needs[need] = load(need, spec, build=build, say=lambda line: None)
        needs[f"{need}_stats"] = stats(need, spec)
    if not build and stage.settle is not None:  # its inputs name sources it would have to resolve: as it is
        return stage.read(where, spec)
    inputs = stage.inputs(spec, needs)
    if inputs is None and _complete(stage, where):  # its source is gone: nothing to compare it with
        return stage.read(where, spec)
    reason = "rebuild asked" if force else cache.stale_reason(where, inputs or {})
    if reason and not build:
        raise stage.error(f"No up-to-date {stage.title} in {where} ({reason}). Build it with `{stage.command}`.")
    if reason is None:
        try:
            out = stage.read(where, spec)
        except stage.error as err:
            if not build:
                raise
            # current but damaged (a file changed since it was written): rebuilt once from its inputs
            print(f"Rebuilding {stage.title} in {where}: {err}")
            reason = "damaged"
        else:
            say(f"reused {where} ({stage.title}, built from the same inputs; --force rebuilds)")
            return out
    elif reason not in ("missing", "rebuild asked"):
        print(f"Rebuilding {stage.title} in {where} ({reason}).")
    t0 = time.perf_counter()
    with datasets_bars(False):  # seconds each ("Saving the dataset"); they would stay on screen as widgets
        out = cache.load_or_build(where, inputs or {}, lambda tmp: stage.build(tmp, spec, needs),
                                  lambda d: stage.read(d, spec), force=True, entries=stage.entries)
    say(f"wrote {where} in {time.perf_counter() - t0:.1f} s")
    return out


# ------------------------------------------------------------------------------------------ CLI


def _spec(args: argparse.Namespace, **settings) -> config.DataSpec:
    """The edge of the stage commands: their options as one :class:`craftlib.config.DataSpec`."""
    return config.data_spec(args.profile, args.annotation_set, args.data_dir, source=args.source,
                            ontology_dir=getattr(args, "ontology_dir", None),
                            sources=parse_source_options(getattr(args, "sources", None)) or None, **settings)


def _cmd_data(args: argparse.Namespace) -> int:
    policies = TagPolicies(gene_rule=args.gene_rule, discontinuous=args.discontinuous, boundary=args.boundary,
                           overlap=args.overlap)
    spec = _spec(args, sha256=args.sha256, policies=policies)
    if args.force:  # re-extract the corpus too
        fetch_craft(spec.source, sha256=spec.sha256, data_dir=spec.data_dir, force=True)
    lines: list[str] = []
    dsd = load("dataset", spec, force=args.force, say=lines.append)
    report = stats("dataset", spec)
    print(f"dataset {report['dataset']} -> {folder('dataset', spec)}")
    for name in dsd:
        s = report["splits"][name]
        ents = ", ".join(f"{t} {n}" for t, n in s["entities"].items())
        print(f"  {name:<10} {s['documents']:>3} docs {s['sentences']:>6} sentences {s['tokens']:>7} tokens | {ents}")
    g = report["total"]["gene_rule"]
    print(f"  Gene rule: {g['Gene']} Gene / {g['Protein']} Protein PR mentions ({g['gene_share']:.1%} Gene)")
    print(*lines, sep="\n")
    return 0


def _cmd_entity_lists(args: argparse.Namespace) -> int:
    skip = args.skip_filter or []
    spec = _spec(args, filters=[f for f in FILTERS if f not in skip])
    lines: list[str] = []
    lists = load("entity_lists", spec, force=args.force, say=lines.append)
    report = stats("entity_lists", spec)
    print(f"{'type':<9} {'terms':>8}  {'train cov':>9}  {'test cov':>8}  sources")
    for t, terms in lists.items():
        cov = report["coverage"].get(t, {})
        srcs = ", ".join(Path(s["path"]).name if s["path"] else "TRAIN FALLBACK"
                         for s in report["types"][t]["sources"])
        print(f"{t:<9} {len(terms):>8}  {cov.get('train', {}).get('share', 0):>9.1%}  "
              f"{cov.get('test', {}).get('share', 0):>8.1%}  {srcs}")
    print("strings removed by each name filter (ncbi_qualifier: strings shortened):")
    print(f"{'type':<9} " + " ".join(f"{f:>14}" for f in FILTERS))
    for t in lists:
        fc = report["types"][t].get("filter_counts", {})
        print(f"{t:<9} " + " ".join(f"{fc.get(f, 0):>14}" for f in FILTERS))
    print(*lines, sep="\n")
    return 0


def _cmd_augment(args: argparse.Namespace) -> int:
    spec = _spec(args, ratio=args.ratio, seed=args.seed, keep_unchanged=args.keep_unchanged, sampling=args.sampling)
    lines: list[str] = []
    dsd = load("augmented", spec, force=args.force, say=lines.append)
    report = stats("augmented", spec)

    def mean(x):
        return "-" if x is None else f"{x:.2f}"

    print(f"{'type':<9} {'mentions':>8} {'replaced':>8} {'ratio':>6} {'tokens replaced':>16} {'replacement':>12}")
    for t, v in report["per_type"].items():
        print(f"{t:<9} {v['mentions']:>8} {v['replaced']:>8} {v['realised_ratio']:>6.1%} "
              f"{mean(v.get('mean_tokens_replaced')):>16} {mean(v.get('mean_tokens_replacement')):>12}")
    print(f"train ({report['variant']}, {report['sampling']} sampling): {report['original_sentences']} original + "
          f"{report['augmented_sentences']} augmented = {dsd['train'].num_rows} sentences; realised ratio "
          f"{report['realised_ratio']:.1%} (target {report['ratio']:.0%}, seed {report['seed']})")
    print(*lines, sep="\n")
    return 0


def add_commands(subparsers) -> None:
    """``data``, ``entity-lists`` and ``augment``: build (or reuse) one stage of :data:`STAGES`."""
    p = subparsers.add_parser(
        "data",
        help="get CRAFT and build the IOB2 dataset + stats.json + CoNLL export",
        description="Get CRAFT (URL, .tar.gz or folder) and build data/processed/<dataset>/.",
    )
    add_dataset_options(p)
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive (default: $CRAFT_SHA256)")
    p.add_argument("--force", action="store_true", help="re-extract the corpus and rebuild")
    d = TagPolicies()
    p.add_argument("--gene-rule", default=d.gene_rule, choices=GENE_RULE_CHOICES)
    p.add_argument("--discontinuous", default=d.discontinuous, choices=DISCONTINUOUS_CHOICES)
    p.add_argument("--boundary", default=d.boundary, choices=BOUNDARY_CHOICES)
    p.add_argument("--overlap", default=d.overlap, choices=OVERLAP_CHOICES)
    p.set_defaults(func=_cmd_data)

    e = subparsers.add_parser("entity-lists", help="build per-type entity lists from OBO ontologies")
    add_dataset_options(e)
    add_ontology_options(e, builds_lists=True)
    e.add_argument("--skip-filter", action="append", choices=FILTERS, metavar="FILTER",
                   help=f"leave out one name filter (repeatable): {', '.join(FILTERS)}")
    e.add_argument("--force", action="store_true", help="rebuild even when the saved lists are current")
    e.set_defaults(func=_cmd_entity_lists)

    a = subparsers.add_parser("augment", help="entity-replacement augmentation of the train split")
    add_dataset_options(a)
    a.add_argument("--ratio", "--replace-prob", dest="ratio", type=probability, default=0.2,
                   help="probability of replacing each mention by an ontology name (default 0.2; below 0.2 the "
                        "reference's copies are kept with fewer names: 0 is the no-names control)")
    a.add_argument("--seed", type=seed_value, default=42, help="random seed, an integer from 0 to 2**32-1 (default 42)")
    a.add_argument("--keep-unchanged", action=argparse.BooleanOptionalAction, default=None,
                   help="full-copy variant: also copy the train sentences in which nothing was replaced "
                        "(default: the profile's choice; full: yes, smoke/quick: no)")
    a.add_argument("--sampling", choices=SAMPLINGS, default=DEFAULT_SAMPLING,
                   help="length: a term with the mention's token count (default); uniform: any term")
    a.add_argument("--force", action="store_true", help="rebuild even when the saved set is current")
    add_ontology_options(a)
    a.set_defaults(func=_cmd_augment)


__all__ = ["STAGES", "Stage", "add_commands", "folder", "load", "stats"]
