"""Time the full CRAFT dataset build (``python -m craftlib data``) and record the result.

Usage (from the repository root, with ``CRAFT_SOURCE`` pointing at a local archive or folder)::

    python benchmarks/bench_data.py [--source PATH] [--profile quick] [--annotation-set proper] [--repeat 1]

Each repetition builds into a fresh temporary data directory, so the time includes extracting the
archive (when the source is an archive), reading and aligning all documents, tagging, and writing the
DatasetDict, stats.json and the CoNLL export. Writes ``benchmarks/results/bench_data.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_once(source: str | None, profile: str, annotation_set: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        cmd = [sys.executable, "-m", "craftlib", "data", "--profile", profile, "--annotation-set", annotation_set,
               "--data-dir", tmp]
        if source:
            cmd += ["--source", source]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"build failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        stats_path = next(Path(tmp, "processed").glob("*/stats.json"))
        stats = json.loads(stats_path.read_text())
    return elapsed, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=None, help="CRAFT archive or folder (default: $CRAFT_SOURCE)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--annotation-set", default="proper", choices=("proper", "extensions"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "bench_data.json"))
    args = parser.parse_args(argv)

    from craftlib import runtime

    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: record how busy it was
    times, stats = [], {}
    for i in range(args.repeat):
        elapsed, stats = run_once(args.source, args.profile, args.annotation_set)
        times.append(round(elapsed, 2))
        print(f"run {i + 1}/{args.repeat}: {elapsed:.1f} s")
    total = stats["total"]
    result = {
        "benchmark": "dataset build (python -m craftlib data), fresh data directory each run",
        "command": "python benchmarks/bench_data.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "profile": args.profile,
        "annotation_set": args.annotation_set,
        "seconds": times,
        "median_seconds": round(statistics.median(times), 2),
        "build_seconds_inside": stats["build_seconds"],
        "documents": total["documents"],
        "sentences": total["sentences"],
        "tokens": total["tokens"],
        "split_documents": {k: v["documents"] for k, v in stats["splits"].items()},
        "load_average_1_5_15min_before": load_before,
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "versions": runtime.versions(("datasets", "conllu")),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median {result['median_seconds']:.1f} s for {result['documents']} documents -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
