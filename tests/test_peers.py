"""Peer toolkits: CRF features, the spaCy BIO round trip, the benchmark runner in smoke mode.

All on hand-made sentences (no CRAFT needed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from craftlib import config, runs
from craftlib.errors import BIOError

# ------------------------------------------------------------------------------- hand-made data

_TEMPLATES = [
    (["The", "{P}", "protein", "binds", "{C}", "in", "{L}", "cells", "."],
     ["O", "B-Protein", "O", "O", "B-Chemical", "O", "B-Cell", "O", "O"]),
    (["{T}", "carrying", "the", "{G}", "gene", "were", "studied", "."],
     ["B-Taxon", "O", "O", "B-Gene", "O", "O", "O", "O"]),
    (["Expression", "of", "{P}", "in", "{L}", "cells", "of", "{T}", "increased", "."],
     ["O", "O", "B-Protein", "O", "B-Cell", "O", "O", "B-Taxon", "O", "O"]),
    (["A", "{S}", "site", "near", "{G}", "was", "deleted", "with", "{C}", "."],
     ["O", "B-Sequence", "O", "O", "B-Gene", "O", "O", "O", "B-Chemical", "O"]),
]
_FILL = {
    "P": ["Pax6", "Shh", "TGF-beta1", "p53", "Bmp4"], "G": ["Fgf8", "Wnt1", "Sox2", "Otx2", "Nkx2.1"],
    "C": ["glucose", "ethanol", "calcium", "ATP", "retinoic"], "L": ["retinal", "neural", "T", "stem", "ganglion"],
    "T": ["mice", "Mice", "rats", "zebrafish", "humans"], "S": ["promoter", "exon", "intron", "enhancer", "codon"],
}


def _sentence(k: int) -> tuple[list[str], list[str]]:
    words, tags = _TEMPLATES[k % len(_TEMPLATES)]
    j = k // len(_TEMPLATES)
    out = [_FILL[w[1]][(j + i) % 5] if w.startswith("{") else w for i, w in enumerate(words)]
    return out, list(tags)


def hand_made_dataset(n_train: int = 40, n_eval: int = 12):
    """A DatasetDict shaped like the dataset stage's (``stages.load("dataset", spec)``) (ClassLabel tags over LABELS)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    features = Features({
        "tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=list(config.LABELS))),
        "doc_id": Value("string"), "sentence_id": Value("int32"),
    })

    def split(start: int, n: int, doc: str) -> Dataset:
        sents = [_sentence(k) for k in range(start, start + n)]
        return Dataset.from_dict({
            "tokens": [s[0] for s in sents], "ner_tags": [[config.LABEL2ID[t] for t in s[1]] for s in sents],
            "doc_id": [doc] * n, "sentence_id": list(range(n)),
        }, features=features)

    return DatasetDict(train=split(0, n_train, "111"), validation=split(n_train, n_eval, "222"),
                       test=split(n_train + n_eval, n_eval, "333"))


# ------------------------------------------------------------------------------- CRF features


def test_word_shape():
    from craftlib.peers.crf import word_shape

    assert word_shape("TGF-beta1") == "XXX-xxxxd"
    assert word_shape("TGF-beta1", short=True) == "X-xd"
    assert word_shape("Pax6", short=True) == "Xxd"


def test_crf_features_on_a_hand_made_sentence():
    from craftlib.peers.crf import sentence_features, token_features

    tokens = ["The", "TGF-beta1", "gene", "in", "mice", "."]
    f = token_features(tokens, 1)
    assert f["lower"] == "tgf-beta1" and f["shape"] == "XXX-xxxxd" and f["shape_short"] == "X-xd"
    assert (f["prefix1"], f["prefix3"], f["prefix4"]) == ("t", "tgf", "tgf-")
    assert (f["suffix1"], f["suffix3"], f["suffix4"]) == ("1", "ta1", "eta1")
    assert f["has_hyphen"] and f["has_digit"] and f["has_upper_inside"] and not f["is_title"]
    assert not f["is_punct"] and not f["is_greek"]
    assert f["-1:lower"] == "the" and f["-1:is_title"] is True
    assert f["+1:lower"] == "gene" and f["+2:lower"] == "in"
    assert f["-2:BOS"] is True and "-2:lower" not in f
    first, last = token_features(tokens, 0), token_features(tokens, 5)
    assert first["-1:BOS"] and first["-2:BOS"] and first["is_title"]
    assert last["+1:EOS"] and last["is_punct"] and last["-1:lower"] == "mice"
    assert token_features(["beta"], 0)["is_greek"] is True
    feats = sentence_features(tokens)
    assert len(feats) == len(tokens) and feats[4]["lower"] == "mice"


def test_crf_learns_hand_made_sentences(tmp_path):
    from craftlib.peers.crf import predict_crf, train_crf

    sents = [_sentence(k) for k in range(40)]
    tokens, tags = [s[0] for s in sents], [s[1] for s in sents]
    crf = train_crf(tokens, tags, tmp_path / "m.crfsuite", max_iterations=50)
    assert (tmp_path / "m.crfsuite").stat().st_size > 0
    assert predict_crf(crf, tokens[:8]) == tags[:8]


def test_crf_italic_feature_decides_what_words_cannot(tmp_path):
    """The same word is Gene when italic and Protein when roman: only the italic feature can learn that."""
    from craftlib.peers.crf import predict_crf, sentence_features, train_crf

    tokens = [["the", "Shh", "level", "rose"]] * 20
    tags = [["O", "B-Gene", "O", "O"] if k % 2 else ["O", "B-Protein", "O", "O"] for k in range(20)]
    italic = [[False, bool(k % 2), False, False] for k in range(20)]
    assert "italic" not in sentence_features(tokens[0])[1]
    assert sentence_features(tokens[0], italic[1])[1]["italic"] is True
    assert sentence_features(tokens[0], italic[1])[2]["-1:italic"] is True
    crf = train_crf(tokens, tags, tmp_path / "m.crfsuite", max_iterations=50, italic=italic)
    assert predict_crf(crf, tokens[:4], italic[:4]) == tags[:4]
    with pytest.raises(ValueError, match="rows of italic flags"):
        predict_crf(crf, tokens[:4], italic[:3])


def test_crf_italic_is_an_ablation_outside_the_default_benchmark():
    from craftlib.peers import runner

    assert "crf-italic" in runner.SYSTEMS and "crf-italic" not in runner.DEFAULT_SYSTEMS
    assert all(v["crf-italic"] == {**v["crf"], "italic": True} for v in runner.PEER_SETTINGS.values())
    assert runner.benchmark_command("quick", 42, "proper", runner.DEFAULT_SYSTEMS, False) == \
        "python -m craftlib benchmark --profile quick --seed 42"
    assert runs.system_run_name("crf-italic", "quick") == "crf-italic-quick"


# ------------------------------------------------------------------------------- spaCy conversion

ROUND_TRIP = [
    (["IL-2", "and", "IL-4", "(", "n=3", ")", "in", "α-actin", "mice"],
     ["B-Protein", "O", "B-Protein", "O", "O", "O", "O", "B-Protein", "B-Taxon"]),
    (["Mus", "musculus", "Pax6", "Sox2", "5'", "UTR"],
     ["B-Taxon", "I-Taxon", "B-Gene", "B-Gene", "B-Sequence", "I-Sequence"]),
    (["no", "entity", "here", "."], ["O", "O", "O", "O"]),
    (["retinoic", "acid", "receptor", "beta", "gene"], ["B-Chemical", "I-Chemical", "B-Gene", "I-Gene", "I-Gene"]),
]


@pytest.mark.parametrize("tokens,tags", ROUND_TRIP)
def test_spacy_doc_round_trips_tokens_and_bio(tokens, tags):
    import spacy

    from craftlib.peers.spacy_ner import doc_to_iob, make_doc

    doc = make_doc(spacy.blank("en").vocab, tokens, tags)
    assert [t.text for t in doc] == tokens
    assert doc_to_iob(doc) == tags


def test_spacy_docbin_round_trip(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    from craftlib.peers.spacy_ner import doc_to_iob, write_docbin

    n = write_docbin([t for t, _ in ROUND_TRIP], [g for _, g in ROUND_TRIP], tmp_path / "x.spacy")
    docs = list(DocBin().from_disk(tmp_path / "x.spacy").get_docs(spacy.blank("en").vocab))
    assert n == len(docs) == len(ROUND_TRIP)
    assert [([t.text for t in d], doc_to_iob(d)) for d in docs] == ROUND_TRIP


def test_spacy_learns_hand_made_sentences(tmp_path):
    from craftlib.evaluate import score
    from craftlib.peers.spacy_ner import predict_spacy, quickstart_config, train_spacy, write_docbin

    train, dev = [_sentence(k) for k in range(40)], [_sentence(k) for k in range(40, 52)]
    write_docbin([t for t, _ in train], [g for _, g in train], tmp_path / "train.spacy")
    write_docbin([t for t, _ in dev], [g for _, g in dev], tmp_path / "dev.spacy")
    cfg = quickstart_config(tmp_path / "train.spacy", tmp_path / "dev.spacy", seed=1,
                            max_epochs=30, max_steps=0, eval_frequency=20)
    assert cfg["corpora"]["train"]["gold_preproc"] is True and cfg["paths"]["vectors"] is None
    with open(tmp_path / "log.txt", "w") as log:
        nlp = train_spacy(cfg, tmp_path / "out", log=log)
    assert (tmp_path / "out" / "model-best").is_dir()
    pred = predict_spacy(nlp, [t for t, _ in dev])
    assert [len(p) for p in pred] == [len(t) for t, _ in dev]
    assert score([g for _, g in dev], pred)["f1"] > 0.8


def test_spacy_conversion_rejects_bad_tags():
    import spacy

    from craftlib.peers.spacy_ner import make_doc

    vocab = spacy.blank("en").vocab
    with pytest.raises(BIOError):
        make_doc(vocab, ["a", "b"], ["O", "I-Gene"])  # I- without B-
    with pytest.raises(BIOError):
        make_doc(vocab, ["a", "b"], ["O"])


# ------------------------------------------------------------------------------- extras


def test_peers_import_and_help_without_the_extra():
    code = (
        "import sys; sys.modules['spacy'] = None; sys.modules['sklearn_crfsuite'] = None\n"
        "import craftlib.peers, craftlib.peers.crf, craftlib.peers.spacy_ner, craftlib.peers.runner\n"
        "from craftlib.cli import build_parser\n"
        "assert 'benchmark' in build_parser().format_help()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extra_says_how_to_install(monkeypatch):
    import importlib.util

    from craftlib.peers import extras
    from craftlib.peers.runner import run_benchmark

    real = importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name, *a: None if name == "spacy" else real(name, *a))
    with pytest.raises(extras.MissingExtraError, match=r"pip install -e \.\[peers\]"):
        run_benchmark(config.data_spec("smoke"), systems=["spacy"], dataset=hand_made_dataset(4, 2))


# ------------------------------------------------------------------------------- the runner


def _write_external_run(run_dir, dataset, *, perfect: bool, drop_last: bool = False) -> None:
    """A fake external run: predictions (gold copied, or all-O) and a metrics.json."""
    run_dir.mkdir(parents=True)
    for split in ("validation", "test"):
        recs = list(dataset[split])[: -1 if drop_last else None]
        with (run_dir / f"predictions_{split}.jsonl").open("w") as fh:
            for r in recs:
                gold = [config.ID2LABEL[t] for t in r["ner_tags"]]
                pred = gold if perfect else ["O"] * len(gold)
                fh.write(json.dumps({"doc_id": r["doc_id"], "sentence_id": r["sentence_id"], "tokens": r["tokens"],
                                     "gold": gold, "pred": pred}) + "\n")
    (run_dir / "metrics.json").write_text(json.dumps({"run": run_dir.name, "train_seconds": 12.5,
                                                      "command": "python -m craftlib baseline --profile smoke"}))
    (run_dir / "model.bin").write_bytes(b"x" * 2048)


def test_benchmark_smoke_writes_a_complete_results_file(tmp_path):
    from craftlib.peers.runner import DEFAULT_SYSTEMS, run_benchmark

    dataset = hand_made_dataset()
    models, results = tmp_path / "models", tmp_path / "results"
    _write_external_run(models / "dictionary-smoke", dataset, perfect=True)
    _write_external_run(models / "single-minilm-smoke-case-viterbi-seed7", dataset, perfect=False, drop_last=True)

    report = run_benchmark(config.data_spec("smoke", data=tmp_path / "data", seed=7), dataset=dataset,
                           models_dir=models, results_dir=results)

    on_disk = json.loads((results / "peers-smoke.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    for key in ("profile", "seed", "command", "created", "hardware", "versions", "sentences", "tokens",
                "data_fingerprint", "scoring", "memory_method", "peer_settings", "systems"):
        assert key in on_disk, key
    assert on_disk["command"] == "python -m craftlib benchmark --profile smoke --seed 7"
    assert on_disk["sentences"] == {"train": 40, "validation": 12, "test": 12}
    assert on_disk["hardware"]["cores"] >= 1 and on_disk["versions"]["spacy"] != "not installed"
    rows = {r["system"]: r for r in on_disk["systems"]}
    assert list(rows) == list(DEFAULT_SYSTEMS)

    for name in ("crf", "spacy"):
        row = rows[name]
        assert row["status"] == "ok", row.get("note")
        for split in ("dev", "test"):
            assert set(row[split]["per_type"]) == set(config.ENTITY_TYPES)
            assert row[split]["sentences"] == 12
        assert row["train_seconds"] > 0 and row["inference_sentences_per_second"] > 0
        assert row["peak_memory_mb"] > 10 and row["model_size_mb"] > 0
        run_dir = models / f"{name}-smoke-seed7"
        assert row["run"] == run_dir.name
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["system"] == name and metrics["test"] == row["test"]
        lines = (run_dir / "predictions_test.jsonl").read_text().splitlines()
        assert len(lines) == 12 and set(json.loads(lines[0])) == {"doc_id", "sentence_id", "tokens", "gold", "pred"}
    assert rows["crf"]["test"]["f1"] > 0.5  # templated sentences are easy: a broken CRF would score ~0

    assert rows["dictionary"]["status"] == "ok" and rows["dictionary"]["same_sentences"] is True
    assert rows["dictionary"]["test"]["f1"] == 1.0  # re-scored from its predictions, not copied
    assert rows["dictionary"]["train_seconds"] == 12.5
    # no entity lists in this workspace: the speed is reported as not measured, never invented
    assert rows["dictionary"]["inference_sentences_per_second"] is None and rows["dictionary"]["inference_note"]
    assert rows["single"]["status"] == "other sentences" and rows["single"]["same_sentences"] is False
    assert rows["single"]["model_size_mb"] > 0  # model.bin, not the predictions
    for name in ("augmented", "two-step"):
        assert rows[name]["status"] == "not run"
        assert rows[name]["command"].startswith(f"python -m craftlib train --recipe {name} ")
        assert "test" not in rows[name]

    md = (results / "peers-smoke.md").read_text()
    assert "python -m craftlib benchmark --profile smoke --seed 7" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    for name in DEFAULT_SYSTEMS:
        assert any(line.startswith(f"| {name} |") for line in table), name
    assert "| not run |" in md and on_disk["hardware"]["cpu"] in md


def test_run_names_follow_the_architecture():
    from craftlib.peers.runner import run_name

    assert run_name("crf", "quick") == "crf-quick" and run_name("spacy", "full") == "spacy-full"
    assert run_name("crf", "quick", seed=1, annotation_set="extensions") == "crf-quick-extensions-seed1"
    assert run_name("two-step", "quick") == "two-step-minilm-quick-drop0-case-viterbi"
    assert run_name("dictionary", "smoke") == "dictionary-smoke"


def test_benchmark_rejects_unknown_system(tmp_path):
    from craftlib.errors import CraftlibError
    from craftlib.peers.runner import run_benchmark

    with pytest.raises(CraftlibError, match="Unknown system"):
        run_benchmark(config.data_spec("smoke"), systems=["bert"], dataset=hand_made_dataset(4, 2),
                      results_dir=tmp_path)
