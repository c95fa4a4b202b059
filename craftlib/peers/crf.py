"""Conditional random field tagger (``sklearn-crfsuite``) with the classic hand-made features.

The features are the ones of the sklearn-crfsuite CoNLL tutorial and of most CRF NER papers:
the word itself (lower-cased), its shape (``Xxxxx``, ``dd``), prefixes and suffixes up to four
characters, character classes (digits, capitals, hyphen, Greek letter names), and the same small
set for the two words on each side. No gazetteers and no embeddings: this is the "what a
classic statistical tagger does" reference point.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from craftlib.peers.extras import require

#: Lower-cased Greek letter names, frequent inside gene and protein names (``TGF-beta``).
GREEK = frozenset((
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
    "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
))
#: Context window: features of the words at these offsets are added with an ``offset:`` prefix.
CONTEXT = (-2, -1, 1, 2)


def word_shape(word: str, short: bool = False) -> str:
    """``"Abc-12"`` → ``"Xxx-dd"``; with ``short=True`` runs collapse: ``"Xx-d"``."""
    shape = "".join(
        "X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in word
    )
    return re.sub(r"(.)\1+", r"\1", shape) if short else shape


def _lexical(word: str, prefix: str) -> dict[str, object]:
    """Features of one word that are used both for the word itself and for its neighbours."""
    low = word.lower()
    return {
        f"{prefix}lower": low,
        f"{prefix}shape_short": word_shape(word, short=True),
        f"{prefix}suffix3": low[-3:],
        f"{prefix}is_title": word.istitle(),
        f"{prefix}is_upper": word.isupper(),
        f"{prefix}has_digit": any(c.isdigit() for c in word),
    }


def token_features(tokens: Sequence[str], i: int, italic: Sequence[bool] | None = None) -> dict[str, object]:
    """Features of ``tokens[i]`` in its sentence (a dict, the input format of sklearn-crfsuite); with ``italic``
    (one flag per token, :func:`craftlib.tags.italic_flags`) also whether it and its neighbours are italic (the
    ``crf-italic`` peer of the typography ablation)."""
    word = tokens[i]
    low = word.lower()
    feats: dict[str, object] = {"bias": 1.0, **_lexical(word, "")}
    feats.update({
        "shape": word_shape(word),
        "prefix1": low[:1], "prefix2": low[:2], "prefix3": low[:3], "prefix4": low[:4],
        "suffix1": low[-1:], "suffix2": low[-2:], "suffix4": low[-4:],
        "length": min(len(word), 10),
        "is_digit": word.isdigit(),
        "is_punct": not any(c.isalnum() for c in word),
        "has_hyphen": "-" in word,
        "has_upper_inside": any(c.isupper() for c in word[1:]),
        "is_greek": low in GREEK,
    })
    for offset in CONTEXT:
        j = i + offset
        if 0 <= j < len(tokens):
            feats.update(_lexical(tokens[j], f"{offset:+d}:"))
        else:
            feats[f"{offset:+d}:{'BOS' if j < 0 else 'EOS'}"] = True
    if italic is not None:
        feats["italic"] = bool(italic[i])
        for offset in (-1, 1):
            if 0 <= i + offset < len(tokens):
                feats[f"{offset:+d}:italic"] = bool(italic[i + offset])
    return feats


def sentence_features(tokens: Sequence[str], italic: Sequence[bool] | None = None) -> list[dict[str, object]]:
    return [token_features(tokens, i, italic) for i in range(len(tokens))]


def _features(tokens: Sequence[Sequence[str]], italic: Sequence[Sequence[bool]] | None):
    if italic is not None and len(italic) != len(tokens):
        raise ValueError(f"{len(italic)} rows of italic flags for {len(tokens)} sentences")
    return [sentence_features(s, None if italic is None else italic[k]) for k, s in enumerate(tokens)]


def train_crf(
    tokens: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    model_file: str | Path,
    *,
    c1: float = 0.1,
    c2: float = 0.1,
    max_iterations: int = 100,
    italic: Sequence[Sequence[bool]] | None = None,
):
    """Train an L-BFGS CRF (L1 ``c1`` + L2 ``c2``) and save it to ``model_file``; return the estimator.
    ``italic``: per sentence, the tokens' italic flags (the typography ablation's feature).

    L-BFGS from a zero start is deterministic: the same data gives the same model.
    """
    require("sklearn_crfsuite")
    import sklearn_crfsuite

    Path(model_file).parent.mkdir(parents=True, exist_ok=True)
    crf = sklearn_crfsuite.CRF(
        algorithm="lbfgs",
        c1=c1,
        c2=c2,
        max_iterations=max_iterations,
        all_possible_transitions=True,
        model_filename=str(model_file),
    )
    crf.fit(_features(tokens, italic), [list(t) for t in tags])
    return crf


def predict_crf(crf, tokens: Sequence[Sequence[str]], italic: Sequence[Sequence[bool]] | None = None
                ) -> list[list[str]]:
    """IOB2 tags for each sentence (one tag per token; ``italic`` as for :func:`train_crf`)."""
    return [list(p) for p in crf.predict(_features(tokens, italic))]
