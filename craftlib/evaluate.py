"""Scoring and error analysis. Every system in the project is scored by :func:`score`.

``score`` wraps seqeval so that the dictionary baseline, the transformer recipes and the peer
toolkits are measured by exactly the same call.

The rest of the module is error analysis on prediction records (``predictions_<split>.jsonl``):
:func:`mention_table` gives every gold and predicted span exactly one category (correct, wrong type,
wrong boundary, wrong type and boundary, missed / spurious), from which come :func:`category_counts`,
:func:`confusion_matrix`, :func:`slice_table`, :func:`compare_runs` (mentions fixed / broken between two
systems) and :func:`export_errors` (the errors CSV).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from craftlib.config import ENTITY_TYPES, LABELS
from craftlib.errors import CraftlibError


def score(
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
    strict: bool = False,
) -> dict:
    """Span-level micro/macro P/R/F1 per seqeval, per-type P/R/F1/support, and token accuracy.

    ``strict=False`` is seqeval's default (conlleval-compatible) mode; ``strict=True`` is its
    ``mode="strict", scheme=IOB2`` mode, where an ``I-`` without a matching ``B-`` is no entity.
    Returns a JSON-serialisable dict with keys ``precision``, ``recall``, ``f1``, ``accuracy``,
    ``macro_f1``, ``per_type`` (every type of :data:`ENTITY_TYPES`, zero support included), ``mode``,
    ``sentences``, ``tokens``.
    """
    from seqeval.metrics import accuracy_score, classification_report
    from seqeval.scheme import IOB2

    y_true = [list(s) for s in y_true]
    y_pred = [list(s) for s in y_pred]
    if len(y_true) != len(y_pred) or any(len(a) != len(b) for a, b in zip(y_true, y_pred)):
        raise ValueError("score(): gold and predicted tag sequences must have the same shapes.")
    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0, **kwargs)
    per_type = {}
    for t in ENTITY_TYPES:
        r = report.get(t, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        per_type[t] = {
            "precision": float(r["precision"]),
            "recall": float(r["recall"]),
            "f1": float(r["f1-score"]),
            "support": int(r["support"]),
        }
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    macro = report.get("macro avg", {"f1-score": 0.0})
    return {
        "mode": "strict-IOB2" if strict else "default",
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "macro_f1": float(macro["f1-score"]),
        "accuracy": float(accuracy_score(y_true, y_pred)) if y_true else 0.0,
        "per_type": per_type,
        "sentences": len(y_true),
        "tokens": sum(len(s) for s in y_true),
    }


# =========================================================================================== error analysis
#
# Everything below works on *records*: the lines of a ``predictions_<split>.jsonl`` file, i.e. dicts with
# ``doc_id``, ``sentence_id``, ``tokens``, ``gold``, ``pred`` (tags as strings, one per token).

#: Categories of a gold span (each gold span gets exactly one).
GOLD_CATEGORIES: tuple[str, ...] = ("correct", "wrong_type", "wrong_boundary", "wrong_type_boundary", "missed")
#: Categories of a predicted span (each predicted span gets exactly one).
PRED_CATEGORIES: tuple[str, ...] = ("correct", "wrong_type", "wrong_boundary", "wrong_type_boundary", "spurious")
#: Every category, in display order.
CATEGORIES: tuple[str, ...] = GOLD_CATEGORIES + ("spurious",)
#: Columns of the errors CSV written by :func:`export_errors`.
ERROR_COLUMNS: tuple[str, ...] = (
    "doc_id", "sentence_id", "start", "end", "text", "gold", "predicted", "pred_text", "category",
    "n_tokens", "seen_in_train", "in_entity_list",
)
_RECORD_KEYS = ("doc_id", "sentence_id", "tokens", "gold", "pred")


def read_predictions(path: str | os.PathLike) -> list[dict]:
    """Read a ``predictions_<split>.jsonl`` file (see ARCHITECTURE.md) and check every line's shape."""
    path = Path(path)
    if not path.is_file():
        raise CraftlibError(
            f"No predictions file at {path}. Train or run the system first (notebook 04, or "
            "`python -m craftlib train` / `python -m craftlib baseline`)."
        )
    records = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise CraftlibError(f"{path}, line {n}: not JSON ({err}). Re-create the file.") from err
            missing = [k for k in _RECORD_KEYS if k not in rec]
            if missing:
                raise CraftlibError(f"{path}, line {n}: missing field(s) {missing}; expected {list(_RECORD_KEYS)}.")
            if not len(rec["tokens"]) == len(rec["gold"]) == len(rec["pred"]):
                raise CraftlibError(
                    f"{path}, line {n}: tokens, gold and pred have different lengths "
                    f"({len(rec['tokens'])}, {len(rec['gold'])}, {len(rec['pred'])}): one tag per token is required."
                )
            records.append(rec)
    return records


#: Systems compared in notebook 05, in the order of the tutorial.
SYSTEMS: tuple[str, ...] = ("dictionary", "single", "augmented", "two-step")


def system_run_name(
    system: str, profile: str, base_model: str = "minilm", seed: int = 42, annotation_set: str = "proper"
) -> str:
    """Run folder name of a system (ARCHITECTURE.md): ``dictionary-<profile>`` or, for a transformer recipe,
    :func:`craftlib.train.run_name` (``<recipe>-<base>-<profile>``, suffixed for a non-default seed/annotation set)."""
    if system == "dictionary":
        from craftlib.config import get_profile

        return f"dictionary-{get_profile(profile).name}"
    from craftlib.train import run_name

    return run_name(system, base_model, profile, seed=seed, annotation_set=annotation_set)


def load_system_predictions(
    system: str,
    profile: str,
    split: str = "test",
    base_model: str = "minilm",
    seed: int = 42,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    build_if_missing: bool = True,
) -> tuple[str, list[dict]]:
    """``(run name, records)`` of a system's ``predictions_<split>.jsonl``; when the file is missing and
    ``build_if_missing``, runs the system first (dictionary baseline or transformer recipe) through craftlib."""
    from craftlib.config import models_dir as resolve_models_dir

    if system not in SYSTEMS:
        raise CraftlibError(f"Unknown system {system!r}: choose one of {', '.join(SYSTEMS)}.")
    run = system_run_name(system, profile, base_model, seed=seed, annotation_set=annotation_set)
    path = resolve_models_dir(models_dir) / run / f"predictions_{split}.jsonl"
    if not path.is_file() and build_if_missing:
        if system == "dictionary":
            from craftlib.baseline import run_dictionary_baseline

            run_dictionary_baseline(profile=profile, annotation_set=annotation_set, data_dir=data_dir,
                                    models_dir=models_dir)
        else:
            from craftlib.train import train_recipe

            train_recipe(system, profile=profile, base_model=base_model, seed=seed, annotation_set=annotation_set,
                         data_dir=data_dir, models_dir=models_dir)
    return run, read_predictions(path)


def save_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON (temp file, then renamed). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    def native(o):  # numpy / pandas scalars → Python numbers
        return o.item() if hasattr(o, "item") else str(o)

    tmp.write_text(json.dumps(obj, indent=2, default=native) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def align_runs(runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Restrict several systems' records to the sentences they all cover, in one order.

    Systems may evaluate different subsets of a split (a profile's ``max_eval_sentences``); comparing
    them is only fair on the common sentences. Raises if two systems disagree on a sentence's gold tags
    or if they share no sentence.
    """
    keyed = {name: {(r["doc_id"], int(r["sentence_id"])): r for r in recs} for name, recs in runs.items()}
    names = list(keyed)
    common = set.intersection(*(set(k) for k in keyed.values())) if keyed else set()
    if not common:
        raise CraftlibError(f"The runs {names} share no sentence: were they evaluated on the same dataset and split?")
    order = sorted(common)
    first = keyed[names[0]]
    for name in names[1:]:
        bad = next((k for k in order if list(keyed[name][k]["gold"]) != list(first[k]["gold"])), None)
        if bad is not None:
            raise CraftlibError(
                f"Runs {names[0]!r} and {name!r} have different gold tags for sentence {bad}: "
                "they were built from different datasets (profile or annotation set). Rebuild one of them."
            )
    return {name: [keyed[name][k] for k in order] for name in names}


def _overlap(a: tuple[int, int, str], b: tuple[int, int, str]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def _categorise(span: tuple[int, int, str], others: list[tuple[int, int, str]]) -> tuple[str, str]:
    """Category of ``span`` against the overlapping spans ``others`` of the other side, and the type it
    is confused with (``O`` when nothing overlaps; otherwise its own type if an overlapping span has it,
    else the type of the overlapping span sharing most tokens)."""
    start, end, kind = span
    if not others:
        return "missing", "O"
    exact = [o for o in others if (o[0], o[1]) == (start, end)]
    if exact:  # spans do not overlap within one side, so an exact match is the only overlapping span
        return ("correct", kind) if exact[0][2] == kind else ("wrong_type", exact[0][2])
    if any(o[2] == kind for o in others):
        return "wrong_boundary", kind
    best = max(others, key=lambda o: _overlap(span, o))
    return "wrong_type_boundary", best[2]


def _span_text(tokens: Sequence[str], start: int, end: int) -> str:
    return " ".join(tokens[start:end])


def _norm(text: str) -> str:
    """Surface-string key: lower case, whitespace removed (so ``alpha - tubulin`` matches ``alpha-tubulin``)."""
    return "".join(text.casefold().split())


def mention_table(
    records: Sequence[dict],
    train_surfaces: dict[str, set[str]] | None = None,
    entity_lists: dict[str, Iterable[str]] | None = None,
):
    """One row per gold span and one per predicted span, each with exactly one error category.

    The accounting (tested in ``tests/test_evaluate.py``):

    * a **gold** span (``side="gold"``) is ``correct`` (a predicted span with the same boundaries and type),
      ``wrong_type`` (same boundaries, other type), ``wrong_boundary`` (an overlapping predicted span of the
      same type, other boundaries), ``wrong_type_boundary`` (only overlapping spans of other types, other
      boundaries) or ``missed`` (no overlapping predicted span);
    * a **predicted** span (``side="pred"``) gets the mirror category against the gold spans, with
      ``spurious`` instead of ``missed``.

    So ``gold total = correct + wrong_* (gold rows) + missed`` and ``pred total = correct + wrong_* (pred
    rows) + spurious``. A predicted span overlapping two gold spans is *one* predicted row (e.g.
    ``wrong_boundary``) and gives each of the two gold spans its own category: gold-side and pred-side
    ``wrong_*`` counts may therefore differ, while ``correct`` is always equal on both sides (it is seqeval's
    true positives). Spans come from :func:`craftlib.viz.bio_spans`, which reads tags like seqeval's default
    mode (a stray ``I-`` opens a span).

    Columns: ``doc_id, sentence_id, side, start, end, type, text, n_tokens, category, confused_with, gold,
    predicted, pred_text`` (``gold``/``predicted``: the types on each side over this span, ``|``-joined, ``O``
    if none; ``pred_text``: the text of the overlapping predicted spans), plus ``seen_in_train`` when
    ``train_surfaces`` (type → normalised surface strings, see :func:`train_surfaces`) is given and
    ``in_entity_list`` when ``entity_lists`` (type → terms) is given; both compare the span's surface
    string, normalised, with entries *of the span's own type*.
    """
    import pandas as pd

    from craftlib.viz import bio_spans

    lists = {t: {_norm(x) for x in terms} for t, terms in entity_lists.items()} if entity_lists is not None else None
    rows = []
    for rec in records:
        tokens = list(rec["tokens"])
        gold, pred = bio_spans(rec["gold"]), bio_spans(rec["pred"])
        for side, mine, theirs in (("gold", gold, pred), ("pred", pred, gold)):
            for span in mine:
                others = [o for o in theirs if _overlap(span, o)]
                category, confused = _categorise(span, others)
                if category == "missing":
                    category = "missed" if side == "gold" else "spurious"
                other_types = "|".join(dict.fromkeys(o[2] for o in others)) or "O"
                row = {
                    "doc_id": rec["doc_id"],
                    "sentence_id": int(rec["sentence_id"]),
                    "side": side,
                    "start": span[0],
                    "end": span[1],
                    "type": span[2],
                    "text": _span_text(tokens, span[0], span[1]),
                    "n_tokens": span[1] - span[0],
                    "category": category,
                    "confused_with": confused,
                    "gold": span[2] if side == "gold" else other_types,
                    "predicted": other_types if side == "gold" else span[2],
                    "pred_text": " | ".join(_span_text(tokens, o[0], o[1]) for o in others)
                    if side == "gold"
                    else _span_text(tokens, span[0], span[1]),
                }
                if train_surfaces is not None:
                    row["seen_in_train"] = _norm(row["text"]) in train_surfaces.get(span[2], set())
                if lists is not None:
                    row["in_entity_list"] = _norm(row["text"]) in lists.get(span[2], set())
                rows.append(row)
    columns = [
        "doc_id", "sentence_id", "side", "start", "end", "type", "text", "n_tokens", "category",
        "confused_with", "gold", "predicted", "pred_text",
    ]
    columns += [c for c in ("seen_in_train", "in_entity_list") if rows and c in rows[0]]
    return pd.DataFrame(rows, columns=columns)


def train_surfaces(split) -> dict[str, set[str]]:
    """Type → normalised surface strings of the gold mentions of a training split.

    ``split`` is a ``datasets.Dataset`` (``ner_tags`` as label ids or strings) or any iterable of dicts
    with ``tokens`` and ``ner_tags``/``gold``. Only pass the *train* split: dev/test are never used to build
    anything.
    """
    from craftlib.viz import bio_spans

    out: dict[str, set[str]] = {t: set() for t in ENTITY_TYPES}
    for ex in split:
        tags = ex["ner_tags"] if "ner_tags" in ex else ex["gold"]
        tags = [LABELS[t] if isinstance(t, int) else t for t in tags]
        for start, end, kind in bio_spans(tags):
            out.setdefault(kind, set()).add(_norm(_span_text(ex["tokens"], start, end)))
    return out


def category_counts(mentions, side: str = "gold"):
    """Per type (rows, plus ``total``): the count of each category of one side, and that side's total."""
    import pandas as pd

    cats = GOLD_CATEGORIES if side == "gold" else PRED_CATEGORIES
    sub = mentions[mentions["side"] == side]
    table = pd.crosstab(sub["type"], sub["category"]) if len(sub) else pd.DataFrame()
    table = table.reindex(index=list(ENTITY_TYPES), columns=list(cats), fill_value=0).fillna(0).astype(int)
    table[f"{side}_total"] = table[list(cats)].sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    table.index.name = "type"
    table.columns.name = None
    return table


def error_counts(mentions):
    """Per type: gold-side categories plus ``spurious`` predictions — the table behind the stacked bars.

    Each gold span counts once (its category); spurious predictions are the predicted spans that
    overlap no gold span. This is exactly the set of rows written by :func:`export_errors` (plus ``correct``).
    """
    gold = category_counts(mentions, "gold")
    gold["spurious"] = category_counts(mentions, "pred")["spurious"]
    return gold[list(CATEGORIES)]


def span_metrics(mentions) -> dict:
    """P/R/F1 per type and micro, from the mention table (``correct`` / totals). Equals seqeval's default mode."""
    def prf(tp: int, n_pred: int, n_gold: int) -> dict:
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_gold if n_gold else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": n_gold}

    g, p = category_counts(mentions, "gold"), category_counts(mentions, "pred")
    out = {t: prf(int(g.loc[t, "correct"]), int(p.loc[t, "pred_total"]), int(g.loc[t, "gold_total"]))
           for t in ENTITY_TYPES}
    out["micro"] = prf(int(g.loc["total", "correct"]), int(p.loc["total", "pred_total"]),
                       int(g.loc["total", "gold_total"]))
    return out


def confusion_matrix(mentions):
    """Type confusion matrix including ``O``: rows gold type, columns predicted type.

    Row ``A`` counts every gold span of type ``A`` once: in column ``A`` when it was found with the right
    type (exactly or with a boundary error), in column ``B`` when the overlapping prediction says ``B``
    (``wrong_type``/``wrong_type_boundary``; the largest overlap decides), in column ``O`` when missed.
    Row ``O`` counts spurious predictions by predicted type. Row sums are the gold totals (and the
    spurious count for ``O``); the ``O``/``O`` cell is 0 by definition.
    """
    import pandas as pd

    labels = list(ENTITY_TYPES) + ["O"]
    gold = mentions[mentions["side"] == "gold"]
    spur = mentions[(mentions["side"] == "pred") & (mentions["category"] == "spurious")]
    pairs = list(zip(gold["type"], gold["confused_with"])) + [("O", t) for t in spur["type"]]
    cm = pd.DataFrame(0, index=pd.Index(labels, name="gold"), columns=pd.Index(labels, name="predicted"))
    for g, p in pairs:
        cm.loc[g, p] += 1
    return cm


def slice_table(mentions, column: str):
    """Gold mentions split by a boolean/categorical ``column`` (e.g. ``seen_in_train``, ``in_entity_list``,
    ``multi_token``): counts per category, total and recall (the share that is ``correct``)."""
    sub = mentions[mentions["side"] == "gold"].copy()
    if column == "multi_token" and column not in sub:
        sub["multi_token"] = sub["n_tokens"] > 1
    if column not in sub:
        raise KeyError(f"slice_table(): no column {column!r}; pass train_surfaces/entity_lists to mention_table().")
    import pandas as pd

    table = pd.crosstab(sub[column], sub["category"]).reindex(columns=list(GOLD_CATEGORIES), fill_value=0)
    table["gold_total"] = table.sum(axis=1)
    table["recall"] = (table["correct"] / table["gold_total"]).round(4)
    table.columns.name = None
    return table


def gene_protein_confusions(mentions):
    """Gold Gene/Protein spans predicted as the other of the two (``wrong_type`` or ``wrong_type_boundary``)."""
    gold = mentions[(mentions["side"] == "gold") & mentions["type"].isin(["Gene", "Protein"])]
    return gold[gold["confused_with"].isin(["Gene", "Protein"]) & (gold["confused_with"] != gold["type"])]


def errors_table(mentions):
    """The errors, one row each: gold spans that are not ``correct`` and ``spurious`` predicted spans.

    (Predicted spans in ``wrong_*`` categories are already described by the gold span they overlap.)
    Columns: :data:`ERROR_COLUMNS` (``seen_in_train``/``in_entity_list`` empty when not computed).
    """
    m = mentions
    errs = m[((m["side"] == "gold") & (m["category"] != "correct")) | (m["category"] == "spurious")]
    errs = errs.reindex(columns=list(ERROR_COLUMNS))
    return errs.sort_values(["doc_id", "sentence_id", "start", "end"], kind="stable").reset_index(drop=True)


def export_errors(mentions, path: str | os.PathLike) -> Path:
    """Write :func:`errors_table` to CSV (temp file, then renamed). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    errors_table(mentions).to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def compare_runs(records_a: Sequence[dict], records_b: Sequence[dict], name_a: str = "A", name_b: str = "B"):
    """Paired comparison of two systems on the same sentences, mention by mention.

    A gold mention is *fixed* when ``name_a`` got it wrong (any non-``correct`` category) and ``name_b``
    got it ``correct``; *broken* in the opposite case. Returns ``(per_type, mentions)``: ``per_type`` has,
    per type and in total, ``fixed``, ``broken``, ``net`` (= fixed − broken = change in true positives),
    ``both_correct``, ``both_wrong``, and the spurious predictions of each system; ``mentions`` has one row
    per gold mention with both categories and a ``change`` column (``fixed``/``broken``/``same``).
    """
    import pandas as pd

    runs = align_runs({name_a: list(records_a), name_b: list(records_b)})
    ma, mb = mention_table(runs[name_a]), mention_table(runs[name_b])
    key = ["doc_id", "sentence_id", "start", "end", "type"]
    ga = ma.loc[ma["side"] == "gold", key + ["text", "category", "pred_text"]]
    gb = mb.loc[mb["side"] == "gold", key + ["category", "pred_text"]]
    both = ga.merge(gb, on=key, how="left", suffixes=(f"_{name_a}", f"_{name_b}"), validate="one_to_one")
    ca, cb = both[f"category_{name_a}"] == "correct", both[f"category_{name_b}"] == "correct"
    both["change"] = "same"
    both.loc[~ca & cb, "change"] = "fixed"
    both.loc[ca & ~cb, "change"] = "broken"
    rows = []
    for t in list(ENTITY_TYPES) + ["total"]:
        sel = both if t == "total" else both[both["type"] == t]
        sa = ma[(ma["category"] == "spurious") & ((ma["type"] == t) | (t == "total"))]
        sb = mb[(mb["category"] == "spurious") & ((mb["type"] == t) | (t == "total"))]
        fixed, broken = int((sel["change"] == "fixed").sum()), int((sel["change"] == "broken").sum())
        rows.append({
            "type": t,
            "gold": len(sel),
            "fixed": fixed,
            "broken": broken,
            "net": fixed - broken,
            "both_correct": int((sel[f"category_{name_a}"] == "correct").sum() - broken),
            "both_wrong": int(len(sel) - (sel[f"category_{name_a}"] == "correct").sum() - fixed),
            f"spurious_{name_a}": len(sa),
            f"spurious_{name_b}": len(sb),
        })
    return pd.DataFrame(rows).set_index("type"), both


def scores_table(runs: dict[str, list[dict]]):
    """Per system and seqeval mode (``default`` and ``strict-IOB2``): micro P/R/F1, macro F1 and per-type F1."""
    import pandas as pd

    rows = []
    for name, recs in runs.items():
        for strict in (False, True):
            s = score([r["gold"] for r in recs], [r["pred"] for r in recs], strict=strict)
            row = {"system": name, "mode": s["mode"], "precision": s["precision"], "recall": s["recall"],
                   "f1": s["f1"], "macro_f1": s["macro_f1"]}
            row.update({f"f1_{t}": s["per_type"][t]["f1"] for t in ENTITY_TYPES})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["system", "mode"]).round(4)


# ---------------------------------------------------------------------------------- worked examples


def pick_examples(errors, n: int = 10, seed: int = 42):
    """``n`` errors spread over the categories (round-robin over categories, random within each, seeded)."""
    import pandas as pd

    if len(errors) == 0 or n <= 0:
        return errors.iloc[0:0]
    groups = [g.sample(frac=1.0, random_state=seed) for _, g in errors.groupby("category", sort=True)]
    picked, i = [], 0
    while len(picked) < min(n, len(errors)):
        for g in groups:
            if i < len(g) and len(picked) < n:
                picked.append(g.iloc[i])
        i += 1
    return pd.DataFrame(picked).reset_index(drop=True)


def describe_error(row) -> str:
    """One sentence of interpretation for an error row (of :func:`errors_table`), filled from the data."""
    text, gold, pred, cat = row["text"], row["gold"], row["predicted"], row["category"]
    if cat == "missed":
        s = f"The {gold} mention “{text}” was missed: the model predicted no entity over these tokens."
    elif cat == "spurious":
        s = f"The model predicted “{text}” as {pred}, but the annotators marked no entity there."
    elif cat == "wrong_type":
        s = f"The boundaries of “{text}” are right but the type is not: gold {gold}, predicted {pred}."
    elif cat == "wrong_boundary":
        s = f"The type {gold} is right but the boundaries are not: gold “{text}”, predicted “{row['pred_text']}”."
    else:
        s = (f"Both type and boundaries are off: gold {gold} “{text}”, predicted {pred} "
             f"“{row['pred_text']}”.")
    facts = []
    seen, listed = row.get("seen_in_train"), row.get("in_entity_list")
    kind = pred if cat == "spurious" else gold
    if seen is not None and not _isna(seen):
        facts.append(f"this string {'was' if seen else 'was never'} annotated as {kind} in the training split")
    if listed is not None and not _isna(listed):
        facts.append(f"it {'is' if listed else 'is not'} in the {kind} entity list")
    if facts:
        s += " " + "; ".join(facts).capitalize() + "."
    if int(row["n_tokens"]) > 1:
        s += f" It spans {int(row['n_tokens'])} tokens."
    return s


def _isna(value) -> bool:
    import pandas as pd

    return value is None or (isinstance(value, float) and bool(pd.isna(value)))


# ------------------------------------------------------------------------------------- results table

#: Quoted from the reference model card (125M-parameter biomedical RoBERTa, its own dev-style split):
#: a landmark, never a measurement of this project.
REFERENCE_CARD = {"precision": 0.8366, "recall": 0.8513, "f1": 0.8439, "accuracy": 0.9681}
README_BEGIN, README_END = "<!-- RESULTS -->", "<!-- /RESULTS -->"
#: Row order: lists alone, the classic peers, then the transformer recipes.
_ROW_ORDER = {"dictionary": 0, "crf": 1, "spacy": 2, "single": 3, "augmented": 4, "two-step": 5}


def collect_results(results: str | os.PathLike) -> list[dict]:
    """Every ``<results>/<run>/metrics.json`` (committed measured runs), in table order."""
    rows = []
    for path in sorted(Path(results).glob("*/metrics.json")):
        m = _read_metrics(path)
        if "test" not in m or "run" not in m:
            continue
        rows.append(m)
    rows.sort(key=lambda m: (str(m.get("profile") or ""), _ROW_ORDER.get(m.get("recipe") or m.get("system"), 9),
                             m["run"]))
    return rows


def _read_metrics(path: Path) -> dict:
    """A committed ``metrics.json``, refused with a clear error when it is not valid JSON or its scores are not
    numbers (a hand edit or a bad merge), instead of a traceback while rendering the table."""
    from craftlib.errors import RunError

    fix = (f"restore it (`git checkout -- {path}`) or rerun the command that wrote it (its `command` field), then "
           "copy the new metrics.json there")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise RunError(f"{path} is not valid JSON ({err}): {fix}.") from err
    if not isinstance(m, dict):
        raise RunError(f"{path} is not a JSON object: {fix}.")
    for split in ("dev", "test"):
        scores = m.get(split)
        if scores is None:
            continue
        bad = [k for k in ("precision", "recall", "f1", "accuracy")
               if not isinstance(scores, dict) or not isinstance(scores.get(k), (int, float))]
        if bad:
            raise RunError(f"{path}: {split} scores {', '.join(bad)} are missing or not numbers: {fix}.")
    return m


def results_markdown(results: str | os.PathLike) -> str:
    """Markdown table of the committed runs' test (and dev) scores, each with the command that made it.

    Generated, never typed: ``python -m craftlib results --readme README.md`` rewrites the README block, and
    a test checks that the block equals this function's output.
    """
    rows = collect_results(results)
    if not rows:
        return "_No measured runs committed under `results/` yet._\n"
    lines = [
        "| run | system | profile | test P | test R | test F1 | test token acc. | dev F1 | train s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in rows:
        t, d = m["test"], m["dev"]
        secs = m.get("train_seconds")
        lines.append(
            f"| `{m['run']}` | {m.get('system', '')} | {m.get('profile', '')} | {t['precision']:.4f} | "
            f"{t['recall']:.4f} | {t['f1']:.4f} | {t['accuracy']:.4f} | {d['f1']:.4f} | "
            f"{'' if secs is None else f'{secs:.0f}' if secs >= 10 else f'{secs:.1f}'} |"
        )
    r = REFERENCE_CARD
    lines.append(f"| reference card (quoted: its own dev-style split, not measured here) | transformer | full | "
                 f"{r['precision']:.4f} | "
                 f"{r['recall']:.4f} | {r['f1']:.4f} | {r['accuracy']:.4f} | | |")
    lines += ["", "Commands (each run's `metrics.json` repeats its own, with versions and hardware):", ""]
    lines += [f"- `{m['run']}`: `{m.get('command', '?')}`" for m in rows]
    return "\n".join(lines) + "\n"


def update_readme(readme: str | os.PathLike, results: str | os.PathLike) -> bool:
    """Replace the block between ``<!-- RESULTS -->`` and ``<!-- /RESULTS -->``; ``True`` if it changed."""
    path = Path(readme)
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise CraftlibError(f"{path} has no {README_BEGIN} ... {README_END} block to fill.")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_BEGIN}\n{results_markdown(results)}{README_END}{tail}"
    if new != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(new)
        tmp.replace(path)
    return new != text


# ------------------------------------------------------------------------------------------------- CLI


def add_commands(subparsers) -> None:
    """``python -m craftlib evaluate``: scores, error counts and the errors CSV of a run (optionally vs another)."""
    p = subparsers.add_parser(
        "evaluate",
        help="Error analysis of a trained/evaluated run: scores, error categories, errors CSV.",
        description="Reads models/<run>/predictions_<split>.jsonl, prints scores (seqeval default and "
        "strict IOB2) and error categories per type, writes <out>/errors-<run>.csv.",
    )
    p.add_argument("--run", required=True, help="run name, e.g. two-step-minilm-quick")
    p.add_argument("--compare", help="another run to compare with (mentions fixed/broken)")
    p.add_argument("--split", default="test", choices=["test", "validation"])
    p.add_argument("--models-dir", default=None, help="default: CRAFTLIB_MODELS_DIR or <repo>/models")
    p.add_argument("--out", default=None, help="output folder (default: <results>/error_analysis)")
    p.set_defaults(func=_cmd_evaluate)

    p = subparsers.add_parser(
        "results",
        help="Table of the measured runs committed under results/ (optionally written into the README).",
        description="Reads results/<run>/metrics.json and prints a Markdown table of test/dev scores with "
        "the command of each run; --readme rewrites the <!-- RESULTS --> block of that file.",
    )
    p.add_argument("--results-dir", default=None, help="default: CRAFTLIB_RESULTS_DIR or <repo>/results")
    p.add_argument("--readme", default=None, help="file whose <!-- RESULTS --> block to rewrite")
    p.set_defaults(func=_cmd_results)


def _cmd_results(args) -> int:
    from craftlib.config import results_dir

    root = results_dir(args.results_dir)
    if args.readme:
        changed = update_readme(args.readme, root)
        print(f"{args.readme}: {'updated' if changed else 'already up to date'} from {root}")
    else:
        print(results_markdown(root), end="")
    return 0


def _cmd_evaluate(args) -> int:
    from craftlib.config import models_dir, results_dir

    root = models_dir(args.models_dir)
    runs = {args.run: read_predictions(root / args.run / f"predictions_{args.split}.jsonl")}
    if args.compare:
        runs[args.compare] = read_predictions(root / args.compare / f"predictions_{args.split}.jsonl")
        runs = align_runs(runs)
    print(scores_table(runs).to_string())
    mentions = mention_table(runs[args.run])
    print(error_counts(mentions).to_string())
    out = Path(args.out) if args.out else results_dir() / "error_analysis"
    print(f"errors written to {export_errors(mentions, out / f'errors-{args.run}.csv')}")
    if args.compare:
        table, _ = compare_runs(runs[args.run], runs[args.compare], args.run, args.compare)
        print(table.to_string())
    return 0
