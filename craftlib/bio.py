"""IOB2 tags: spans ↔ tags, validation, label ids ↔ tag names.

The one home of the tag format every stage passes around (ARCHITECTURE.md, "Dataset records"): a sentence's
entities are token spans ``(start, end_exclusive, type)``; its tags are IOB2 strings over
:data:`craftlib.config.LABELS` (``O``, ``B-<type>``, ``I-<type>``); datasets store label ids (indices into
``LABELS``). Pure Python, no third-party import: every stage (tags, ontology, augment, evaluate, train, viz)
may import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from craftlib import config
from craftlib.errors import BIOError

Span = tuple[int, int, str]


def bio_spans(tags: Sequence[str]) -> list[Span]:
    """Token spans ``(start, end_exclusive, type)`` of an IOB2 sequence (lenient, like seqeval's default mode:
    a stray ``I-`` opens a span)."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-")
        if start is not None and (prefix != "I" or t != kind):
            spans.append((start, i, kind))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and start is None):
            start, kind = i, t
    return spans


#: Another name of :func:`bio_spans` (the entities of a tag sequence), used by notebook 02.


def spans_to_bio(n_tokens: int, spans: Sequence[Span]) -> list[str]:
    """IOB2 tags of ``n_tokens`` tokens from non-overlapping token spans ``(start, end_exclusive, type)``."""
    tags = ["O"] * n_tokens
    for start, end, kind in spans:
        if any(t != "O" for t in tags[start:end]):
            raise BIOError(f"spans_to_bio: span {start}-{end} {kind} overlaps another span.")
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end):
            tags[i] = f"I-{kind}"
    return tags


def validate_iob2(tags: Sequence[str], where: str = "") -> None:
    """Raise :class:`BIOError` (naming the position) unless ``tags`` is valid IOB2 over :data:`config.LABELS`."""
    prev = "O"
    for i, tag in enumerate(tags):
        if tag not in config.LABEL2ID:
            raise BIOError(f"{where}position {i}: unknown tag {tag!r} (expected one of {', '.join(config.LABELS)}).")
        if not allowed_transition(prev, tag):
            raise BIOError(
                f"{where}position {i}: {tag} follows {prev}; in IOB2 an I- tag must continue a B-/I- of the "
                "same type."
            )
        prev = tag


def allowed_transition(previous: str, tag: str) -> bool:
    """Whether IOB2 lets ``tag`` follow ``previous`` (``"O"`` also stands for the start of a sentence): an ``I-``
    tag only continues a ``B-``/``I-`` of its own type; every other tag may follow anything. The rule constrained
    decoding (:func:`craftlib.windows.iob2_viterbi`) enforces and :func:`validate_iob2` checks."""
    return not tag.startswith("I-") or (previous != "O" and previous[2:] == tag[2:])


def tag_names(tags: Sequence[int | str], names: Sequence[str] | Mapping[int, str] = config.LABELS) -> list[str]:
    """Tag names of one sentence: label ids become ``names[id]`` (default :data:`config.LABELS`; a model's
    ``id2label`` works too), names stay as they are."""
    return [t if isinstance(t, str) else names[int(t)] for t in tags]


def dataset_tags(dataset) -> list[list[str]]:
    """Tag names of every sentence of a ``datasets.Dataset`` (or list of records) with ``ner_tags`` ids."""
    column = dataset["ner_tags"] if hasattr(dataset, "column_names") else [r["ner_tags"] for r in dataset]
    return [tag_names(t) for t in column]


__all__ = ["Span", "allowed_transition", "bio_spans", "dataset_tags", "spans_to_bio", "tag_names", "validate_iob2"]
