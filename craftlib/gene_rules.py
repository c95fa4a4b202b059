"""How the Gene rules of :mod:`craftlib.tags` split CRAFT's PR mentions into Gene and Protein, measured.

CRAFT v5 has no Gene annotation; :class:`craftlib.tags.TagPolicies`' ``gene_rule`` is this project's substitute
(the ``tags`` module docstring says why and how the default was chosen). :func:`gene_rule_report` measures every
rule on the PR mentions of some documents (Gene share per split, documents without any Gene, contradictions with
explicit cue words, agreement between rules as Cohen's kappa); ``python -m craftlib gene-rules --profile quick
--out results/gene_rules.json`` wrote the committed measurement on all 97 documents, and notebook 02 shows it on the
profile's documents. Nothing in the pipeline imports this module: it only reports.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from collections import Counter
from collections.abc import Sequence

from craftlib import cache, config
from craftlib.corpus import Document, fetch_craft, read_corpus
from craftlib.options import add_dataset_options
from craftlib.tags import (
    GENE_CONTEXT_WORDS,
    GENE_RULE_CHOICES,
    PROTEIN_CONTEXT_WORDS,
    TagPolicies,
    has_gene_context,
    has_protein_context,
    is_italic,
    mention_type,
)


def cohen_kappa(a: Sequence, b: Sequence) -> float | None:
    """Cohen's kappa of two labelings of the same items; ``None`` when chance agreement is 1 (undefined)."""
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} and {len(b)} labels; label the same items.")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def gene_rule_report(
    docs: Sequence[Document],
    annotation_set: str = "proper",
    rules: Sequence[str] = GENE_RULE_CHOICES,
) -> dict:
    """Measure Gene rules on the PR mentions of ``docs`` (every PR mention, before the other policies).

    Returns a JSON-ready dict:

    * ``cues``: per split, PR mentions: italic ones, with a gene-context word, with a protein-context word,
      with both, with neither italics nor a gene-context word (Protein under every rule);
    * ``rules[rule]``: per split the Gene/Protein counts, Gene share, documents with PR mentions and how
      many of them have no Gene at all, min/median/max per-document Gene share; ``contradictions``: mentions
      with a gene-context word labelled Protein and mentions with a protein-context word labelled Gene;
    * ``agreement``: for each pair of rules, the share of PR mentions given the same type and Cohen's kappa
      (``None`` when undefined, e.g. against ``none``, which labels everything Protein);
    * ``documents``: one row per document: ``doc_id``, ``split``, ``pr_mentions``, ``italic``,
      ``gene_context``, ``protein_context`` and ``gene_share`` per rule (``None`` without PR mentions).

    Splits are named as in the dataset (``train``, ``validation``, ``test``).
    """
    for rule in rules:
        TagPolicies(gene_rule=rule)  # refuses an unknown rule with the list of choices
    policies = {r: TagPolicies(gene_rule=r) for r in rules}
    labels: dict[str, list[str]] = {r: [] for r in rules}
    gene_cue, protein_cue, italic_of, split_of = [], [], [], []
    documents = []
    for doc in docs:
        split = config.HF_SPLITS.get(doc.split, doc.split or "unknown")
        italics = sorted((s.start, s.end) for s in doc.typography if s.label == "italic")
        mentions = doc.mentions.get(("PR", annotation_set), [])
        row = {"doc_id": doc.doc_id, "split": split, "pr_mentions": len(mentions), "italic": 0,
               "gene_context": 0, "protein_context": 0, "gene_share": {}}
        genes = Counter()
        for m in mentions:
            g, p = has_gene_context(m), has_protein_context(m)
            it = is_italic(m, italics)
            row["italic"] += it
            italic_of.append(it)
            row["gene_context"] += g
            row["protein_context"] += p
            gene_cue.append(g)
            protein_cue.append(p)
            split_of.append(split)
            for r in rules:
                kind = mention_type(m, italics, policies[r])
                labels[r].append(kind)
                genes[r] += kind == "Gene"
        row["gene_share"] = {r: round(genes[r] / len(mentions), 4) if mentions else None for r in rules}
        documents.append(row)

    splits = list(dict.fromkeys([*(config.HF_SPLITS[s] for s in config.SPLITS), *split_of]))
    splits = [s for s in splits if s in split_of or any(d["split"] == s for d in documents)]

    def in_split(split):
        return [i for i, s in enumerate(split_of) if s == split]

    cues = {}
    for split in splits:
        idx = in_split(split)
        docs_s = [d for d in documents if d["split"] == split]
        cues[split] = {
            "documents": len(docs_s),
            "pr_mentions": len(idx),
            "italic": sum(d["italic"] for d in docs_s),
            "gene_context": sum(gene_cue[i] for i in idx),
            "protein_context": sum(protein_cue[i] for i in idx),
            "both_contexts": sum(gene_cue[i] and protein_cue[i] for i in idx),
            "neither_italic_nor_gene_context": sum(not italic_of[i] and not gene_cue[i] for i in idx),
            "documents_with_pr_but_no_italic_pr": sum(d["pr_mentions"] > 0 and d["italic"] == 0 for d in docs_s),
        }
    out_rules = {}
    for r in rules:
        per_split = {}
        for split in splits:
            idx = in_split(split)
            gene = sum(labels[r][i] == "Gene" for i in idx)
            shares = [d["gene_share"][r] for d in documents if d["split"] == split and d["pr_mentions"]]
            per_split[split] = {
                "pr_mentions": len(idx),
                "Gene": gene,
                "Protein": len(idx) - gene,
                "gene_share": round(gene / len(idx), 4) if idx else 0.0,
                "documents_with_pr": len(shares),
                "documents_without_gene": sum(x == 0 for x in shares),
                "document_share_min": min(shares) if shares else None,
                "document_share_median": round(statistics.median(shares), 4) if shares else None,
                "document_share_max": max(shares) if shares else None,
            }
        gene_as_protein = sum(g and not p and lab == "Protein" for g, p, lab in zip(gene_cue, protein_cue, labels[r]))
        protein_as_gene = sum(p and not g and lab == "Gene" for g, p, lab in zip(gene_cue, protein_cue, labels[r]))
        out_rules[r] = {
            "splits": per_split,
            "contradictions": {
                "gene_context_as_Protein": gene_as_protein,
                "protein_context_as_Gene": protein_as_gene,
                "total": gene_as_protein + protein_as_gene,
            },
        }
    agreement = []
    for a, b in itertools.combinations(rules, 2):
        n = len(labels[a])
        same = sum(x == y for x, y in zip(labels[a], labels[b]))
        kappa = cohen_kappa(labels[a], labels[b])
        agreement.append({"a": a, "b": b, "agreement": round(same / n, 4) if n else None,
                          "kappa": None if kappa is None else round(kappa, 4)})
    return {
        "annotation_set": annotation_set,
        "documents_read": len(documents),
        "gene_context_words": sorted(GENE_CONTEXT_WORDS),
        "protein_context_words": sorted(PROTEIN_CONTEXT_WORDS),
        "cues": cues,
        "rules": out_rules,
        "agreement": agreement,
        "documents": documents,
    }


def gene_rule_table(report: dict):
    """One row per rule of a :func:`gene_rule_report` (a ``pandas.DataFrame`` with two-level columns): Gene share
    and documents without any Gene (of those with PR mentions) per split, and the contradictions."""
    import pandas as pd

    rows = {}
    for rule, r in report["rules"].items():
        row = {}
        for split, s in r["splits"].items():
            row[("Gene share", split)] = s["gene_share"]
        for split, s in r["splits"].items():
            row[("docs without Gene", split)] = f"{s['documents_without_gene']}/{s['documents_with_pr']}"
        c = r["contradictions"]
        row[("contradictions", "gene word → Protein")] = c["gene_context_as_Protein"]
        row[("contradictions", "protein word → Gene")] = c["protein_context_as_Gene"]
        row[("contradictions", "total")] = c["total"]
        rows[rule] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table.rename_axis("gene_rule")


def read_gene_rule_report(spec: config.DataSpec, rules: Sequence[str] = GENE_RULE_CHOICES) -> dict:
    """:func:`gene_rule_report` of the documents of ``spec``'s profile (``quick``/``full``: all 97), read from
    CRAFT (``spec.source``)."""
    root = fetch_craft(spec.source, sha256=spec.sha256, data_dir=spec.data_dir, progress=spec.progress)
    docs = read_corpus(root, max_docs=spec.profile.max_docs, modules=("PR",), annotation_sets=(spec.annotation_set,),
                       sentences=False, progress=spec.progress)
    report = gene_rule_report(docs, spec.annotation_set, rules)
    report["profile"] = spec.profile.name
    report["craft_version"] = config.CRAFT_VERSION
    report["default_rule"] = TagPolicies().gene_rule
    return report


# ------------------------------------------------------------------------------------------ CLI


def _cmd_gene_rules(args: argparse.Namespace) -> int:
    import pandas as pd

    spec = config.data_spec(args.profile, args.annotation_set, args.data_dir, source=args.source)
    report = read_gene_rule_report(spec)
    report["command"] = "python -m craftlib gene-rules " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in (("profile", report["profile"]),
                                                  ("annotation_set", args.annotation_set), ("out", args.out)) if v)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(gene_rule_table(report).to_string())
    print("agreement between rules (share of PR mentions, Cohen's kappa):")
    for a in report["agreement"]:
        print(f"  {a['a']:>15} vs {a['b']:<15} {a['agreement']:.4f}  kappa {a['kappa']}")
    if args.out:
        out = cache.atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


def add_commands(subparsers) -> None:
    """``gene-rules``: measure every Gene rule on the documents of a profile."""
    g = subparsers.add_parser(
        "gene-rules",
        help="measure the Gene/Protein rules on the PR mentions (Gene share, contradictions, agreement)",
        description="Measure every --gene-rule choice on the documents of a profile (quick: all 97).",
    )
    add_dataset_options(g)
    g.add_argument("--out", default=None, help="write the report as JSON (e.g. results/gene_rules.json)")
    g.set_defaults(func=_cmd_gene_rules)


__all__ = ["add_commands", "cohen_kappa", "gene_rule_report", "gene_rule_table", "read_gene_rule_report"]
