"""spaCy NER trained from scratch on the project's BIO sentences (no pretrained vectors).

The pipeline is spaCy's own quickstart configuration for English NER on CPU, optimised for
efficiency (``spacy init config --pipeline ner --optimize efficiency``): a hash-embedding CNN
``tok2vec`` and the transition-based ``ner``. Two settings change, both so that spaCy sees exactly
the project's tokens: ``gold_preproc = true`` for the training and dev corpora (no re-tokenisation),
and documents are built from the CoNLL-U tokens (``Doc(vocab, words=tokens)``) at prediction time.
Training uses spaCy's own loop (``spacy.training.loop.train``), which keeps the checkpoint with the
best dev F1 (spaCy's scorer on the dev split; the test split is never seen in training).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from craftlib.errors import BIOError
from craftlib.peers.extras import require


def _spacy():
    require("spacy")
    import spacy

    return spacy


def make_doc(vocab, tokens: Sequence[str], tags: Sequence[str] | None = None):
    """A ``Doc`` whose tokens are exactly ``tokens``; with ``tags`` (IOB2), its entities set from them.

    Raises :class:`~craftlib.errors.BIOError` when ``tags`` is not valid IOB2 (it would not survive
    the BILUO round trip) or does not have one tag per token.
    """
    from spacy.tokens import Doc
    from spacy.training import biluo_tags_to_spans, biluo_to_iob, iob_to_biluo

    tokens = list(tokens)
    if any(not t or t.isspace() for t in tokens):
        raise ValueError("make_doc(): empty or whitespace-only token; CoNLL-U tokens never are.")
    doc = Doc(vocab, words=tokens, spaces=[True] * len(tokens))
    if tags is not None:
        tags = list(tags)
        if len(tags) != len(tokens):
            raise BIOError(f"{len(tokens)} tokens but {len(tags)} tags: {tokens[:8]}...")
        biluo = iob_to_biluo(tags)
        if biluo_to_iob(biluo) != tags:
            raise BIOError(f"Not valid IOB2 (an I- tag starts an entity?): {tags}. Rebuild the dataset.")
        doc.ents = biluo_tags_to_spans(doc, biluo)
    return doc


def doc_to_iob(doc) -> list[str]:
    """IOB2 tags, one per token of ``doc``, from its entities."""
    from spacy.training import biluo_to_iob
    from spacy.training.iob_utils import doc_to_biluo_tags

    return list(biluo_to_iob(doc_to_biluo_tags(doc, missing="O")))


def write_docbin(tokens: Iterable[Sequence[str]], tags: Iterable[Sequence[str]], path: str | Path) -> int:
    """Save the sentences as a spaCy ``DocBin`` (``.spacy``), the training-corpus format; return the count."""
    spacy = _spacy()
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab
    db = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    n = 0
    for toks, tgs in zip(tokens, tags):
        db.add(make_doc(vocab, toks, tgs))
        n += 1
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db.to_disk(path)
    return n


def quickstart_config(train_path: str | Path, dev_path: str | Path, *, seed: int, **training):
    """spaCy's quickstart CPU-efficiency NER config, pointed at our corpora, gold tokens, ``seed``.

    ``training`` overrides keys of the ``[training]`` block (``max_epochs``, ``max_steps``,
    ``eval_frequency``, ``patience``).
    """
    _spacy()
    from spacy.cli.init_config import init_config

    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency", gpu=False, silent=True)
    config["paths"]["train"] = str(train_path)
    config["paths"]["dev"] = str(dev_path)
    config["system"]["seed"] = int(seed)
    for corpus in ("train", "dev"):
        config["corpora"][corpus]["gold_preproc"] = True
    for key, value in training.items():
        if key not in config["training"]:
            raise KeyError(f"unknown spaCy [training] setting {key!r}")
        config["training"][key] = value
    return config


def train_spacy(config, output_dir: str | Path, log=None):
    """Train with spaCy's loop; ``output_dir/model-best`` is the kept model. Returns the loaded best model."""
    import sys

    spacy = _spacy()
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train

    spacy.util.fix_random_seed(int(config["system"]["seed"]))
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    nlp = init_nlp(config, use_gpu=-1)
    train(nlp, out, use_gpu=-1, stdout=log or sys.stdout, stderr=log or sys.stderr)
    return spacy.load(out / "model-best")


def predict_spacy(nlp, tokens: Sequence[Sequence[str]], batch_size: int = 256) -> list[list[str]]:
    """IOB2 tags for each sentence, predicted on the given tokens (spaCy's tokenizer is not used)."""
    docs = (make_doc(nlp.vocab, toks) for toks in tokens)
    return [doc_to_iob(doc) for doc in nlp.pipe(docs, batch_size=batch_size)]
