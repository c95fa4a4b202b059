"""Scoring and error analysis. Every system in the project is scored by :func:`score`.

``score`` wraps seqeval so that the dictionary baseline, the transformer recipes and the peer
toolkits are measured by exactly the same call.
"""

from __future__ import annotations

from collections.abc import Sequence

from craftlib.config import ENTITY_TYPES


def score(
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
    strict: bool = False,
) -> dict:
    """Span-level micro/macro P/R/F1 per seqeval, per-type P/R/F1/support, and token accuracy.

    ``strict=False`` is seqeval's default (conlleval-compatible) mode; ``strict=True`` is its
    ``mode="strict", scheme=IOB2`` mode, where an ``I-`` without a matching ``B-`` is no entity.
    Returns a JSON-serialisable dict with keys ``precision``, ``recall``, ``f1``, ``accuracy``,
    ``macro_f1``, ``per_type`` (every type of :data:`ENTITY_TYPES`, zero support included), ``mode``,
    ``sentences``, ``tokens``.
    """
    from seqeval.metrics import accuracy_score, classification_report
    from seqeval.scheme import IOB2

    y_true = [list(s) for s in y_true]
    y_pred = [list(s) for s in y_pred]
    if len(y_true) != len(y_pred) or any(len(a) != len(b) for a, b in zip(y_true, y_pred)):
        raise ValueError("score(): gold and predicted tag sequences must have the same shapes.")
    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0, **kwargs)
    per_type = {}
    for t in ENTITY_TYPES:
        r = report.get(t, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        per_type[t] = {
            "precision": float(r["precision"]),
            "recall": float(r["recall"]),
            "f1": float(r["f1-score"]),
            "support": int(r["support"]),
        }
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    macro = report.get("macro avg", {"f1-score": 0.0})
    return {
        "mode": "strict-IOB2" if strict else "default",
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "macro_f1": float(macro["f1-score"]),
        "accuracy": float(accuracy_score(y_true, y_pred)) if y_true else 0.0,
        "per_type": per_type,
        "sentences": len(y_true),
        "tokens": sum(len(s) for s in y_true),
    }
