"""The benchmark's outputs: the Markdown table, a flat table for pandas, the trade-off plots."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence

from craftlib import config
from craftlib.errors import CraftlibError

#: Short marks for what a peak-memory number covers (the table shows them next to the number).
SCOPE_MARKS = {"training + inference": "", "inference only": " (infer)",
               "training run (python -m craftlib train)": " (train)"}


def hardware_line(hw: Mapping) -> str:
    return f"{hw['cpu']}, {hw['cores']} cores, {hw['memory_gib']} GiB RAM, accelerator: {hw['accelerator']}"


def load_results(profile: str, results_dir: str | os.PathLike | None = None) -> dict:
    """``results/peers-<profile>.json`` (raises with the command to run when missing)."""
    path = config.results_dir(results_dir) / f"peers-{profile}.json"
    if not path.is_file():
        raise CraftlibError(f"No {path}: run `python -m craftlib benchmark --profile {profile}` first.")
    return json.loads(path.read_text())


def summary_rows(report: Mapping) -> list[dict]:
    """One flat dict per system (test scores and costs), e.g. for ``pandas.DataFrame``."""
    out = []
    for row in report["systems"]:
        test = row.get("test") if isinstance(row.get("test"), dict) else {}
        dev = row.get("dev") if isinstance(row.get("dev"), dict) else {}
        out.append({
            "system": row["system"], "run": row["run"], "status": row["status"],
            "precision": test.get("precision"), "recall": test.get("recall"), "f1": test.get("f1"),
            # None for reports written before score() returned them: shown empty, never invented
            "f1_gene_protein_merged": (test.get("merged") or {}).get("f1"),
            "strict_f1": (test.get("strict") or {}).get("f1"),
            "token_accuracy": test.get("accuracy"), "all_o_accuracy": test.get("all_o_accuracy"),
            "macro_f1": test.get("macro_f1"), "dev_f1": dev.get("f1"),
            "train_seconds": row.get("train_seconds"),
            "inference_sentences_per_second": row.get("inference_sentences_per_second"),
            "peak_memory_mb": row.get("peak_memory_mb"), "peak_memory_scope": row.get("peak_memory_scope"),
            "model_size_mb": row.get("model_size_mb"),
        })
    return out


def per_type_rows(report: Mapping, metric: str = "f1") -> list[dict]:
    """Test ``metric`` per entity type, one dict per system that has test scores."""
    return [
        {"system": row["system"], **{t: row["test"]["per_type"][t][metric] for t in config.ENTITY_TYPES}}
        for row in report["systems"] if isinstance(row.get("test"), dict) and "per_type" in row["test"]
    ]


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def markdown_report(report: Mapping) -> str:
    """The Markdown of ``results/peers-<profile>.md``."""
    main = [
        [r["system"], r["status"], _fmt(r["precision"]), _fmt(r["recall"]), _fmt(r["f1"]), _fmt(r["dev_f1"]),
         _fmt(r["train_seconds"], 1), _fmt(r["inference_sentences_per_second"], 1),
         _fmt(r["peak_memory_mb"], 0) + (SCOPE_MARKS.get(r["peak_memory_scope"], "") if r["peak_memory_mb"] else ""),
         _fmt(r["model_size_mb"], 2)]
        for r in summary_rows(report)
    ]
    prf = [per_type_rows(report, m) for m in ("precision", "recall", "f1")]
    per_type = [[p["system"]] + [" / ".join(_fmt(x[t]) for x in (p, r, f)) for t in config.ENTITY_TYPES]
                for p, r, f in zip(*prf)]
    support = next((row["test"]["per_type"] for row in report["systems"]
                    if isinstance(row.get("test"), dict) and "per_type" in row["test"]), None)
    notes = [f"- **{r['system']}** ({r['status']}): {r['note']}" for r in report["systems"] if r.get("note")]
    notes += [f"- **{r['system']}**: {r['inference_note']}" for r in report["systems"] if r.get("inference_note")]
    s = report["sentences"]
    parts = [
        f"# Peer comparison, profile `{report['profile']}`",
        "",
        f"Command: `{report['command']}` (seed {report['seed']}, {report['created']}).  ",
        f"Hardware: {hardware_line(report['hardware'])}; peers train and predict on CPU.  ",
        (f"Data: `{report['dataset']}`, {s['train']} train / {s['validation']} dev / {s['test']} test sentences "
         f"(fingerprint `{report['data_fingerprint'][:12]}`).  "),
        f"Scoring: {report['scoring']}; test split unless marked dev.  ",
        f"Memory: {report['memory_method']}.  ",
        f"Total benchmark time: {report['total_seconds']:.0f} s.",
        "",
        "## Test scores and costs",
        "",
        _md_table(["system", "status", "P", "R", "F1", "dev F1", "train s", "infer sent/s", "peak MiB", "size MiB"],
                  main),
        "",
        ("Train time: measured by this benchmark for crf and spacy; read from each run's metrics.json for the "
        "others" + (" (the transformer runs were trained by this benchmark, `--train-transformers`)"
                    if any(r.get("training_subprocess") for r in report["systems"]) else "")
        + ". Inference: test sentences tagged in a subprocess on this machine. Peak MiB: the process "
        "that trained and evaluated the system; (infer) = only the inference subprocess, (train) = the "
        "training subprocess."),
        "",
        "## Test P / R / F1 per type",
        "",
        _md_table(["system", *config.ENTITY_TYPES], per_type) if per_type else "No system has test scores.",
    ]
    if support:
        parts += ["", "Test support (gold mentions): "
                  + ", ".join(f"{t} {support[t]['support']}" for t in config.ENTITY_TYPES) + "."]
    if notes:
        parts += ["", "## Notes", "", *notes]
    parts += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(parts)


def plot_tradeoffs(report: Mapping, axes=None):
    """Test F1 against training time and against inference speed (log scales), one point per system."""
    import matplotlib.pyplot as plt

    rows = [r for r in summary_rows(report) if r["f1"] is not None]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, key, label in ((axes[0], "train_seconds", "training time (s, log scale)"),
                           (axes[1], "inference_sentences_per_second", "inference speed (sentences/s, log scale)")):
        shown = [r for r in rows if r[key]]
        ax.scatter([r[key] for r in shown], [r["f1"] for r in shown])
        placed: list[tuple[float, float]] = []
        for r in sorted(shown, key=lambda r: -r["f1"]):
            # points close together (log x, linear y) get their labels stacked downwards instead of overprinted
            x, y = math.log10(r[key]), r["f1"]
            near = sum(abs(x - px) < 0.6 and abs(y - py) < 0.05 for px, py in placed)
            placed.append((x, y))
            ax.annotate(r["system"], (r[key], y), textcoords="offset points", xytext=(5, 4 - 11 * near),
                        fontsize=9)
        missing = [r["system"] for r in rows if not r[key]]
        ax.set_xscale("log")
        ax.set_xlabel(label + (f"\nnot measured: {', '.join(missing)}" if missing else ""))
        ax.set_ylabel("test F1 (micro, seqeval)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"profile {report['profile']}: accuracy vs cost")
    return axes
