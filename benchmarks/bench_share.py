"""Two trainings at once on the same cores, with and without craftlib's thread sizing (craftlib.threads), in one run.

Usage (from the repository root; ``CRAFT_SOURCE`` at a local CRAFT archive/folder)::

    python benchmarks/bench_share.py [--max-steps 150] [--recipe single]

Four conditions, one after the other, each a ``python -m craftlib train --profile smoke --max-steps N`` process
(the smoke dataset, more optimizer steps so that a training lasts tens of seconds; its own models folder):

* ``alone, sized``: one training, ``CRAFTLIB_THREADS=auto`` (the default);
* ``alone, unsized``: one training, ``CRAFTLIB_THREADS=<cores>`` (what torch does by itself: one thread per core);
* ``two at once, unsized``: two such trainings started together, each with one thread per core;
* ``two at once, sized``: two trainings started together with the default sizing (each re-measures the load
  every ``craftlib.threads.RECHECK_SECONDS`` and keeps to the cores the other leaves).

Per condition: each training's ``train_seconds`` (``trainer.train()``, from its ``metrics.json``) and process wall
time; the ratios "two at once / alone" of the same setting are the result (about 2 means the two share the
cores fairly; much more means they fight). The machine may be shared with other work: the load average and the
cores other processes kept busy before the run are recorded, so read the ratios, not the seconds.

Writes ``benchmarks/results/bench_share.json`` (command, date, hardware, versions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _train(models_dir: Path, data_dir: Path, threads: str, recipe: str, max_steps: int) -> subprocess.Popen:
    env = dict(os.environ, CRAFTLIB_THREADS=threads, CRAFTLIB_DATA_DIR=str(data_dir),
               CRAFTLIB_MODELS_DIR=str(models_dir), TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "craftlib", "train", "--recipe", recipe, "--profile", "smoke", "--max-steps",
           str(max_steps), "--no-progress"]
    log = (models_dir.parent / f"{models_dir.name}.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log.name  # type: ignore[attr-defined]
    proc.started = time.perf_counter()  # type: ignore[attr-defined]
    return proc


def _finish(proc: subprocess.Popen, models_dir: Path) -> dict:
    rc = proc.wait()
    wall = time.perf_counter() - proc.started  # type: ignore[attr-defined]
    log = Path(proc.log_path).read_text()  # type: ignore[attr-defined]
    if rc != 0:
        raise SystemExit(f"training failed ({rc}):\n{log[-3000:]}")
    from craftlib.runs import Run

    (run,) = (Run(p.parent) for p in models_dir.glob("*/metrics.json"))
    m = run.metrics()
    return {"train_seconds": round(m["train_seconds"], 2), "wall_seconds": round(wall, 2),
            "torch_threads_at_end": m.get("torch_threads"),
            "said_shared": "The CPU is shared" in log}


def condition(name: str, n: int, threads: str, work: Path, recipe: str, max_steps: int) -> dict:
    dirs = [work / f"{name.replace(' ', '_').replace(',', '')}-{i}" for i in range(n)]
    procs = [_train(d, work / "data", threads, recipe, max_steps) for d in dirs]
    runs = [_finish(p, d) for p, d in zip(procs, dirs)]
    mean = sum(r["train_seconds"] for r in runs) / n
    print(f"{name:<22} CRAFTLIB_THREADS={threads:<4} train_seconds {[r['train_seconds'] for r in runs]} "
          f"(mean {mean:.1f})", flush=True)
    return {"processes": n, "CRAFTLIB_THREADS": threads, "runs": runs, "mean_train_seconds": round(mean, 2)}


def ratios(res: dict) -> dict:
    """Mean train_seconds of one condition over another's, for the pairs that were measured."""
    pairs = {"unsized: two at once / alone": ("two at once, unsized", "alone, unsized"),
             "sized: two at once / alone": ("two at once, sized", "alone, sized"),
             "alone: unsized / sized": ("alone, unsized", "alone, sized"),
             "two at once: unsized / sized": ("two at once, unsized", "two at once, sized")}
    return {k: round(res[a]["mean_train_seconds"] / res[b]["mean_train_seconds"], 2)
            for k, (a, b) in pairs.items() if a in res and b in res}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="single", choices=("single", "augmented"))
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--only", action="append", default=None, metavar="CONDITION",
                        help="run only this condition (repeatable), e.g. --only 'alone, sized' --only 'two at once, sized'")
    parser.add_argument("--note", default="", help="what else ran on the machine (written into the result)")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_share.json"))
    args = parser.parse_args(argv)
    known = ("alone, sized", "alone, unsized", "two at once, unsized", "two at once, sized")
    if args.only and set(args.only) - set(known):
        parser.error(f"--only: choose among {', '.join(map(repr, known))}")

    import torch

    from craftlib.runtime import detect_device, versions
    from craftlib.threads import LoadProbe, _cores

    cores = _cores()
    load_before = list(os.getloadavg())
    others_before = LoadProbe().sample(2.0)
    device = detect_device()
    out = {
        "benchmark": "two smoke trainings at once vs one, with and without craftlib.threads sizing",
        "command": "python benchmarks/bench_share.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": args.recipe, "profile": "smoke", "max_steps": args.max_steps, "complete": False,
        "conditions": {}, "ratios": {},
        "hardware": f"{platform.machine()}, {cores} cores; {device.type}: {device.name}, {device.precision}",
        "torch_default_threads": torch.get_num_threads(),
        "load_average_1_5_15min_before": [round(x, 2) for x in load_before],
        "other_processes_busy_cores_before": None if others_before is None else round(others_before, 2),
        "note": args.note,
        "versions": {k: v for k, v in versions().items() if k in ("python", "torch", "transformers", "craftlib")},
    }
    plan = [("alone, sized", 1, "auto"), ("alone, unsized", 1, str(cores)), ("two at once, unsized", 2, str(cores)),
            ("two at once, sized", 2, "auto")]
    with tempfile.TemporaryDirectory(prefix="bench_share-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, CRAFTLIB_DATA_DIR=str(work / "data"))
        subprocess.run([sys.executable, "-m", "craftlib", "data", "--profile", "smoke"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        for name, n, threads in [c for c in plan if args.only is None or c[0] in args.only]:  # written after each condition: a stopped run keeps what it measured
            out["conditions"][name] = condition(name, n, threads, work, args.recipe, args.max_steps)
            out["ratios"] = ratios(out["conditions"])
            Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    out["complete"] = True
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    for k, v in out["ratios"].items():
        print(f"{k}: {v}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
