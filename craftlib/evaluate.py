"""Scoring and error analysis. Every system in the project is scored by :func:`score`.

``score`` wraps seqeval so that the dictionary baseline, the transformer recipes and the peer
toolkits are measured by exactly the same call.

The rest of the module is error analysis on prediction records (``predictions_<split>.jsonl``):
:func:`mention_table` gives every gold and predicted span exactly one category (correct, wrong type,
wrong boundary, wrong type and boundary, missed / spurious), from which come :func:`category_counts`,
:func:`confusion_matrix`, :func:`slice_table`, :func:`compare_runs` (mentions fixed / broken between two
systems) and :func:`export_errors` (the errors CSV).

Pure scoring: this module imports no training, baseline or picture code. Prediction files are read with
:func:`craftlib.runs.read_predictions` (also reachable here as ``evaluate.read_predictions``, as the notebooks call
it); getting a system's predictions, building its run when missing, is :mod:`craftlib.pipeline`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from craftlib import cache, config
from craftlib.bio import bio_spans, tag_names
from craftlib.config import ENTITY_TYPES
from craftlib.errors import CraftlibError
from craftlib.options import seed_value
from craftlib.runs import Run, now, predictions_path, read_predictions, save_json
from craftlib.runtime import versions

if TYPE_CHECKING:  # numpy is imported inside the functions that use it
    import numpy as np


#: Name of the single type that replaces Gene and Protein in the "merged" scores.
MERGED_TYPE = "Gene+Protein"
#: The types merged into :data:`MERGED_TYPE`.
MERGED_TYPES: tuple[str, ...] = ("Gene", "Protein")


def merge_gene_protein(tags: Sequence[str]) -> list[str]:
    """``B-Gene``/``B-Protein`` → ``B-Gene+Protein`` (same for ``I-``); other tags unchanged.

    The Gene/Protein line is drawn by a rule (notebook 02), not by CRAFT's annotators: scoring with the two
    types merged shows how much of a system's error is that line alone.
    """
    return [f"{t[:2]}{MERGED_TYPE}" if t[2:] in MERGED_TYPES else t for t in tags]


def _micro_prf(y_true: list[list[str]], y_pred: list[list[str]], strict: bool) -> dict:
    """seqeval micro P/R/F1 (default mode, or strict IOB2 mode)."""
    if not any(y_true) and not any(y_pred):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    if strict:
        from seqeval.metrics.v1 import precision_recall_fscore_support
        from seqeval.scheme import IOB2

        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0,
                                                     mode="strict", scheme=IOB2)
    else:
        from seqeval.metrics.sequence_labeling import precision_recall_fscore_support

        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


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
    ``sentences``, ``tokens``, and three companions that put the headline in context:

    * ``merged``: micro P/R/F1 (same mode) with Gene and Protein merged into one type (:data:`MERGED_TYPE`);
    * ``strict``: micro P/R/F1 in seqeval's strict IOB2 mode (equal to the headline when ``strict=True``);
    * ``all_o_accuracy``: the token accuracy of a tagger that predicts ``O`` everywhere on the same gold —
      the floor that ``accuracy`` should be read against.
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
    n_tokens = sum(len(s) for s in y_true)
    headline = {"precision": float(micro["precision"]), "recall": float(micro["recall"]),
                "f1": float(micro["f1-score"])}
    merged = _micro_prf([merge_gene_protein(s) for s in y_true], [merge_gene_protein(s) for s in y_pred], strict)
    return {
        "mode": "strict-IOB2" if strict else "default",
        **headline,
        "macro_f1": float(macro["f1-score"]),
        "accuracy": float(accuracy_score(y_true, y_pred)) if y_true else 0.0,
        "per_type": per_type,
        "sentences": len(y_true),
        "tokens": n_tokens,
        "merged": {"types": list(MERGED_TYPES), **merged},
        "strict": dict(headline) if strict else _micro_prf(y_true, y_pred, strict=True),
        "all_o_accuracy": sum(t == "O" for s in y_true for t in s) / n_tokens if n_tokens else 0.0,
    }


#: nervaluate's scenarios (SemEval-2013 task 9.1), in the order of the tutorial.
NERVALUATE_SCENARIOS: tuple[str, ...] = ("strict", "exact", "partial", "ent_type")
#: What each scenario counts as correct (for tables and notebooks).
NERVALUATE_MEANING = {
    "strict": "same boundaries and same type",
    "exact": "same boundaries, any type",
    "partial": "overlapping boundaries, any type (an overlap counts half)",
    "ent_type": "same type, overlapping boundaries",
}


def nervaluate_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict:
    """The four SemEval-2013 scenarios of the ``nervaluate`` package, micro over all types.

    Returns ``{scenario: {correct, incorrect, partial, missed, spurious, possible, actual, precision, recall,
    f1}}`` for each of :data:`NERVALUATE_SCENARIOS`. Unlike seqeval's counts, a wrong-type or wrong-boundary
    prediction is *one* ``incorrect`` (or ``partial``) error here, not a false positive plus a false negative;
    ``partial`` and ``ent_type`` give half credit to a partial match (nervaluate's formula).
    """
    from nervaluate import Evaluator

    y_true = [list(s) for s in y_true]
    y_pred = [list(s) for s in y_pred]
    if len(y_true) != len(y_pred) or any(len(a) != len(b) for a, b in zip(y_true, y_pred)):
        raise ValueError("nervaluate_scores(): gold and predicted tag sequences must have the same shapes.")
    overall = Evaluator(y_true, y_pred, tags=list(ENTITY_TYPES), loader="list").evaluate()["overall"] if y_true else {}
    out = {}
    for scenario in NERVALUATE_SCENARIOS:
        r = overall.get(scenario)
        keys = ("correct", "incorrect", "partial", "missed", "spurious", "possible", "actual")
        out[scenario] = {k: int(getattr(r, k, 0)) for k in keys}
        out[scenario].update({k: float(getattr(r, k, 0.0)) for k in ("precision", "recall", "f1")})
    return out


# ------------------------------------------------------------------------------------- paired bootstrap


def document_counts(records: Sequence[dict], merge: bool = False) -> tuple[list[str], np.ndarray]:
    """``(doc_ids, counts)``: per test document, seqeval's true positives, false positives and false negatives
    (default mode: a span is a true positive when its boundaries and type are both right), as an
    ``(n_documents, 3)`` integer array. Summing rows gives seqeval's micro counts; ``merge`` merges Gene and
    Protein first (:func:`merge_gene_protein`)."""
    import numpy as np
    from seqeval.metrics.sequence_labeling import get_entities

    index: dict[str, int] = {}
    rows: list[list[int]] = []
    for rec in records:
        gold, pred = list(rec["gold"]), list(rec["pred"])
        if merge:
            gold, pred = merge_gene_protein(gold), merge_gene_protein(pred)
        g, p = set(get_entities(gold)), set(get_entities(pred))
        tp = len(g & p)
        i = index.setdefault(str(rec["doc_id"]), len(index))
        if i == len(rows):
            rows.append([0, 0, 0])
        rows[i][0] += tp
        rows[i][1] += len(p) - tp
        rows[i][2] += len(g) - tp
    return list(index), np.array(rows, dtype=np.int64).reshape(-1, 3)


def _f1_from_counts(counts):
    import numpy as np

    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def _seed_runs(value) -> list[list[dict]]:
    """A system's runs: one run (a sequence of records) or several seeds' runs (a sequence of such sequences)."""
    value = list(value)
    if value and isinstance(value[0], dict):
        return [value]
    runs = [list(v) for v in value]
    if not runs:
        raise CraftlibError("bootstrap(): a system has no run.")
    return runs


def bootstrap(
    records_by_system: dict[str, Sequence],
    n: int = 2000,
    seed: int = 42,
    confidence: float = 0.95,
    pairs: Sequence[tuple[str, str]] | None = None,
    merge: bool = False,
    paired_seeds: bool = False,
) -> dict:
    """Paired bootstrap over test **documents** (the unit CRAFT sampled) and, for a system trained with several
    seeds, over its **seeds**: an interval for each system's micro F1 and for each difference between two systems.

    ``records_by_system`` maps a system to its records (one run), or to a list of runs (one per seed). A system's
    F1 is the mean over its seeds of each seed's micro F1 (the point estimate uses every document). All runs are
    first restricted to their common sentences (:func:`align_runs`). Each resample draws as many documents as there
    are, with replacement (the same documents for every system: *paired*), and, for each system with ``k > 1``
    seeds, ``k`` of its seeds with replacement; the system's resampled F1 is the mean over the drawn seeds of their
    F1 on the drawn documents. So an interval covers both sources of noise: which articles were tested and which
    seed trained the model (with a single seed it is the plain document bootstrap). The interval is the central
    ``confidence`` share of the ``n`` resampled values (percentile method). A difference ``b - a`` whose interval
    contains 0 is called ``"indistinguishable"``; otherwise the verdict names the higher system (with fewer than 2
    documents nothing can be said: ``"undetermined: ..."``). ``pairs`` defaults to every pair in the order given.
    ``paired_seeds``: systems with the same number of seeds draw the same seed positions (their j-th runs together),
    which is right when the j-th runs share their training, e.g. a run and its re-decoded twin (``python -m
    craftlib decode``), or their seed's data draw; a difference then leaves out the seed-to-seed spread the two
    share. Same inputs and seed → same intervals.
    Returns a JSON-serialisable dict (no corpus text): ``systems`` ``{name: {f1, low, high, seeds, sd, seed_f1}}``
    (``sd``: standard deviation of the seeds' F1, ``None`` for one seed), ``differences``
    ``[{a, b, difference, low, high, verdict}]`` and the settings.
    """
    import numpy as np

    if n < 1:
        raise CraftlibError(f"bootstrap(): n must be at least 1 resample, got {n}.")
    if not 0 < confidence < 1:
        raise CraftlibError(f"bootstrap(): confidence must be between 0 and 1, got {confidence}.")
    by_system = {name: _seed_runs(value) for name, value in records_by_system.items()}
    names = list(by_system)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]] if pairs is None else list(pairs)
    unknown = sorted({x for pair in pairs for x in pair} - set(names))
    if unknown:
        raise CraftlibError(f"bootstrap(): pairs name unknown systems {unknown}; known: {names}.")
    def key(name: str, j: int) -> str:
        return name if len(by_system[name]) == 1 else f"{name}[seed run {j + 1}]"

    flat = {key(name, j): recs for name, runs in by_system.items() for j, recs in enumerate(runs)}
    aligned = align_runs(flat)
    docs, counts = None, {}
    for run in flat:
        d, c = document_counts(aligned[run], merge=merge)
        docs = d if docs is None else docs
        counts[run] = c  # same documents in the same order: align_runs sorted the sentences
    rng = np.random.default_rng(seed)
    n_docs = len(docs)
    drawn = rng.integers(0, n_docs, size=(n, n_docs))
    weights = np.zeros((n, n_docs))
    np.add.at(weights, (np.repeat(np.arange(n), n_docs), drawn.ravel()), 1.0)  # times each document is drawn
    q = [50 * (1 - confidence), 50 * (1 + confidence)]
    point, samples, seed_f1, shared_picks = {}, {}, {}, {}
    for name, runs in by_system.items():
        k = len(runs)
        seed_f1[name] = [float(_f1_from_counts(counts[key(name, j)].sum(axis=0))) for j in range(k)]
        point[name] = float(np.mean(seed_f1[name]))
        per_seed = np.stack([_f1_from_counts(weights @ counts[key(name, j)]) for j in range(k)])  # (k, n)
        if k == 1:
            samples[name] = per_seed[0]
        else:  # k seeds drawn with replacement for every resample (the same positions for every k-seed system)
            picks = (shared_picks.setdefault(k, rng.integers(0, k, size=(n, k))) if paired_seeds
                     else rng.integers(0, k, size=(n, k)))
            samples[name] = per_seed[picks, np.arange(n)[:, None]].mean(axis=1)

    def interval(values) -> tuple[float, float]:
        low, high = np.percentile(values, q)
        return float(low), float(high)

    systems = {}
    for name in names:
        low, high = interval(samples[name])
        k = len(seed_f1[name])
        systems[name] = {"f1": point[name], "low": low, "high": high, "seeds": k,
                         "sd": float(np.std(seed_f1[name], ddof=1)) if k > 1 else None, "seed_f1": seed_f1[name]}
    differences = []
    for a, b in pairs:
        low, high = interval(samples[b] - samples[a])
        if n_docs < 2:  # every resample is the same document: the interval says nothing
            verdict = "undetermined: fewer than 2 documents"
        else:
            verdict = "indistinguishable" if low <= 0 <= high else (f"{b} higher" if low > 0 else f"{a} higher")
        differences.append({"a": a, "b": b, "difference": point[b] - point[a], "low": low, "high": high,
                            "verdict": verdict})
    several = any(v["seeds"] > 1 for v in systems.values())
    return {
        "method": ("paired bootstrap over test documents and, " + (
            "paired by seed position, over the seeds (percentile interval)" if paired_seeds
            else "per system, over its seeds (percentile interval)")
                   if several else "paired bootstrap over test documents (percentile interval)"),
        "score": "seqeval default-mode micro F1" + (", mean over seeds" if several else "")
                 + (", Gene and Protein merged" if merge else ""),
        "n_resamples": n, "seed": seed, "confidence": confidence,
        "documents": n_docs, "sentences": len(next(iter(aligned.values()))),
        "systems": systems,
        "differences": differences,
    }


def bootstrap_tables(result: dict):
    """Two DataFrames from a :func:`bootstrap` result: systems (F1 and interval) and differences."""
    import pandas as pd

    pct = f"{result['confidence']:.0%}"
    several = any((v.get("seeds") or 1) > 1 for v in result["systems"].values())
    systems = pd.DataFrame([{"system": k, **({"seeds": v.get("seeds") or 1} if several else {}),
                             "F1": v["f1"], **({"sd": v.get("sd")} if several else {}),
                             f"{pct} low": v["low"], f"{pct} high": v["high"]}
                            for k, v in result["systems"].items()]).set_index("system")
    diffs = pd.DataFrame([{"comparison": f"{d['b']} - {d['a']}", "difference": d["difference"],
                           f"{pct} low": d["low"], f"{pct} high": d["high"], "verdict": d["verdict"]}
                          for d in result["differences"]])
    return systems, (diffs.set_index("comparison") if len(diffs) else diffs)


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


def vote(runs: Sequence[Sequence[dict]]) -> list[dict]:
    """A seed ensemble at no training cost: the records of several runs of one system (its seeds) with each word's
    tag the one most of them predict (a tie goes to the earliest run that predicts a tied tag: list seed 42 first).
    Restricted to the sentences every run covers (:func:`align_runs`). Voting on IOB2 tags word by word can leave an
    ``I-X`` after ``O``; the scorer reads it as the start of a mention (seqeval's default mode), as for any model."""
    from collections import Counter

    if len(runs) < 2:
        raise CraftlibError(f"vote() needs the predictions of at least 2 runs, got {len(runs)}.")
    aligned = list(align_runs({str(i): list(r) for i, r in enumerate(runs)}).values())
    out = []
    for recs in zip(*aligned):
        pred = []
        for tags in zip(*(r["pred"] for r in recs)):
            counts = Counter(tags)
            top = max(counts.values())
            pred.append(next(t for t in tags if counts[t] == top))
        out.append({**recs[0], "pred": pred})
    return out


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
    true positives). Spans come from :func:`craftlib.bio.bio_spans`, which reads tags like seqeval's default
    mode (a stray ``I-`` opens a span).

    Columns: ``doc_id, sentence_id, side, start, end, type, text, n_tokens, category, confused_with, gold,
    predicted, pred_text`` (``gold``/``predicted``: the types on each side over this span, ``|``-joined, ``O``
    if none; ``pred_text``: the text of the overlapping predicted spans), plus ``seen_in_train`` when
    ``train_surfaces`` (type → normalised surface strings, see :func:`train_surfaces`) is given and
    ``in_entity_list`` when ``entity_lists`` (type → terms) is given; both compare the span's surface
    string, normalised, with entries *of the span's own type*.
    """
    import pandas as pd

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
    out: dict[str, set[str]] = {t: set() for t in ENTITY_TYPES}
    for ex in split:
        tags = ex["ner_tags"] if "ner_tags" in ex else ex["gold"]
        for start, end, kind in bio_spans(tag_names(tags)):
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
    return cache.atomic_write_text(path, errors_table(mentions).to_csv(index=False))


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
    """Per system and seqeval mode (``default`` and ``strict-IOB2``): micro P/R/F1, F1 with Gene and Protein
    merged, macro F1, token accuracy next to the all-``O`` floor, and per-type F1."""
    import pandas as pd

    rows = []
    for name, recs in runs.items():
        for strict in (False, True):
            s = score([r["gold"] for r in recs], [r["pred"] for r in recs], strict=strict)
            row = {"system": name, "mode": s["mode"], "precision": s["precision"], "recall": s["recall"],
                   "f1": s["f1"], "f1_gene_protein_merged": s["merged"]["f1"], "macro_f1": s["macro_f1"],
                   "token_accuracy": s["accuracy"], "all_o_accuracy": s["all_o_accuracy"]}
            row.update({f"f1_{t}": s["per_type"][t]["f1"] for t in ENTITY_TYPES})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["system", "mode"]).round(4)


def stray_inside_spans(records: Sequence[dict]) -> dict:
    """How seqeval's two modes read the *predicted* spans that start with a stray ``I-`` (no ``B-`` before).

    The default mode turns such a run of tags into an entity; the strict IOB2 mode drops it. Returns
    ``pred_spans`` (default mode), ``stray_spans`` (of those, the ones starting with ``I-``) and
    ``stray_correct`` (stray spans that match a gold span exactly: true positives in default mode only).
    """
    from seqeval.metrics.sequence_labeling import get_entities

    out = {"pred_spans": 0, "stray_spans": 0, "stray_correct": 0}
    for rec in records:
        gold = set(get_entities(list(rec["gold"])))
        for span in get_entities(list(rec["pred"])):
            out["pred_spans"] += 1
            if rec["pred"][span[1]].startswith("I-"):
                out["stray_spans"] += 1
                out["stray_correct"] += span in gold
    return out


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


def rescore(run_dir: str | os.PathLike) -> dict:
    """Score a run's saved dev and test predictions again with the current :func:`score` and rewrite the ``dev``
    and ``test`` fields of its ``metrics.json`` (nothing else changes; ``rescored`` records when and with which
    craftlib version). For a run written before the scorer gained a field (merged Gene+Protein, strict mode,
    the all-``O`` floor): the same predictions, the new fields, no retraining."""
    run = Run(run_dir)
    metrics = run.metrics()
    for split, key in (("validation", "dev"), ("test", "test")):
        recs = run.predictions(split)
        metrics[key] = score([r["gold"] for r in recs], [r["pred"] for r in recs])
    metrics["rescored"] = {"command": f"python -m craftlib rescore {run.name}",
                           "created": now(), "craftlib": versions().get("craftlib")}
    run.write_metrics(metrics)
    return metrics


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
        "compare",
        help="Paired bootstrap over test documents: F1 intervals of runs and of their differences (JSON).",
        description="Reads models/<run>/predictions_<split>.jsonl of each run, resamples the documents with "
        "replacement, and writes the F1 interval of each run and of each difference to a small JSON file "
        "(no corpus text), which `python -m craftlib results` renders into the README.",
    )
    p.add_argument("--runs", nargs="+", default=[],
                   help="run names, e.g. single-minilm-quick two-step-minilm-quick (with --seeds: each one's seed-42 "
                        "name, the other seeds' runs being NAME-seedN)")
    p.add_argument("--seeds", nargs="+", type=seed_value, default=None,
                   help="seeds of every --runs system, e.g. 42 1 2: a system is the mean over its seeds, and the "
                        "bootstrap resamples the seeds as well as the documents")
    p.add_argument("--systems", nargs="+", default=[], metavar="NAME=RUN[,RUN...]",
                   help="a system named NAME made of the given runs (one per seed), e.g. crf=crf-quick")
    p.add_argument("--vote", nargs="+", default=[], metavar="NAME=RUN,RUN[,RUN...]",
                   help="a system named NAME whose tag for each word is the majority of the given runs' tags (a seed "
                        "ensemble, e.g. vote=two-step-minilm-quick,two-step-minilm-quick-seed1,"
                        "two-step-minilm-quick-seed2; ties go to the first run); its runs may belong to other systems")
    p.add_argument("--pairs", nargs="*", default=None, metavar="A:B",
                   help="differences to report, as A:B (B - A) of system names; default: every pair in order")
    p.add_argument("--split", default="test", choices=["test", "validation"])
    p.add_argument("--n", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=seed_value, default=42)
    p.add_argument("--merge-gene-protein", action="store_true", help="score with Gene and Protein merged")
    p.add_argument("--paired-seeds", action="store_true",
                   help="systems with the same seeds resample them together (seed j of one with seed j of the "
                        "other): for runs that share their training, e.g. a run and its `decode`d twin")
    p.add_argument("--models-dir", default=None, help="default: CRAFTLIB_MODELS_DIR or <repo>/models")
    p.add_argument("--out", default=None,
                   help="JSON file to write (default: <results>/bootstrap-<profile>.json, the runs' profile)")
    p.set_defaults(func=_cmd_compare)

    p = subparsers.add_parser(
        "rescore",
        help="Score runs' saved dev/test predictions again with the current scorer (metrics.json dev/test).",
        description="For runs written before the scorer gained a field: reads models/<run>/predictions_*.jsonl "
        "and rewrites only the dev and test scores of models/<run>/metrics.json (marked 'rescored').",
    )
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--models-dir", default=None, help="default: CRAFTLIB_MODELS_DIR or <repo>/models")
    p.set_defaults(func=_cmd_rescore)


def _cmd_rescore(args) -> int:
    root = config.models_dir(args.models_dir)
    for run in args.runs:
        m = rescore(root / run)
        print(f"{run}: test F1 {m['test']['f1']:.4f} (Gene+Protein merged {m['test']['merged']['f1']:.4f}, "
              f"strict {m['test']['strict']['f1']:.4f})")
    return 0


def _cmd_evaluate(args) -> int:
    import pandas as pd

    root = config.models_dir(args.models_dir)
    runs = {args.run: read_predictions(predictions_path(root / args.run, args.split))}
    if args.compare:
        runs[args.compare] = read_predictions(predictions_path(root / args.compare, args.split))
        runs = align_runs(runs)
    print(scores_table(runs).to_string())
    recs = runs[args.run]
    scenarios = nervaluate_scores([r["gold"] for r in recs], [r["pred"] for r in recs])
    print(f"nervaluate scenarios ({args.run}):")
    print(pd.DataFrame(scenarios).T.round(4).to_string())
    mentions = mention_table(runs[args.run])
    print(error_counts(mentions).to_string())
    out = Path(args.out) if args.out else config.results_dir() / "error_analysis"
    print(f"errors written to {export_errors(mentions, out / f'errors-{args.run}.csv')}")
    if args.compare:
        table, _ = compare_runs(runs[args.run], runs[args.compare], args.run, args.compare)
        print(table.to_string())
    return 0


def compare_groups(run_names: Sequence[str], seeds: Sequence[int] | None = None,
                   systems: Sequence[str] = ()) -> dict[str, list[str]]:
    """The systems of ``python -m craftlib compare``: ``{name: [run, ...]}`` (one run per seed).

    Each of ``run_names`` is a system; with ``seeds`` its runs are the run itself for seed 42 and ``<run>-seed<N>``
    for the others (:func:`craftlib.runs.run_name`'s rule). ``systems`` adds ``NAME=RUN[,RUN...]`` groups.
    """
    groups: dict[str, list[str]] = {}
    for name in run_names:
        if name.endswith(tuple(f"-seed{s}" for s in (seeds or []))) and seeds:
            raise CraftlibError(f"--runs {name}: with --seeds give the seed-42 name (without -seedN).")
        groups[name] = [name if s == 42 else f"{name}-seed{s}" for s in seeds] if seeds else [name]
    for spec in systems:
        name, members = _named_runs(spec)
        if name is None:
            raise CraftlibError(f"--systems {spec!r}: write NAME=RUN[,RUN...], e.g. crf=crf-quick.")
        groups[name] = members
    if not groups:
        raise CraftlibError("compare needs runs: --runs RUN ... and/or --systems NAME=RUN[,RUN...].")
    dup = sorted({r for m in groups.values() for r in m if sum(r in g for g in groups.values()) > 1})
    if dup:
        raise CraftlibError(f"Run(s) {dup} belong to several systems: give each run to one system.")
    return groups


def _named_runs(spec: str) -> tuple[str | None, list[str]]:
    """``NAME=RUN[,RUN...]`` → ``(NAME, [RUN, ...])``; ``(None, [])`` when it is not written so."""
    name, sep, members = spec.partition("=")
    runs_ = members.split(",")
    return (name, runs_) if sep and name and all(runs_) else (None, [])


def vote_groups(specs: Sequence[str]) -> dict[str, list[str]]:
    """``--vote NAME=RUN,RUN[,RUN...]`` → ``{NAME: [RUN, ...]}`` (at least two runs, each once)."""
    votes = {}
    for spec in specs:
        name, members = _named_runs(spec)
        if name is None or len(members) < 2 or len(set(members)) < len(members):
            raise CraftlibError(f"--vote {spec!r}: write NAME=RUN,RUN[,RUN...] with at least two different runs, "
                                "e.g. vote=two-step-minilm-quick,two-step-minilm-quick-seed1.")
        votes[name] = members
    return votes


def _cmd_compare(args) -> int:
    import datetime
    import shlex

    root = config.models_dir(args.models_dir)
    votes = vote_groups(args.vote)
    only_votes = votes and not (args.runs or args.systems)
    groups = {} if only_votes else compare_groups(args.runs, args.seeds, args.systems)
    clash = sorted(set(votes) & set(groups))
    if clash:
        raise CraftlibError(f"--vote {clash}: a system of that name is already given; name the vote differently.")
    runs = {name: [read_predictions(predictions_path(root / run, args.split)) for run in members]
            for name, members in groups.items()}
    runs.update({name: vote([read_predictions(predictions_path(root / run, args.split)) for run in members])
                 for name, members in votes.items()})
    pairs = None
    if args.pairs:
        bad = [p for p in args.pairs if p.count(":") != 1]
        if bad:
            raise CraftlibError(f"--pairs {bad}: write each pair as RUN_A:RUN_B.")
        pairs = [tuple(p.split(":")) for p in args.pairs]
    result = bootstrap(runs, n=args.n, seed=args.seed, pairs=pairs, merge=args.merge_gene_protein,
                       paired_seeds=args.paired_seeds)
    argv = ["python", "-m", "craftlib", "compare"]
    if args.runs:
        argv += ["--runs", *args.runs]
    if args.seeds:
        argv += ["--seeds", *map(str, args.seeds)]
    if args.systems:
        argv += ["--systems", *args.systems]
    if args.vote:
        argv += ["--vote", *args.vote]
    if args.pairs:
        argv += ["--pairs", *args.pairs]
    if args.split != "test":
        argv += ["--split", args.split]
    if args.n != 2000:
        argv += ["--n", str(args.n)]
    if args.seed != 42:
        argv += ["--seed", str(args.seed)]
    if args.merge_gene_protein:
        argv.append("--merge-gene-protein")
    if args.paired_seeds:
        argv.append("--paired-seeds")
    profiles = set()
    for run in (r for members in [*groups.values(), *votes.values()] for r in members):
        profiles.add((Run(root / run).metrics_or_none() or {}).get("profile"))
    profile = profiles.pop() if len(profiles) == 1 and None not in profiles else "mixed"
    out = Path(args.out) if args.out else config.results_dir() / f"bootstrap-{profile}.json"
    if args.out:
        argv += ["--out", args.out]
    result = {"command": shlex.join(argv), "split": args.split, "profile": profile, **result,
              "runs": groups, **({"votes": votes} if votes else {}),
              "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    save_json(result, out)
    systems, diffs = bootstrap_tables(result)
    print(systems.round(4).to_string())
    if len(diffs):
        print(diffs.round(4).to_string())
    print(f"written to {out}")
    return 0
