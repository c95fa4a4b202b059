"""Entity-replacement augmentation: the reference method's "20% of the entities were replaced using a list of
entities for each entity tag ... Both datasets (original, augmented) were concatenated."

For each train sentence, each gold mention is replaced with probability ``ratio`` by a term of the same
type's entity list (:mod:`craftlib.ontology`) that differs from the mention (case-insensitively, on tokens).
The term is tokenized like CRAFT's CoNLL-U (:func:`craftlib.ontology.craft_tokenize`) and tagged
``B-<type> I-<type> ...``; ``O`` tokens never change.

How the term is drawn (``sampling``, see :data:`SAMPLINGS`):

* ``length`` (default): uniformly among the terms with as many tokens as the mention (or, when there is
  none, the nearest token count). Measured on the quick dataset, uniform draws made replacements about three
  times longer than the mentions they replaced (Chemical 4.6 vs 1.3 tokens: ontology names are long, article
  mentions are short), so the augmented sentences taught the model long spans that articles rarely contain.
* ``uniform``: uniformly among all the type's terms (the first version of this project).

"Concatenated" is an interpretation, offered in two variants (``keep_unchanged``):

* ``False`` (**replaced-only**): a sentence with at least one replacement yields an augmented copy; the train
  split is the original sentences followed by those copies (+28 % sentences at ratio 0.2);
* ``True`` (**full-copy**): every train sentence yields a copy, replaced or not (twice the sentences). The
  reference author's sibling model cards count 1,360 steps per epoch without augmentation and 4,078
  ≈ 3 × 1,360 for original + augmented + translated data: full-size copies. The ``full`` profile uses this
  variant (``Profile.augment_keep_unchanged``).

**The control** (``ratio`` below :data:`PICK_FLOOR`, the reference's 20 %). Each mention is *picked* with
probability ``max(ratio, PICK_FLOOR)``, and a picked mention gets an ontology name with probability
``ratio / max(ratio, PICK_FLOOR)``; a sentence is copied (replaced-only variant) when one of its mentions was
picked. At ``ratio = 0.2`` every picked mention is replaced: the reference method, unchanged. At ``ratio = 0`` the
same sentences are copied, in the same order, with the same random draws, but every mention keeps its own words:
the same pipeline (sentences, copies, steps, sub-tokens within a few per cent) minus the ontology names. That
control answers "is it the names, or just more training?" (``python -m craftlib train --replace-prob 0``).

**Fresh replacements** (``draws``, ``train --fresh-replacements``). Over several epochs an augmented copy is seen
again with the same names each epoch. With ``draws = epochs`` the copies are drawn once per epoch, each draw with
its own random stream, and the training step trains epoch ``e`` on the originals plus the copies of draw ``e``
(:func:`craftlib.train.fine_tune`): the same number of sentences and steps as one draw within about 1 %, but no
augmented sentence repeats. The full-copy variant's copies in which nothing was picked stay exact duplicates of
their originals whatever the draw (72 % of them on the full training split at 0.2), so fresh replacements are
measured with the replaced-only variant.

``validation`` and ``test`` are returned untouched. One ``random.Random(seed)`` drives every draw, in
sentence then mention order, so the same seed and data give the same output. The saved set records its
inputs (dataset, entity lists, ratio, seed, variant, sampling) and is rebuilt when one of them changes.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from craftlib import cache, config
from craftlib.bio import bio_spans, validate_iob2
from craftlib.errors import CraftlibError
from craftlib.ontology import craft_tokenize, dataset_key, term_key

#: Attempts at drawing a term different from the mention (per pool of candidates) before moving on.
MAX_DRAWS = 20
#: How a replacement term is drawn (see the module docstring).
SAMPLINGS = ("length", "uniform")
DEFAULT_SAMPLING = "length"
#: Version of the augmentation's rules: bumped when the output for the same inputs changes (3: ratios below
#: :data:`PICK_FLOOR` keep the reference's copies).
AUGMENT_FORMAT = 3
#: The reference's replacement rate: mentions are picked at ``max(ratio, PICK_FLOOR)``, so that a lower ratio (the
#: control, 0) keeps the reference's copies and only writes fewer names (module docstring).
PICK_FLOOR = 0.2


def _tokenized_lists(entity_lists: Mapping[str, Sequence[str]]) -> dict[str, list[tuple[str, list[str], str]]]:
    out = {}
    for t, terms in entity_lists.items():
        items = []
        for term in terms:
            toks = craft_tokenize(term)
            if toks:
                items.append((term, toks, term_key(toks)))
        out[t] = items
    return out


class ReplacementPool:
    """The terms a mention can be replaced with, per type, and how one is drawn (``sampling``)."""

    def __init__(self, entity_lists: Mapping[str, Sequence[str]], sampling: str = DEFAULT_SAMPLING):
        if sampling not in SAMPLINGS:
            raise CraftlibError(f"Unknown sampling {sampling!r}: choose one of {', '.join(SAMPLINGS)}.")
        self.sampling = sampling
        self.items = _tokenized_lists(entity_lists)
        self.by_length: dict[str, dict[int, list]] = {}
        for t, items in self.items.items():
            buckets: dict[int, list] = {}
            for item in items:
                buckets.setdefault(len(item[1]), []).append(item)
            self.by_length[t] = buckets
        self._groups: dict[tuple[str, int], list[list]] = {}

    def _candidate_groups(self, kind: str, n_tokens: int) -> list[list]:
        """Pools to draw from, in order: all terms (``uniform``), or the terms of the nearest token counts
        (``length``: distance 0, then 1 (both sides pooled), ...)."""
        if self.sampling == "uniform":
            return [self.items.get(kind) or []]
        key = (kind, n_tokens)
        if key not in self._groups:
            buckets = self.by_length.get(kind) or {}
            by_distance: dict[int, list] = {}
            for length in sorted(buckets):
                by_distance.setdefault(abs(length - n_tokens), []).extend(buckets[length])
            self._groups[key] = [by_distance[d] for d in sorted(by_distance)]
        return self._groups[key]

    def draw(self, kind: str, original: Sequence[str], rng: random.Random):
        """A ``(term, tokens, key)`` different from ``original`` (a token list), or ``None``."""
        key = term_key(original)
        for group in self._candidate_groups(kind, len(original)):
            if len(group) == 1 and group[0][2] == key:
                continue
            for _ in range(MAX_DRAWS):
                cand = group[rng.randrange(len(group))]
                if cand[2] != key:
                    return cand
        return None


def augment_sentence(
    tokens: Sequence[str],
    tags: Sequence[str],
    lists: ReplacementPool | Mapping[str, Sequence[tuple[str, list[str], str]]],
    ratio: float,
    rng: random.Random,
    counts: Counter | None = None,
) -> tuple[list[str], list[str], list[dict]]:
    """Replace each mention of one sentence with probability ``ratio``; return ``(tokens, tags, replacements)``.

    ``lists`` is a :class:`ReplacementPool`, or (uniform draws) a mapping of a type to ``(term, term_tokens,
    term_key)`` triples. ``counts`` (optional) receives ``mentions/<type>``, ``replaced/<type>``,
    ``no_candidate/<type>``, and the token counts ``tokens_replaced/<type>``, ``tokens_replacement/<type>``.
    """
    new_tokens, new_tags, replacements, _ = _augment(tokens, tags, lists, ratio, rng, counts)
    return new_tokens, new_tags, replacements


def _augment(tokens, tags, lists, ratio: float, rng: random.Random, counts: Counter | None = None):
    """:func:`augment_sentence` plus whether a mention of the sentence was picked (module docstring: a picked
    mention is replaced with probability ``ratio / max(ratio, PICK_FLOOR)``, so the copies do not depend on
    ``ratio`` below the floor)."""
    if not isinstance(lists, ReplacementPool):
        pool = ReplacementPool({}, "uniform")
        pool.items = {t: list(v) for t, v in lists.items()}
        lists = pool
    counts = counts if counts is not None else Counter()
    pick = max(ratio, PICK_FLOOR)
    new_tokens: list[str] = []
    new_tags: list[str] = []
    replacements: list[dict] = []
    picked = False
    pos = 0
    for start, end, kind in bio_spans(tags):
        counts[f"mentions/{kind}"] += 1
        draw = rng.random()
        if draw >= pick:
            continue
        original = list(tokens[start:end])
        choice = lists.draw(kind, original, rng)
        if choice is None:
            counts[f"no_candidate/{kind}"] += 1
            continue
        picked = True
        if draw >= ratio:  # picked, but the name stays: the control's copy keeps the mention's own words
            counts[f"kept/{kind}"] += 1
            continue
        counts[f"replaced/{kind}"] += 1
        counts[f"tokens_replaced/{kind}"] += len(original)
        counts[f"tokens_replacement/{kind}"] += len(choice[1])
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
    return new_tokens, new_tags, replacements, picked


def augment_dataset(
    dsd,
    entity_lists: Mapping[str, Sequence[str]],
    ratio: float = 0.2,
    seed: int = 42,
    keep_unchanged: bool = False,
    return_stats: bool = False,
    sampling: str = DEFAULT_SAMPLING,
    draws: int = 1,
):
    """Augmented copy of ``dsd``: train = originals + augmented copies, with ``origin`` and ``replacements``.

    ``keep_unchanged``: full-copy variant (every sentence copied) instead of replaced-only; ``sampling``: how
    terms are drawn (:data:`SAMPLINGS`). ``draws`` > 1 (fresh replacements, one copy set per epoch): the copies
    are drawn ``draws`` times, draw ``d`` with its own ``random.Random(f"{seed}/draw{d}")`` (draw 0 is the one set
    of ``draws=1``, unchanged), and train gets a ``draw`` column (-1 for the originals, ``d`` for the copies of draw
    ``d``). ``validation``/``test`` are the same ``Dataset`` objects as in ``dsd``.
    With ``return_stats`` returns ``(DatasetDict, stats)``; stats hold mentions / replaced / no-candidate per
    type, the realised ratio, and the mean tokens of the replaced mentions and of their replacements.
    """
    import datasets

    if not 0.0 <= ratio <= 1.0:
        raise CraftlibError(f"ratio (replace_prob) must be between 0 and 1, got {ratio}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CraftlibError(f"seed must be an integer >= 0, got {seed!r} (random.Random(-1) would equal seed 1).")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise CraftlibError(f"draws must be an integer >= 1 (one copy set per epoch), got {draws!r}.")
    train = dsd["train"]
    label_feature = train.features["ner_tags"].feature
    names = label_feature.names
    lists = ReplacementPool(entity_lists, sampling)
    counts: Counter = Counter()
    extra_cols = [c for c in train.column_names if c not in ("tokens", "ner_tags")]
    rows = {c: [] for c in train.column_names}
    rows.update(origin=[], replacements=[])
    copies = {c: [] for c in rows}
    examples = list(train)
    for ex in examples:
        for c in extra_cols:
            rows[c].append(ex[c])
        rows["tokens"].append(ex["tokens"])
        rows["ner_tags"].append(ex["ner_tags"])
        rows["origin"].append("original")
        rows["replacements"].append("[]")
    per_draw = []
    for d in range(draws):
        rng = random.Random(seed if d == 0 else f"{seed}/draw{d}")
        before = len(copies["tokens"])
        for ex in examples:
            tags = [names[i] for i in ex["ner_tags"]]
            # the statistics describe draw 0 (the set of draws=1); later draws only add copies
            new_tokens, new_tags, reps, picked = _augment(ex["tokens"], tags, lists, ratio, rng,
                                                          counts if d == 0 else Counter())
            if picked or keep_unchanged:
                validate_iob2(new_tags)
                for c in extra_cols:
                    copies[c].append(ex[c])
                copies["tokens"].append(new_tokens)
                copies["ner_tags"].append([label_feature.str2int(t) for t in new_tags])
                copies["origin"].append("augmented")
                copies["replacements"].append(json.dumps(reps, ensure_ascii=False))
        per_draw.append(len(copies["tokens"]) - before)
    features = datasets.Features({**train.features, "origin": datasets.Value("string"),
                                  "replacements": datasets.Value("string")})
    merged = {c: rows[c] + copies[c] for c in rows}
    if draws > 1:
        features["draw"] = datasets.Value("int32")
        merged["draw"] = [-1] * len(examples) + [d for d, n in enumerate(per_draw) for _ in range(n)]
    out = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict(merged, features=features),
        **{s: dsd[s] for s in dsd if s != "train"},
    })
    if not return_stats:
        return out
    per_type = {}
    for t in config.ENTITY_TYPES:
        m, r = counts[f"mentions/{t}"], counts[f"replaced/{t}"]
        per_type[t] = {"mentions": m, "replaced": r, "kept": counts[f"kept/{t}"],
                       "no_candidate": counts[f"no_candidate/{t}"],
                       "realised_ratio": r / m if m else 0.0, "list_terms": len(entity_lists.get(t, [])),
                       "mean_tokens_replaced": counts[f"tokens_replaced/{t}"] / r if r else None,
                       "mean_tokens_replacement": counts[f"tokens_replacement/{t}"] / r if r else None}
    total_m = sum(v["mentions"] for v in per_type.values())
    total_r = sum(v["replaced"] for v in per_type.values())
    stats = {
        "ratio": ratio, "pick_prob": max(ratio, PICK_FLOOR), "seed": seed, "keep_unchanged": keep_unchanged,
        "variant": "full-copy" if keep_unchanged else "replaced-only", "sampling": sampling,
        "original_sentences": len(train), "augmented_sentences": per_draw[0],
        "train_sentences": len(train) + per_draw[0], "draws": draws, "augmented_sentences_per_draw": per_draw,
        "mentions": total_m, "replaced": total_r, "kept": sum(v["kept"] for v in per_type.values()),
        "realised_ratio": total_r / total_m if total_m else 0.0,
        "per_type": per_type,
    }
    return out, stats


def augmented_inputs(spec: config.DataSpec, needs: dict) -> dict:
    """What the augmented set is built from (recorded in its ``inputs.json``): the tagged dataset, the entity lists
    (their content), ratio, seed, variant and sampling."""
    return {
        "augment_format": AUGMENT_FORMAT, "dataset": dataset_key(needs["dataset"]),
        "entity_lists": cache.digest(needs["entity_lists"]), "ratio": spec.augment_ratio, "seed": spec.seed,
        "keep_unchanged": spec.augment_keep_unchanged, "sampling": spec.sampling,
        # one copy set per epoch (fresh replacements); absent for one, so the sets built before it stay valid
        **({"draws": spec.augment_draws} if spec.augment_draws > 1 else {}),
    }


def write_augmented(tmp: Path, spec: config.DataSpec, needs: dict) -> None:
    """Augment the tagged dataset with the entity lists (:func:`augment_dataset`) and write ``dataset/`` and
    ``stats.json`` into ``tmp``."""
    import datasets

    t0 = time.perf_counter()
    aug, stats = augment_dataset(needs["dataset"], needs["entity_lists"], ratio=spec.augment_ratio, seed=spec.seed,
                                 keep_unchanged=spec.augment_keep_unchanged, return_stats=True,
                                 sampling=spec.sampling, draws=spec.augment_draws)
    stats["dataset"] = spec.dataset_name
    stats["entity_list_fallback"] = needs["entity_lists_stats"].get("fallback", [])
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        # an empty split saved with the default sharding has no arrow file, which load_from_disk cannot read
        aug.save_to_disk(str(tmp / "dataset"), num_shards={k: 1 for k, v in aug.items() if len(v) == 0} or None)
    finally:
        if bars:
            datasets.enable_progress_bars()
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))


def read_augmented(folder: Path, spec: config.DataSpec):
    """The saved augmented ``DatasetDict``."""
    import datasets

    return datasets.load_from_disk(str(folder / "dataset"))


__all__ = ["SAMPLINGS", "ReplacementPool", "augment_dataset", "augment_sentence", "augmented_inputs", "read_augmented",
           "write_augmented"]
