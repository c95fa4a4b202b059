"""craftlib.baseline: the dictionary tagger on hand-made sentences, and the metrics/predictions it writes."""

from __future__ import annotations

import json

import pytest

from craftlib import baseline, bio, config, ontology, stages
from craftlib.evaluate import score
from tests.conftest import FIXTURES

CRAFT = FIXTURES / "craft" / "CRAFT-5.0.2"

LISTS = {
    "Sequence": ["gene", "promoter region"],
    "Cell": ["T-cell", "T-cell receptor positive cell", "neuron"],
    "Protein": ["sonic hedgehog protein", "Shh"],  # "Shh" is also a Gene: priority decides
    "Gene": ["Shh", "Pax6"],
    "Taxon": ["mouse", "Mus musculus"],
    "Chemical": ["water"],
}


@pytest.fixture
def tagger():
    return baseline.DictionaryTagger(LISTS)


def test_longest_match_case_insensitive_token_boundaries(tagger):
    tokens = ["In", "MUS", "MUSCULUS", ",", "Shh", "and", "pax6", "act", "on", "T", "-", "cell", "and", "T", "-",
              "cells", "in", "the", "promoter", "region", "of", "mousegene"]
    assert tagger.tag(tokens) == [
        "O", "B-Taxon", "I-Taxon", "O", "B-Gene", "O", "B-Gene", "O", "O",
        "B-Cell", "I-Cell", "I-Cell",  # "T-cell" tokenized like CRAFT: T - cell
        "O", "O", "O", "O",  # "T - cells": plural, not in the list
        "O", "O", "B-Sequence", "I-Sequence", "O",
        "O",  # "mousegene" contains "mouse" and "gene" but they are not tokens
    ]
    assert tagger.conflicts == 1  # "Shh": Gene (first in DEFAULT_PRIORITY) over Protein


def test_longest_match_prefers_the_longer_term():
    t = baseline.DictionaryTagger({"Cell": ["T-cell", "T-cell receptor positive cell"]})
    toks = ["T", "-", "cell", "receptor", "positive", "cell", "and", "T", "-", "cell"]
    assert t.find(toks) == [(0, 6, "Cell"), (7, 10, "Cell")]


def test_priority_can_be_changed():
    t = baseline.DictionaryTagger(LISTS, priority=("Protein", "Gene", "Taxon", "Cell", "Chemical", "Sequence"))
    assert t.tag(["Shh"]) == ["B-Protein"]


def test_output_is_valid_iob2_and_scored(tagger):
    gold = [["B-Gene", "O", "B-Taxon"], ["O", "O"]]
    pred = [tagger.tag(["Shh", "in", "mice"]), tagger.tag(["no", "entities"])]
    for p in pred:
        bio.validate_iob2(p)
    s = score(gold, pred)
    assert s["per_type"]["Gene"]["f1"] == 1.0 and s["per_type"]["Taxon"]["f1"] == 0.0  # "mice" ≠ "mouse"


def test_run_dictionary_baseline_writes_metrics_and_predictions(tmp_path, monkeypatch):
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.setenv(ontology.SOURCES_ENV, ";".join(f"{t}=" for t in ontology.TYPE_PREFIX))
    m = baseline.run_dictionary_baseline(config.data_spec("quick", "proper", tmp_path / "data", source=CRAFT),
                                         tmp_path / "models")
    out = tmp_path / "models" / "dictionary-quick"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == m
    for key in ("run", "system", "profile", "seed", "dataset", "dev", "test", "train_seconds", "command",
                "versions", "hardware", "created"):
        assert key in m
    assert m["run"] == "dictionary-quick" and m["system"] == "dictionary" and m["dataset"] == "craft-proper"
    rows = [json.loads(x) for x in (out / "predictions_test.jsonl").read_text().splitlines()]
    dsd = stages.load("dataset", config.data_spec("quick", "proper", tmp_path / "data"), build=False)
    assert len(rows) == len(dsd["test"]) and all(len(r["pred"]) == len(r["tokens"]) == len(r["gold"]) for r in rows)
    assert set(rows[0]) == {"doc_id", "sentence_id", "tokens", "gold", "pred"}
    # the metrics are exactly evaluate.score of the written predictions
    assert m["test"] == score([r["gold"] for r in rows], [r["pred"] for r in rows])
    assert (out / "predictions_validation.jsonl").read_text() == "" and m["dev"] is None  # no dev document
    assert m["entity_list_fallback"] == list(ontology.TYPE_PREFIX)
    assert config.get_profile("quick").max_eval_sentences is None
