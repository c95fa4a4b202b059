"""Fine-tuning: label alignment, sentence windows, the three recipes, outputs, prediction.

Recipes (hyperparameters from the profile, see :data:`craftlib.config.PROFILES`):

* ``single``    — base model → original CRAFT train (the baseline);
* ``augmented`` — base model → augmented + original train (step 1 alone);
* ``two-step``  — step 1 (the ``augmented`` run) → original train again, from the step-1 weights with a
  fresh optimizer and schedule. When ``models/augmented-<base>-<profile>/`` already holds a step-1 model
  trained with the same profile, seed, base model and annotation set, it is reused instead of
  retrained (``reuse_step1=False`` forces a retrain).

Every run ends with dev and test predictions mapped back to **every CRAFT token** and scored once by
:func:`craftlib.evaluate.score`. Words are aligned to sub-tokens with ``word_ids()`` (first sub-token
labelled, ``-100`` elsewhere; ``label_all_subtokens=True`` labels all). Sentences longer than
``max_length`` sub-tokens are cut, at word boundaries, into windows overlapping by about
``window_stride`` sub-tokens; each word is predicted from the window where it has the most context.

Several GPUs: the same command runs under ``accelerate launch -m craftlib train ...`` or
``torchrun --nproc_per_node N -m craftlib train ...``; only the main process writes files.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import math
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from craftlib import cache, config, runs, session, stages
from craftlib.bio import bio_spans, dataset_tags
from craftlib.corpus import fetch_craft
from craftlib.errors import ConfigError, CraftlibError, RunError
from craftlib.evaluate import score
from craftlib.models import check_max_length, load_model, load_tokenizer, model_info, portable_model_name
from craftlib.options import (
    add_profile_option,
    max_steps_value,
    positive_float,
    positive_int,
    probability,
    seed_value,
    warmup_value,
)
from craftlib.progress import live_progress, use_craftlib_progress
from craftlib.runs import RECIPES, Run
from craftlib.runtime import datasets_bars, detect_device, seed_everything, versions
from craftlib.tags import check_dataset, italic_flags, profile_splits
from craftlib.threads import sized_for_sharing, training_callback
from craftlib.viz import save_learning_curve
from craftlib.windows import (
    DECODES,
    META_COLUMNS,
    Markers,
    Reading,
    check_decode,
    decode_scores,
    encode_windows,
    featurize,
    merge_windows,
    predict_dataset,
    predict_windows,
    to_tags,
)

# ---------------------------------------------------------------------------------------- data


def _check_labels(dataset) -> None:
    feature = dataset.features["ner_tags"]
    names = list(getattr(getattr(feature, "feature", None), "names", []) or [])
    if names and names != list(config.LABELS):
        raise CraftlibError(
            f"The dataset's labels {names} are not craftlib's LABELS {list(config.LABELS)}: rebuild it with "
            "`python -m craftlib data`."
        )


def load_recipe_data(recipe_step: str, spec: config.DataSpec) -> dict:
    """Train/validation/test ``datasets.Dataset`` for one training step.

    ``recipe_step`` is ``"original"`` or ``"augmented"``. With a ``max_train_sentences`` limit the same
    original sentences are drawn for every recipe (seeded shuffle); the augmented step adds the augmented
    copies of exactly those sentences.
    """
    if spec.profile.italic_markers and recipe_step == "augmented":
        raise ConfigError("--italic-markers: the augmented copies carry no typesetting (their ontology names were "
                          "never set in a journal's italics); use --recipe single.")
    original = stages.load("dataset", spec, say=lambda line: None)  # the stages first, then the sentences they give
    aug_train = None
    if recipe_step == "augmented":
        aug_train = stages.load("augmented", spec, say=lambda line: None)["train"]
    _check_labels(original["train"])
    splits = profile_splits(original, spec.profile, spec.seed)  # the sentences every system uses
    if spec.profile.italic_markers:  # the typography ablation: each word's italics, from the extracted corpus
        root = fetch_craft(spec.source, sha256=spec.sha256, data_dir=spec.data_dir, progress=False)
        splits = {k: v.add_column("italic", italic_flags(v, root)) for k, v in splits.items()}
    train = splits["train"]
    if aug_train is not None:
        _check_labels(aug_train)
        if spec.profile.max_train_sentences is not None:
            keep = set(zip(train["doc_id"], train["sentence_id"]))
            with datasets_bars(False):  # seconds; its bar would stay on screen
                aug_train = aug_train.filter(
                    lambda d, s: (d, s) in keep, input_columns=["doc_id", "sentence_id"], desc="augmented subset")
        train = aug_train
    return {**splits, "train": train}


# ------------------------------------------------------------------------------------ training


@dataclass
class StepResult:
    """What one call of :func:`fine_tune` produced."""

    model: object
    log_history: list
    train_seconds: float
    tokens_seen: int
    train_sentences: int
    train_windows: int
    global_step: int
    dev_predictions: list | None = None
    #: with fresh replacements, the sentences of each epoch (originals + that epoch's copies); else ``None``
    epoch_sentences: list[int] | None = None


def optimizer_name(device) -> str:
    """Fused AdamW (one kernel over all parameters: the same AdamW update, about 1.5x faster steps on a CPU)
    where this torch has it for the device, else the plain ``adamw_torch`` (also what :mod:`craftlib.estimate`
    times)."""
    import torch

    try:
        torch.optim.AdamW([torch.zeros(1, device=device.type, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return "adamw_torch"
    return "adamw_torch_fused"


def _training_args(output_dir: Path, profile: config.Profile, seed: int, progress: bool, save_checkpoints: bool,
                   device=None, total_steps: int | None = None):
    """``TrainingArguments`` of one fine-tuning step: the reference recipe (AdamW β=(0.9, 0.999) ε=1e-8, linear
    schedule, no warm-up) plus what makes it fast: length-grouped batches (little padding), bf16 autocast where
    the hardware computes bf16 natively, fused AdamW. Dev scoring is not Trainer's evaluation loop but
    :class:`_DevEval` (length-sorted, windows merged back to words, scored with seqeval)."""
    from transformers import (
        TrainingArguments,  # heavy optional dependencies (torch, transformers, accelerate,
    )
    # pandas) are imported where they are used, so that `python -m craftlib --help` and `data` start fast

    device = device or detect_device()
    return TrainingArguments(
        output_dir=str(output_dir),
        learning_rate=profile.learning_rate,
        per_device_train_batch_size=profile.batch_size,
        per_device_eval_batch_size=profile.eval_batch_size,
        num_train_epochs=profile.epochs,
        max_steps=profile.max_steps,
        lr_scheduler_type="linear",
        warmup_steps=profile.warmup_ratio,
        weight_decay=profile.weight_decay,
        optim=optimizer_name(device),
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        train_sampling_strategy="group_by_length",
        eval_strategy="no",
        logging_strategy="steps",
        # about 20 training-loss points per step of a recipe (at most every 50 optimizer steps)
        logging_steps=max(1, min(50, (total_steps or 1000) // 20)),
        # Checkpoint policy: by default nothing is written during training (the run keeps the last epoch's
        # weights, like the reference recipe, saved once with save_pretrained). save_checkpoints=True keeps
        # the latest epoch checkpoint (for long GPU runs), deleted after a successful run.
        save_strategy="epoch" if save_checkpoints else "no",
        save_total_limit=1 if save_checkpoints else None,
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=device.type == "cpu",
        ddp_backend="gloo" if device.type == "cpu" and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        ddp_find_unused_parameters=False,
        bf16=device.bf16,
        fp16=device.fp16,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        dataloader_pin_memory=device.type == "cuda",
    )


class _DevEval:
    """Dev scoring after each epoch (a ``TrainerCallback``): windows predicted by :func:`predict_windows`, merged
    back to words, scored by :func:`craftlib.evaluate.score`; the row goes into the Trainer's log history
    (``eval_loss``, ``eval_f1``, ...). Keeps the last predictions: they are the final model's dev predictions."""

    def __init__(self, features: dict, dataset, tokenizer, batch_size: int, device, progress: bool,
                 at_steps: Mapping[int, int] | None = None, decode: str = "argmax"):
        self.features, self.tokenizer, self.batch_size, self.decode = features, tokenizer, batch_size, decode
        # also scored after these optimizer steps, as these epochs (the ends of epoch blocks: :func:`block_sampler`)
        self.at_steps = dict(at_steps or {})
        self.device, self.progress = device, progress
        self.n_words = [len(t) for t in dataset["tokens"]]
        self.gold = dataset_tags(dataset)
        self.meta = [{k: features[k][i] for k in META_COLUMNS} for i in range(len(features["input_ids"]))]
        self.last_pred: tuple[list[list[str]], int] | None = None
        self.last_step = -1

    def evaluate(self, model) -> tuple[dict, tuple[list[list[str]], int]]:
        ids, loss = predict_windows(model, self.tokenizer, self.features, self.batch_size, self.device,
                                    self.progress, desc="dev", scores=self.decode != "argmax")
        if self.decode == "argmax":
            words, missing = merge_windows(self.n_words, self.meta, ids)
        else:
            words, missing = decode_scores(model, self.n_words, self.meta, ids, self.decode)
        pred = to_tags(words, model)
        result = score(self.gold, pred)
        row = {"eval_loss": loss, **{f"eval_{k}": result[k] for k in ("precision", "recall", "f1", "accuracy",
                                                                       "macro_f1")}}
        return row, (pred, missing)

    def callback(self):
        from transformers import TrainerCallback

        outer = self

        def score_now(state, model, epoch=None):
            if state.is_world_process_zero and state.global_step != outer.last_step:
                was_training = model.training
                row, outer.last_pred = outer.evaluate(model)
                outer.last_step = state.global_step
                epoch = round(state.epoch, 4) if epoch is None else epoch
                state.log_history.append({"epoch": epoch, "step": state.global_step, **row})
                model.train(was_training)

        class DevEvalCallback(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                if state.global_step in outer.at_steps:
                    score_now(state, model, outer.at_steps[state.global_step])
                return control

            def on_epoch_end(self, args, state, control, model=None, **kwargs):
                score_now(state, model)
                return control

        return DevEvalCallback()


def epoch_blocks(train) -> list | None:
    """The augmented step's epochs with fresh replacements (:func:`craftlib.augment.augment_dataset`'s ``draws``):
    ``train`` split into one block per draw, the original sentences followed by that draw's copies; ``None`` for a
    training set without a ``draw`` column (every epoch trains on the same sentences)."""
    if "draw" not in train.column_names:
        return None
    draw = train["draw"]
    originals = [i for i, d in enumerate(draw) if d < 0]
    return [train.select(originals + [i for i, d in enumerate(draw) if d == e]) for e in range(max(draw) + 1)]


def block_sampler(block_lengths: Sequence[Sequence[int]], batch_size: int, seed: int):
    """Training order of epoch blocks trained as one pass: block after block, each in its own seeded
    length-grouped order (what ``group_by_length`` does within an epoch), so that epoch ``e`` sees block ``e``."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    class EpochBlockSampler(torch.utils.data.Sampler):
        def __len__(self):
            return sum(len(b) for b in block_lengths)

        def __iter__(self):
            offset = 0
            for e, lengths in enumerate(block_lengths):
                generator = torch.Generator()
                generator.manual_seed(seed + e)
                yield from (offset + i for i in get_length_grouped_indices(list(lengths), batch_size,
                                                                          generator=generator))
                offset += len(lengths)

    return EpochBlockSampler()


def token_budget_batches(lengths: Sequence[int], budget: int, seed: int) -> list[list[int]]:
    """Batches of at most ``budget`` padded sub-tokens (the sentences of a batch times the longest of them), the way
    fairseq's ``max_tokens`` and AllenNLP's bucket sampler batch: windows sorted by length (ties in a seeded random
    order), cut greedily where the next one would pass the budget. A batch of short sentences holds many of them,
    one of long ones few, so that every optimizer step sees about the same number of sub-tokens (with
    ``batch_size`` sentences, a step sees 8 × 10 or 8 × 128). The batches are fixed for the whole training (the
    Trainer counts its steps once); :func:`token_budget_sampler` shuffles their order each epoch."""
    import torch

    if budget < max(lengths, default=0):
        raise ConfigError(f"token_budget={budget} is smaller than the longest window ({max(lengths)} sub-tokens): "
                          "give a budget of at least max_length.")
    generator = torch.Generator()
    generator.manual_seed(seed)
    order = sorted(torch.randperm(len(lengths), generator=generator).tolist(), key=lambda i: lengths[i])
    batches, current, longest = [], [], 0
    for i in order:
        if current and (len(current) + 1) * max(longest, lengths[i]) > budget:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, lengths[i])
    if current:
        batches.append(current)
    return batches


def token_budget_sampler(batches: list[list[int]], seed: int):
    """Batch sampler over :func:`token_budget_batches`: the same batches every epoch, in an order drawn again for
    each epoch (seed + epoch, so that a resumed training sees the order it would have seen)."""
    import torch

    class TokenBudgetSampler(torch.utils.data.Sampler):
        epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self):
            return len(batches)

        def __iter__(self):
            generator = torch.Generator()
            generator.manual_seed(seed + self.epoch)
            yield from (batches[b] for b in torch.randperm(len(batches), generator=generator).tolist())

    return TokenBudgetSampler()


@dataclass(frozen=True)
class TrainOptions:
    """How one fine-tuning step runs, beside its profile: the seed, sub-token labelling, progress bars,
    checkpoints."""

    seed: int = 42
    label_all_subtokens: bool = False
    progress: bool = True
    save_checkpoints: bool = False
    #: checkpoints every few minutes in ``output_dir/checkpoints``, resumed from when found (:func:`fine_tune`)
    resume: bool = False


def fine_tune(model, tokenizer, data: dict, profile: config.Profile, output_dir: Path,
              options: TrainOptions = TrainOptions()) -> StepResult:
    """One fine-tuning step with ``transformers.Trainer`` (dev scored after each epoch): the step every recipe
    runs (:func:`train_recipe`) and notebook 04's hand-written two-step calls. ``data``: ``train`` and
    ``validation`` ``datasets.Dataset`` (:func:`load_recipe_data`). Returns the trained model and, in
    ``dev_predictions``, the word-level dev tags of the final weights (no second dev pass needed).

    ``options.resume`` (``output_dir`` survives an interrupt: :func:`craftlib.cache.resumable_dir`): a checkpoint
    every :func:`craftlib.session.checkpoint_minutes` of training in ``output_dir/checkpoints``, and training resumes
    from the latest one found there (``train_seconds`` counts the time before the interruption too)."""
    from transformers import DataCollatorForTokenClassification, Trainer, set_seed

    seed, label_all_subtokens, progress = options.seed, options.label_all_subtokens, options.progress
    save_checkpoints = options.save_checkpoints
    set_seed(seed)
    device = detect_device()
    markers = Markers.of(profile)
    markers.add_to(tokenizer)  # saved with the tokenizer: the run predicts with them
    set_dropout(model, profile.dropout)
    if profile.freeze_embeddings:
        freeze_word_embeddings(model)
    blocks = epoch_blocks(data["train"])  # fresh replacements: one block of sentences per epoch
    if blocks is not None and (profile.max_steps > 0 or len(blocks) != profile.epochs):
        raise ConfigError(f"The augmented set holds {len(blocks)} copy sets (one per epoch) but the profile trains "
                          f"{profile.epochs:g} epochs (max_steps={profile.max_steps}): rebuild it with the same "
                          "--epochs (`python -m craftlib train` does), or train without --fresh-replacements.")
    block_feats = [featurize(b, tokenizer, profile.max_length, profile.window_stride, label_all_subtokens,
                             markers=markers, progress=progress) for b in (blocks or [data["train"]])]
    if blocks is None:
        train_feats = block_feats[0]
    else:  # the blocks trained as one pass, block after block (block_sampler), the schedule over all of them
        import datasets

        train_feats = datasets.concatenate_datasets(block_feats)
        profile = dataclasses.replace(profile, epochs=1)
    dev_feats = encode_windows(tokenizer, data["validation"]["tokens"], data["validation"]["ner_tags"],
                               profile.max_length, profile.window_stride, case_markers=markers.case,
                               italic=markers.flags(data["validation"]))
    budget = None
    if profile.token_budget is not None:
        budget = token_budget_batches([len(ids) for ids in train_feats["input_ids"]], profile.token_budget, seed)
    per_epoch = (math.ceil(len(train_feats) / (profile.batch_size * _world_size())) if budget is None
                 else math.ceil(len(budget) / _world_size()))
    total = profile.max_steps if profile.max_steps > 0 else math.ceil(per_epoch * profile.epochs)
    # dev is scored after each epoch; with epoch blocks, where each block ends
    ends = [] if blocks is None else itertools.accumulate(len(f) for f in block_feats)
    dev_eval = _DevEval(dev_feats, data["validation"], tokenizer, max(32, profile.eval_batch_size), device, progress,
                        at_steps={math.ceil(n / (profile.batch_size * _world_size())): e
                                  for e, n in enumerate(ends, start=1)}, decode=profile.decode)
    minutes = session.checkpoint_minutes() if options.resume else None
    checkpoint = session.latest_checkpoint(output_dir / "checkpoints") if options.resume else None
    before = session.elapsed_at(checkpoint)  # seconds trained before an interruption
    if blocks is not None:
        trainer_class = _block_trainer(block_sampler([[len(ids) for ids in f["input_ids"]] for f in block_feats],
                                                     profile.batch_size, seed))
    else:
        trainer_class = Trainer if budget is None else _budget_trainer(token_budget_sampler(budget, seed))
    trainer = trainer_class(
        model=model,
        args=_training_args(output_dir / "checkpoints", profile, seed, progress, save_checkpoints, device, total),
        data_collator=DataCollatorForTokenClassification(tokenizer),
        train_dataset=train_feats.remove_columns(list(META_COLUMNS)),
        processing_class=tokenizer,
        # training_callback: follows the CPU load; work_callback: what a stop reports, resumable checkpoints
        callbacks=[dev_eval.callback(), training_callback(), session.work_callback(minutes, before)],
    )
    use_craftlib_progress(trainer, progress)  # bars in a live kernel, short lines elsewhere (no raw dicts)
    if checkpoint is not None:
        print(session.resume_note(session.current(), checkpoint), flush=True)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    seconds = before + time.perf_counter() - start
    if trainer.is_world_process_zero():
        shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
    # the plain model: without accelerate's autocast wrapper on forward (and DDP wrapper), so that the weights
    # in memory behave exactly like the saved ones (inference applies its own autocast, see predict_windows)
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    log_history = list(trainer.state.log_history)
    if blocks is not None:  # one pass over the blocks: the training log's fractions of a pass, in epochs
        log_history = [{**row, "epoch": round(row["epoch"] * len(blocks), 4)}
                       if "epoch" in row and "eval_f1" not in row else row for row in log_history]
    return StepResult(
        model=model, log_history=log_history, train_seconds=seconds,
        tokens_seen=int(trainer.state.num_input_tokens_seen), train_sentences=len(data["train"]),
        train_windows=len(train_feats), global_step=int(trainer.state.global_step),
        epoch_sentences=None if blocks is None else [len(b) for b in blocks],
        dev_predictions=dev_eval.last_pred,
    )


def set_dropout(model, p: float) -> None:
    """Every dropout layer of ``model`` drops with probability ``p`` (in place; MiniLM's own is 0.1 everywhere, so
    ``p=0.1`` changes nothing there). The model's config says so too (BERT-style names), so that the saved run
    records what it trained with."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        if hasattr(model.config, key):
            setattr(model.config, key, p)


def freeze_word_embeddings(model) -> None:
    """The word-embedding matrix is not trained (in place): no gradient, so the optimizer never holds or updates
    it. Position and type embeddings, their layer norm, the encoder and the head still train."""
    model.get_input_embeddings().weight.requires_grad_(False)


def _block_trainer(sampler):
    """``transformers.Trainer`` that trains in ``sampler``'s order (:func:`block_sampler`)."""
    from transformers import Trainer

    class BlockTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            return sampler

    return BlockTrainer


def _budget_trainer(batch_sampler):
    """``transformers.Trainer`` whose training batches are ``batch_sampler``'s (:func:`token_budget_sampler`): a
    ``DataLoader(batch_sampler=...)`` prepared by accelerate like Trainer's own (its steps per epoch are the
    sampler's batches; a resumed training skips the batches already seen)."""
    from torch.utils.data import DataLoader
    from transformers import Trainer

    class BudgetTrainer(Trainer):
        def get_train_dataloader(self):
            dataset = self._remove_unused_columns(self.train_dataset, description="Training")
            return self.accelerator.prepare(DataLoader(
                dataset, batch_sampler=batch_sampler, collate_fn=self.data_collator,
                num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory))

    return BudgetTrainer


# ------------------------------------------------------------------------------------ outputs


def _epoch_rows(log_history: list, step_name: str) -> tuple[list[dict], list[dict]]:
    """Training-log rows (every log entry) and per-epoch dev rows from a Trainer log history."""
    log, epochs, last_loss = [], [], None
    for entry in log_history:
        row = {"step_name": step_name, **{k: v for k, v in entry.items() if isinstance(v, (int, float))}}
        log.append(row)
        if "loss" in entry:
            last_loss = entry["loss"]
        if "eval_f1" in entry:
            epochs.append({
                "step_name": step_name, "epoch": entry.get("epoch"), "step": entry.get("step"),
                "train_loss": last_loss, "eval_loss": entry.get("eval_loss"),
                **{k: entry[f"eval_{k}"] for k in ("precision", "recall", "f1", "accuracy", "macro_f1")},
            })
    return log, epochs


# ------------------------------------------------------------------------------------ recipes


@dataclass(frozen=True)
class RunSpec:
    """A transformer run: its recipe, its data (:class:`craftlib.config.DataSpec`: profile, annotation set, seed,
    folders) and its model, resolved once by :func:`run_spec` (the command line, a notebook) and passed down whole."""

    recipe: str
    data: config.DataSpec
    base_model: str = "minilm"
    models_dir: str | os.PathLike | None = None
    label_all_subtokens: bool = False

    @property
    def profile(self) -> config.Profile:
        return self.data.profile

    @property
    def seed(self) -> int:
        return self.data.seed

    @property
    def run(self) -> Run:
        """The run folder this spec writes (:class:`craftlib.runs.Run`)."""
        return Run.named(runs.run_name(self.recipe, self.base_model, self.profile, self.seed,
                                       self.data.annotation_set, self.label_all_subtokens), self.models_dir)

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def command(self) -> str:
        data_dir = None if self.data.data_dir == config.data_dir() else self.data.data_dir
        return runs.train_command(self.recipe, self.profile, self.base_model, self.seed, self.data.annotation_set,
                                  data_dir, self.models_dir, self.label_all_subtokens)

    def settings(self) -> dict:
        """The metrics fields a run must match to be reused as another run's step 1."""
        return {"profile": self.profile.name, "seed": self.seed, "base_model": str(self.base_model),
                "annotation_set": self.data.annotation_set, "label_all_subtokens": self.label_all_subtokens,
                "hyperparameters": self.profile.to_dict()}


def run_spec(recipe: str, profile: str | config.Profile | None = None, base_model: str = "minilm", seed: int = 42,
             annotation_set: str = "proper", data_dir: str | os.PathLike | None = None,
             models_dir: str | os.PathLike | None = None, label_all_subtokens: bool = False) -> RunSpec:
    """The edge of training: a :class:`RunSpec` from a recipe, a profile name (or ``CRAFTLIB_PROFILE``) and
    the settings; everything below takes the spec whole."""
    if recipe not in PLANS:
        raise CraftlibError(f"Unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}.")
    data = config.data_spec(profile, annotation_set, data_dir, seed=seed)
    if data.profile.fresh_replacements and not any(step.data == "augmented" for step in PLANS[recipe]):
        raise ConfigError(f"fresh replacements change the augmented step, which the {recipe!r} recipe does not "
                          "have: use --recipe augmented or two-step (or drop --fresh-replacements).")
    return RunSpec(recipe, data, base_model, models_dir, label_all_subtokens)


@dataclass(frozen=True)
class Step:
    """One fine-tuning step of a recipe: its name and the training data it uses (``original``/``augmented``)."""

    name: str
    data: str


#: Each recipe as its plan of fine-tuning steps. A ``two-step`` run's step 1 is the ``augmented`` run (reused when
#: a matching one exists, see :func:`train_recipe`); its step 2 continues from those weights with a fresh
#: optimizer and schedule.
PLANS: dict[str, tuple[Step, ...]] = {
    "single": (Step("step1", "original"),),
    "augmented": (Step("step1", "augmented"),),
    "two-step": (Step("step1", "augmented"), Step("step2", "original")),
}


@dataclass
class RunRecord:
    """What a run accumulates while it trains: training-log rows, dev rows per epoch, one entry per step."""

    spec: RunSpec
    logs: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)

    def add_previous_run(self, step: Step, run: Run, reused: bool) -> None:
        """A finished run that is this run's ``step`` (a two-step run's step 1): its log, epochs and timings."""
        import pandas as pd

        m = run.metrics()
        self.logs += pd.read_csv(run.dir / "training_log.csv").to_dict("records")
        self.epochs += [e | {"step_name": step.name} for e in m["dev_epochs"]]
        self.steps.append({"name": step.name, "data": step.data, "from": str(self.spec.base_model),
                           "run": run.name, "reused": reused, "train_seconds": m["train_seconds"],
                           "tokens_seen": m["tokens_seen"], "train_sentences": m["train_sentences"],
                           **{k: m["steps"][-1][k] for k in ("epoch_sentences",) if k in (m.get("steps") or [{}])[-1]}})

    def add_step(self, step: Step, start_from: str, result: StepResult) -> None:
        """A step trained by this run (:func:`fine_tune`)."""
        log, ep = _epoch_rows(result.log_history, step.name)
        self.logs += log
        self.epochs += ep
        self.steps.append({"name": step.name, "data": step.data, "from": start_from, "run": self.spec.name,
                           "reused": False, "train_seconds": result.train_seconds, "tokens_seen": result.tokens_seen,
                           "train_sentences": result.train_sentences, "train_windows": result.train_windows,
                           "global_step": result.global_step, "processes": _world_size(),
                           **({"epoch_sentences": result.epoch_sentences} if result.epoch_sentences else {})})

    def metrics(self, dev: dict, test: dict, uncovered: dict) -> dict:
        """``metrics.json`` of the finished run (:func:`craftlib.runs.metrics_core` plus the transformer fields)."""
        import torch

        spec, prof = self.spec, self.spec.profile
        device = detect_device()
        train_seconds = sum(s["train_seconds"] for s in self.steps)
        tokens_seen = sum(s["tokens_seen"] for s in self.steps)
        core = runs.metrics_core(spec.name, "transformer", prof, spec.seed, spec.data.dataset_name, spec.recipe,
                                 spec.base_model)
        return {
            **core, "base_model_resolved": portable_model_name(spec.base_model),
            "base_model_info": model_info(spec.base_model), "annotation_set": spec.data.annotation_set, "dev": dev,
            "test": test, "dev_epochs": self.epochs, "steps": self.steps,
            "train_seconds": train_seconds, "tokens_seen": tokens_seen,
            "tokens_per_second": tokens_seen / train_seconds if train_seconds else 0.0,
            "train_sentences": self.steps[-1]["train_sentences"],
            "words_without_subtoken": uncovered, "label_all_subtokens": spec.label_all_subtokens,
            "hyperparameters": prof.to_dict(), "profile_description": prof.description,
            "precision_mode": device.precision, "hardware": f"{device.type}: {device.name}",
            "torch_threads": torch.get_num_threads(),
            "command": spec.command, "versions": versions(), "created": runs.now(),
        }


def matched_profile(profile: config.Profile, single_tokens: int, target_tokens: int) -> config.Profile:
    """The compute control: ``profile`` changed so that a ``single`` run sees about ``target_tokens`` sub-tokens
    (e.g. what a two-step run saw) where it saw ``single_tokens`` with ``profile``. A profile that stops after
    ``max_steps`` gets proportionally more steps; one that trains by epochs gets more epochs, rounded to one
    decimal (quick: 2.4 epochs for two-step's 2.39 passes). The run name shows the change (``-ep2.4``)."""
    if single_tokens < 1 or target_tokens < 1:
        raise CraftlibError(f"matched_profile needs token counts > 0, got {single_tokens} and {target_tokens}.")
    ratio = target_tokens / single_tokens
    if profile.max_steps > 0:
        return dataclasses.replace(profile, max_steps=max(1, round(profile.max_steps * ratio)))
    return dataclasses.replace(profile, epochs=max(0.1, round(profile.epochs * ratio, 1)))


def _resume_key(spec: RunSpec, step: Step, start) -> dict:
    """What the kept checkpoints of an interrupted training must match to be resumed: the run's settings, the step,
    the recorded inputs of its data (the dataset, and the augmented set for an augmented step) and the weights it
    starts from (a step-1 run: also when that run was made)."""
    origin = {"start": str(start)}
    if (Path(start) / "metrics.json").is_file():
        metrics = Run(Path(start)).metrics_or_none()
        if metrics is not None:
            origin["created"] = metrics.get("created")
    processed = spec.data.processed_dir
    inputs = {"dataset": cache.recorded_inputs(processed),
              "augmented": cache.recorded_inputs(processed / "augmented") if step.data == "augmented" else None}
    return {"run": spec.name, "step": step.name, "data": step.data, "settings": spec.settings(), "inputs": inputs,
            **origin}


def _reusable_step1(run: Run, expected: dict) -> bool:
    metrics = run.metrics_or_none() if (run.dir / "config.json").is_file() else None  # damaged: retrain it
    if metrics is None:
        return False
    recorded = metrics.get("hyperparameters")
    if isinstance(recorded, dict) and isinstance(expected.get("hyperparameters"), dict):
        # a field added to Profile after the run was trained counts as the value runs had before it existed
        # (italic_markers: off; case_markers, decode: the reference recipe's, config.REFERENCE_SETTINGS)
        unrecorded = {}
        for k in expected["hyperparameters"]:
            if k not in recorded:
                with contextlib.suppress(KeyError):
                    unrecorded[k] = config.recorded_setting(recorded, k)
        metrics = {**metrics, "hyperparameters": {**unrecorded, **recorded}}
    return all(metrics.get(k) == v for k, v in expected.items())


@session.training_entry  # library bars off; an interrupt ends in one line that says what was kept
def train_recipe(spec: RunSpec, reuse_step1: bool = True, progress: bool | None = None,
                 save_checkpoints: bool = False, reuse: bool = False) -> Path:
    """Train one recipe (its :data:`PLANS` entry) and write ``models/<run>/`` (see ARCHITECTURE.md); return that
    directory. ``spec``: :func:`run_spec` (``train_recipe(run_spec("two-step", "smoke"))``).

    The plan: a ``two-step`` run takes its step 1 from the ``augmented`` run of the same settings (trained first
    when there is none, or when ``reuse_step1=False``), then :func:`fine_tune` runs once on the last step's data.

    ``progress``: ``tqdm.auto`` bars per training step and per prediction pass (``None``: when someone can see
    them, :func:`craftlib.progress.live_progress`: in JupyterLab or a terminal, not under papermill or in CI
    logs); training always prints one short line per epoch.

    ``models/<run>/`` gets the model and tokenizer (``save_pretrained``), ``metrics.json``,
    ``training_log.csv``, ``learning_curve.png``, ``README.md`` (model card) and
    ``predictions_{validation,test}.jsonl``.

    ``reuse=True``: a finished run of the same name and settings is returned as it is, not trained again. An
    interrupted training keeps its resumable folder (``models/.resume-<run>-<key>/``, :func:`_resume_key`) with a
    checkpoint every :func:`craftlib.session.checkpoint_minutes`; the next call resumes from it, and the stop itself
    is one line (:class:`craftlib.session.Stopped`).
    """
    check_max_length(spec.base_model, spec.profile.max_length)  # before any work, not on the first long sentence
    if reuse and _reusable_step1(spec.run, spec.settings()):  # a finished run of these settings: no load measured
        cache.drop_resumable(spec.run.dir)  # checkpoints of an interrupted retraining it makes useless
        session.reused(spec.name, spec.run.dir)
        return spec.run.dir
    return _train(spec, reuse_step1, live_progress() if progress is None else progress, save_checkpoints)


@sized_for_sharing  # threads sized to the cores other processes leave free; the caller's count restored
def _train(spec: RunSpec, reuse_step1: bool, progress: bool, save_checkpoints: bool) -> Path:
    """:func:`train_recipe`'s training, once it is known that there is something to train."""
    seed_everything(spec.seed)
    record = RunRecord(spec)
    *earlier, step = PLANS[spec.recipe]
    start, start_from = spec.base_model, str(spec.base_model)
    if earlier:  # two-step: step 1 is the augmented run (PLANS["augmented"]), reused when one matches
        step1 = dataclasses.replace(spec, recipe="augmented")
        reused = reuse_step1 and _reusable_step1(step1.run, step1.settings())
        if not reused:
            train_recipe(step1, progress=progress, save_checkpoints=save_checkpoints)
        record.add_previous_run(earlier[0], step1.run, reused)
        start, start_from = step1.run.dir, step1.name
    tokenizer = load_tokenizer(start)
    model = load_model(start)
    run_dir = spec.run.dir

    with _main_process_first(), datasets_bars(progress):  # several processes: the first builds missing data
        data = load_recipe_data(step.data, spec.data)
    for split, rows in data.items():
        check_dataset(rows, f"{step.data} {split}")
    # The whole run is built in a temporary folder beside models/<run>/ and renamed into place at the end, so an
    # interrupted or failed run leaves the previous complete run (or nothing) there, never a mix. In one process the
    # folder is resumable: an interrupt keeps it, with the training's checkpoints, for the next call of this run.
    resumable = _world_size() == 1
    folder = (cache.resumable_dir(run_dir, _resume_key(spec, step, start), keep=("checkpoints",)) if resumable
              else cache.atomic_dir(run_dir) if _is_main_process() else cache.temp_dir(run_dir))
    label = f"step {len(earlier) + 1}" if earlier else None  # two-step's step 2
    with folder as build_dir, session.training(spec.name, label, progress):
        result = fine_tune(model, tokenizer, data, spec.profile, build_dir,
                           TrainOptions(spec.seed, spec.label_all_subtokens, progress, save_checkpoints, resumable))
        if result.global_step < 1:
            raise ConfigError(f"{spec.name}: step {step.name} made no optimizer step ({result.train_sentences} "
                              "training sentences): there is nothing to train on; check the profile's data "
                              "limits and --max-steps / --epochs.")
        record.add_step(step, start_from, result)
        if _is_main_process():
            _write_outputs(Run(build_dir), record, result, tokenizer, data, progress)
    _barrier()
    return run_dir


def _write_outputs(run: Run, record: RunRecord, result: StepResult, tokenizer, data: dict,
                   progress: bool = False) -> None:
    """Save the model, final dev/test predictions and scores, metrics.json, log, curve and card.

    ``result.dev_predictions`` (tags, words without sub-token) are the last epoch's dev predictions of these very
    weights: reused instead of predicting dev a second time."""
    import pandas as pd

    prof, model = record.spec.profile, result.model
    model.save_pretrained(run.dir, safe_serialization=True)
    tokenizer.save_pretrained(run.dir)

    # final dev and test metrics, computed once after training, on every CRAFT token
    split_scores, uncovered = {}, {}
    for split in ("validation", "test"):
        if split == "validation" and result.dev_predictions is not None:
            pred, missing = result.dev_predictions
        else:
            pred, missing = predict_dataset(model, tokenizer, data[split], prof.max_length, prof.window_stride,
                                            max(32, prof.eval_batch_size), progress=progress,
                                            reading=Reading.of(prof))
        gold = dataset_tags(data[split])
        run.write_predictions(split, [
            {"doc_id": row["doc_id"], "sentence_id": row["sentence_id"], "tokens": row["tokens"], "gold": g, "pred": p}
            for row, g, p in zip(data[split], gold, pred)])
        split_scores[split] = score(gold, pred)
        uncovered[split] = missing

    metrics = record.metrics(split_scores["validation"], split_scores["test"], uncovered)
    pd.DataFrame(record.logs).to_csv(run.dir / "training_log.csv", index=False)
    save_learning_curve(run.dir / "training_log.csv", run.dir / "learning_curve.png", record.spec.name)
    run.write_card(metrics)
    run.write_metrics(metrics)  # last: its presence marks a complete run


def _world_size() -> int:
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def _main_process_first():
    """Under ``torchrun`` / ``accelerate launch``: a context where the main process runs first (it builds any
    missing dataset, entity lists or augmented set) and the others wait for it; a no-op in one process."""
    if _world_size() == 1:
        return contextlib.nullcontext()
    from accelerate import PartialState

    return PartialState(cpu=detect_device().type == "cpu").main_process_first()


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _barrier() -> None:
    """Wait for the main process to finish writing (multi-GPU runs only)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


# ------------------------------------------------------------------------------------ prediction

_WORD = re.compile(r"\w+|[^\w\s]")


def refuse_italic_model(model_dir, hyperparameters: dict) -> None:
    """Plain text carries no italics: a model trained with ``--italic-markers`` (an ablation) would be tagging
    without the signal it learnt to lean on, so predicting text with it is refused in one clear line."""
    if hyperparameters.get("italic_markers"):
        raise ConfigError(f"{model_dir} was trained with --italic-markers (an ablation that reads CRAFT's italics): "
                          "plain text has no italics to show it, so its tags would be worse than its scores say. "
                          "Tag text with a model trained without --italic-markers.")


def predict(model_dir: str | os.PathLike, texts_or_tokens, batch_size: int = 16,
            max_length: int | None = None, stride: int | None = None) -> list[dict]:
    """Tag raw texts (``str`` or list of ``str``, split into words and punctuation) or pre-tokenized
    sentences (list of token lists) with a model saved by :func:`train_recipe`.

    Returns one dict per sentence: ``tokens``, ``tags`` and ``entities`` (``text``, ``type``, token
    ``start``/``end``).
    """
    model_dir = Path(model_dir)
    metrics = check_model_dir(model_dir)
    if isinstance(texts_or_tokens, str):
        texts_or_tokens = [texts_or_tokens]
    sentences = [_WORD.findall(x) if isinstance(x, str) else list(x) for x in texts_or_tokens]
    for x in texts_or_tokens:
        text = x if isinstance(x, str) else " ".join(map(str, x))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:  # bytes that were not UTF-8, kept as surrogates by Python (argv, files)
            raise ConfigError(f"The text to tag is not UTF-8 (byte {text[err.start].encode('utf-8', 'surrogateescape')!r}"
                              f" near {text[max(0, err.start - 20):err.start].encode('utf-8', 'replace').decode()!r}):"
                              " convert it first (e.g. `iconv -f latin1 -t utf-8`), or pass it as UTF-8.") from None
    hp = (metrics or {}).get("hyperparameters") or {}
    model_config = check_model_labels(model_dir)
    max_length = max_length or hp.get("max_length", 128)
    check_max_length(model_dir, max_length, model_config)
    refuse_italic_model(model_dir, hp)
    tokenizer, model = _load_for_prediction(model_dir)
    tags, _ = predict_dataset(model, tokenizer, sentences, max_length,
                              stride or hp.get("window_stride", 32), batch_size,
                              reading=Reading(Markers(case=bool(config.recorded_setting(hp, "case_markers"))),
                                              config.recorded_setting(hp, "decode")))
    return [{"tokens": toks, "tags": tg,
             "entities": [{"text": " ".join(toks[s:e]), "type": t, "start": s, "end": e}
                          for s, e, t in bio_spans(tg)]}
            for toks, tg in zip(sentences, tags)]


#: Weight files ``save_pretrained`` writes (one of them must be there).
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
#: Files only a ``train`` run writes: with them but without ``metrics.json`` the run did not finish.
_RUN_FILES = ("predictions_validation.jsonl", "predictions_test.jsonl", "training_log.csv", "learning_curve.png",
              "checkpoints")
_RETRAIN = "train it again (`python -m craftlib train ...`; its command is in the run's README.md)"


def check_model_dir(model_dir: str | os.PathLike) -> dict | None:
    """Refuse a folder :func:`predict` cannot trust; return its ``metrics.json`` (``None`` for a plain model
    folder). Accepted: a complete run written by :func:`train_recipe` (``metrics.json`` of a transformer run,
    config, weights), or a plain model folder (``save_pretrained``: config and weights, no run files).
    Refused with a :class:`~craftlib.errors.RunError`: no folder, no config, no weights, truncated
    ``model.safetensors``, an interrupted run (run files but no ``metrics.json``), a malformed ``metrics.json``,
    a run of another system (dictionary, CRF, spaCy)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise RunError(f"{model_dir} does not exist: give a models/<run> folder written by `python -m craftlib "
                       "train` (e.g. models/two-step-minilm-smoke-case-viterbi).")
    run = Run(model_dir)
    metrics = run.metrics(fix=f"the run is damaged; {_RETRAIN}") if run.finished else None
    if metrics is not None and metrics.get("system", "transformer") != "transformer":
        raise RunError(f"{model_dir} is a {metrics['system']} run, not a transformer model: predict needs a "
                       "run of `python -m craftlib train`.")
    if not (model_dir / "config.json").is_file():
        raise RunError(f"{model_dir} holds no trained model (config.json): train one with "
                       "`python -m craftlib train --recipe two-step --profile smoke`.")
    if metrics is None and any((model_dir / f).exists() for f in _RUN_FILES):
        raise RunError(f"{model_dir} is an incomplete run (training files but no metrics.json: it was interrupted "
                       f"or failed): its weights may be untrained. Delete it and {_RETRAIN}.")
    weights = [model_dir / f for f in _WEIGHTS if (model_dir / f).is_file()]
    if not weights:
        raise RunError(f"{model_dir} has a config.json but no weights ({', '.join(_WEIGHTS)}): the model was not "
                       f"saved completely; {_RETRAIN}.")
    if weights[0].name == "model.safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(weights[0]), "pt") as fh:
                fh.keys()
        except Exception as err:  # SafetensorError (not an Exception subclass we can name portably), OSError
            raise RunError(f"{weights[0]} cannot be read ({err}): the file is truncated or damaged; {_RETRAIN}."
                           ) from err
    return metrics


def check_model_labels(model_dir: str | os.PathLike):
    """The config of a saved model, refused (:class:`~craftlib.errors.RunError`) when it cannot be read or when its
    labels are not craftlib's 13 CRAFT labels (a bare base model, a model of another label set): loading it would
    put a fresh random head on it and print random tags."""
    from transformers import AutoConfig

    model_dir = Path(model_dir)
    try:
        model_config = AutoConfig.from_pretrained(str(model_dir), trust_remote_code=False)
    except (OSError, ValueError, TypeError, KeyError) as err:
        reason = " ".join(str(err).split())[:300]
        raise RunError(f"{model_dir / 'config.json'} cannot be read ({type(err).__name__}: {reason}): the saved "
                       f"model is damaged; {_RETRAIN}.") from err
    id2label = getattr(model_config, "id2label", None) or {}
    labels = [str(id2label[i]) for i in sorted(id2label, key=int)]
    if labels != list(config.LABELS):
        shown = ", ".join(labels[:6]) + (f", ... ({len(labels)} labels)" if len(labels) > 6 else "")
        what = ("a base model with no trained tagging head" if all(re.fullmatch(r"LABEL_\d+", x) for x in labels)
                else "a model trained for another label set")
        raise RunError(f"{model_dir} tags with the labels [{shown}], not craftlib's {len(config.LABELS)} CRAFT "
                       f"labels ({config.LABELS[0]}, {config.LABELS[1]}, ..., {config.LABELS[-1]}): it is {what}, "
                       "and its tags would be meaningless. Give a models/<run> folder written by `python -m "
                       "craftlib train` (or train one: `python -m craftlib train --recipe two-step --profile "
                       "smoke`).")
    return model_config


def _load_for_prediction(model_dir: Path):
    try:
        return load_tokenizer(model_dir), load_model(model_dir)
    except CraftlibError:
        raise
    except (OSError, ValueError, RuntimeError) as err:
        raise RunError(f"The model in {model_dir} cannot be loaded ({type(err).__name__}: {err}): its files are "
                       f"damaged or incomplete; {_RETRAIN}.") from err


# ---------------------------------------------------------------------------------- another decoding

#: Files of a trained run that its re-decoded twin takes over as they are (the weights, the tokenizer, the
#: training record); predictions, scores and card are written anew.
_DECODE_KEEPS = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "vocab.txt", "training_log.csv", "learning_curve.png")


def decode_run(run_dir: str | os.PathLike, decode: str = "viterbi", models_dir: str | os.PathLike | None = None,
               progress: bool = False, force: bool = False) -> Path:
    """A trained run read with another decoding (``--decode``), without training again: the run that ``train``
    with ``--decode <decode>`` would write (the same weights, since decoding changes no training step; its name
    gains or loses the ``-viterbi`` suffix), with dev and test predicted again from the saved sentences and scored.
    A run of that name trained with ``--decode <decode>`` is never replaced (unless ``force``).

    ``metrics.json`` keeps the training record (steps, time, sub-tokens, hardware) and says where the weights came
    from (``decoded_from``); its ``command`` is this one. Built in a temporary folder and renamed into place; a
    decoded run of the same source run (the same ``created``) is returned as it is unless ``force``."""
    src = Run(run_dir)
    m = src.metrics()
    hp = dict(m.get("hyperparameters") or {})
    if m.get("system") != "transformer":
        raise ConfigError(f"{src.name} is a {m.get('system')} run: only a transformer run has scores to decode.")
    if hp.get("italic_markers"):
        raise ConfigError(f"{src.name} reads CRAFT's italics, which its saved predictions do not keep: decode it "
                          "again by training it with --decode.")
    if config.recorded_setting(hp, "decode") == check_decode(decode):
        other = " or ".join(d for d in DECODES if d != decode)
        raise ConfigError(f"{src.name} is already decoded with {decode}: nothing to do (--decode {other} reads it "
                          "the other way).")
    if m.get("decoded_from"):
        raise ConfigError(f"{src.name} is itself a re-decoded run: decode {m['decoded_from']['run']} instead.")
    profile = config.Profile.from_record(hp, decode=decode)
    name = runs.run_name(m["recipe"], m["base_model"], profile, m["seed"], m.get("annotation_set", "proper"),
                         m.get("label_all_subtokens", False))
    dest = Run.named(name, models_dir if models_dir is not None else src.dir.parent)
    origin = {"run": src.name, "command": m.get("command"), "created": m.get("created")}
    done = dest.metrics_or_none()
    if not force and done is not None and done.get("decoded_from") == origin:
        return dest.dir  # already decoded from these very weights
    if not force and done is not None and not done.get("decoded_from"):
        raise ConfigError(f"{dest.dir} holds a run trained with --decode {decode} (other weights than {src.name}'s): "
                          "it is not replaced. Move it away, or pass force=True to replace it.")
    tokenizer, model = _load_for_prediction(src.dir)
    markers = Markers(case=profile.case_markers)
    with cache.atomic_dir(dest.dir) as tmp:
        for f in _DECODE_KEEPS:
            if (src.dir / f).is_file():
                shutil.copy2(src.dir / f, tmp / f)
        out = Run(tmp)
        split_scores, uncovered = {}, {}
        for split in ("validation", "test"):
            recs = src.predictions(split)
            pred, missing = predict_dataset(model, tokenizer, [r["tokens"] for r in recs], profile.max_length,
                                            profile.window_stride, max(32, profile.eval_batch_size),
                                            progress=progress, reading=Reading(markers, decode))
            out.write_predictions(split, [{**{k: r[k] for k in ("doc_id", "sentence_id", "tokens", "gold")},
                                           "pred": p} for r, p in zip(recs, pred)])
            split_scores[split] = score([r["gold"] for r in recs], pred)
            uncovered[split] = missing
        metrics = {**{k: v for k, v in m.items() if k != "rescored"}, "run": name,
                   "dev": split_scores["validation"], "test": split_scores["test"],
                   "words_without_subtoken": uncovered, "hyperparameters": profile.to_dict(),
                   "command": f"python -m craftlib decode {src.name} --decode {decode}",
                   "decoded_from": origin,
                   "versions": versions(), "created": runs.now()}
        out.write_card(metrics)
        out.write_metrics(metrics)
    return dest.dir


def _cmd_decode(args: argparse.Namespace) -> int:
    root = config.models_dir(args.models_dir)
    for name in args.runs:
        src = Run(root / name)
        if not src.finished:
            raise RunError(f"No finished run {name!r} in {root}: train it first (`python -m craftlib train ...`) or "
                           "check the name (`ls models/`).")
        out = decode_run(src.dir, args.decode, root, progress=not args.no_progress)
        m = Run(out).metrics()
        print(f"{m['run']}: dev F1 {m['dev']['f1']:.4f} | test P {m['test']['precision']:.4f} "
              f"R {m['test']['recall']:.4f} F1 {m['test']['f1']:.4f} (was {src.metrics()['test']['f1']:.4f}) → {out}")
    return 0


# ------------------------------------------------------------------------------------------ CLI


def _cmd_train(args: argparse.Namespace) -> int:
    overrides = {f: getattr(args, f) for f in runs.CLI_OVERRIDES}
    spec = run_spec(args.recipe, config.get_profile(args.profile, **overrides), args.base_model, args.seed,
                    args.annotation_set, args.data_dir, args.models_dir, args.label_all_subtokens)
    run_dir = train_recipe(spec, reuse_step1=not args.retrain_step1, progress=False if args.no_progress else None,
                           save_checkpoints=args.save_checkpoints)
    if _is_main_process():
        m = Run(run_dir).metrics()
        print(f"{m['run']}: dev F1 {m['dev']['f1']:.4f} | test P {m['test']['precision']:.4f} "
              f"R {m['test']['recall']:.4f} F1 {m['test']['f1']:.4f} acc {m['test']['accuracy']:.4f} | "
              f"{m['train_seconds']:.0f} s → {run_dir}")
    return 0


def add_commands(subparsers) -> None:
    """The ``train`` sub-command (``predict`` is :mod:`craftlib.tagger`'s)."""
    p = subparsers.add_parser(
        "train", help="fine-tune a transformer recipe (single, augmented, two-step)",
        description="Fine-tune a base model on CRAFT and write models/<run>/. Several GPUs: run the same command "
                    "under `accelerate launch -m craftlib train ...` or `torchrun --nproc_per_node N -m craftlib "
                    "train ...`.",
    )
    p.add_argument("--recipe", choices=RECIPES, default="two-step")
    add_profile_option(p)
    p.add_argument("--base-model", default="minilm",
                   help="registry name (minilm), Hugging Face Hub id or local directory (default: minilm)")
    p.add_argument("--seed", type=seed_value, default=42)
    p.add_argument("--annotation-set", choices=config.ANNOTATION_SETS, default="proper")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--models-dir", default=None)
    p.add_argument("--label-all-subtokens", action="store_true", help="label every sub-token, not only the first")
    p.add_argument("--retrain-step1", action="store_true",
                   help="two-step: retrain step 1 even when a matching augmented run exists")
    p.add_argument("--save-checkpoints", action="store_true", help="keep the latest epoch checkpoint while training")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (default: bars when the output is a terminal)")
    g = p.add_argument_group("hyperparameters (default: the profile's; an override is appended to the run name, "
                             "e.g. single-minilm-quick-ep2-case-viterbi)")
    g.add_argument("--epochs", type=positive_float, default=None,
                   help="epochs per training step (> 0; on a profile with max_steps, add --max-steps -1)")
    g.add_argument("--learning-rate", type=positive_float, default=None)
    g.add_argument("--max-train-sentences", type=positive_int, default=None,
                   help="seeded subset of the original training sentences")
    g.add_argument("--max-steps", type=max_steps_value, default=None,
                   help="optimizer steps per training step (overrides epochs; -1: train by epochs)")
    g.add_argument("--replace-prob", type=probability, default=None,
                   help="augmented step: probability of replacing a mention by an ontology name (default 0.2; "
                        "0: the same copies with nothing replaced, the control that isolates the names)")
    g.add_argument("--case-markers", action=argparse.BooleanOptionalAction, default=None,
                   help="mark capitalised / all-caps / mixed-case words with a token the uncased model can see "
                        "(default: on; --no-case-markers is the reference recipe)")
    g.add_argument("--italic-markers", action=argparse.BooleanOptionalAction, default=None,
                   help="an ablation: mark the words CRAFT's typography layer sets in italics (single recipe only; "
                        "a model trained so needs italics at prediction, which plain text lacks)")
    g.add_argument("--full-copy", dest="augment_keep_unchanged", action=argparse.BooleanOptionalAction,
                   default=None, help="augmented step: copy every training sentence, replaced or not (the full "
                                      "profile's default), or only those with a replacement (--no-full-copy)")
    g.add_argument("--fresh-replacements", dest="fresh_replacements", action=argparse.BooleanOptionalAction,
                   default=None, help="augmented step: draw the copies again for every epoch, so that no augmented "
                                      "sentence repeats (whole epochs; with --no-full-copy, since full-copy keeps "
                                      "exact duplicates whatever the draw)")
    g.add_argument("--token-budget", type=positive_int, default=None,
                   help="batches of at most this many padded sub-tokens (many short sentences or a few long ones "
                        "per step) instead of the profile's batch size in sentences; at least max_length")
    g.add_argument("--decode", choices=DECODES, default=None,
                   help="how word tags are read from the model's scores: viterbi (default: the most likely valid "
                        "IOB2 sequence, no I- after O or another type) or argmax (each word's most likely label on "
                        "its own: the reference recipe); changes the predictions, not the training")
    g.add_argument("--dropout", type=probability, default=None,
                   help="dropout probability of every dropout layer while training (default: the profile's: 0 on "
                        "quick, whose one epoch underfits; 0.1, BERT's own and the reference recipe's, elsewhere)")
    g.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=None,
                   help="do not train the word-embedding matrix (about half of MiniLM's parameters): cheaper "
                        "optimizer steps; the layers above still learn (default: off)")
    g.add_argument("--warmup-ratio", type=warmup_value, default=None,
                   help="fraction of each training step's optimizer steps over which the learning rate rises "
                        "linearly from 0 before the linear decay (default 0: the reference recipe's, no warm-up)")
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser(
        "decode", help="read trained runs with another decoding (e.g. viterbi), without training again",
        description="Writes the run `train ... --decode <decode>` would write (two-step-minilm-quick → "
                    "two-step-minilm-quick-viterbi; two-step-minilm-quick-case-viterbi --decode argmax → "
                    "two-step-minilm-quick-case): the same weights, dev and test predicted again and scored, in minutes.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="finished runs, e.g. two-step-minilm-quick")
    p.add_argument("--decode", choices=DECODES, default="viterbi", help="default: viterbi")
    p.add_argument("--models-dir", default=None, help="default: CRAFTLIB_MODELS_DIR or <repo>/models")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_decode)

