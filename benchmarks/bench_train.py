"""Training throughput and peak memory of a profile, and inference throughput on the test split.

Usage (from the repository root; ``CRAFT_SOURCE`` at a local CRAFT archive/folder, ``CRAFTLIB_ONTOLOGY_DIR``
at the extra OBO files)::

    python benchmarks/bench_train.py [--profile quick] [--base-model minilm] [--steps 60] [--data-dir DIR]

Training: ``--steps`` optimizer steps of the ``single`` recipe's step (original train sentences of the
profile, its batch size and ``max_length``) through :func:`craftlib.train.fine_tune`, without the per-epoch
evaluation; reports sub-tokens/s (non-padding tokens seen by the model / training seconds, as
``metrics.json`` does) and the process's peak resident memory (and peak CUDA memory on a GPU).
Inference: :func:`craftlib.train.predict_dataset` on the profile's test sentences (every token, windows
included); reports sentences/s and sub-tokens/s. Writes ``benchmarks/results/bench_train-<profile>.json``
with the command, the machine and its load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--base-model", default="minilm")
    parser.add_argument("--annotation-set", default="proper", choices=("proper", "extensions"))
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps to time")
    parser.add_argument("--max-test-sentences", type=int, default=None, help="default: the profile's")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import torch

    from craftlib import config, runtime, train
    from craftlib.models import load_model, load_tokenizer

    info = runtime.setup(args.seed)
    prof = config.get_profile(args.profile)
    data = train.load_recipe_data("original", prof, args.seed, args.annotation_set, args.data_dir)
    tokenizer, model = load_tokenizer(args.base_model), load_model(args.base_model)
    bench_prof = replace(prof, max_steps=args.steps)
    data_no_dev = {**data, "validation": data["validation"].select(range(min(8, len(data["validation"]))))}
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        result = train.fine_tune(model, tokenizer, data_no_dev, bench_prof, args.seed, Path(tmp), progress=False)
    train_peak = _peak_rss_mib()

    test = data["test"]
    if args.max_test_sentences is not None:
        test = test.select(range(min(args.max_test_sentences, len(test))))
    feats = train.encode_windows(tokenizer, test["tokens"], None, prof.max_length, prof.window_stride)
    start = time.perf_counter()
    _, missing = train.predict_dataset(result.model, tokenizer, test, prof.max_length, prof.window_stride,
                                       prof.eval_batch_size * 2)
    infer_seconds = time.perf_counter() - start

    report = {
        "command": shlex.join(["python", "benchmarks/bench_train.py", *(argv if argv is not None else sys.argv[1:])]),
        "profile": prof.name, "base_model": args.base_model, "seed": args.seed,
        "train": {
            "optimizer_steps": result.global_step, "batch_size": prof.batch_size, "max_length": prof.max_length,
            "seconds": result.train_seconds, "subtokens_seen": result.tokens_seen,
            "subtokens_per_second": result.tokens_seen / result.train_seconds,
            "seconds_per_step": result.train_seconds / max(1, result.global_step),
            "peak_rss_mib": train_peak,
            "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "note": "includes one evaluation of 8 dev sentences at the end of the epoch-less run",
        },
        "inference": {
            "sentences": len(test), "windows": len(feats["input_ids"]),
            "subtokens": sum(len(x) for x in feats["input_ids"]), "seconds": infer_seconds,
            "sentences_per_second": len(test) / infer_seconds,
            "subtokens_per_second": sum(len(x) for x in feats["input_ids"]) / infer_seconds,
            "batch_size": prof.eval_batch_size * 2, "words_without_subtoken": missing,
        },
        "peak_rss_mib": _peak_rss_mib(),
        "device": info.to_dict()["device"], "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}",
        "load_average_after": os.getloadavg(),
        "versions": info.versions,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = Path(args.out or HERE / "results" / f"bench_train-{prof.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)
    t, i = report["train"], report["inference"]
    print(f"train: {t['subtokens_per_second']:.0f} sub-tokens/s ({t['seconds_per_step']:.2f} s/step), "
          f"peak RSS {report['peak_rss_mib']:.0f} MiB | inference: {i['sentences_per_second']:.1f} sentences/s "
          f"on {i['sentences']} test sentences -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
