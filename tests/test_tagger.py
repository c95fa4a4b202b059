"""Using a trained model (issue 22): sentences and tokens with offsets, the tagger on hand-made and CRAFT texts,
every export format's offsets, BioC and brat read back with the ``bioc`` package, linking, ONNX engines, the
``predict`` command's errors.

The model is a tiny random BERT with the 13 CRAFT labels and the bundled MiniLM tokenizer: what it predicts is
noise, but noise with many mentions, which is what offset and round-trip checks need."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from craftlib import config, export, linking, runs, tagger
from craftlib.errors import CraftlibError
from craftlib.export import Entity, TaggedDocument
from tests.conftest import FIXTURES, require_local_craft

CRAFT = FIXTURES / "craft" / "CRAFT-5.0.2"
OBO = FIXTURES / "obo"

#: Hand-made texts: Unicode (Greek, accents, CJK, emoji, combining marks, no-break and zero-width spaces), a
#: long sentence, empty lines, Windows line ends, tabs, a line separator.
TEXTS = {
    "unicode": "TGF-β1 and Smad3 bind the α-actinin promoter in naïve T cells 🧬.\n\nΔNp63 is expressed in 小鼠 "
               "keratinocytes; Ca2+ and Zn2+ ions (10 µM) were added.\u00a0Café-au-lait e\u0301pithe\u0301lium cells\u200b.",
    "long": " ".join(["Pax6 binds Sox2 in the mouse lens"] * 300) + ".",
    "empty_lines": "\n\n   \nShh is expressed.\n\n\n\nFgf8 too.   \n\n",
    "windows": "First line with Shh.\r\nSecond\tline with BMP4 and glucose.\r\n\r\nThird line.\u2028Fourth.",
    "abbreviations": "See Fig. 2 and e.g. the data of Smith et al. 2004. Mice (Mus musculus) were used. J. Doe did it.",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random BERT with the 13 CRAFT labels, saved like a plain model folder."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    from craftlib.models import load_tokenizer

    tok = load_tokenizer("minilm")
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=len(config.LABELS),
                     id2label=dict(config.ID2LABEL), label2id=dict(config.LABEL2ID))
    torch.manual_seed(0)
    model = BertForTokenClassification(cfg)
    with torch.no_grad():  # fewer O: plenty of mentions of every type, so that every check has something to check
        model.classifier.bias[0] -= 0.5
    path = tmp_path_factory.mktemp("tiny-ner")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def fixture_linker() -> linking.Linker:
    from craftlib.ontology import Source

    sources = {"Protein": [OBO / "pr_mini.obo"], "Gene": [OBO / "pr_mini.obo"], "Cell": [OBO / "cl_mini.obo"],
               "Sequence": [OBO / "so_mini.obo"], "Taxon": [], "Chemical": []}
    index, names = linking.build_index({t: [Source(p, "explicit") for p in v] for t, v in sources.items()})
    return linking.Linker(index, names)


def _covered(text: str, spans) -> set[int]:
    return {k for s, e in spans for k in range(s, e)}


# --------------------------------------------------------------------------------- sentences and tokens


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_sentences_and_tokens_are_slices_that_cover_every_character(name):
    text = TEXTS[name]
    sentences = tagger.split_sentences(text)
    tokens = [t for s, e in sentences for t in tagger.tokenize(text, s, e)]
    visible = {k for k, ch in enumerate(text) if not ch.isspace()}
    assert _covered(text, sentences) >= visible  # no character lost between sentences
    assert _covered(text, tokens) == visible     # tokens: exactly the non-space characters
    assert all(text[s:e] and not text[s:e].isspace() and text[s:e].strip() == text[s:e] for s, e in tokens)
    assert all(s < e for s, e in sentences) and sentences == sorted(sentences)


def test_sentence_splitter_keeps_abbreviations_and_cuts_at_sentence_ends():
    text = TEXTS["abbreviations"]
    got = [text[s:e] for s, e in tagger.split_sentences(text)]
    assert got == ["See Fig. 2 and e.g. the data of Smith et al. 2004.", "Mice (Mus musculus) were used.",
                   "J. Doe did it."]
    assert [TEXTS["empty_lines"][s:e] for s, e in tagger.split_sentences(TEXTS["empty_lines"])] == [
        "Shh is expressed.", "Fgf8 too."]


# ------------------------------------------------------------------------------------------- tagging


@pytest.fixture(scope="module")
def tagged(model_dir, fixture_linker) -> list[TaggedDocument]:
    inputs = [tagger.Input(name, text, "text") for name, text in sorted(TEXTS.items())]
    return tagger.Tagger(model_dir, engine="torch", linker=fixture_linker).tag(inputs)


def test_every_mention_slices_back_to_its_text(tagged):
    assert sum(len(d.entities) for d in tagged) > 50
    for doc in tagged:
        export.check_offsets(doc)
        assert doc.text == TEXTS[doc.id]  # the original text, untouched
        for e in doc.entities:
            assert e.text.strip() == e.text and e.type in config.ENTITY_TYPES and 0 < e.score <= 1
            assert e.link in ("unique", "ambiguous", "none") and (e.link == "none") == (not e.ids)
        # every word of every sentence has a tag
        assert [len(t) for t in doc.tags] == [len(s) for s in doc.tokens]


def test_long_sentence_is_windowed_not_cut(tagged):
    doc = next(d for d in tagged if d.id == "long")
    assert len(doc.tokens) == 1 and len(doc.tokens[0]) == 7 * 300 + 1
    assert doc.entities[-1].end > len(doc.text) - 50  # mentions up to the end of the 2,101-word sentence


def test_craft_documents_by_id_use_their_gold_tokens(model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("CRAFTLIB_DATA_DIR", str(tmp_path))
    docs = tagger.predict(model_dir, ["1001", "1002"], engine="torch", data=config.data_spec(source=str(CRAFT)))
    assert [d.id for d in docs] == ["1001", "1002"]
    assert docs[0].text == (CRAFT / "articles" / "txt" / "1001.txt").read_text()
    for d in docs:
        export.check_offsets(d)
    assert [d.text[s:e] for s, e in docs[1].tokens[0]][:3] == ["Pax", "-", "2"]  # the CoNLL-U tokens


def test_real_craft_test_articles(model_dir, tmp_path):
    """Two whole CRAFT test articles (the local corpus): offsets, and BioC/brat read back the same mentions."""
    from craftlib import corpus

    src = require_local_craft()
    root = corpus.fetch_craft(src, data_dir=os.environ.get("CRAFTLIB_DATA_DIR") or tmp_path, progress=False)
    ids = corpus.read_split_ids(root)["test"][:2]
    data = config.data_spec(data=os.environ.get("CRAFTLIB_DATA_DIR") or tmp_path, source=src)
    docs = tagger.predict(model_dir, ids, engine="torch", data=data)
    assert all(len(d.entities) > 100 for d in docs)
    for d in docs:
        export.check_offsets(d)
    _assert_round_trips(docs, tmp_path)


# ------------------------------------------------------------------------------------------- exports


def _key(doc: TaggedDocument) -> list[tuple]:
    return [(e.start, e.end, e.type, e.text, e.ids, e.link, round(e.score, 4)) for e in doc.entities]


def _assert_round_trips(docs, tmp_path) -> None:
    export.write(docs, "bioc", tmp_path / "out.xml")
    export.write(docs, "bioc-json", tmp_path / "out.json")
    export.write(docs, "brat", tmp_path / "brat")
    for path in (tmp_path / "out.xml", tmp_path / "out.json"):
        back = export.read_bioc(path)
        assert [(d.id, d.text) for d in back] == [(d.id, d.text) for d in docs], path
        assert [_key(d) for d in back] == [_key(d) for d in docs], path
    for d in docs:
        txt = tmp_path / "brat" / f"{d.id}.txt"
        back = export.read_brat(txt)
        assert back.text == d.text
        # brat holds the span (fragments at line breaks), type, ids, score and link status
        assert [(s, e, t, i, lk, sc) for s, e, t, _, i, lk, sc in _key(back)] == [
            (s, e, t, i, lk, sc) for s, e, t, _, i, lk, sc in _key(d)]


def test_bioc_and_brat_read_back_the_same_mentions(tagged, tmp_path):
    _assert_round_trips(tagged, tmp_path)


def test_brat_cuts_a_mention_across_a_line_break_into_fragments(tmp_path):
    text = "the alpha\r\nbeta\ttubulin gene"
    doc = TaggedDocument("x", text, [Entity(4, 23, "Protein", text[4:23], 0.9, ["PR:1", "PR:2"], ["a", "b"],
                                            "ambiguous")])
    ann = export.brat_ann(doc)
    assert ann.splitlines()[0] == "T1\tProtein 4 9;11 15;16 23\talpha beta tubulin"
    export.write([doc], "brat", tmp_path)
    back = export.read_brat(tmp_path / "x.txt")
    assert _key(back) == _key(doc)


def test_text_formats_keep_the_offsets(tagged):
    lines = [json.loads(x) for x in export.render(tagged, "jsonl").splitlines()]
    for rec in lines:
        assert all(rec["text"][e["start"]:e["end"]] == e["text"] for e in rec["entities"])
    # PubTator: the title is the first line; the offsets count the title, one separator, then the abstract
    doc = next(d for d in tagged if d.id == "windows")
    rows = export.pubtator(doc).splitlines()
    title, abstract = rows[0].split("|t|", 1)[1], rows[1].split("|a|", 1)[1]
    flat = title + " " + abstract
    assert len(flat) == len(doc.text)
    for row in rows[2:]:
        _, s, e, mention, kind, _ = row.split("\t")
        assert kind in config.ENTITY_TYPES
        assert flat[int(s):int(e)] == mention
    conll = export.conll(doc).splitlines()
    assert conll[0] == "# doc = windows" and sum(1 for x in conll if "\t" in x) == sum(map(len, doc.tokens))
    page = export.render(tagged, "html")
    assert page.count("<mark") >= sum(len(d.entities) for d in tagged) - 5 and "<br>" in page


# ------------------------------------------------------------------------------------------- inputs


def test_inputs_files_folders_jats(tmp_path):
    (tmp_path / "a.txt").write_text("Shh is expressed.", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("\ufeffβ-catenin.".encode())  # a BOM is not text
    (tmp_path / "skip.pdf").write_bytes(b"%PDF")
    (tmp_path / "c.nxml").write_text(
        "<article><front><article-meta><title-group><article-title>Pax6 in the <italic>lens</italic>"
        "</article-title></title-group><abstract><p>Short   abstract.</p></abstract></article-meta></front>"
        "<body><sec><title>Intro</title><p>Body text.</p><table-wrap><table><tr><td><p>cell</p></td></tr></table>"
        "</table-wrap></sec></body></article>", encoding="utf-8")
    docs = tagger.read_inputs([tmp_path], texts=["pasted"])
    assert [(d.id, d.text) for d in docs] == [("text-1", "pasted"), ("a", "Shh is expressed."), ("b", "β-catenin."),
                                              ("c", "Pax6 in the lens\nShort abstract.\nIntro\nBody text.")]


def test_jats_italics_are_character_spans_of_the_text(tmp_path):
    """<italic> survives the whitespace collapsing: each italic run is a span of the text without its edge spaces,
    nested markup inside it included, and a plain .txt file has no typesetting at all (``italics=None``)."""
    (tmp_path / "a.nxml").write_text(
        "<article><front><article-meta><title-group><article-title>The <italic> Pax6 \n  gene</italic> in "
        "<italic>Mus <bold>musculus</bold></italic></article-title></title-group></article-meta></front>"
        "<body><p>Loss of <italic>Shh</italic>.</p></body></article>", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Shh and Pax6.", encoding="utf-8")
    doc, plain = tagger.read_inputs([tmp_path / "a.nxml", tmp_path / "b.txt"])
    assert doc.text == "The Pax6 gene in Mus musculus\nLoss of Shh."
    assert [doc.text[s:e] for s, e in doc.italics] == ["Pax6 gene", "Mus musculus", "Shh"]
    assert plain.italics is None


def _italic_model(model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model as a run trained with --italic-markers (only what the tagger reads of its metrics)."""
    import shutil

    out = tmp_path / "single-tiny-ital"
    shutil.copytree(model_dir, out)
    runs.Run(out).write_metrics({"run": out.name, "system": "transformer", "recipe": "single", "profile": "smoke",
                                 "seed": 42, "base_model": "tiny", "dataset": "craft-proper-smoke",
                                 "hyperparameters": {"italic_markers": True, "max_length": 128, "window_stride": 32}})
    return out


def test_an_italic_model_tags_typeset_documents_and_refuses_plain_text(model_dir, tmp_path, monkeypatch):
    """The typography ablation's model in use: it reads the italics of a JATS article or a CRAFT document (its input
    gets the italic marker before those words), and plain text is one clear error instead of worse tags."""
    italic_dir = _italic_model(model_dir, tmp_path)
    (tmp_path / "a.nxml").write_text("<article><body><p>Loss of <italic>Shh</italic> in the lens.</p></body>"
                                     "</article>", encoding="utf-8")
    ital = tagger.Tagger(italic_dir, engine="torch")
    seen = []
    real = tagger.encode_windows
    monkeypatch.setattr(tagger, "encode_windows", lambda *a, **k: seen.append(k.get("italic")) or real(*a, **k))
    (doc,) = ital.tag(tagger.read_inputs([tmp_path / "a.nxml"]))
    export.check_offsets(doc)
    assert seen[-1] == [[False, False, True, False, False, False, False]]  # Loss of Shh in the lens .
    with pytest.raises(tagger.InputError, match="trained with --italic-markers.*PMC/JATS"):
        ital.tag_text("Loss of Shh in the lens.")
    with pytest.raises(CraftlibError, match="trained with --italic-markers"):
        ital.tag_tokens([["Shh"]])
    monkeypatch.setenv("CRAFTLIB_DATA_DIR", str(tmp_path / "data"))
    (craft_doc,) = ital.tag(tagger.read_inputs(["1001"], data=config.data_spec(source=str(CRAFT))))
    assert craft_doc.id == "1001" and seen[-1] is not None and len(seen[-1]) == len(craft_doc.tokens)
    plain = tagger.Tagger(model_dir, engine="torch")
    seen.clear()
    plain.tag(tagger.read_inputs([tmp_path / "a.nxml"]))
    assert seen == [None]  # a model without italic markers never reads them


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"), (b"  \n\n\t ", "is empty"), (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8|looks binary"),
    (b"caf\xe9", "not UTF-8"), (b"ok\x00\x01\x02", "looks binary"),
])
def test_bad_inputs_are_one_error_line(model_dir, tmp_path, capsys, content, message):
    import re

    from craftlib.cli import main

    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    assert main(["predict", "--model", str(model_dir), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and re.search(message, err[0]), err


def test_unknown_input_and_nothing_to_tag(model_dir, tmp_path, capsys):
    from craftlib.cli import main

    assert main(["predict", "--model", str(model_dir), str(tmp_path / "nope.txt")]) == 2
    assert "no such file or folder, and not a CRAFT document id" in capsys.readouterr().err
    assert main(["predict", "--model", str(model_dir)]) == 2
    assert "Nothing to tag" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", "--model", str(model_dir), str(tmp_path / "empty")]) == 2
    assert "holds no .txt" in capsys.readouterr().err


def test_predict_command_writes_every_format(model_dir, tmp_path, capsys):
    from craftlib.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("unicode", "windows"):
        (folder / f"{name}.txt").write_bytes(TEXTS[name].encode())
    for fmt, suffix in export.FORMATS.items():
        out = tmp_path / f"out-{fmt}{suffix}"
        assert main(["predict", "--model", str(model_dir), str(folder), "--format", fmt, "--out", str(out),
                     "--engine", "torch"]) == 0, fmt
        assert out.exists()
    assert {p.name for p in (tmp_path / "out-brat").iterdir()} == {"unicode.txt", "unicode.ann", "windows.txt",
                                                                   "windows.ann"}
    # brat's .txt is the input file, byte for byte (\r\n kept)
    assert (tmp_path / "out-brat" / "windows.txt").read_bytes() == TEXTS["windows"].encode()
    capsys.readouterr()
    assert main(["predict", "--model", str(model_dir), "--text", "Shh binds Fgf8.", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["text"] == "Shh binds Fgf8." and all(rec["text"][e["start"]:e["end"]] == e["text"]
                                                    for e in rec["entities"])


# ------------------------------------------------------------------------------------------- linking


@pytest.mark.parametrize("a,b", [("TGF-β1", "tgf beta 1"), ("T cells", "T-cell"), ("mice", "mouse"),
                                 ("Fgf-8", "FGF8"), ("α-actinin", "alpha actinin"), ("neurons", "neuron")])
def test_normalisation_matches_variants(a, b):
    assert linking.normalize(a) == linking.normalize(b)


@pytest.mark.parametrize("a,b", [("Pax6", "Pax7"), ("T cell", "B cell"), ("gas", "ga")])
def test_normalisation_keeps_different_names_apart(a, b):
    assert linking.normalize(a) != linking.normalize(b)


def test_linker_gives_ids_unique_ambiguous_or_none(fixture_linker):
    assert fixture_linker.link("Shh", "Gene").ids == ("PR:000014841",)
    assert fixture_linker.link("FGF-8", "Protein").status == "unique"
    assert fixture_linker.link("Sonic hedgehog homologs", "Protein").top == "PR:000014841"  # synonym, plural
    assert fixture_linker.link("hedgehog", "Protein").status == "none"  # BROAD synonyms are not names
    assert fixture_linker.link("Shh", "Cell").status == "none"          # a type links only to its ontology
    amb = linking.Linker({"PR": {"abc": [["PR:2", False], ["PR:1", True]]}}, {"PR:1": "one", "PR:2": "two"})
    link = amb.link("ABC", "Gene")
    assert (link.status, link.ids, link.names) == ("ambiguous", ("PR:1", "PR:2"), ("one", "two"))  # names first


def test_concept_scores_need_span_and_id(fixture_linker):
    from craftlib import concepts

    gold = concepts.gold_concepts(CRAFT, ["1001"])
    shh = [g for g in gold if g["id"] == "PR:000014841"]
    assert len(shh) == 2 and all(g["text"] == "Shh" for g in shh)
    pred = [{"doc_id": "1001", "start": 0, "end": 3, "type": "Gene", "text": "Shh"},       # span and id right
            {"doc_id": "1001", "start": 8, "end": 12, "type": "Cell", "text": "Fgf8"},     # wrong ontology
            {"doc_id": "1001", "start": 53, "end": 60, "type": "Protein", "text": "Shh pro"}]  # wrong span
    s = concepts.concept_scores(fixture_linker, pred, gold)["Gene+Protein"]
    n_pr = len({(g["start"], g["end"], g["id"]) for g in gold if g["ontology"] == "PR"})
    assert s["concept"]["true_positives"] == 1 and s["concept"]["predicted"] == 1 and s["concept"]["gold"] == n_pr
    assert s["mention"]["predicted"] == 2 and s["predicted_without_id"] == 1
    acc = concepts.linking_accuracy(fixture_linker, gold)["Gene+Protein"]
    assert acc["mentions"] == n_pr and acc["accuracy"] == 1.0  # Shh, Fgf8, Shh: all found by name


# ------------------------------------------------------------------------------------------- engines


def test_onnx_export_int8_and_engine_choice(model_dir, tmp_path):
    import shutil

    import numpy as np

    from craftlib import engines

    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    shutil.copytree(model_dir, run)
    assert engines.choose_engine(run) == "torch"
    paths = engines.export_onnx(run)
    assert set(paths) == {"onnx", "onnx-int8"} and engines.choose_engine(run) == "onnx-int8"
    assert engines.file_size_mb(run, "onnx-int8") < engines.file_size_mb(run, "onnx")
    batch = {"input_ids": np.array([[101, 2000, 3000, 102, 0]]), "attention_mask": np.array([[1, 1, 1, 1, 0]]),
             "token_type_ids": np.zeros((1, 5), dtype=np.int64)}
    ref = engines.load_engine(run, "torch").logits(batch)
    assert np.allclose(engines.load_engine(run, "onnx").logits(batch), ref, atol=1e-4)
    assert np.abs(engines.load_engine(run, "onnx-int8").logits(batch) - ref).max() < 0.5
    docs = {e: tagger.Tagger(run, engine=e).tag([tagger.Input("t", TEXTS["unicode"], "text")])[0]
            for e in ("torch", "onnx")}
    assert _key(docs["torch"]) == _key(docs["onnx"])
    # retrained weights (another file): the export is stale, auto goes back to torch
    weights = run / "model.safetensors"
    os.utime(weights, (weights.stat().st_atime, weights.stat().st_mtime + 10))
    assert engines.choose_engine(run) == "torch"
    with pytest.raises(Exception, match="no current onnx-int8 export"):
        engines.load_engine(run, "onnx-int8")


def test_nested_and_same_span_mentions_read_back_in_order(tmp_path):
    """Gold-like annotations: nested mentions, two ids on one span; BioC and brat keep all, in the written order."""
    text = "mouse lens fibre cells express Pax6"
    ents = [Entity(0, 22, "Cell", text[0:22], 1.0, ["CL:0011004"], ["lens fiber cell"], "gold"),
            Entity(0, 5, "Taxon", "mouse", 1.0, ["NCBITaxon:10088"], ["Mus"], "gold"),
            Entity(0, 5, "Taxon", "mouse", 1.0, ["NCBITaxon:10090"], ["Mus musculus"], "gold"),
            Entity(31, 35, "Protein", "Pax6", 1.0, [], [], None)]
    _assert_round_trips([TaggedDocument("nested", text, ents)], tmp_path)
