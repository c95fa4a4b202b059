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
import json
import math
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from craftlib import cache, config, runs, session
from craftlib.bio import bio_spans, dataset_tags, tag_names
from craftlib.corpus import fetch_craft
from craftlib.errors import ConfigError, CraftlibError, RunError
from craftlib.evaluate import score
from craftlib.options import (
    add_profile_option,
    max_steps_value,
    positive_float,
    positive_int,
    probability,
    seed_value,
)
from craftlib.runs import RECIPES
from craftlib.tags import check_dataset, italic_flags, load_dataset, profile_splits
from craftlib.threads import sized_for_sharing, training_callback

#: Columns of a windowed feature that are bookkeeping, not model inputs.
META_COLUMNS = ("sentence", "word_start", "word_end", "word_ids")


# ------------------------------------------------------------------------------ alignment, windows


def align_labels(
    word_ids: Sequence[int | None], word_labels: Sequence[int], label_all_subtokens: bool = False,
    labels: Sequence[str] = config.LABELS,
) -> list[int]:
    """Sub-token labels from word labels: the first sub-token of each word gets the word's label,
    special tokens and the other sub-tokens get ``-100`` (ignored by the loss).

    With ``label_all_subtokens=True`` the other sub-tokens get the word's label too, ``B-X`` becoming
    ``I-X`` after the first sub-token so that the sequence stays valid IOB2.
    """
    out, previous = [], None
    for wid in word_ids:
        if wid is None or wid < 0:
            out.append(-100)
        elif wid != previous:
            out.append(int(word_labels[wid]))
        elif label_all_subtokens:
            name = labels[word_labels[wid]]
            out.append(labels.index("I-" + name[2:]) if name.startswith("B-") else int(word_labels[wid]))
        else:
            out.append(-100)
        previous = wid if wid is not None and wid >= 0 else None
    return out


def make_windows(word_lengths: Sequence[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Cut a sentence into word ranges ``(start, end)`` of at most ``budget`` sub-tokens each.

    Consecutive windows overlap by up to ``stride`` sub-tokens (whole words), every word is in at least
    one window, and each window starts at least one word after the previous one. A single word longer
    than the budget gets a window of its own (the tokenizer truncates it; its first sub-token is kept).
    """
    n = len(word_lengths)
    windows: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end, total = start, 0
        while end < n and (end == start or total + word_lengths[end] <= budget):
            total += word_lengths[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            break
        nxt, overlap = end, 0
        while nxt > start + 1 and overlap + word_lengths[nxt - 1] <= stride:
            nxt -= 1
            overlap += word_lengths[nxt]
        start = nxt
    return windows


#: Marker tokens shown before a word to say how it was written (``case_markers=True``). An uncased model
#: (MiniLM lower-cases everything) cannot see that "PAX6", "Pax6" and "pax6" differ; these markers reuse ids
#: of BERT's unused vocabulary, so no embedding row is added. Markers carry no label (-100) and get no prediction.
CASE_MARKERS = {"title": "[unused1]", "upper": "[unused2]", "mixed": "[unused3]"}


def case_class(word: str) -> str | None:
    """``"upper"`` (BMP4, DNA), ``"title"`` (Pax6, Mouse), ``"mixed"`` (mRNA, cAMP, XpdTTD) or ``None``
    (lower case, or no letter)."""
    letters = [c for c in word if c.isalpha()]
    if not any(c.isupper() for c in letters):
        return None
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return "upper"
    if letters[0].isupper() and word[0] == letters[0] and not any(c.isupper() for c in letters[1:]):
        return "title"
    return "mixed"


def add_case_markers(tokenizer):
    """Register the :data:`CASE_MARKERS` with ``tokenizer`` as unsplittable, un-lower-cased tokens (in place;
    a no-op when present). They are saved with the tokenizer, so a trained run predicts with them too."""
    from tokenizers import AddedToken

    missing = [m for m in CASE_MARKERS.values() if m not in tokenizer.get_added_vocab()]
    if missing:
        tokenizer.add_tokens([AddedToken(m, normalized=False, special=True) for m in missing])
    return tokenizer


#: The marker shown before a word that was set in italics (``italic_markers=True``; an ablation, see
#: :func:`craftlib.tags.italic_flags`): gene symbols are italic by nomenclature convention, and CRAFT's Gene label
#: mostly follows its typography layer, which plain text loses. Another id of BERT's unused vocabulary.
ITALIC_MARKER = "[unused4]"


def add_italic_marker(tokenizer):
    """Register :data:`ITALIC_MARKER` with ``tokenizer`` like :func:`add_case_markers` (in place)."""
    from tokenizers import AddedToken

    if ITALIC_MARKER not in tokenizer.get_added_vocab():
        tokenizer.add_tokens([AddedToken(ITALIC_MARKER, normalized=False, special=True)])
    return tokenizer


def _with_markers(words: Sequence[str], case: bool = True,
                  italic: Sequence[bool] | None = None) -> tuple[list[str], list[int]]:
    """Words with an italic marker before each italic word (``italic``: one flag per word) and a case marker
    before each cased word (``case``), and for each of them its original word index (-1: marker)."""
    out, owner = [], []
    for i, w in enumerate(words):
        if italic is not None and italic[i]:
            out.append(ITALIC_MARKER)
            owner.append(-1)
        kind = case_class(w) if case else None
        if kind is not None:
            out.append(CASE_MARKERS[kind])
            owner.append(-1)
        out.append(w)
        owner.append(i)
    return out, owner


def encode_windows(
    tokenizer, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[int]] | None = None,
    max_length: int = 128, stride: int = 32, label_all_subtokens: bool = False, first_index: int = 0,
    case_markers: bool = False, italic: Sequence[Sequence[bool]] | None = None,
) -> dict[str, list]:
    """Tokenize pre-split sentences into model windows (columns of a ``datasets`` batch).

    Returns ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the model has them), ``labels``
    (when ``tags`` are given) and the bookkeeping columns ``sentence`` (index, offset by ``first_index``),
    ``word_start``/``word_end`` (the window's word range) and ``word_ids`` (sentence-level word index of
    each sub-token, ``-1`` for special tokens) used by :func:`merge_windows`.

    ``case_markers=True`` puts a :data:`CASE_MARKERS` token before every cased word (the tokenizer must have them:
    :func:`add_case_markers`); markers count towards the window budget and get ``word_ids`` ``-1``. ``italic``
    (one flag per word of each sentence) puts :data:`ITALIC_MARKER` before every italic word the same way.
    """
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1 or stride >= budget:
        raise CraftlibError(f"max_length={max_length} leaves no room for stride={stride}: use a smaller stride.")
    sentences = [list(s) for s in sentences]
    if italic is not None and len(italic) != len(sentences):
        raise CraftlibError(f"{len(italic)} rows of italic flags for {len(sentences)} sentences.")
    if case_markers or italic is not None:
        marked = [_with_markers(words, case_markers, None if italic is None else italic[i])
                  for i, words in enumerate(sentences)]
    else:
        marked = [(words, list(range(len(words)))) for words in sentences]
    # counting only (no truncation here): verbose=False silences the "longer than the maximum" warning,
    # since long sentences are exactly what the windows below handle
    counts = (tokenizer([m[0] for m in marked], is_split_into_words=True, add_special_tokens=False, verbose=False)
              if sentences else None)
    pieces, owners, piece_owner = [], [], []
    for i, words in enumerate(sentences):
        expanded, owner = marked[i]
        lengths = [0] * len(words)
        # a marker's sub-token counts for the word it precedes
        word_of, following = list(owner), -1
        for k in range(len(owner) - 1, -1, -1):
            if owner[k] >= 0:
                following = owner[k]
            else:
                word_of[k] = following
        for wid in counts.word_ids(i):
            if wid is not None:
                lengths[word_of[wid]] += 1
        first = {}
        for k, o in enumerate(word_of):
            first.setdefault(o, k)
        for start, end in make_windows(lengths, budget, stride):
            lo, hi = first[start], (first[end] if end < len(words) else len(expanded))
            pieces.append(expanded[lo:hi])
            piece_owner.append(owner[lo:hi])
            owners.append((i, start, end))
    out: dict[str, list] = {"sentence": [], "word_start": [], "word_end": [], "word_ids": []}
    if tags is not None:
        out["labels"] = []
    if not pieces:
        return out | {"input_ids": [], "attention_mask": []}
    enc = tokenizer(pieces, is_split_into_words=True, truncation=True, max_length=max_length)
    for key, values in enc.items():
        out[key] = list(values)
    for j, (i, start, end) in enumerate(owners):
        wids = [-1 if w is None else piece_owner[j][w] for w in enc.word_ids(j)]
        out["sentence"].append(first_index + i)
        out["word_start"].append(start)
        out["word_end"].append(end)
        out["word_ids"].append(wids)
        if tags is not None:
            out["labels"].append(align_labels(wids, tags[i], label_all_subtokens))
    return out


def merge_windows(
    n_words: Sequence[int], features: Sequence[dict], predictions: Sequence[Sequence[int]], fill: int = 0,
) -> tuple[list[list[int]], int]:
    """Word-level label ids for every sentence from window predictions.

    ``features[k]`` holds ``sentence``, ``word_start``, ``word_end``, ``word_ids`` of window ``k`` and
    ``predictions[k]`` its per-sub-token label ids (padding beyond ``len(word_ids)`` is ignored). A word
    seen by several windows takes the prediction of the window where it is farthest from a window edge.
    Words without any sub-token (rare: characters the tokenizer drops) get ``fill`` (``O``); their count
    is returned as the second value.
    """
    out = [[fill] * n for n in n_words]
    best = [[-1] * n for n in n_words]
    for feat, pred in zip(features, predictions):
        s, start, end, wids = feat["sentence"], feat["word_start"], feat["word_end"], feat["word_ids"]
        previous = -1
        for pos, wid in enumerate(wids):
            if wid >= 0 and wid != previous:
                context = min(wid - start, end - 1 - wid)
                if context > best[s][wid]:
                    best[s][wid], out[s][wid] = context, int(pred[pos])
            previous = wid
    missing = sum(b < 0 for row in best for b in row)
    return out, missing


@contextlib.contextmanager
def _datasets_bars(enabled: bool):
    """``datasets``' own progress bars (``map``'s "tokenizing") on or off for a block; the caller's setting is
    restored on exit."""
    import datasets

    was = datasets.is_progress_bar_enabled()
    if was and not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was and not enabled:
            datasets.enable_progress_bars()


def featurize(dataset, tokenizer, max_length: int, stride: int, label_all_subtokens: bool = False,
              with_labels: bool = True, case_markers: bool = False, progress: bool = True,
              italic_markers: bool = False):
    """Windowed features of a ``datasets.Dataset`` with ``tokens`` (and ``ner_tags``; ``italic`` flags when
    ``italic_markers``); ``progress=False``: no "tokenizing" bar (``train --no-progress``)."""

    def fn(batch, indices):
        return encode_windows(
            tokenizer, batch["tokens"], batch["ner_tags"] if with_labels else None,
            max_length, stride, label_all_subtokens, first_index=indices[0] if indices else 0,
            case_markers=case_markers, italic=batch["italic"] if italic_markers else None,
        )

    with _datasets_bars(progress):
        return dataset.map(fn, batched=True, with_indices=True, remove_columns=dataset.column_names,
                           desc="tokenizing")


# ---------------------------------------------------------------------------------------- data


def _check_labels(dataset) -> None:
    feature = dataset.features["ner_tags"]
    names = list(getattr(getattr(feature, "feature", None), "names", []) or [])
    if names and names != list(config.LABELS):
        raise CraftlibError(
            f"The dataset's labels {names} are not craftlib's LABELS {list(config.LABELS)}: rebuild it with "
            "`python -m craftlib data`."
        )


def load_recipe_data(
    recipe_step: str, profile: config.Profile, seed: int, annotation_set: str, data_dir=None,
) -> dict:
    """Train/validation/test ``datasets.Dataset`` for one training step.

    ``recipe_step`` is ``"original"`` or ``"augmented"``. With a ``max_train_sentences`` limit the same
    original sentences are drawn for every recipe (seeded shuffle); the augmented step adds the augmented
    copies of exactly those sentences.
    """
    if profile.italic_markers and recipe_step == "augmented":
        raise ConfigError("--italic-markers: the augmented copies carry no typesetting (their ontology names were "
                          "never set in a journal's italics); use --recipe single.")
    original = load_dataset(profile=profile.name, annotation_set=annotation_set, data_dir=data_dir)
    _check_labels(original["train"])
    splits = profile_splits(original, profile, seed)  # the sentences every system uses
    train = splits["train"]
    if profile.italic_markers:
        root = fetch_craft(data_dir=data_dir, progress=False)
        splits = {k: v.add_column("italic", italic_flags(v, root)) for k, v in splits.items()}
        train = splits["train"]
    if recipe_step == "augmented":
        from craftlib.augment import load_augmented

        augmented = load_augmented(profile=profile.name, annotation_set=annotation_set, data_dir=data_dir,
                                   ratio=profile.replace_prob, seed=seed)
        aug_train = augmented["train"]
        _check_labels(aug_train)
        if profile.max_train_sentences is not None:
            keep = set(zip(train["doc_id"], train["sentence_id"]))
            with _datasets_bars(False):  # seconds; its bar would stay on screen
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


def _optimizer_name(device) -> str:
    """Fused AdamW (one kernel over all parameters: the same AdamW update, about 1.5x faster steps on a CPU)
    where this torch has it for the device, else the plain ``adamw_torch``."""
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
    from transformers import TrainingArguments

    from craftlib.runtime import detect_device

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
        optim=_optimizer_name(device),
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


def autocast(device):
    """``torch.autocast`` in the device's mixed precision (bf16 on a CPU with native bf16, bf16/fp16 on a GPU),
    a no-op context in fp32."""
    import contextlib

    import torch

    if device.bf16 or device.fp16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if device.bf16 else torch.float16)
    return contextlib.nullcontext()


def predict_windows(model, tokenizer, features: dict, batch_size: int = 32, device=None,
                    progress: bool = False, desc: str = "predicting") -> tuple[list[list[int]], float | None]:
    """Label ids of every sub-token of every window in ``features`` (columns of :func:`encode_windows`), and the
    mean cross-entropy over labelled sub-tokens when ``features`` has ``labels``.

    Windows are sorted by length and batched (little padding), run under ``torch.inference_mode`` and the
    device's autocast, and returned in their original order.
    """
    import torch

    from craftlib.runtime import detect_device

    device = device or detect_device()
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features]
    n = len(features["input_ids"])
    order = sorted(range(n), key=lambda i: len(features["input_ids"][i]))
    labelled = "labels" in features
    model.eval()
    where = next(model.parameters()).device
    out: list[list[int] | None] = [None] * n
    total_loss, total_tokens = 0.0, 0
    pad_id = tokenizer.pad_token_id or 0
    # shown on the current training's bar (session.activity), else on a bar that disappears when done
    with torch.inference_mode(), autocast(device), session.activity(math.ceil(n / batch_size), desc,
                                                                     progress=progress) as advance:
        for b in range(0, n, batch_size):
            advance()
            idx = order[b:b + batch_size]
            width = len(features["input_ids"][idx[-1]])
            batch = {}
            for k in inputs:
                fill = pad_id if k == "input_ids" else 0
                batch[k] = torch.tensor([features[k][i] + [fill] * (width - len(features[k][i])) for i in idx],
                                        device=where)
            logits = model(**batch).logits
            if labelled:
                labels = torch.tensor([features["labels"][i] + [-100] * (width - len(features["labels"][i]))
                                       for i in idx], device=where)
                mask = labels != -100
                if mask.any():
                    total_loss += float(torch.nn.functional.cross_entropy(
                        logits[mask].float(), labels[mask], reduction="sum"))
                    total_tokens += int(mask.sum())
            for i, row in zip(idx, logits.argmax(-1).tolist()):
                out[i] = row[:len(features["input_ids"][i])]
    return out, (total_loss / total_tokens if labelled and total_tokens else None)


def _to_tags(ids: list[list[int]], model) -> list[list[str]]:
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return [tag_names(row, id2label) for row in ids]


class _DevEval:
    """Dev scoring after each epoch (a ``TrainerCallback``): windows predicted by :func:`predict_windows`, merged
    back to words, scored by :func:`craftlib.evaluate.score`; the row goes into the Trainer's log history
    (``eval_loss``, ``eval_f1``, ...). Keeps the last predictions: they are the final model's dev predictions."""

    def __init__(self, features: dict, dataset, tokenizer, batch_size: int, device, progress: bool):
        self.features, self.tokenizer, self.batch_size = features, tokenizer, batch_size
        self.device, self.progress = device, progress
        self.n_words = [len(t) for t in dataset["tokens"]]
        self.gold = dataset_tags(dataset)
        self.meta = [{k: features[k][i] for k in META_COLUMNS} for i in range(len(features["input_ids"]))]
        self.last_pred: tuple[list[list[str]], int] | None = None
        self.last_step = -1

    def evaluate(self, model) -> tuple[dict, tuple[list[list[str]], int]]:
        ids, loss = predict_windows(model, self.tokenizer, self.features, self.batch_size, self.device,
                                    self.progress, desc="dev")
        words, missing = merge_windows(self.n_words, self.meta, ids)
        pred = _to_tags(words, model)
        result = score(self.gold, pred)
        row = {"eval_loss": loss, **{f"eval_{k}": result[k] for k in ("precision", "recall", "f1", "accuracy",
                                                                       "macro_f1")}}
        return row, (pred, missing)

    def callback(self):
        from transformers import TrainerCallback

        outer = self

        class DevEvalCallback(TrainerCallback):
            def on_epoch_end(self, args, state, control, model=None, **kwargs):
                if state.is_world_process_zero and state.global_step != outer.last_step:
                    was_training = model.training
                    row, outer.last_pred = outer.evaluate(model)
                    outer.last_step = state.global_step
                    state.log_history.append({"epoch": round(state.epoch, 4), "step": state.global_step, **row})
                    model.train(was_training)
                return control

        return DevEvalCallback()


def live_progress() -> bool:
    """Whether progress bars have someone to look at them: a Jupyter frontend (JupyterLab, VS Code) drawing a
    live kernel, or a terminal. ``False`` under papermill/nbclient and when output goes to a file (CI logs)."""
    import sys

    from craftlib.runtime import has_widget_frontend

    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None and hasattr(ipython.get_ipython(), "kernel"):
        return has_widget_frontend()
    return sys.stderr.isatty()


def _use_craftlib_progress(trainer, progress: bool) -> None:
    """Replace the Trainer's printer/progress callbacks (which print raw dicts of numbers) with
    :func:`_progress_callback`: a bar per training, named after its run (:mod:`craftlib.session`), when
    ``progress``, and one short line per epoch either way."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    printers = [PrinterCallback, ProgressCallback]
    try:  # the notebook printer needs IPython, and Trainer adds it only where IPython runs a notebook
        from transformers.utils.notebook import NotebookProgressCallback
    except ImportError:
        pass
    else:
        printers.append(NotebookProgressCallback)
    for cls in printers:
        trainer.remove_callback(cls)
    trainer.add_callback(_progress_callback(progress))


def _progress_callback(progress: bool):
    """The Trainer's display: the current training's bar (:func:`craftlib.session.training_bar`: named after its run
    and "k of N", one line once done), its loss, and one short line per epoch either way."""
    from transformers import TrainerCallback

    class CraftlibProgress(TrainerCallback):
        def __init__(self):
            self.bar, self.owned = None, False
            self.loss = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and progress:
                self.bar, self.owned = session.training_bar(state.max_steps, state.global_step, progress)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if "loss" in logs:
                self.loss = logs["loss"]
                if self.bar is not None:
                    self.bar.update(postfix=f"loss {logs['loss']:.3f}")
            if "eval_f1" in logs:
                self._epoch_line(logs, state)

        def on_epoch_end(self, args, state, control, **kwargs):
            # _DevEval (registered before this callback) appends its dev scores to the log history
            last = state.log_history[-1] if state.log_history else {}
            if state.is_world_process_zero and "eval_f1" in last and last.get("step") == state.global_step:
                self._epoch_line(last, state)

        def _epoch_line(self, logs, state):
            loss = logs.get("eval_loss")
            now = session.current()
            line = ((f"{now.label}: " if now is not None else "")
                    + f"epoch {logs.get('epoch', state.epoch or 0):.2f} (step {state.global_step}/{state.max_steps}): "
                    f"dev F1 {logs['eval_f1']:.3f}" + (f", dev loss {loss:.3f}" if loss is not None else "")
                    + (f", train loss {self.loss:.3f}" if self.loss is not None else ""))
            (self.bar.write if self.bar is not None else print)(line)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None and self.owned:  # a bar of its own (no current training): one line now
                self.bar.close(f"done: training, {state.global_step} steps")
                self.bar = None
            elif self.bar is not None:  # the training's bar: it becomes one line once the run is written
                self.bar.note("trained; scoring and saving")

    return CraftlibProgress()


def fine_tune(
    model, tokenizer, data: dict, profile: config.Profile, seed: int, output_dir: Path,
    label_all_subtokens: bool = False, progress: bool = True, save_checkpoints: bool = False, resume: bool = False,
) -> StepResult:
    """One fine-tuning step with ``transformers.Trainer`` (dev scored after each epoch); returns the trained model
    and, in ``dev_predictions``, the word-level dev tags of the final weights (no second dev pass needed).

    ``resume=True`` (``output_dir`` survives an interrupt: :func:`craftlib.cache.resumable_dir`): a checkpoint every
    :func:`craftlib.session.checkpoint_minutes` of training in ``output_dir/checkpoints``, and training resumes from
    the latest one found there (``train_seconds`` counts the time before the interruption too)."""
    from transformers import DataCollatorForTokenClassification, Trainer, set_seed

    from craftlib.runtime import detect_device

    set_seed(seed)
    device = detect_device()
    if profile.case_markers:
        add_case_markers(tokenizer)
    if profile.italic_markers:
        add_italic_marker(tokenizer)
    train_feats = featurize(data["train"], tokenizer, profile.max_length, profile.window_stride, label_all_subtokens,
                            case_markers=profile.case_markers, progress=progress,
                            italic_markers=profile.italic_markers)
    dev_feats = encode_windows(tokenizer, data["validation"]["tokens"], data["validation"]["ner_tags"],
                               profile.max_length, profile.window_stride, case_markers=profile.case_markers,
                               italic=data["validation"]["italic"] if profile.italic_markers else None)
    dev_eval = _DevEval(dev_feats, data["validation"], tokenizer, max(32, profile.eval_batch_size), device, progress)
    per_epoch = math.ceil(len(train_feats) / (profile.batch_size * _world_size()))
    total = profile.max_steps if profile.max_steps > 0 else math.ceil(per_epoch * profile.epochs)
    minutes = session.checkpoint_minutes() if resume else None
    checkpoint = session.latest_checkpoint(output_dir / "checkpoints") if resume else None
    before = session.elapsed_at(checkpoint)  # seconds trained before an interruption
    trainer = Trainer(
        model=model,
        args=_training_args(output_dir / "checkpoints", profile, seed, progress, save_checkpoints, device, total),
        data_collator=DataCollatorForTokenClassification(tokenizer),
        train_dataset=train_feats.remove_columns(list(META_COLUMNS)),
        processing_class=tokenizer,
        # training_callback: follows the CPU load; work_callback: what a stop reports, resumable checkpoints
        callbacks=[dev_eval.callback(), training_callback(), session.work_callback(minutes, before)],
    )
    _use_craftlib_progress(trainer, progress)  # bars in a live kernel, short lines elsewhere (no raw dicts)
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
    return StepResult(
        model=model, log_history=list(trainer.state.log_history), train_seconds=seconds,
        tokens_seen=int(trainer.state.num_input_tokens_seen), train_sentences=len(data["train"]),
        train_windows=len(train_feats), global_step=int(trainer.state.global_step),
        dev_predictions=dev_eval.last_pred,
    )


def predict_dataset(model, tokenizer, dataset, max_length: int, stride: int, batch_size: int = 32,
                    progress: bool = False, case_markers: bool = False,
                    italic_markers: bool = False) -> tuple[list[list[str]], int]:
    """Word-level predicted tags for every sentence of ``dataset`` (a ``datasets.Dataset`` or a list of token
    lists), via windows (:func:`predict_windows`: length-sorted batches, inference mode, the device's autocast);
    returns ``(tags, words_without_subtoken)``. ``italic_markers``: the dataset's ``italic`` column gives the
    italic words (:func:`craftlib.tags.italic_flags`)."""
    sentences = dataset["tokens"] if hasattr(dataset, "column_names") else [list(s) for s in dataset]
    if case_markers:
        add_case_markers(tokenizer)
    italic = None
    if italic_markers:
        if not hasattr(dataset, "column_names") or "italic" not in dataset.column_names:
            raise ConfigError("This model was trained with italic markers: its input needs the words' italics "
                              "(a dataset with an `italic` column, see craftlib.tags.italic_flags).")
        add_italic_marker(tokenizer)
        italic = dataset["italic"]
    feats = encode_windows(tokenizer, sentences, None, max_length, stride, case_markers=case_markers, italic=italic)
    meta = [{k: feats[k][i] for k in META_COLUMNS} for i in range(len(feats["input_ids"]))]
    ids, _ = predict_windows(model, tokenizer, feats, batch_size, progress=progress)
    words, missing = merge_windows([len(s) for s in sentences], meta, ids)
    return _to_tags(words, model), missing


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


def plot_learning_curve(log: Sequence[dict] | str | os.PathLike, title: str = "", ax=None):
    """Training loss per logged step and dev loss/F1 per epoch (one panel; F1 on the right axis).

    Draws on ``ax``; without one, on a new pyplot figure (interactive use: it shows like any other plot).
    """
    import pandas as pd

    df = pd.read_csv(log) if isinstance(log, (str, os.PathLike)) else pd.DataFrame(list(log))
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 3.5))
    # one x axis across steps: step-2 epochs continue after step 1
    offset, xs = 0.0, []
    for name, part in df.groupby("step_name", sort=False):
        xs.append(part["epoch"].fillna(0) + offset)
        offset += float(part["epoch"].max() or 0)
    df = df.assign(x=pd.concat(xs))
    train = df[df.get("loss").notna()] if "loss" in df else df.iloc[0:0]
    dev = df[df["eval_f1"].notna()] if "eval_f1" in df else df.iloc[0:0]
    if len(train):
        ax.plot(train["x"], train["loss"], label="train loss", color="tab:blue", alpha=0.7)
    if len(dev):
        ax.plot(dev["x"], dev["eval_loss"], "o-", label="dev loss", color="tab:orange")
        ax2 = ax.twinx()
        ax2.plot(dev["x"], dev["eval_f1"], "s--", label="dev F1", color="tab:green")
        ax2.set_ylabel("dev F1 (seqeval)")
        ax2.set_ylim(0, 1)
        ax2.legend(loc="upper right")
    ax.set_xlabel("epoch (two-step: step-2 epochs follow step 1)")
    ax.set_ylabel("loss")
    ax.legend(loc="upper left")
    ax.set_title(title)
    return ax


def _fmt(x, digits: int = 4) -> str:
    return "No log" if x is None else f"{x:.{digits}f}"


#: The model card's layout (``string.Template``), filled by :func:`model_card`.
MODEL_CARD_TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"
#: One sentence per recipe for the model card.
RECIPE_TEXT = {
    "single": "fine-tuned once on the original CRAFT training sentences",
    "augmented": "fine-tuned once on the original plus the ontology-augmented CRAFT training sentences",
    "two-step": "fine-tuned first on the original plus augmented CRAFT training sentences (step 1), then again "
                "on the original sentences from the step-1 weights with a fresh optimizer and schedule (step 2)",
}


def model_card(metrics: dict) -> str:
    """Model card in the format of the reference card (Trainer-generated), filled from ``metrics`` only
    (layout: ``craftlib/templates/model_card.md``)."""
    m, p, dev, test, v = metrics, metrics["hyperparameters"], metrics["dev"], metrics["test"], metrics["versions"]
    two_step = m["recipe"] == "two-step"
    rows = "\n".join(
        f"| {_fmt(e['train_loss'])} | {e['epoch']:.2f} | {e['step']} | {_fmt(e['eval_loss'])} | "
        f"{e['precision']:.4f} | {e['recall']:.4f} | {e['f1']:.4f} | {e['accuracy']:.4f} |"
        + (f" {e['step_name']} |" if two_step else "")
        for e in m["dev_epochs"]
    )
    per_type = "\n".join(f"| {t} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | {r['support']} |"
                         for t, r in test["per_type"].items())
    fields = {
        "run": m["run"], "base_model": m["base_model"], "base_model_resolved": m["base_model_resolved"],
        "recipe_text": RECIPE_TEXT[m["recipe"]], "dataset": m["dataset"], "profile": m["profile"],
        "dev_loss": _fmt(m["dev_epochs"][-1]["eval_loss"] if m["dev_epochs"] else None),
        **{f"{name}_{k}": f"{split[k]:.4f}" for name, split in (("dev", dev), ("test", test))
           for k in ("precision", "recall", "f1", "accuracy")},
        "test_tokens": test["tokens"], "test_sentences": test["sentences"], "dev_sentences": dev["sentences"],
        "command": m["command"], "profile_description": m["profile_description"],
        "craft_version": config.CRAFT_VERSION, "annotation_set": m["annotation_set"],
        "train_sentences": m["train_sentences"], "per_type": per_type,
        "learning_rate": p["learning_rate"], "batch_size": p["batch_size"], "eval_batch_size": p["eval_batch_size"],
        "seed": m["seed"],
        "epochs": f"{p['epochs']}" + ("" if p["max_steps"] in (-1, None) else f" (max_steps: {p['max_steps']})"),
        "max_length": p["max_length"], "window_stride": p["window_stride"], "precision_mode": m["precision_mode"],
        "extra_head": " Stage |" if two_step else "", "extra_rule": ":-----:|" if two_step else "", "rows": rows,
        "train_seconds": f"{m['train_seconds']:.1f}", "hardware": m["hardware"],
        "tokens_per_second": f"{m['tokens_per_second']:.0f}",
        **{k: v.get(k) for k in ("transformers", "torch", "datasets", "tokenizers")},
    }
    return Template(MODEL_CARD_TEMPLATE.read_text(encoding="utf-8")).substitute(fields)


# ------------------------------------------------------------------------------------ recipes


@dataclass(frozen=True)
class RunSpec:
    """A transformer run: its recipe and everything its numbers depend on, and where it reads and writes."""

    recipe: str
    profile: config.Profile
    base_model: str = "minilm"
    seed: int = 42
    annotation_set: str = "proper"
    data_dir: str | os.PathLike | None = None
    models_dir: str | os.PathLike | None = None
    label_all_subtokens: bool = False

    @property
    def name(self) -> str:
        return runs.run_name(self.recipe, self.base_model, self.profile, self.seed, self.annotation_set,
                             self.label_all_subtokens)

    @property
    def run_dir(self) -> Path:
        return config.models_dir(self.models_dir) / self.name

    @property
    def command(self) -> str:
        return runs.train_command(self.recipe, self.profile, self.base_model, self.seed, self.annotation_set,
                                  self.data_dir, self.models_dir, self.label_all_subtokens)

    def settings(self) -> dict:
        """The metrics fields a run must match to be reused as another run's step 1."""
        return {"profile": self.profile.name, "seed": self.seed, "base_model": str(self.base_model),
                "annotation_set": self.annotation_set, "label_all_subtokens": self.label_all_subtokens,
                "hyperparameters": self.profile.to_dict()}


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

    def add_previous_run(self, step: Step, run_dir: Path, reused: bool) -> None:
        """A finished run that is this run's ``step`` (a two-step run's step 1): its log, epochs and timings."""
        import pandas as pd

        m = json.loads((run_dir / "metrics.json").read_text())
        self.logs += pd.read_csv(run_dir / "training_log.csv").to_dict("records")
        self.epochs += [e | {"step_name": step.name} for e in m["dev_epochs"]]
        self.steps.append({"name": step.name, "data": step.data, "from": str(self.spec.base_model),
                           "run": run_dir.name, "reused": reused, "train_seconds": m["train_seconds"],
                           "tokens_seen": m["tokens_seen"], "train_sentences": m["train_sentences"]})

    def add_step(self, step: Step, start_from: str, result: StepResult) -> None:
        """A step trained by this run (:func:`fine_tune`)."""
        log, ep = _epoch_rows(result.log_history, step.name)
        self.logs += log
        self.epochs += ep
        self.steps.append({"name": step.name, "data": step.data, "from": start_from, "run": self.spec.name,
                           "reused": False, "train_seconds": result.train_seconds, "tokens_seen": result.tokens_seen,
                           "train_sentences": result.train_sentences, "train_windows": result.train_windows,
                           "global_step": result.global_step, "processes": _world_size()})

    def metrics(self, dev: dict, test: dict, uncovered: dict) -> dict:
        """``metrics.json`` of the finished run (:func:`craftlib.runs.metrics_core` plus the transformer fields)."""
        import torch

        from craftlib.models import model_info, portable_model_name
        from craftlib.runtime import detect_device, versions

        spec, prof = self.spec, self.spec.profile
        device = detect_device()
        train_seconds = sum(s["train_seconds"] for s in self.steps)
        tokens_seen = sum(s["tokens_seen"] for s in self.steps)
        core = runs.metrics_core(spec.name, "transformer", prof, spec.seed,
                                 config.dataset_name(prof, spec.annotation_set), spec.recipe, spec.base_model)
        return {
            **core, "base_model_resolved": portable_model_name(spec.base_model),
            "base_model_info": model_info(spec.base_model), "annotation_set": spec.annotation_set, "dev": dev, "test": test, "dev_epochs": self.epochs, "steps": self.steps,
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
    metrics = Path(start) / "metrics.json"
    if metrics.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            origin["created"] = json.loads(metrics.read_text()).get("created")
    processed = config.processed_dir(spec.profile, spec.annotation_set, spec.data_dir)
    inputs = {"dataset": cache.recorded_inputs(processed),
              "augmented": cache.recorded_inputs(processed / "augmented") if step.data == "augmented" else None}
    return {"run": spec.name, "step": step.name, "data": step.data, "settings": spec.settings(), "inputs": inputs,
            **origin}


def _reusable_step1(run_dir: Path, expected: dict) -> bool:
    path = run_dir / "metrics.json"
    if not (path.is_file() and (run_dir / "config.json").is_file()):
        return False
    try:
        metrics = json.loads(path.read_text())
    except ValueError:  # damaged: retrain it
        return False
    if not isinstance(metrics, dict):
        return False
    recorded = metrics.get("hyperparameters")
    if isinstance(recorded, dict) and isinstance(expected.get("hyperparameters"), dict):
        # a field added to Profile after the run was trained counts as its default (e.g. italic_markers)
        defaults = {f.name: f.default for f in dataclasses.fields(config.Profile)
                    if f.default is not dataclasses.MISSING}
        metrics = {**metrics, "hyperparameters": {
            **{k: v for k, v in expected["hyperparameters"].items()
               if k not in recorded and k in defaults and v == defaults[k]}, **recorded}}
    return all(metrics.get(k) == v for k, v in expected.items())


@session.training_entry  # library bars off; an interrupt ends in one line that says what was kept
@sized_for_sharing  # threads sized to the cores other processes leave free; the caller's count restored
def train_recipe(
    recipe: str,
    profile: str | config.Profile | None = None,
    base_model: str = "minilm",
    seed: int = 42,
    annotation_set: str = "proper",
    data_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    label_all_subtokens: bool = False,
    reuse_step1: bool = True,
    progress: bool | None = None,
    save_checkpoints: bool = False,
    reuse: bool = False,
) -> Path:
    """Train one recipe (its :data:`PLANS` entry) and write ``models/<run>/`` (see ARCHITECTURE.md); return that
    directory.

    The plan: a ``two-step`` run takes its step 1 from the ``augmented`` run of the same settings (trained first
    when there is none, or when ``reuse_step1=False``), then :func:`fine_tune` runs once on the last step's data.

    ``progress``: ``tqdm.auto`` bars per training step and per prediction pass (``None``: when someone can see
    them, :func:`live_progress`: in JupyterLab or a terminal, not under papermill or in CI logs); training
    always prints one short line per epoch.

    ``models/<run>/`` gets the model and tokenizer (``save_pretrained``), ``metrics.json``,
    ``training_log.csv``, ``learning_curve.png``, ``README.md`` (model card) and
    ``predictions_{validation,test}.jsonl``.

    ``reuse=True``: a finished run of the same name and settings is returned as it is, not trained again. An
    interrupted training keeps its resumable folder (``models/.resume-<run>-<key>/``, :func:`_resume_key`) with a
    checkpoint every :func:`craftlib.session.checkpoint_minutes`; the next call resumes from it, and the stop itself
    is one line (:class:`craftlib.session.Stopped`).
    """
    from craftlib.models import check_max_length, load_model, load_tokenizer
    from craftlib.runtime import seed_everything

    if recipe not in PLANS:
        raise CraftlibError(f"Unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}.")
    spec = RunSpec(recipe, config.get_profile(profile), base_model, seed, annotation_set, data_dir, models_dir,
                   label_all_subtokens)
    check_max_length(base_model, spec.profile.max_length)  # before any work, not on the first long sentence
    progress = live_progress() if progress is None else progress
    run_dir = spec.run_dir
    if reuse and _reusable_step1(run_dir, spec.settings()):  # a finished run of these settings
        session.reused(spec.name, run_dir)
        return run_dir
    seed_everything(seed)
    record = RunRecord(spec)
    *earlier, step = PLANS[recipe]
    start, start_from = base_model, str(base_model)
    if earlier:  # two-step: step 1 is the augmented run (PLANS["augmented"]), reused when one matches
        step1 = dataclasses.replace(spec, recipe="augmented")
        reused = reuse_step1 and _reusable_step1(step1.run_dir, step1.settings())
        if not reused:
            train_recipe("augmented", spec.profile, base_model, seed, annotation_set, data_dir, models_dir,
                         label_all_subtokens, progress=progress, save_checkpoints=save_checkpoints)
        record.add_previous_run(earlier[0], step1.run_dir, reused)
        start, start_from = step1.run_dir, step1.run_dir.name
    tokenizer = load_tokenizer(start)
    model = load_model(start)

    with _main_process_first(), _datasets_bars(progress):  # several processes: the first builds missing data
        data = load_recipe_data(step.data, spec.profile, seed, annotation_set, data_dir)
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
        result = fine_tune(model, tokenizer, data, spec.profile, seed, build_dir, label_all_subtokens, progress,
                           save_checkpoints, resume=resumable)
        if result.global_step < 1:
            raise ConfigError(f"{spec.name}: step {step.name} made no optimizer step ({result.train_sentences} "
                              "training sentences): there is nothing to train on; check the profile's data "
                              "limits and --max-steps / --epochs.")
        record.add_step(step, start_from, result)
        if _is_main_process():
            _write_outputs(build_dir, record, result.model, tokenizer, data, result.dev_predictions, progress)
    _barrier()
    return run_dir


def _write_outputs(run_dir: Path, record: RunRecord, model, tokenizer, data: dict, dev_predictions=None,
                   progress: bool = False) -> None:
    """Save the model, final dev/test predictions and scores, metrics.json, log, curve and card.

    ``dev_predictions`` (tags, words without sub-token) are the last epoch's dev predictions of these very
    weights: reused instead of predicting dev a second time."""
    import pandas as pd

    prof = record.spec.profile
    model.save_pretrained(run_dir, safe_serialization=True)
    tokenizer.save_pretrained(run_dir)

    # final dev and test metrics, computed once after training, on every CRAFT token
    split_scores, uncovered = {}, {}
    for split in ("validation", "test"):
        if split == "validation" and dev_predictions is not None:
            pred, missing = dev_predictions
        else:
            pred, missing = predict_dataset(model, tokenizer, data[split], prof.max_length, prof.window_stride,
                                            max(32, prof.eval_batch_size), progress=progress,
                                            case_markers=prof.case_markers, italic_markers=prof.italic_markers)
        gold = dataset_tags(data[split])
        runs.write_predictions(runs.predictions_path(run_dir, split), [
            {"doc_id": row["doc_id"], "sentence_id": row["sentence_id"], "tokens": row["tokens"], "gold": g, "pred": p}
            for row, g, p in zip(data[split], gold, pred)])
        split_scores[split] = score(gold, pred)
        uncovered[split] = missing

    metrics = record.metrics(split_scores["validation"], split_scores["test"], uncovered)
    pd.DataFrame(record.logs).to_csv(run_dir / "training_log.csv", index=False)
    _save_learning_curve(run_dir / "training_log.csv", run_dir / "learning_curve.png", record.spec.name)
    cache.atomic_write_text(run_dir / "README.md", model_card(metrics))
    runs.write_metrics(run_dir, metrics)  # last: its presence marks a complete run


def _save_learning_curve(csv_path: Path, png_path: Path, title: str) -> None:
    """Write the learning curve to ``png_path`` through a bare :class:`matplotlib.figure.Figure`: no pyplot
    state, no backend switch, so the caller's plots (a notebook's inline backend) keep working."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    plot_learning_curve(csv_path, title=title, ax=fig.subplots())
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


def _world_size() -> int:
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def _main_process_first():
    """Under ``torchrun`` / ``accelerate launch``: a context where the main process runs first (it builds any
    missing dataset, entity lists or augmented set) and the others wait for it; a no-op in one process."""
    import contextlib

    if _world_size() == 1:
        return contextlib.nullcontext()
    from accelerate import PartialState

    from craftlib.runtime import detect_device

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
    from craftlib.models import check_max_length

    check_max_length(model_dir, max_length, model_config)
    refuse_italic_model(model_dir, hp)
    tokenizer, model = _load_for_prediction(model_dir)
    tags, _ = predict_dataset(model, tokenizer, sentences, max_length,
                              stride or hp.get("window_stride", 32), batch_size,
                              case_markers=bool(hp.get("case_markers", False)))
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
                       "train` (e.g. models/two-step-minilm-smoke).")
    metrics_path = model_dir / "metrics.json"
    metrics = None
    if metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text())
        except ValueError as err:
            raise RunError(f"{metrics_path} is not valid JSON ({err}): the run is damaged; {_RETRAIN}.") from err
        if not isinstance(metrics, dict):
            raise RunError(f"{metrics_path} is not a metrics object: the run is damaged; {_RETRAIN}.")
        if metrics.get("system", "transformer") != "transformer":
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
    from craftlib.models import load_model, load_tokenizer

    try:
        return load_tokenizer(model_dir), load_model(model_dir)
    except CraftlibError:
        raise
    except (OSError, ValueError, RuntimeError) as err:
        raise RunError(f"The model in {model_dir} cannot be loaded ({type(err).__name__}: {err}): its files are "
                       f"damaged or incomplete; {_RETRAIN}.") from err


# ------------------------------------------------------------------------------------------ CLI


def _cmd_train(args: argparse.Namespace) -> int:
    overrides = {f: getattr(args, f) for f in runs.CLI_OVERRIDES}
    run_dir = train_recipe(
        args.recipe, profile=config.get_profile(args.profile, **overrides), base_model=args.base_model, seed=args.seed,
        annotation_set=args.annotation_set, data_dir=args.data_dir, models_dir=args.models_dir,
        label_all_subtokens=args.label_all_subtokens, reuse_step1=not args.retrain_step1,
        progress=False if args.no_progress else None, save_checkpoints=args.save_checkpoints,
    )
    if _is_main_process():
        m = json.loads((run_dir / "metrics.json").read_text())
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
                             "e.g. single-minilm-quick-ep2)")
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
                   help="mark capitalised / all-caps / mixed-case words with a token the uncased model can see")
    g.add_argument("--italic-markers", action=argparse.BooleanOptionalAction, default=None,
                   help="an ablation: mark the words CRAFT's typography layer sets in italics (single recipe only; "
                        "a model trained so needs italics at prediction, which plain text lacks)")
    p.set_defaults(func=_cmd_train)

