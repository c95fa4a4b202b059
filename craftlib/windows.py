"""Sub-token alignment and windows: how a sentence of CRAFT words becomes model inputs, and how the model's
sub-token predictions become one tag per word again (what notebook 04 shows, and what training and prediction run).

Words are aligned to sub-tokens with ``word_ids()`` (first sub-token labelled, ``-100`` elsewhere;
``label_all_subtokens=True`` labels all). Sentences longer than ``max_length`` sub-tokens are cut, at word
boundaries, into windows overlapping by about ``window_stride`` sub-tokens (:func:`make_windows`,
:func:`encode_windows`); each word is predicted from the window where it has the most context
(:func:`merge_windows`). :func:`predict_dataset` runs the whole way for a model.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from craftlib import config, session
from craftlib.bio import allowed_transition, tag_names
from craftlib.errors import ConfigError, CraftlibError
from craftlib.runtime import datasets_bars, detect_device

#: How word tags are read from the model's scores (defined once, in :mod:`craftlib.config`).
DECODES = config.DECODES

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
    from tokenizers import AddedToken  # heavy: tokenizers, torch and transformers load only when used

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
    from tokenizers import AddedToken  # heavy: tokenizers, torch and transformers load only when used

    if ITALIC_MARKER not in tokenizer.get_added_vocab():
        tokenizer.add_tokens([AddedToken(ITALIC_MARKER, normalized=False, special=True)])
    return tokenizer


@dataclass(frozen=True)
class Markers:
    """What a model is shown besides the words of a dataset: a case marker before every cased word (``case``), an
    italic marker before every word the dataset's ``italic`` column flags (``italic``: the typography ablation)."""

    case: bool = False
    italic: bool = False

    @classmethod
    def of(cls, profile) -> Markers:
        """The markers a :class:`~craftlib.config.Profile` trains with (``case_markers``, ``italic_markers``)."""
        return cls(case=profile.case_markers, italic=profile.italic_markers)

    def add_to(self, tokenizer):
        """Register the marker tokens with ``tokenizer`` (in place; saved with it, so a trained run predicts with
        them too)."""
        if self.case:
            add_case_markers(tokenizer)
        if self.italic:
            add_italic_marker(tokenizer)
        return tokenizer

    def flags(self, dataset):
        """The ``italic`` column of ``dataset`` when the italic markers are on (else ``None``); a dataset without
        one is refused in one line."""
        if not self.italic:
            return None
        if not hasattr(dataset, "column_names") or "italic" not in dataset.column_names:
            raise ConfigError("This model was trained with italic markers: its input needs the words' italics "
                              "(a dataset with an `italic` column, see craftlib.tags.italic_flags).")
        return dataset["italic"]


@dataclass(frozen=True)
class Reading:
    """How a trained model reads a dataset: the markers it was trained with (its input, :class:`Markers`) and how
    its scores become tags (its output, one of :data:`DECODES`)."""

    markers: Markers = Markers()
    decode: str = "argmax"

    def __post_init__(self) -> None:
        check_decode(self.decode)

    @classmethod
    def of(cls, profile) -> Reading:
        """How a run trained with a :class:`~craftlib.config.Profile` reads (``case_markers``, ``italic_markers``,
        ``decode``)."""
        return cls(Markers.of(profile), profile.decode)


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
    max_length: int = 128, stride: int = 32, label_all_subtokens: bool = False, case_markers: bool = False,
    italic: Sequence[Sequence[bool]] | None = None,
) -> dict[str, list]:
    """Tokenize pre-split sentences into model windows (columns of a ``datasets`` batch).

    Returns ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the model has them), ``labels``
    (when ``tags`` are given) and the bookkeeping columns ``sentence`` (index in ``sentences``),
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
        out["sentence"].append(i)
        out["word_start"].append(start)
        out["word_end"].append(end)
        out["word_ids"].append(wids)
        if tags is not None:
            out["labels"].append(align_labels(wids, tags[i], label_all_subtokens))
    return out


def merge_windows(
    n_words: Sequence[int], features: Sequence[dict], predictions: Sequence[Sequence[int]], fill=0, keep: bool = False,
) -> tuple[list[list[int]], int]:
    """Word-level label ids for every sentence from window predictions.

    ``features[k]`` holds ``sentence``, ``word_start``, ``word_end``, ``word_ids`` of window ``k`` and
    ``predictions[k]`` its per-sub-token label ids (padding beyond ``len(word_ids)`` is ignored). A word
    seen by several windows takes the prediction of the window where it is farthest from a window edge.
    Words without any sub-token (rare: characters the tokenizer drops) get ``fill`` (``O``); their count
    is returned as the second value. ``keep=True``: the per-sub-token values are taken as they are (e.g. a row of
    label scores, :func:`predict_windows` with ``scores=True``) instead of as label ids.
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
                    best[s][wid], out[s][wid] = context, pred[pos] if keep else int(pred[pos])
            previous = wid
    missing = sum(b < 0 for row in best for b in row)
    return out, missing


def featurize(dataset, tokenizer, max_length: int, stride: int, label_all_subtokens: bool = False,
              markers: Markers = Markers(), progress: bool = True):
    """Windowed features of a ``datasets.Dataset`` with ``tokens`` and ``ner_tags`` (and ``italic`` flags when
    ``markers.italic``); ``progress=False``: no "tokenizing" bar (``train --no-progress``)."""

    def fn(batch, indices):
        out = encode_windows(
            tokenizer, batch["tokens"], batch["ner_tags"], max_length, stride, label_all_subtokens,
            case_markers=markers.case, italic=batch["italic"] if markers.italic else None,
        )
        offset = indices[0] if indices else 0  # the batch's sentence indices in the whole dataset
        out["sentence"] = [offset + i for i in out["sentence"]]
        return out

    with datasets_bars(progress):
        return dataset.map(fn, batched=True, with_indices=True, remove_columns=dataset.column_names,
                           desc="tokenizing")


# ------------------------------------------------------------------------------------ prediction


def autocast(device):
    """``torch.autocast`` in the device's mixed precision (bf16 on a CPU with native bf16, bf16/fp16 on a GPU),
    a no-op context in fp32."""
    import torch

    if device.bf16 or device.fp16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if device.bf16 else torch.float16)
    return contextlib.nullcontext()


def predict_windows(model, tokenizer, features: dict, batch_size: int = 32, device=None,
                    progress: bool = False, desc: str = "predicting", scores: bool = False,
                    ) -> tuple[list[list[int]], float | None]:
    """Label ids of every sub-token of every window in ``features`` (columns of :func:`encode_windows`), and the
    mean cross-entropy over labelled sub-tokens when ``features`` has ``labels``. ``scores=True``: each window's
    label log-probabilities instead (a float32 array, sub-tokens x labels), what :func:`iob2_viterbi` decodes.

    Windows are sorted by length and batched (little padding), run under ``torch.inference_mode`` and the
    device's autocast, and returned in their original order.
    """
    import torch

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
            if scores:
                logp = torch.log_softmax(logits.float(), -1).cpu().numpy()
                for row, i in enumerate(idx):
                    out[i] = logp[row, :len(features["input_ids"][i])]
                continue
            for i, row in zip(idx, logits.argmax(-1).tolist()):
                out[i] = row[:len(features["input_ids"][i])]
    return out, (total_loss / total_tokens if labelled and total_tokens else None)


def iob2_viterbi(log_probs, labels: Sequence[str]) -> list[int]:
    """The label ids of the most likely tag sequence that is valid IOB2, for one sentence's words.

    ``log_probs`` (words x labels) are the model's label log-probabilities of each word, ``labels`` the tag names in
    the model's label order. This is the decoding step of a linear-chain CRF whose transition scores are fixed: 0
    where :func:`craftlib.bio.allowed_transition` allows the step, minus infinity where IOB2 forbids it (an ``I-``
    after ``O``, after another type, or first in the sentence), so the sum of the words' own log-probabilities is
    maximised over valid sequences only. Written in numpy so that tagging on ONNX Runtime needs no torch.
    """
    import numpy as np

    log_probs = np.asarray(log_probs, dtype=np.float64)
    if len(log_probs) == 0:
        return []
    labels = list(labels)
    forbidden = np.array([[not allowed_transition(p, t) for t in labels] for p in labels])
    start_forbidden = np.array([not allowed_transition("O", t) for t in labels])
    best = np.where(start_forbidden, -np.inf, log_probs[0])
    back = np.zeros(log_probs.shape, dtype=np.int64)
    for i in range(1, len(log_probs)):
        step = np.where(forbidden, -np.inf, best[:, None])  # previous label x this label
        back[i] = step.argmax(0)
        best = step.max(0) + log_probs[i]
    path = [int(best.argmax())]
    for i in range(len(log_probs) - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return path[::-1]


def decode_words(word_scores: Sequence[Sequence], labels: Sequence[str], decode: str = "viterbi") -> list[list[int]]:
    """Label ids per word of every sentence from per-word label log-probabilities (``merge_windows(...,
    keep=True)`` of :func:`predict_windows`' ``scores``): ``decode`` one of :data:`DECODES`."""
    import numpy as np

    check_decode(decode)
    if decode == "argmax":
        return [[int(np.argmax(w)) for w in sentence] for sentence in word_scores]
    return [iob2_viterbi(np.stack(sentence), labels) if len(sentence) else [] for sentence in word_scores]


def check_decode(decode: str) -> str:
    if decode not in DECODES:
        raise ConfigError(f"decode={decode!r}: use one of {', '.join(DECODES)} (argmax: each word's most likely "
                          "label; viterbi: the most likely valid IOB2 sequence).")
    return decode


def o_scores(n_labels: int, o_index: int):
    """The scores of a word no window covers: certainly ``O`` (what argmax decoding's ``fill=0`` gives it)."""
    import numpy as np

    row = np.full(n_labels, -1e9, dtype=np.float32)
    row[o_index] = 0.0
    return row


def to_tags(ids: list[list[int]], model) -> list[list[str]]:
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return [tag_names(row, id2label) for row in ids]


def predict_dataset(model, tokenizer, dataset, max_length: int, stride: int, batch_size: int = 32,
                    progress: bool = False, reading: Reading = Reading()) -> tuple[list[list[str]], int]:
    """Word-level predicted tags for every sentence of ``dataset`` (a ``datasets.Dataset`` or a list of token
    lists), via windows (:func:`predict_windows`: length-sorted batches, inference mode, the device's autocast);
    returns ``(tags, words_without_subtoken)``. ``reading``: the markers the model was trained with (italic ones
    read the dataset's ``italic`` column, :func:`craftlib.tags.italic_flags`) and its decoding."""
    sentences = dataset["tokens"] if hasattr(dataset, "column_names") else [list(s) for s in dataset]
    markers, decode = reading.markers, reading.decode
    italic = markers.flags(dataset)
    markers.add_to(tokenizer)
    feats = encode_windows(tokenizer, sentences, None, max_length, stride, case_markers=markers.case, italic=italic)
    meta = [{k: feats[k][i] for k in META_COLUMNS} for i in range(len(feats["input_ids"]))]
    lengths = [len(s) for s in sentences]
    if decode != "argmax":
        logp, _ = predict_windows(model, tokenizer, feats, batch_size, progress=progress, scores=True)
        words, missing = decode_scores(model, lengths, meta, logp, decode)
        return to_tags(words, model), missing
    ids, _ = predict_windows(model, tokenizer, feats, batch_size, progress=progress)
    words, missing = merge_windows(lengths, meta, ids)
    return to_tags(words, model), missing


def decode_scores(model, n_words: Sequence[int], meta: Sequence[dict], window_scores, decode: str = "viterbi",
                  ) -> tuple[list[list[int]], int]:
    """Word label ids from :func:`predict_windows`' ``scores``: each word's scores taken from its best window
    (:func:`merge_windows`), then decoded per sentence (:func:`decode_words`); also the count of words no window
    covers (decoded as ``O``)."""
    labels = label_order(model)
    word_scores, missing = merge_windows(n_words, meta, window_scores, fill=o_scores(len(labels), labels.index("O")),
                                         keep=True)
    return decode_words(word_scores, labels, decode), missing


def label_order(model) -> list[str]:
    """The model's tag names in the order of its output scores."""
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return [id2label[i] for i in range(len(id2label))]
