"""Domain-adaptive pretraining: the base model reads CRAFT's training text before it learns to tag it.

MiniLM was pretrained on general English; CRAFT is full-text biology. Continuing the masked-language-model
objective (15 % of the sub-tokens masked, as in BERT) on the *text* of the training documents, with no label, is the
"domain-adaptive pretraining" of Gururangan et al. (2020, "Don't stop pretraining"). The result is a base model
like any other: ``train --base-model minilm-craft`` fine-tunes it with every recipe, and its runs are named
``two-step-minilm-craft-quick`` and so on.

Only the training documents are read (all 60, whatever the profile's sentence limit: their text is not labelled
data); never dev or test. The sentences of each document are tokenized as words, joined in reading order and cut
into blocks of ``max_length`` sub-tokens (``[CLS] ... [SEP]``).

all-MiniLM-L6-v2 ships without its masked-LM head (it is a sentence-embedding model): the head's transform starts
from random weights (the output layer is tied to the word embeddings, as in BERT), which is why the first steps
train the head alone (``head_steps``) before the encoder is unfrozen.

The adapted model is a folder ``<models>/<base>-craft/`` built in a temporary folder and renamed into place, with
``adapt.json``: its recorded inputs (base model, dataset, hyperparameters: the folder is rebuilt when one changes)
and what the run measured (masked-LM loss on the dev text before and after, seconds, sub-tokens, hardware).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from craftlib import cache, config, runs, session, stages
from craftlib.errors import ConfigError
from craftlib.models import (
    ADAPTED_SUFFIX,
    DEFAULT_MODEL,
    REGISTRY,
    load_masked_lm,
    load_tokenizer,
    portable_model_name,
)
from craftlib.ontology import dataset_key
from craftlib.options import add_dataset_options, positive_float, seed_value
from craftlib.progress import live_progress, use_craftlib_progress
from craftlib.runtime import datasets_bars, detect_device, seed_everything, versions
from craftlib.threads import sized_for_sharing
from craftlib.windows import autocast

#: Version of the adaptation's rules (part of the recorded inputs).
ADAPT_FORMAT = 1


@dataclass(frozen=True)
class AdaptOptions:
    """Hyperparameters of the masked-LM stage (recorded in ``adapt.json``)."""

    epochs: float = 2.0
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_length: int = 128
    mlm_probability: float = 0.15
    warmup_ratio: float = 0.06
    #: optimizer steps that train the new masked-LM head alone, the encoder frozen
    head_steps: int = 50
    seed: int = 42

    def __post_init__(self) -> None:
        if not (self.epochs > 0 and self.learning_rate > 0 and self.batch_size >= 1 and self.max_length >= 8
                and 0 < self.mlm_probability < 1 and self.head_steps >= 0):
            raise ConfigError(f"adapt options {asdict(self)}: epochs and learning_rate must be > 0, batch_size >= 1, "
                              "max_length >= 8, mlm_probability between 0 and 1, head_steps >= 0.")


def adapted_name(base_model: str = DEFAULT_MODEL) -> str:
    """``minilm`` → ``minilm-craft``: the base-model name of the adapted model (``train --base-model``)."""
    if str(base_model) not in REGISTRY:
        raise ConfigError(f"adapt: {base_model!r} is not a registry name ({', '.join(REGISTRY)}); the adapted "
                          "model is named after one (minilm → minilm-craft).")
    return f"{base_model}{ADAPTED_SUFFIX}"


def _blocks(dataset, tokenizer, max_length: int) -> list[list[int]]:
    """The sentences of each document, tokenized as words, joined in reading order and cut into blocks of
    ``max_length`` sub-tokens with ``[CLS]``/``[SEP]``."""
    body = max_length - 2
    docs: dict[str, list[tuple[int, list[str]]]] = {}
    for doc, sid, tokens in zip(dataset["doc_id"], dataset["sentence_id"], dataset["tokens"]):
        docs.setdefault(doc, []).append((sid, tokens))
    out = []
    for doc in sorted(docs):
        sentences = [t for _, t in sorted(docs[doc], key=lambda x: x[0]) if t]
        # verbose=False: a sentence longer than the model's positions is fine here, it is cut into blocks below
        enc = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False, verbose=False)["input_ids"]
        ids = [i for sentence in enc for i in sentence]
        out += [[tokenizer.cls_token_id, *ids[k:k + body], tokenizer.sep_token_id] for k in range(0, len(ids), body)]
    return out


def _mlm_loss(model, blocks: list[list[int]], tokenizer, options: AdaptOptions, device) -> float:
    """Mean masked-LM loss over ``blocks``, masked by a collator of its own seed: the same positions every call."""
    import torch
    from transformers import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=options.mlm_probability, seed=options.seed)
    model.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for k in range(0, len(blocks), 32):
            batch = collator([{"input_ids": b} for b in blocks[k:k + 32]])
            with autocast(device):
                out = model(**{key: v.to(device.type) for key, v in batch.items()})
            masked = int((batch["labels"] != -100).sum())
            total += float(out.loss) * masked
            n += masked
    return total / n if n else float("nan")


def adapt_inputs(data: config.DataSpec, base_model: str, options: AdaptOptions) -> dict:
    return {"adapt_format": ADAPT_FORMAT, "base_model": portable_model_name(base_model),
            "dataset": dataset_key(stages.load("dataset", data, say=lambda line: None)), **asdict(options)}


@session.training_entry  # library bars off; an interrupt ends in one line
def adapt(data: config.DataSpec, base_model: str = DEFAULT_MODEL, models_dir=None,
          options: AdaptOptions = AdaptOptions(), progress: bool | None = None, say=print) -> Path:
    """Build (or reuse, when its recorded inputs match) ``<models>/<base>-craft/``; return the folder."""
    final = config.models_dir(models_dir) / adapted_name(base_model)
    inputs = adapt_inputs(data, base_model, options)
    reason = cache.stale_reason(final, inputs)
    if reason is None:
        say(f"Reusing the adapted model {final} (same base model, dataset and hyperparameters).")
        return final
    say(f"Adapting {base_model} to CRAFT's training text ({reason}) → {final}")

    def build(tmp: Path) -> None:
        record = _adapt(tmp, data, base_model, options, live_progress() if progress is None else progress)
        (tmp / "adapt.json").write_text(json.dumps({"inputs": inputs, **record}, indent=2))

    cache.load_or_build(final, inputs, build, load=lambda folder: folder)
    record = json.loads((final / "adapt.json").read_text())
    say(f"{final.name}: dev masked-LM loss {record['dev_loss_before']:.3f} → {record['dev_loss_after']:.3f} "
        f"({record['train_seconds']:.0f} s, {record['tokens_seen']:,} sub-tokens)")
    return final


@sized_for_sharing
def _adapt(tmp: Path, data: config.DataSpec, base_model: str, options: AdaptOptions, progress: bool) -> dict:
    import datasets
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments

    seed_everything(options.seed)
    dsd = stages.load("dataset", data, say=lambda line: None)
    tokenizer = load_tokenizer(base_model)
    with datasets_bars(False):
        train_blocks = _blocks(dsd["train"], tokenizer, options.max_length)
        dev_blocks = _blocks(dsd["validation"], tokenizer, options.max_length)
    model = load_masked_lm(base_model)
    device = detect_device()
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=options.mlm_probability)
    before = _mlm_loss(model.to(device.type), dev_blocks, tokenizer, options, device)
    encoder = [p for name, p in model.named_parameters() if not name.startswith("cls.")]

    class HeadFirst(TrainerCallback):  # the new head learns alone for its first steps
        def on_step_begin(self, args, state, control, **kwargs):
            for p in encoder:
                p.requires_grad_(state.global_step >= options.head_steps)

    per_epoch = math.ceil(len(train_blocks) / options.batch_size)
    args = TrainingArguments(
        output_dir=str(tmp / "checkpoints"), learning_rate=options.learning_rate,
        per_device_train_batch_size=options.batch_size, num_train_epochs=options.epochs,
        lr_scheduler_type="linear", warmup_steps=options.warmup_ratio, weight_decay=0.0,
        logging_steps=max(1, min(50, math.ceil(per_epoch * options.epochs) // 20)), save_strategy="no",
        report_to="none", seed=options.seed, data_seed=options.seed, use_cpu=device.type == "cpu",
        bf16=device.bf16, fp16=device.fp16, include_num_input_tokens_seen="non_padding",
        disable_tqdm=not progress, dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, data_collator=collator,
                      train_dataset=datasets.Dataset.from_dict({"input_ids": train_blocks}),
                      callbacks=[HeadFirst()])
    use_craftlib_progress(trainer, progress)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    for p in model.parameters():
        p.requires_grad_(True)
    after = _mlm_loss(model, dev_blocks, tokenizer, options, device)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    return {
        "base_model": str(base_model), "dataset": data.dataset_name,
        "train_documents": len(set(dsd["train"]["doc_id"])), "train_blocks": len(train_blocks),
        "dev_blocks": len(dev_blocks), "dev_loss_before": before, "dev_loss_after": after,
        "global_step": int(trainer.state.global_step), "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "train_seconds": seconds, "precision_mode": device.precision, "hardware": f"{device.type}: {device.name}",
        "log": [row for row in trainer.state.log_history if "loss" in row],
        "command": adapt_command(data, base_model, options), "versions": versions(), "created": runs.now(),
    }


def adapt_command(data: config.DataSpec, base_model: str, options: AdaptOptions) -> str:
    parts = ["python", "-m", "craftlib", "adapt", "--profile", data.profile.name, "--base-model", str(base_model)]
    default = AdaptOptions()
    for name, flag in (("epochs", "--epochs"), ("learning_rate", "--learning-rate"), ("seed", "--seed")):
        if getattr(options, name) != getattr(default, name):
            parts += [flag, f"{getattr(options, name):g}"]
    return " ".join(parts)


def _cmd_adapt(args: argparse.Namespace) -> int:
    data = config.data_spec(args.profile, args.annotation_set, args.data_dir, source=args.source)
    options = AdaptOptions(epochs=args.epochs, learning_rate=args.learning_rate, seed=args.seed)
    adapt(data, args.base_model, args.models_dir, options, progress=False if args.no_progress else None)
    return 0


def add_commands(subparsers) -> None:
    """The ``adapt`` sub-command."""
    p = subparsers.add_parser(
        "adapt", help="domain-adaptive pretraining: the base model reads CRAFT's training text (masked LM)",
        description="Continue the masked-language-model pretraining of a base model on the text of CRAFT's "
                    "training documents (never dev or test) and write <models>/<base>-craft/, a base model for "
                    "`train --base-model minilm-craft`.")
    add_dataset_options(p)
    p.add_argument("--base-model", default=DEFAULT_MODEL, choices=sorted(REGISTRY))
    p.add_argument("--models-dir", default=None)
    p.add_argument("--epochs", type=positive_float, default=AdaptOptions.epochs)
    p.add_argument("--learning-rate", type=positive_float, default=AdaptOptions.learning_rate)
    p.add_argument("--seed", type=seed_value, default=AdaptOptions.seed)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_adapt)


__all__ = ["AdaptOptions", "adapt", "adapt_command", "adapt_inputs", "adapted_name", "add_commands"]
