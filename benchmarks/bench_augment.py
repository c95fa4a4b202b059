"""Time building the entity lists and augmenting the full train split, and record the result.

Usage (from the repository root; ``CRAFT_SOURCE`` at a local CRAFT archive/folder, ``CRAFTLIB_ONTOLOGY_DIR``
at the extra OBO files, e.g. ``../shared/ontologies``)::

    python benchmarks/bench_augment.py [--profile quick] [--data-dir DIR] [--ontology-dir DIR] [--repeat 1]

The tagged dataset is built first if missing (not timed). Then, per repetition:
``entity_lists`` = ``stages.load("entity_lists", spec, force=True)`` (read every OBO source, normalise, coverage,
write); ``augment`` = ``augment.augment_dataset`` on the train split (ratio 0.2, seed 42, in memory);
``augment+save`` = ``stages.load("augmented", spec, force=True)`` (augment and save_to_disk).
Targets from the issue: lists < 60 s, augmentation < 30 s. Writes ``benchmarks/results/bench_augment.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--annotation-set", default="proper", choices=("proper", "extensions"))
    parser.add_argument("--data-dir", default=None, help="default: a temporary directory")
    parser.add_argument("--ontology-dir", default=None, help="default: $CRAFTLIB_ONTOLOGY_DIR")
    parser.add_argument("--source", default=None, help="CRAFT archive or folder (default: $CRAFT_SOURCE)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "bench_augment.json"))
    args = parser.parse_args(argv)

    from craftlib import augment, config, runtime, stages

    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="bench-augment-")
    data_dir = args.data_dir or tmp.name
    spec = config.data_spec(args.profile, args.annotation_set, data_dir, source=args.source, progress=False,
                            ontology_dir=args.ontology_dir, seed=42, ratio=0.2)
    dsd = stages.load("dataset", spec)
    times: dict[str, list[float]] = {"entity_lists": [], "augment": [], "augment+save": []}
    for i in range(args.repeat):
        t0 = time.perf_counter()
        lists = stages.load("entity_lists", spec, force=True)
        times["entity_lists"].append(round(time.perf_counter() - t0, 2))
        t0 = time.perf_counter()
        _, stats = augment.augment_dataset(dsd, lists, ratio=0.2, seed=42, return_stats=True)
        times["augment"].append(round(time.perf_counter() - t0, 2))
        t0 = time.perf_counter()
        stages.load("augmented", spec, force=True)
        times["augment+save"].append(round(time.perf_counter() - t0, 2))
        print(f"run {i + 1}/{args.repeat}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    lstats = stages.stats("entity_lists", spec)
    result = {
        "command": "python benchmarks/bench_augment.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "profile": args.profile, "dataset": config.dataset_name(args.profile, args.annotation_set),
        "seconds": times, "targets_seconds": {"entity_lists": 60, "augment": 30},
        "terms": {t: v["terms"] for t, v in lstats["types"].items()},
        "sources": {t: [Path(s["path"]).name if s["path"] else s["kind"] for s in v["sources"]]
                    for t, v in lstats["types"].items()},
        "fallback": lstats["fallback"],
        "train_sentences": stats["original_sentences"], "augmented_sentences": stats["augmented_sentences"],
        "mentions": stats["mentions"], "replaced": stats["replaced"], "realised_ratio": stats["realised_ratio"],
        "hardware": f"{platform.processor() or platform.machine()}", "versions": runtime.versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name, target in result["targets_seconds"].items():
        best = min(times[name])
        print(f"{name}: best {best:.2f} s (target < {target} s) {'OK' if best < target else 'TOO SLOW'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
