"""Entity-replacement augmentation: the reference method's "20% of the entities were replaced using a list of
entities for each entity tag ... Both datasets (original, augmented) were concatenated."

For each train sentence, each gold mention is replaced with probability ``ratio`` by a random term of the
same type's entity list (:mod:`craftlib.ontology`) that differs from the mention (case-insensitively, on
tokens). The term is tokenized like CRAFT's CoNLL-U (:func:`craftlib.ontology.craft_tokenize`) and tagged
``B-<type> I-<type> ...``; ``O`` tokens never change. A sentence with at least one replacement yields an
augmented copy; the augmented train split is the original sentences followed by those copies
(``keep_unchanged=True`` also copies sentences without a replacement). ``validation`` and ``test`` are
returned untouched. One ``random.Random(seed)`` drives every draw, in sentence then mention order, so
the same seed and data give the same output.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from craftlib import config
from craftlib.errors import CraftlibError

#: Attempts at drawing a term different from the mention before giving up on that mention.
MAX_DRAWS = 20


def _tokenized_lists(entity_lists: Mapping[str, Sequence[str]]) -> dict[str, list[tuple[str, list[str], str]]]:
    from craftlib.ontology import craft_tokenize, term_key

    out = {}
    for t, terms in entity_lists.items():
        items = []
        for term in terms:
            toks = craft_tokenize(term)
            if toks:
                items.append((term, toks, term_key(toks)))
        out[t] = items
    return out


def augment_sentence(
    tokens: Sequence[str],
    tags: Sequence[str],
    lists: Mapping[str, Sequence[tuple[str, list[str], str]]],
    ratio: float,
    rng: random.Random,
    counts: Counter | None = None,
) -> tuple[list[str], list[str], list[dict]]:
    """Replace each mention of one sentence with probability ``ratio``; return ``(tokens, tags, replacements)``.

    ``lists`` maps a type to ``(term, term_tokens, term_key)`` triples. ``counts`` (optional) receives
    ``mentions/<type>``, ``replaced/<type>``, ``no_candidate/<type>``.
    """
    from craftlib.ontology import term_key
    from craftlib.viz import bio_spans

    counts = counts if counts is not None else Counter()
    new_tokens: list[str] = []
    new_tags: list[str] = []
    replacements: list[dict] = []
    pos = 0
    for start, end, kind in bio_spans(tags):
        counts[f"mentions/{kind}"] += 1
        if rng.random() >= ratio:
            continue
        original = list(tokens[start:end])
        key = term_key(original)
        candidates = lists.get(kind) or []
        choice = None
        for _ in range(MAX_DRAWS if candidates else 0):
            cand = candidates[rng.randrange(len(candidates))]
            if cand[2] != key:
                choice = cand
                break
        if choice is None:
            counts[f"no_candidate/{kind}"] += 1
            continue
        counts[f"replaced/{kind}"] += 1
        new_tokens.extend(tokens[pos:start])
        new_tags.extend(tags[pos:start])
        new_start = len(new_tokens)
        new_tokens.extend(choice[1])
        new_tags.extend([f"B-{kind}"] + [f"I-{kind}"] * (len(choice[1]) - 1))
        replacements.append({"start": new_start, "end": len(new_tokens), "type": kind,
                             "original": " ".join(original), "replacement": " ".join(choice[1])})
        pos = end
    new_tokens.extend(tokens[pos:])
    new_tags.extend(tags[pos:])
    return new_tokens, new_tags, replacements


def augment_dataset(
    dsd,
    entity_lists: Mapping[str, Sequence[str]],
    ratio: float = 0.2,
    seed: int = 42,
    keep_unchanged: bool = False,
    return_stats: bool = False,
):
    """Augmented copy of ``dsd``: train = originals + augmented copies, with ``origin`` and ``replacements``.

    ``validation``/``test`` are the same ``Dataset`` objects as in ``dsd``. With ``return_stats`` returns
    ``(DatasetDict, stats)``; stats hold mentions / replaced / no-candidate per type and the realised ratio.
    """
    import datasets

    from craftlib.tags import validate_iob2

    if not 0.0 <= ratio <= 1.0:
        raise CraftlibError(f"ratio must be between 0 and 1, got {ratio}.")
    train = dsd["train"]
    label_feature = train.features["ner_tags"].feature
    names = label_feature.names
    lists = _tokenized_lists(entity_lists)
    rng = random.Random(seed)
    counts: Counter = Counter()
    extra_cols = [c for c in train.column_names if c not in ("tokens", "ner_tags")]
    rows = {c: [] for c in train.column_names}
    rows.update(origin=[], replacements=[])
    copies = {c: [] for c in rows}
    for ex in train:
        tags = [names[i] for i in ex["ner_tags"]]
        new_tokens, new_tags, reps = augment_sentence(ex["tokens"], tags, lists, ratio, rng, counts)
        for c in extra_cols:
            rows[c].append(ex[c])
        rows["tokens"].append(ex["tokens"])
        rows["ner_tags"].append(ex["ner_tags"])
        rows["origin"].append("original")
        rows["replacements"].append("[]")
        if reps or keep_unchanged:
            validate_iob2(new_tags)
            for c in extra_cols:
                copies[c].append(ex[c])
            copies["tokens"].append(new_tokens)
            copies["ner_tags"].append([label_feature.str2int(t) for t in new_tags])
            copies["origin"].append("augmented")
            copies["replacements"].append(json.dumps(reps, ensure_ascii=False))
    features = datasets.Features({**train.features, "origin": datasets.Value("string"),
                                  "replacements": datasets.Value("string")})
    merged = {c: rows[c] + copies[c] for c in rows}
    out = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict(merged, features=features),
        **{s: dsd[s] for s in dsd if s != "train"},
    })
    if not return_stats:
        return out
    per_type = {}
    for t in config.ENTITY_TYPES:
        m, r = counts[f"mentions/{t}"], counts[f"replaced/{t}"]
        per_type[t] = {"mentions": m, "replaced": r, "no_candidate": counts[f"no_candidate/{t}"],
                       "realised_ratio": r / m if m else 0.0, "list_terms": len(entity_lists.get(t, []))}
    total_m = sum(v["mentions"] for v in per_type.values())
    total_r = sum(v["replaced"] for v in per_type.values())
    stats = {
        "ratio": ratio, "seed": seed, "keep_unchanged": keep_unchanged,
        "original_sentences": len(train), "augmented_sentences": len(copies["tokens"]),
        "train_sentences": len(train) + len(copies["tokens"]),
        "mentions": total_m, "replaced": total_r, "realised_ratio": total_r / total_m if total_m else 0.0,
        "per_type": per_type,
    }
    return out, stats


def augmented_dir(profile=None, annotation_set: str = "proper", data_dir=None) -> Path:
    return config.processed_dir(profile, annotation_set, data_dir) / "augmented"


def load_augmented(
    profile: str | config.Profile | None = None,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
    ratio: float = 0.2,
    seed: int = 42,
    build_if_missing: bool = True,
    source: str | os.PathLike | None = None,
    ontology_dir: str | os.PathLike | None = None,
    sources: Mapping[str, Sequence[str]] | None = None,
    keep_unchanged: bool = False,
    force: bool = False,
):
    """The augmented DatasetDict saved in ``<processed>/augmented/``; built (and saved, with ``stats.json``)
    when missing, when ``force``, or when the saved one was made with another ratio/seed/option."""
    import datasets

    from craftlib import ontology, tags

    out_dir = augmented_dir(profile, annotation_set, data_dir)
    stats_path = out_dir / "stats.json"
    if stats_path.is_file() and not force:
        saved = json.loads(stats_path.read_text())
        if (saved.get("ratio"), saved.get("seed"), saved.get("keep_unchanged")) == (ratio, seed, keep_unchanged):
            return datasets.load_from_disk(str(out_dir / "dataset"))
        print(f"{out_dir} was built with ratio={saved.get('ratio')} seed={saved.get('seed')}: rebuilding "
              f"with ratio={ratio} seed={seed}.")
    elif not build_if_missing and not force:
        raise CraftlibError(f"No augmented dataset in {out_dir}. Run `python -m craftlib augment` first.")
    t0 = time.perf_counter()
    dsd = tags.load_dataset(profile=profile, annotation_set=annotation_set, data_dir=data_dir, source=source)
    lists = ontology.load_entity_lists(profile, annotation_set, data_dir, source, ontology_dir, sources)
    aug, stats = augment_dataset(dsd, lists, ratio=ratio, seed=seed, keep_unchanged=keep_unchanged, return_stats=True)
    stats["dataset"] = config.dataset_name(profile, annotation_set)
    stats["entity_list_fallback"] = ontology.load_stats(profile, annotation_set, data_dir).get("fallback", [])
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".augmented-", dir=out_dir.parent))
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        # an empty split saved with the default sharding has no arrow file, which load_from_disk cannot read
        aug.save_to_disk(str(tmp / "dataset"), num_shards={k: 1 for k, v in aug.items() if len(v) == 0} or None)
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if bars:
            datasets.enable_progress_bars()
    return datasets.load_from_disk(str(out_dir / "dataset"))


def load_stats(profile=None, annotation_set: str = "proper", data_dir=None) -> dict:
    path = augmented_dir(profile, annotation_set, data_dir) / "stats.json"
    if not path.is_file():
        raise CraftlibError(f"{path} not found. Run `python -m craftlib augment` first.")
    return json.loads(path.read_text())


def _cmd_augment(args: argparse.Namespace) -> int:
    from craftlib.ontology import parse_source_options

    t0 = time.perf_counter()
    dsd = load_augmented(args.profile, args.annotation_set, args.data_dir, args.ratio, args.seed,
                         source=args.source, ontology_dir=args.ontology_dir,
                         sources=parse_source_options(args.sources) or None,
                         keep_unchanged=args.keep_unchanged, force=True)
    stats = load_stats(args.profile, args.annotation_set, args.data_dir)
    print(f"{'type':<9} {'mentions':>8} {'replaced':>8} {'ratio':>6}")
    for t, v in stats["per_type"].items():
        print(f"{t:<9} {v['mentions']:>8} {v['replaced']:>8} {v['realised_ratio']:>6.1%}")
    print(f"train: {stats['original_sentences']} original + {stats['augmented_sentences']} augmented = "
          f"{dsd['train'].num_rows} sentences; realised ratio {stats['realised_ratio']:.1%} "
          f"(target {args.ratio:.0%}, seed {args.seed})")
    print(f"wrote {augmented_dir(args.profile, args.annotation_set, args.data_dir)} in {time.perf_counter() - t0:.1f} s")
    return 0


def add_commands(subparsers) -> None:
    from craftlib.cli import seed_value
    from craftlib.ontology import add_common_options

    p = subparsers.add_parser("augment", help="entity-replacement augmentation of the train split")
    add_common_options(p)
    p.add_argument("--ratio", type=float, default=0.2, help="probability of replacing each mention (default 0.2)")
    p.add_argument("--seed", type=seed_value, default=42)
    p.add_argument("--keep-unchanged", action="store_true",
                   help="also duplicate train sentences in which nothing was replaced")
    p.add_argument("--ontology-dir", default=None, help="extra OBO files, if the entity lists must be built")
    p.add_argument("--obo", dest="sources", action="append", metavar="TYPE=PATH",
                   help="OBO file for a type, if the entity lists must be built")
    p.set_defaults(func=_cmd_augment)


__all__ = ["augment_dataset", "augment_sentence", "augmented_dir", "load_augmented", "load_stats"]
