"""Inference engines of a trained tagger side by side, in one run: torch fp32, torch bf16 (where the CPU computes bf16
natively), ONNX Runtime fp32 and ONNX Runtime int8 (dynamic quantisation).

Usage (from the repository root; ``CRAFT_SOURCE`` at a local CRAFT archive/folder)::

    python benchmarks/bench_engines.py --model models/two-step-minilm-quick [--profile quick] [--sentences N]
        [--rounds 2] [--threads 2] [--out benchmarks/results/engines-quick.json]

Every engine tags the same test sentences of the profile (the first ``--sentences``, default all) through
:func:`craftlib.tagger.compare_engines`: the same windows, tokenizer and batches (16, length-sorted), so only the
engine differs; the ONNX models are exported first when missing (``<model>/onnx/``). Per engine: sentences/s
(best of ``--rounds``, the engines alternating inside each round), test F1 (seqeval, as every system is scored),
the share of words tagged as torch fp32 tags them, and the size of the file it loads.

The goal of issue 22: int8 >= 2x torch fp32 on a 2-core CPU without native bf16, test F1 within 0.005. The JSON
records the machine (CPU model, cores, AVX2/AVX-512/VNNI/BF16/AMX flags), its load average before and after, the
versions and the command, and whether the goal holds here. Speed goals live here, never in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The goal of issue 22 (int8 against torch fp32).
GOAL_SPEEDUP, GOAL_F1 = 2.0, 0.005


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a models/<run> folder written by `python -m craftlib train`")
    p.add_argument("--profile", default="quick", help="whose test split (default quick: all 30 test documents)")
    p.add_argument("--sentences", type=int, default=None, help="the first N test sentences (default: all)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=None,
                   help="threads for torch and ONNX Runtime (default: their own, all cores this process may use)")
    p.add_argument("--engines", default=None, help="comma-separated subset (default: every engine that runs here)")
    p.add_argument("--out", default=None, help="JSON file (default benchmarks/results/engines-<profile>.json)")
    p.add_argument("--note", default="", help="a sentence on the conditions (e.g. 'shared machine')")
    args = p.parse_args(argv)

    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    from craftlib import config, engines, runs, runtime, stages, tagger
    from craftlib.bio import dataset_tags

    if args.threads:
        torch.set_num_threads(args.threads)
    test = stages.load("dataset", config.data_spec(args.profile))["test"]
    if args.sentences:
        test = test.select(range(min(args.sentences, len(test))))
    load_before = os.getloadavg()
    chosen = args.engines.split(",") if args.engines else None
    rows = tagger.compare_engines(args.model, test["tokens"], dataset_tags(test), engines=chosen,
                                  batch_size=args.batch_size, rounds=args.rounds)
    by = {r["engine"]: r for r in rows}
    goal = None
    if "torch" in by and "onnx-int8" in by:
        goal = {"int8_speedup_over_torch_fp32": by["onnx-int8"]["speedup"],
                "int8_f1_difference": by["onnx-int8"]["f1_difference"],
                "speedup_goal": GOAL_SPEEDUP, "f1_goal": GOAL_F1,
                "met": by["onnx-int8"]["speedup"] >= GOAL_SPEEDUP and abs(by["onnx-int8"]["f1_difference"]) <= GOAL_F1}
    hw = engines.hardware()
    run_metrics = runs.Run(args.model).metrics_or_none()
    run_f1 = run_metrics["test"]["f1"] if run_metrics else None
    report = {
        "command": "python benchmarks/bench_engines.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": Path(args.model).name, "profile": args.profile, "sentences": len(test),
        "batch_size": args.batch_size, "rounds": args.rounds, "threads": args.threads or "default",
        "run_test_f1": run_f1, "engines": rows, "goal": goal,
        "hardware": hw, "hardware_line": engines.describe(hw), "note": args.note,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "versions": runtime.versions() | _onnx_versions(),
    }
    out = Path(args.out) if args.out else HERE / "results" / f"engines-{args.profile}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(test)} test sentences, {engines.describe(hw)}; load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"{'engine':<11} {'sent/s':>8} {'speedup':>8} {'F1':>7} {'dF1':>7} {'same':>7} {'MB':>7}")
    for r in rows:
        print(f"{r['engine']:<11} {r['sentences_per_s']:>8.1f} {r['speedup']:>8.2f} {r['f1']:>7.4f} "
              f"{r['f1_difference']:>+7.4f} {r['same_tags']:>7.4f} {r['size_mb']:>7.1f}")
    if goal:
        print(f"goal int8 >= {GOAL_SPEEDUP}x torch fp32 and |dF1| <= {GOAL_F1}: {'met' if goal['met'] else 'NOT met'} here")
    print(f"-> {out}")
    return 0


def _onnx_versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("onnx", "onnxruntime"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


if __name__ == "__main__":
    sys.exit(main())
