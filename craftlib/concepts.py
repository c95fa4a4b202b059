"""Concept recognition on CRAFT: linking scored against the gold concept ids of the knowtator annotations.

Two measurements (``python -m craftlib concepts``, written to ``results/linking-<profile>.json``):

* **linking accuracy on gold spans**: every gold mention of a test document (contiguous ones: a discontinuous
  mention has no single span to look up) is linked by its own text and the type of its ontology
  (:class:`craftlib.linking.Linker`); how often the first candidate is the gold id, how often the gold id is among
  the candidates, how often the link is ambiguous or empty, and how often the gold id is not in the index at all
  (the ontology files hold no such concept: no matching can find it);
* **end-to-end concept recognition**: a system's predicted mentions (from its ``predictions_test.jsonl``, mapped to
  character offsets through the CRAFT tokens), linked, against the gold ``(document, start, end, id)`` set: a hit
  needs the exact span **and** the id (an ambiguous mention counts with its first candidate); P/R/F1 per ontology,
  and the same with the span and the ontology only (no id), so the two losses can be told apart.

Per ontology, not per type: Gene and Protein are both PR concepts in CRAFT (the Gene/Protein split is this
tutorial's, :mod:`craftlib.tags`), so their ids are scored together.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from craftlib import cache, config, corpus, runs, stages
from craftlib.bio import bio_spans
from craftlib.errors import CraftlibError
from craftlib.linking import TYPE_ONTOLOGY, Linker

#: Ontology → the row name of the tables (types that link to it).
ONTOLOGY_ROWS: dict[str, str] = {"SO": "Sequence", "CL": "Cell", "PR": "Gene+Protein", "NCBITaxon": "Taxon",
                                 "CHEBI": "Chemical"}
#: CRAFT module → the entity type its mentions are linked as (PR: Protein; Gene uses the same index).
MODULE_TYPE = dict(config.MODULE_TO_TYPE)


def gold_concepts(root: str | os.PathLike, doc_ids: Sequence[str], annotation_set: str = "proper") -> list[dict]:
    """Every gold concept mention of the NER modules in ``doc_ids``: ``doc_id``, ``start``, ``end``, ``id``,
    ``ontology``, ``text`` (the document's text there) and ``discontinuous``."""
    out = []
    for doc_id in doc_ids:
        doc = corpus.read_document(root, doc_id, annotation_sets=(annotation_set,), sentences=False,
                                   typography=False)
        for (module, _), mentions in doc.mentions.items():
            for m in mentions:
                out.append({"doc_id": doc_id, "start": m.start, "end": m.end, "id": m.class_id,
                            "ontology": TYPE_ONTOLOGY[MODULE_TYPE[module]], "name": m.class_label,
                            "text": doc.text[m.start:m.end], "discontinuous": m.discontinuous})
    return out


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def linking_accuracy(linker: Linker, gold: Sequence[dict], examples: int = 10) -> dict:
    """Linking scored on the gold spans, per ontology and overall (see the module docstring). ``missed``: the gold
    concepts most often not found, with their ontology names and why (``not in index`` / ``name differs``)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    missed: dict[str, Counter] = defaultdict(Counter)
    names: dict[str, str] = {}
    for g in gold:
        if g["discontinuous"]:
            counts[g["ontology"]]["discontinuous_skipped"] += 1
            continue
        c = counts[g["ontology"]]
        c["mentions"] += 1
        link = linker.link(g["text"], ONTOLOGY_ROWS_TYPE[g["ontology"]])
        indexed = g["id"] in linker.names
        c["gold_id_indexed"] += indexed
        c[link.status] += 1
        c["top1_correct"] += link.top == g["id"]
        c["in_candidates"] += g["id"] in link.ids
        c["unique_correct"] += link.status == "unique" and link.top == g["id"]
        if link.top != g["id"]:
            why = "not in index" if not indexed else "no candidate" if link.status == "none" else "wrong candidate"
            c[f"miss: {why}"] += 1
            missed[g["ontology"]][(g["id"], why)] += 1
            names[g["id"]] = g["name"]
    out = {}
    for onto, row in ONTOLOGY_ROWS.items():
        c = counts.get(onto, Counter())
        n = c["mentions"]
        out[row] = {
            "ontology": onto, "mentions": n, "discontinuous_skipped": c["discontinuous_skipped"],
            "accuracy": _ratio(c["top1_correct"], n), "unique_correct": _ratio(c["unique_correct"], n),
            "gold_in_candidates": _ratio(c["in_candidates"], n), "ambiguous": _ratio(c["ambiguous"], n),
            "no_candidate": _ratio(c["none"], n), "gold_id_not_in_index": _ratio(n - c["gold_id_indexed"], n),
            "accuracy_when_gold_id_indexed": _ratio(c["top1_correct"], c["gold_id_indexed"]),
            "misses": {k[6:]: c[k] for k in sorted(c) if k.startswith("miss: ")},
            "most_missed": [{"id": i, "name": names.get(i, ""), "why": why, "mentions": k}
                            for (i, why), k in missed[onto].most_common(examples)],
        }
    total = sum((counts[o] for o in counts), Counter())
    n = total["mentions"]
    out["all"] = {"mentions": n, "accuracy": _ratio(total["top1_correct"], n),
                  "gold_in_candidates": _ratio(total["in_candidates"], n), "ambiguous": _ratio(total["ambiguous"], n),
                  "no_candidate": _ratio(total["none"], n),
                  "gold_id_not_in_index": _ratio(n - total["gold_id_indexed"], n),
                  "accuracy_when_gold_id_indexed": _ratio(total["top1_correct"], total["gold_id_indexed"])}
    return out


#: Ontology → the entity type whose index is used to link a gold mention of it.
ONTOLOGY_ROWS_TYPE: dict[str, str] = {o: t for t, o in reversed(TYPE_ONTOLOGY.items())}


def predicted_mentions(records: Sequence[Mapping], root: str | os.PathLike) -> list[dict]:
    """A system's predicted mentions (``predictions_<split>.jsonl`` records) as character spans: ``doc_id``,
    ``start``, ``end``, ``type``, ``text``, through the CRAFT tokens of each sentence."""
    by_doc: dict[str, list[Mapping]] = defaultdict(list)
    for r in records:
        by_doc[r["doc_id"]].append(r)
    out = []
    for doc_id, recs in by_doc.items():
        doc = corpus.read_document(root, doc_id, modules=(), annotation_sets=(), typography=False)
        sentences = {s.sentence_id: s for s in doc.sentences}
        for r in recs:
            sent = sentences.get(int(r["sentence_id"]))
            if sent is None or [t.form for t in sent.tokens] != list(r["tokens"]):
                raise CraftlibError(f"Predictions of {doc_id} sentence {r['sentence_id']} do not match the CRAFT "
                                    "tokens: were they made from another corpus version? Rebuild the run.")
            for s, e, kind in bio_spans(r["pred"]):
                start, end = sent.tokens[s].start, sent.tokens[e - 1].end
                out.append({"doc_id": doc_id, "start": start, "end": end, "type": kind,
                            "text": doc.text[start:end]})
    return out


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p, r = _ratio(tp, n_pred), _ratio(tp, n_gold)
    return {"precision": p, "recall": r, "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "true_positives": tp, "predicted": n_pred, "gold": n_gold}


def concept_scores(linker: Linker, predicted: Sequence[dict], gold: Sequence[dict]) -> dict:
    """End-to-end concept recognition per ontology: ``concept`` (span and id right), ``mention`` (span and
    ontology right, id ignored), and how many predicted mentions got no id."""
    pred_c, pred_m, no_id = defaultdict(set), defaultdict(set), Counter()
    for p in predicted:
        onto = TYPE_ONTOLOGY[p["type"]]
        pred_m[onto].add((p["doc_id"], p["start"], p["end"]))
        top = linker.link(p["text"], p["type"]).top
        if top is None:
            no_id[onto] += 1
        else:
            pred_c[onto].add((p["doc_id"], p["start"], p["end"], top))
    gold_c, gold_m = defaultdict(set), defaultdict(set)
    for g in gold:
        gold_c[g["ontology"]].add((g["doc_id"], g["start"], g["end"], g["id"]))
        gold_m[g["ontology"]].add((g["doc_id"], g["start"], g["end"]))
    out = {}
    for onto, row in ONTOLOGY_ROWS.items():
        out[row] = {"ontology": onto,
                    "concept": _prf(len(pred_c[onto] & gold_c[onto]), len(pred_c[onto]), len(gold_c[onto])),
                    "mention": _prf(len(pred_m[onto] & gold_m[onto]), len(pred_m[onto]), len(gold_m[onto])),
                    "predicted_without_id": no_id[onto]}
    tot = {k: sum(len(v[o] & w[o]) for o in ONTOLOGY_ROWS) for k, v, w in
           (("concept", pred_c, gold_c), ("mention", pred_m, gold_m))}
    out["all"] = {"concept": _prf(tot["concept"], sum(map(len, pred_c.values())), sum(map(len, gold_c.values()))),
                  "mention": _prf(tot["mention"], sum(map(len, pred_m.values())), sum(map(len, gold_m.values()))),
                  "predicted_without_id": sum(no_id.values())}
    return out


def evaluate_concepts(run_dirs: Sequence[str | os.PathLike], split: str = "test", data: config.DataSpec | None = None,
                      linker: Linker | None = None) -> dict:
    """Linking accuracy on the gold spans of the documents the runs predicted, and each run's end-to-end concept
    recognition scores (see the module docstring). ``data``: where CRAFT and the ontology files are
    (:func:`craftlib.config.data_spec`; ``None``: the settings)."""
    data = data or config.data_spec()
    root = corpus.fetch_craft(data.source, data_dir=data.data_dir, progress=False)
    linker = linker or stages.load("linking", data, say=lambda line: None)
    systems, doc_ids = {}, None
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        records = runs.Run(run_dir).predictions(split)
        ids = sorted({r["doc_id"] for r in records})
        if doc_ids is not None and ids != doc_ids:
            raise CraftlibError(f"{run_dir} predicted other documents than the first run: compare runs of one "
                                "profile.")
        doc_ids = ids
        systems[run_dir.name] = {"run": run_dir.name, "documents": len(ids),
                                 "scores": None, "_pred": predicted_mentions(records, root)}
    if doc_ids is None:
        raise CraftlibError("Give at least one run (--run models/<run>).")
    gold = gold_concepts(root, doc_ids)
    for s in systems.values():
        s["scores"] = concept_scores(linker, s.pop("_pred"), gold)
    return {"split": split, "documents": len(doc_ids), "gold_mentions": len(gold),
            "index_terms": {o: len(v) for o, v in linker.index.items()},
            "linking_on_gold_spans": linking_accuracy(linker, gold), "systems": systems}


def markdown(report: Mapping) -> str:
    """The report as Markdown tables."""
    lines = [(f"Linking on the gold spans of {report['documents']} CRAFT {report['split']} documents "
             f"({report['gold_mentions']} gold concept mentions):"), "",
             ("| ontology | mentions | accuracy | gold among candidates | ambiguous | no candidate | "
             "gold id not in index | accuracy when indexed |"), "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row, v in report["linking_on_gold_spans"].items():
        lines.append(f"| {row} | {v['mentions']} | {v['accuracy']:.3f} | {v['gold_in_candidates']:.3f} | "
                     f"{v['ambiguous']:.3f} | {v['no_candidate']:.3f} | {v['gold_id_not_in_index']:.3f} | "
                     f"{v['accuracy_when_gold_id_indexed']:.3f} |")
    for name, s in report["systems"].items():
        lines += ["", (f"End-to-end concept recognition, {name} (span and id right; in brackets: span and ontology "
                      "right, any id):"), "",
                  "| ontology | P | R | F1 | (mention P | R | F1) | predicted without id |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for row, v in s["scores"].items():
            c, m = v["concept"], v["mention"]
            lines.append(f"| {row} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | "
                         f"({m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f}) | {v['predicted_without_id']} |")
    return "\n".join(lines) + "\n"


def _cmd_concepts(args: argparse.Namespace) -> int:
    data = config.data_spec(data=args.data_dir, source=args.source)
    report = evaluate_concepts(args.run, split=args.split, data=data)
    report = {"command": "python -m craftlib concepts " + " ".join(
                  f"--run {Path(r).as_posix()}" for r in args.run) + (f" --out {args.out}" if args.out else ""),
              "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "hardware": f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)", **report}
    text = markdown(report)
    print(text)
    if args.out:
        out = Path(args.out)
        cache.atomic_write_json(out, report)
        cache.atomic_write_text(out.with_suffix(".md"), f"Command: `{report['command']}` ({report['created']})\n\n"
                                + text)
        print(f"→ {out} and {out.with_suffix('.md')}")
    return 0


def add_commands(subparsers) -> None:
    """``concepts``."""
    p = subparsers.add_parser(
        "concepts", help="score entity linking against CRAFT's gold concept ids (accuracy, end-to-end P/R/F1)",
        description="Link the gold mentions and each run's predicted mentions to ontology ids by exact normalised "
                    "name matching, and score them against the gold concept ids of the CRAFT annotations.")
    p.add_argument("--run", action="append", required=True, help="a models/<run> folder with predictions (repeat)")
    p.add_argument("--split", choices=("test", "validation"), default="test")
    p.add_argument("--out", default=None, help="write the report as JSON (and .md beside it)")
    p.add_argument("--source", default=None)
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=_cmd_concepts)


__all__ = ["ONTOLOGY_ROWS", "concept_scores", "evaluate_concepts", "gold_concepts", "linking_accuracy", "markdown",
           "predicted_mentions"]
