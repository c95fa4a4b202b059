"""Training and inference speed of craftlib against a plain ``transformers.Trainer`` reference, in one run.

Usage (from the repository root; ``CRAFT_SOURCE`` at a local CRAFT archive/folder)::

    python benchmarks/bench_train.py [--profile quick] [--base-model minilm] [--steps 100] [--rounds 2]

What it times, on the same sentences (the profile's seeded subset of original training sentences), the same
base model, batch size, ``max_length`` and seed:

* **training**: ``--steps`` optimizer steps of

  - the **plain reference**: the few lines everyone writes (tokenize with ``is_split_into_words``, label the
    first sub-token, ``DataCollatorForTokenClassification``, ``Trainer`` with length-grouped batches, nothing
    else), once in fp32 and once with bf16 autocast when the CPU/GPU computes bf16 natively;
  - **craftlib**: :func:`craftlib.train.fine_tune` as the recipes call it (windows, dev scoring off).

  Sub-tokens/s = non-padding sub-tokens the model saw / seconds of ``trainer.train()``. The rounds alternate
  reference and craftlib, and the best round of each counts (the machine may be shared).
* **inference** on the profile's test sentences: the plain reference (length-sorted batches of 32 under
  ``torch.inference_mode`` and the same autocast, sentences truncated at ``max_length``) against
  :func:`craftlib.windows.predict_dataset` (windows, every word predicted). Sentences/s.
* **model-FLOPs utilisation**: a 2-thread matmul peak measured here (fp32 and bf16), and the model's FLOPs per
  sub-token (6 x non-embedding parameters for training, 2 x for inference, plus attention), so
  MFU = sub-tokens/s x FLOPs per sub-token / peak.

Writes ``benchmarks/results/bench_train-<profile>.json`` with the command, the machine and its load average,
and prints the ratios craftlib / reference. Speed goals live here, never in tests.
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


def matmul_peak_gflops(dtype_name: str, n: int = 2048, reps: int = 8) -> float:
    """Best-of-``reps`` GFLOP/s of an ``n x n`` matmul in ``dtype_name`` on the current device/threads."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    best = float("inf")
    for _ in range(reps + 1):
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if dev == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def flops_per_subtoken(model, mean_length: float) -> dict:
    """Forward FLOPs per sub-token: 2 x non-embedding parameters + attention (2 x 2 x layers x hidden x length)."""
    cfg = model.config
    non_embedding = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    attention = 4 * cfg.num_hidden_layers * cfg.hidden_size * mean_length
    forward = 2 * non_embedding + attention
    return {"non_embedding_parameters": non_embedding, "forward": forward, "training": 3 * forward}


# ----------------------------------------------------------------------------------------- reference


def reference_train(model_name: str, sentences, steps: int, batch_size: int, max_length: int, lr: float,
                    seed: int, bf16: bool, out_dir: str) -> dict:
    """The plain recipe: no craftlib code below except loading the bundled model by its short name."""
    import torch
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

    from craftlib.models import load_model, load_tokenizer  # registry name -> local folder, nothing else

    tok = load_tokenizer(model_name)

    def tokenize(batch):
        enc = tok(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        enc["labels"] = []
        for i, tags in enumerate(batch["ner_tags"]):
            w = enc.word_ids(i)
            enc["labels"].append([-100 if x is None or (j and x == w[j - 1]) else tags[x] for j, x in enumerate(w)])
        return enc

    ds = sentences.map(tokenize, batched=True, remove_columns=sentences.column_names)
    torch.manual_seed(seed)
    model = load_model(model_name)
    cpu = not torch.cuda.is_available()
    args = TrainingArguments(
        out_dir, per_device_train_batch_size=batch_size, learning_rate=lr, max_steps=steps, seed=seed,
        train_sampling_strategy="group_by_length", bf16=bf16, use_cpu=cpu, report_to="none",
        save_strategy="no", logging_strategy="no", disable_tqdm=True, include_num_input_tokens_seen="non_padding",
    )
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorForTokenClassification(tok))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "subtokens_seen": int(trainer.state.num_input_tokens_seen),
            "subtokens_per_second": trainer.state.num_input_tokens_seen / seconds,
            "optimizer_steps": int(trainer.state.global_step), "precision": "bf16" if bf16 else "fp32",
            "model": trainer.model}


def reference_infer(model, tok, sentences: list[list[str]], max_length: int, bf16: bool,
                    batch_size: int = 32) -> dict:
    """Plain inference: length-sorted batches under inference_mode (and bf16 autocast), sentences truncated."""
    import contextlib

    import torch

    dev = next(model.parameters()).device
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    cast = torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    model.eval()
    start = time.perf_counter()
    n_tokens = 0
    with torch.inference_mode(), cast:
        for b in range(0, len(order), batch_size):
            batch = [sentences[i] for i in order[b:b + batch_size]]
            enc = tok(batch, is_split_into_words=True, truncation=True, max_length=max_length, padding=True,
                      return_tensors="pt").to(dev)
            n_tokens += int(enc["attention_mask"].sum())
            model(**enc).logits.argmax(-1)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "sentences_per_second": len(sentences) / seconds,
            "subtokens_per_second": n_tokens / seconds, "batch_size": batch_size,
            "precision": "bf16" if bf16 else "fp32"}


# ------------------------------------------------------------------------------------------ craftlib


def craftlib_train(model_name: str, data: dict, prof, seed: int, out_dir: str) -> dict:
    from craftlib import train
    from craftlib.models import load_model, load_tokenizer

    tokenizer, model = load_tokenizer(model_name), load_model(model_name)
    # dev scoring is part of every real epoch; here a benchmark step count ends mid-epoch: one tiny dev set
    no_dev = {**data, "validation": data["validation"].select(range(min(8, len(data["validation"]))))}
    result = train.fine_tune(model, tokenizer, no_dev, prof, Path(out_dir), train.TrainOptions(seed=seed, progress=False))
    return {"seconds": result.train_seconds, "subtokens_seen": result.tokens_seen,
            "subtokens_per_second": result.tokens_seen / result.train_seconds,
            "optimizer_steps": result.global_step, "model": result.model, "tokenizer": tokenizer,
            "note": "includes the end-of-training dev scoring of 8 sentences"}


def _best(rounds: list[dict]) -> dict:
    best = max(rounds, key=lambda r: r["subtokens_per_second"])
    return {k: v for k, v in best.items() if k not in ("model", "tokenizer")} | {
        "rounds_subtokens_per_second": [round(r["subtokens_per_second"], 1) for r in rounds]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--base-model", default="minilm")
    parser.add_argument("--annotation-set", default="proper", choices=("proper", "extensions"))
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps to time per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best counts)")
    parser.add_argument("--max-test-sentences", type=int, default=None, help="default: all test sentences")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import torch

    from craftlib import config, runtime, train, windows

    info = runtime.setup(args.seed)
    device = info.device
    # the plain reference reads plain words: craftlib trains the reference recipe too (no case markers; the decoding
    # is not timed here), so both see the same sub-tokens
    prof = replace(config.get_profile(args.profile), max_steps=args.steps, **config.REFERENCE_SETTINGS)
    data = train.load_recipe_data("original", config.data_spec(prof, args.annotation_set, args.data_dir, seed=args.seed))
    native_bf16 = device.bf16

    peaks = {"fp32": matmul_peak_gflops("fp32")}
    if native_bf16:
        peaks["bf16"] = matmul_peak_gflops("bf16")

    ref_fp32, ref_bf16, ours = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            ref_fp32.append(reference_train(args.base_model, data["train"], args.steps, prof.batch_size,
                                            prof.max_length, prof.learning_rate, args.seed, False, tmp))
            if native_bf16:
                ref_bf16.append(reference_train(args.base_model, data["train"], args.steps, prof.batch_size,
                                                prof.max_length, prof.learning_rate, args.seed, True, tmp))
            ours.append(craftlib_train(args.base_model, data, prof, args.seed, tmp))
    train_peak = _peak_rss_mib()
    reference = ref_bf16 or ref_fp32
    model, tokenizer = ours[-1]["model"], ours[-1]["tokenizer"]

    test = data["test"]
    if args.max_test_sentences is not None:
        test = test.select(range(min(args.max_test_sentences, len(test))))
    sentences = [list(s) for s in test["tokens"]]
    ref_model = reference[-1]["model"]
    ref_inf = reference_infer(ref_model, tokenizer, sentences, prof.max_length, native_bf16)
    start = time.perf_counter()
    _, missing = windows.predict_dataset(model, tokenizer, test, prof.max_length, prof.window_stride,
                                         max(32, prof.eval_batch_size))
    our_seconds = time.perf_counter() - start
    feats = windows.encode_windows(tokenizer, sentences, None, prof.max_length, prof.window_stride)
    n_sub = sum(len(x) for x in feats["input_ids"])
    ours_inf = {"seconds": our_seconds, "sentences_per_second": len(sentences) / our_seconds,
                "subtokens_per_second": n_sub / our_seconds, "windows": len(feats["input_ids"]),
                "words_without_subtoken": missing, "precision": device.precision}

    t_ours, t_ref, t_fp32 = _best(ours), _best(reference), _best(ref_fp32)
    mean_len = n_sub / max(1, len(feats["input_ids"]))
    flops = flops_per_subtoken(model, mean_len)
    peak = peaks.get("bf16", peaks["fp32"])
    report = {
        "command": shlex.join(["python", "benchmarks/bench_train.py", *(argv if argv is not None else sys.argv[1:])]),
        "profile": prof.name, "base_model": args.base_model, "seed": args.seed,
        "sentences": {"train_pool": len(data["train"]), "test": len(sentences)},
        "ratios": {
            "train_vs_reference": t_ours["subtokens_per_second"] / t_ref["subtokens_per_second"],
            "train_vs_reference_fp32": t_ours["subtokens_per_second"] / t_fp32["subtokens_per_second"],
            "inference_vs_reference": ours_inf["sentences_per_second"] / ref_inf["sentences_per_second"],
            "reference_precision": t_ref["precision"],
        },
        "train": {"craftlib": t_ours, "reference": t_ref, "reference_fp32": t_fp32,
                  "batch_size": prof.batch_size, "max_length": prof.max_length, "steps": args.steps,
                  "rounds": args.rounds, "peak_rss_mib": train_peak,
                  "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None},
        "inference": {"craftlib": ours_inf, "reference": ref_inf},
        "compute": {
            "matmul_peak_gflops": peaks, "flops_per_subtoken": flops,
            "mfu_train": t_ours["subtokens_per_second"] * flops["training"] / (peak * 1e9),
            "mfu_train_reference": t_ref["subtokens_per_second"] * flops["training"] / (peak * 1e9),
            "mfu_inference": ours_inf["subtokens_per_second"] * flops["forward"] / (peak * 1e9),
            "compute_limit_train_subtokens_per_second": peak * 1e9 / flops["training"],
            "peak_used": "bf16" if "bf16" in peaks else "fp32",
        },
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
    r, c = report["ratios"], report["compute"]
    print(f"train: craftlib {t_ours['subtokens_per_second']:.0f} sub-tokens/s vs plain Trainer "
          f"{t_ref['subtokens_per_second']:.0f} ({t_ref['precision']}) = {r['train_vs_reference']:.2f}x "
          f"({r['train_vs_reference_fp32']:.2f}x the fp32 reference) | inference: "
          f"{ours_inf['sentences_per_second']:.0f} vs {ref_inf['sentences_per_second']:.0f} sentences/s = "
          f"{r['inference_vs_reference']:.2f}x | MFU train {c['mfu_train']:.0%} of the {c['peak_used']} matmul peak "
          f"({peak:.0f} GFLOP/s) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
