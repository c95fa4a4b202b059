"""craftlib.tags on the hand-made miniature CRAFT folder (tests/fixtures/craft).

What the fixture's mentions exercise (document 1001, train; 1002, test):

* ``Shh`` (italic) → Gene; ``The Shh protein`` (not italic) → Protein; ``Fgf8`` (italic) → Gene but nested
  in SO ``Fgf8 gene``;
* CL ``neurons`` nested in CL ``retinal neurons``; CHEBI ``DNA`` and SO ``DNA`` on the same span;
* CHEBI ``chromatin`` ends/starts inside the token ``anti-chromatin``;
* NCBITaxon ``neurons.\\nThe`` crosses a sentence boundary;
* the Gene rules: ``Fgf8`` is followed by "gene" (context), ``The Shh protein`` has a protein-context word;
* PR ``Pax ... 2`` is discontinuous with only " - " between its fragments; PR ``alpha- ... tubulin`` is
  discontinuous around " and beta-"; PR ``beta-tubulin``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from craftlib import bio, config, corpus, gene_rules, stages, tags
from craftlib.errors import BIOError, CraftlibError
from tests.conftest import FIXTURES, require_local_craft

ROOT = FIXTURES / "craft" / "CRAFT-5.0.2"


def tag(doc_id: str, annotation_set: str = "proper", **policies):
    doc = corpus.read_document(ROOT, doc_id, annotation_sets=(annotation_set,))
    records, counts = tags.tag_document(doc, annotation_set, tags.TagPolicies(**policies))
    return [list(zip(r["tokens"], r["ner_tags"])) for r in records], counts


def tagged(sentence) -> list[tuple[str, str]]:
    return [(t, g) for t, g in sentence if g != "O"]


# ------------------------------------------------------------------------------------------ IOB2


@pytest.mark.parametrize(
    "seq",
    [["O", "B-Gene", "I-Gene", "O"], ["B-Cell", "B-Cell", "I-Cell"], [], ["O"]],
)
def test_valid_iob2(seq):
    bio.validate_iob2(seq)


@pytest.mark.parametrize(
    ("seq", "pos"),
    [(["O", "I-Gene"], 1), (["B-Protein", "I-Gene"], 1), (["I-Cell"], 0), (["O", "B-Foo"], 1)],
)
def test_invalid_iob2_names_the_position(seq, pos):
    with pytest.raises(BIOError, match=f"position {pos}"):
        bio.validate_iob2(seq)


def test_spans_to_bio_and_back():
    seq = bio.spans_to_bio(5, [(0, 2, "Gene"), (3, 4, "Taxon")])
    assert seq == ["B-Gene", "I-Gene", "O", "B-Taxon", "O"]
    assert bio.bio_spans(seq) == [(0, 2, "Gene"), (3, 4, "Taxon")]
    with pytest.raises(BIOError):
        bio.spans_to_bio(3, [(0, 2, "Gene"), (1, 3, "Cell")])


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="overlap"):
        tags.TagPolicies(overlap="biggest")
    with pytest.raises(ValueError, match="module_priority"):
        tags.TagPolicies(module_priority=("PR", "SO"))


# ------------------------------------------------------------------------------------------ defaults


def test_default_policies_on_document_1001():
    (s0, s1), counts = tag("1001")
    assert tagged(s0) == [("Shh", "B-Gene"), ("Fgf8", "B-Sequence"), ("gene", "I-Sequence"),
                          ("retinal", "B-Cell"), ("neurons", "I-Cell")]
    assert tagged(s1) == [("Shh", "B-Protein"), ("DNA", "B-Chemical"), ("anti-chromatin", "B-Chemical")]
    assert counts["gene_rule:Gene"] == 2 and counts["gene_rule:Protein"] == 1
    assert counts["overlap:nested_cross_module"] == 1  # PR Fgf8 inside SO "Fgf8 gene"
    assert counts["overlap:nested_same_module"] == 1  # CL neurons inside CL retinal neurons
    assert counts["overlap:same_span_other_type_cross_module"] == 1  # DNA: CHEBI wins over SO
    assert counts["boundary:expanded"] == 1 and "boundary:inside_token" not in counts  # one counter per mention
    assert counts["dropped:cross_sentence"] == 1
    assert counts["entities:Chemical"] == 2


def test_default_policies_on_document_1002():
    (s0,), counts = tag("1002")
    assert tagged(s0) == [("Pax", "B-Protein"), ("-", "I-Protein"), ("2", "I-Protein"),
                          ("beta-tubulin", "B-Protein"), ("mice", "B-Taxon")]
    assert counts["discontinuous:mentions"] == 2
    assert counts["discontinuous:bridged"] == 1  # "Pax - 2": only punctuation in the gap
    assert counts["discontinuous:fragment"] == 1  # "alpha- ... tubulin" → "tubulin" → "beta-tubulin"
    assert counts["overlap:duplicate"] == 1


# ------------------------------------------------------------------------------------------ each policy


def test_gene_rule_none_makes_every_pr_mention_a_protein():
    (s0, _), counts = tag("1001", gene_rule="none")
    assert ("Shh", "B-Protein") in tagged(s0)
    assert counts["gene_rule:Protein"] == 3 and counts["gene_rule:Gene"] == 0


@pytest.mark.parametrize(
    ("rule", "first_shh", "gene", "protein"),
    [
        ("italic", "B-Gene", 2, 1),  # italic Shh and Fgf8
        ("context", "B-Protein", 1, 2),  # only "Fgf8 gene"
        ("italic+context", "B-Gene", 2, 1),  # italic Shh, italic "Fgf8 gene"; "The Shh protein" stays Protein
        ("none", "B-Protein", 0, 3),
    ],
)
def test_each_gene_rule_on_document_1001(rule, first_shh, gene, protein):
    (s0, s1), counts = tag("1001", gene_rule=rule)
    assert s0[0] == ("Shh", first_shh)
    assert ("Shh", "B-Protein") in s1  # "The Shh protein": not italic, protein-context word after it
    assert (counts["gene_rule:Gene"], counts["gene_rule:Protein"]) == (gene, protein)


def test_default_gene_rule_is_italic_plus_context():
    assert tags.TagPolicies().gene_rule == "italic+context"
    assert set(tags.GENE_RULE_CHOICES) >= {"italic", "context", "italic+context", "none"}
    with pytest.raises(ValueError, match="gene_rule='bold'.*italic, context, italic\\+context, none"):
        tags.TagPolicies(gene_rule="bold")


def test_read_mentions_keeps_the_text_around_each_mention():
    doc = corpus.read_document(ROOT, "1001", modules=("PR",), annotation_sets=("proper",))
    fgf8 = next(m for m in doc.mentions[("PR", "proper")] if m.text == "Fgf8")
    assert fgf8.before == "Shh and " and fgf8.after.startswith(" gene expression in retinal")
    assert len(fgf8.after) == corpus.CONTEXT_CHARS
    assert tags.context_words(fgf8) == ("and", "gene") and tags.has_gene_context(fgf8)


def pr(before: str, text: str, after: str, start: int = 100) -> corpus.Mention:
    """A hand-made PR mention with the document text around it."""
    return corpus.Mention("m", "PR", "proper", ((start, start + len(text)),), "PR:1", "x", text, before, after)


@pytest.mark.parametrize(
    ("before", "after", "words", "gene", "protein"),
    [
        ("the ", " gene was", ("the", "gene"), True, False),  # "myocilin gene"
        ("of ", " mRNA levels", ("of", "mrna"), True, False),
        ("in ", "-null mice", ("in", "null"), True, False),  # one hyphen joins the word
        ("the targeted ", " alleles", ("targeted", "alleles"), True, False),
        ("of the gene ", ", which", ("gene", ""), True, False),  # a word before counts too
        ("an ", ". Gene expression", ("an", ""), False, False),  # punctuation in between: no context
        ("title ", "\nGene", ("title", ""), False, False),  # nor across a line break
        ("the ", " gene product", ("the", "gene"), False, True),  # "gene product" is the protein
        ("rabbit anti-", " antibody", ("anti", "antibody"), False, True),
        ("with mutant ", " protein are", ("mutant", "protein"), True, True),
        ("", "", ("", ""), False, False),
    ],
)
def test_context_words(before, after, words, gene, protein):
    m = pr(before, "Pax6", after)
    assert tags.context_words(m) == words
    assert tags.has_gene_context(m) is gene and tags.has_protein_context(m) is protein


@pytest.mark.parametrize(
    ("before", "after", "italic", "expected"),
    [  # italic, context, italic+context, none
        ("the ", " is expressed", True, ("Gene", "Protein", "Gene", "Protein")),
        ("the ", " gene is", False, ("Protein", "Gene", "Gene", "Protein")),
        ("the ", " gene is", True, ("Gene", "Gene", "Gene", "Protein")),
        ("the ", " protein is", True, ("Gene", "Protein", "Protein", "Protein")),  # the word beats italics
        ("with mutant ", " protein are", False, ("Protein", "Protein", "Protein", "Protein")),
        ("the ", " is expressed", False, ("Protein", "Protein", "Protein", "Protein")),
    ],
)
def test_mention_type_per_rule(before, after, italic, expected):
    m = pr(before, "Pax6", after)
    italics = [(98, 102)] if italic else [(0, 5)]
    got = tuple(tags.mention_type(m, italics, tags.TagPolicies(gene_rule=r))
                for r in ("italic", "context", "italic+context", "none"))
    assert got == expected
    other = corpus.Mention("c", "CL", "proper", ((100, 104),), "CL:1", "x", "cell", "the ", " gene")
    assert tags.mention_type(other, italics, tags.TagPolicies(gene_rule="context")) == "Cell"


def test_cohen_kappa():
    assert gene_rules.cohen_kappa(list("GGPP"), list("GGPP")) == 1.0
    assert gene_rules.cohen_kappa(list("GGPP"), list("PPGG")) == -1.0
    # observed 0.75, expected 0.5 * 0.75 + 0.5 * 0.25 = 0.5 -> kappa 0.5
    assert gene_rules.cohen_kappa(list("GGPP"), list("GGGP")) == pytest.approx(0.5)
    assert gene_rules.cohen_kappa(list("PPP"), list("PPP")) is None  # chance agreement 1: undefined
    with pytest.raises(ValueError):
        gene_rules.cohen_kappa(["G"], [])
    sklearn = pytest.importorskip("sklearn.metrics")
    a, b = list("GGPPGPGPPG"), list("GPPPGGGPPP")
    assert gene_rules.cohen_kappa(a, b) == pytest.approx(sklearn.cohen_kappa_score(a, b))


def _toy_doc(doc_id: str, split: str, mentions: list[corpus.Mention], italics=()) -> corpus.Document:
    doc = corpus.Document(doc_id, split, "x" * 1000)
    doc.mentions[("PR", "proper")] = mentions
    doc.typography = [corpus.Span(a, b, "italic") for a, b in italics]
    return doc


def test_gene_rule_report_on_hand_made_documents():
    docs = [
        _toy_doc("A", "train", [pr("the ", "Pax6", " gene is", start=10), pr("the ", "Shh", " is expressed", 50),
                                pr("the ", "Bmp4", " protein is", 80)], italics=[(50, 53), (80, 84)]),
        _toy_doc("B", "train", [pr("the ", "Myoc", " gene was", 10), pr("of ", "Myoc", " binds", 40)]),  # no italics
        _toy_doc("C", "dev", [pr("the ", "Otx2", " binds", 10)], italics=[(10, 14)]),
        _toy_doc("D", "test", []),  # no PR mention: no Gene share
    ]
    rep = gene_rules.gene_rule_report(docs)
    assert rep["documents_read"] == 4 and list(rep["cues"]) == ["train", "validation", "test"]
    assert rep["cues"]["train"] == {"documents": 2, "pr_mentions": 5, "italic": 2, "gene_context": 2,
                                    "protein_context": 1, "both_contexts": 0,
                                    "neither_italic_nor_gene_context": 1,  # "of Myoc binds"
                                    "documents_with_pr_but_no_italic_pr": 1}
    it, ctx, both, none = (rep["rules"][r] for r in ("italic", "context", "italic+context", "none"))
    # italic: Shh, Bmp4 (train), Otx2 (dev); "Pax6 gene" and "Myoc gene" are Protein: 2 contradictions,
    # "Bmp4 protein" is Gene: 1
    assert it["splits"]["train"]["Gene"] == 2 and it["splits"]["validation"]["gene_share"] == 1.0
    assert it["contradictions"] == {"gene_context_as_Protein": 2, "protein_context_as_Gene": 1, "total": 3}
    assert it["splits"]["train"]["documents_without_gene"] == 1  # document B: its journal italicises nothing
    assert ctx["splits"]["train"]["Gene"] == 2 and ctx["contradictions"]["total"] == 0
    assert ctx["splits"]["validation"]["documents_without_gene"] == 1  # Otx2: italic, no context word
    assert both["splits"]["train"]["Gene"] == 3 and both["contradictions"]["total"] == 0
    assert both["splits"]["train"]["documents_without_gene"] == 0
    assert none["contradictions"]["gene_context_as_Protein"] == 2 and none["splits"]["train"]["gene_share"] == 0
    assert it["splits"]["test"] == {"pr_mentions": 0, "Gene": 0, "Protein": 0, "gene_share": 0.0,
                                    "documents_with_pr": 0, "documents_without_gene": 0,
                                    "document_share_min": None, "document_share_median": None,
                                    "document_share_max": None}
    rows = {d["doc_id"]: d for d in rep["documents"]}
    assert rows["A"]["gene_share"] == {"italic": round(2 / 3, 4), "context": round(1 / 3, 4),
                                       "italic+context": round(2 / 3, 4), "none": 0.0}
    assert rows["D"]["gene_share"]["italic"] is None
    pair = next(a for a in rep["agreement"] if (a["a"], a["b"]) == ("italic", "italic+context"))
    # italic      P G G P P G  (Pax6 gene, Shh, Bmp4 protein, Myoc gene, Myoc, Otx2)
    # italic+ctx  G G P G P G  -> 3 of 6 agree; kappa from the same labels
    assert pair["agreement"] == 0.5
    assert pair["kappa"] == round(gene_rules.cohen_kappa(list("PGGPPG"), list("GGPGPG")), 4)
    none_pair = next(a for a in rep["agreement"] if (a["a"], a["b"]) == ("italic", "none"))
    assert none_pair["agreement"] == 0.5 and none_pair["kappa"] == 0.0
    table = gene_rules.gene_rule_table(rep)
    assert list(table.index) == list(tags.GENE_RULE_CHOICES)
    assert table.loc["italic", ("contradictions", "total")] == 3
    assert table.loc["italic", ("docs without Gene", "train")] == "1/2"
    assert table.loc["italic+context", ("Gene share", "train")] == 0.6
    with pytest.raises(ValueError, match="gene_rule"):
        gene_rules.gene_rule_report(docs, rules=("italic", "bold"))


def test_gene_rule_report_on_the_fixture_corpus_and_cli(tmp_path, monkeypatch, capsys):
    from craftlib.cli import main

    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    rep = gene_rules.read_gene_rule_report(config.data_spec("quick", "proper", tmp_path, source=ROOT, progress=False))
    assert rep["default_rule"] == "italic+context" and rep["documents_read"] == 2
    assert rep["cues"]["train"]["pr_mentions"] == 3 and rep["cues"]["train"]["gene_context"] == 1
    assert rep["rules"]["italic"]["splits"]["train"]["Gene"] == 2
    out = tmp_path / "res" / "gene_rules.json"
    assert main(["gene-rules", "--source", str(ROOT), "--data-dir", str(tmp_path), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["rules"] == rep["rules"] and written["command"].startswith("python -m craftlib gene-rules")
    printed = capsys.readouterr().out
    assert "italic+context" in printed and "kappa" in printed and not list(out.parent.glob("*.tmp"))


def test_committed_gene_rule_measurements_match_the_documented_default():
    """results/gene_rules.json (python -m craftlib gene-rules --profile quick --out results/gene_rules.json)."""
    path = Path(__file__).resolve().parent.parent / "results" / "gene_rules.json"
    rep = json.loads(path.read_text())
    assert rep["documents_read"] == 97 and rep["default_rule"] == tags.TagPolicies().gene_rule
    assert rep["gene_context_words"] == sorted(tags.GENE_CONTEXT_WORDS)
    assert rep["protein_context_words"] == sorted(tags.PROTEIN_CONTEXT_WORDS)
    # the stated criterion: no contradiction, then fewest documents without any Gene
    def key(rule):
        r = rep["rules"][rule]
        return (r["contradictions"]["total"], sum(s["documents_without_gene"] for s in r["splits"].values()))
    assert min(rep["rules"], key=key) == rep["default_rule"]


def test_boundary_drop():
    (_, s1), counts = tag("1001", boundary="drop")
    assert ("anti-chromatin", "O") in s1
    assert counts["boundary:dropped"] == 1 and "boundary:expanded" not in counts


@pytest.mark.parametrize(
    ("policy", "expected", "key"),
    [
        ("drop", [("beta-tubulin", "B-Protein")], "dropped"),
        ("first", [("Pax", "B-Protein"), ("alpha-", "B-Protein"), ("beta-tubulin", "B-Protein")], "fragment"),
        ("last", [("2", "B-Protein"), ("beta-tubulin", "B-Protein")], "fragment"),
        ("covering", [("Pax", "B-Protein"), ("-", "I-Protein"), ("2", "I-Protein"), ("alpha-", "B-Protein"),
                      ("and", "I-Protein"), ("beta-tubulin", "I-Protein")], "covering"),
    ],
)
def test_discontinuous_policies(policy, expected, key):
    (s0,), counts = tag("1002", discontinuous=policy)
    assert [x for x in tagged(s0) if x[0] != "mice"] == expected
    assert counts[f"discontinuous:{key}"] == 2


def test_overlap_shortest_keeps_inner_mentions():
    (s0, _), counts = tag("1001", overlap="shortest")
    assert tagged(s0) == [("Shh", "B-Gene"), ("Fgf8", "B-Gene"), ("neurons", "B-Cell")]
    assert counts["overlap:enclosing_cross_module"] == 1 and counts["overlap:enclosing_same_module"] == 1


def test_overlap_priority_prefers_pr_over_so():
    (s0, _), _ = tag("1001", overlap="priority")
    assert ("Fgf8", "B-Gene") in tagged(s0) and ("gene", "O") in s0


def test_module_priority_breaks_same_span_ties():
    order = ("PR", "NCBITaxon", "CL", "SO", "CHEBI")
    (_, s1), _ = tag("1001", module_priority=order)
    assert ("DNA", "B-Sequence") in tagged(s1)


def test_extensions_annotation_set():
    (_, s1), _ = tag("1001", annotation_set="extensions")
    assert tagged(s1)[:2] == [("Shh", "B-Protein"), ("protein", "I-Protein")]


# ------------------------------------------------------------------------------------------ dataset


@pytest.fixture
def built(tmp_path, monkeypatch):
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    dsd = stages.load("dataset", config.data_spec("quick", "proper", tmp_path, source=ROOT, progress=False), force=True)
    return dsd, tmp_path


def test_build_dataset_writes_dataset_stats_and_conll(built):
    dsd, data = built
    out = config.processed_dir("quick", "proper", data)
    assert out.name == "craft-proper"
    assert set(dsd) == {"train", "validation", "test"}
    assert dsd["train"].features["ner_tags"].feature.names == list(config.LABELS)
    assert len(dsd["train"]) == 2 and len(dsd["validation"]) == 0 and len(dsd["test"]) == 1
    row = dsd["test"][0]
    assert row["doc_id"] == "1002" and row["sentence_id"] == 0
    names = dsd["test"].features["ner_tags"].feature.names
    assert [names[i] for i in row["ner_tags"]][:3] == ["B-Protein", "I-Protein", "I-Protein"]

    stats = json.loads((out / "stats.json").read_text())
    tr = stats["splits"]["train"]
    assert (tr["documents"], tr["sentences"], tr["tokens"]) == (1, 2, 17)
    assert tr["entities"] == {"Sequence": 1, "Cell": 1, "Protein": 1, "Gene": 1, "Taxon": 0, "Chemical": 2}
    assert stats["splits"]["test"]["policy_counts"]["discontinuous:bridged"] == 1
    assert stats["total"]["entities_total"] == 6 + 3
    assert stats["policies"]["overlap"] == "longest"

    conll = (out / "conll" / "test.conll").read_text().split("\n")
    assert conll[:3] == ["Pax\tB-Protein", "-\tI-Protein", "2\tI-Protein"]
    assert (out / "conll" / "validation.conll").read_text() == ""

    again = stages.load("dataset", config.data_spec("quick", "proper", data), build=False)
    assert again["train"]["tokens"] == dsd["train"]["tokens"]
    assert stages.stats("dataset", config.data_spec("quick", "proper", data)) == stats
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_every_written_sequence_is_valid_iob2(built):
    dsd, _ = built
    names = dsd["train"].features["ner_tags"].feature.names
    for split in dsd.values():
        for row in split:
            bio.validate_iob2([names[i] for i in row["ner_tags"]])


def test_worker_processes_give_the_same_dataset(built, tmp_path):
    dsd, _ = built
    other = stages.load("dataset", config.data_spec("quick", "proper", tmp_path / "two", source=ROOT, progress=False, workers=2), force=True)
    for name in dsd:
        assert other[name].to_list() == dsd[name].to_list()


def test_load_dataset_without_build(tmp_path):
    with pytest.raises(CraftlibError, match="python -m craftlib data"):
        stages.load("dataset", config.data_spec("quick", "proper", tmp_path), build=False)


def test_smoke_profile_gets_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    dsd = stages.load("dataset", config.data_spec("smoke", "proper", tmp_path, source=ROOT, progress=False))
    assert (tmp_path / "processed" / "craft-proper-smoke" / "stats.json").is_file()
    assert len(dsd["train"]) == 2


def test_cli_data_command(tmp_path, monkeypatch, capsys):
    from craftlib.cli import main

    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    code = main(["data", "--source", str(ROOT), "--data-dir", str(tmp_path), "--annotation-set", "extensions",
                 "--profile", "quick"])
    assert code == 0
    out = capsys.readouterr().out
    assert "craft-extensions" in out and out.splitlines()[-1].startswith("wrote ")  # the stage loader's line
    assert stages.stats("dataset", config.data_spec("quick", "extensions", tmp_path))["annotation_set"] == "extensions"


def test_real_corpus_smoke_build(tmp_path):
    """The smoke build of the real corpus (skipped without a local CRAFT copy)."""
    src = require_local_craft()
    dsd = stages.load("dataset", config.data_spec("smoke", "proper", tmp_path, source=src, progress=False), force=True)
    stats = stages.stats("dataset", config.data_spec("smoke", "proper", tmp_path))
    for name, split in dsd.items():
        assert stats["splits"][name]["sentences"] == len(split)
        assert stats["splits"][name]["documents"] == config.PROFILES["smoke"].max_docs[
            {v: k for k, v in config.HF_SPLITS.items()}[name]]
    assert stats["total"]["gene_rule"]["Gene"] > 0 and stats["total"]["gene_rule"]["Protein"] > 0


# ------------------------------------------------------------------- a damaged or interrupted dataset


def _arrow(data, split="train"):
    return next((config.processed_dir("quick", "proper", data) / "dataset" / split).glob("*.arrow"))


def test_missing_arrow_file_is_a_clear_error(built):
    from craftlib.errors import DatasetError

    _, data = built
    _arrow(data).unlink()
    with pytest.raises(DatasetError, match=r"lacks train/data-.*\.arrow.*python -m craftlib data"):
        stages.load("dataset", config.data_spec("quick", "proper", data), build=False)


@pytest.mark.parametrize("which", ["arrow", "state.json"])
def test_truncated_dataset_file_is_a_clear_error(built, which):
    from craftlib.errors import DatasetError

    _, data = built
    path = _arrow(data) if which == "arrow" else _arrow(data).parent / "state.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match="truncated or damaged; rebuild it with `python -m craftlib data"):
        stages.load("dataset", config.data_spec("quick", "proper", data), build=False)


def test_a_damaged_arrow_file_of_the_right_size_is_found_and_rebuilt(built, capsys):
    """Bytes overwritten in a saved .arrow (same size) could make pyarrow crash the process (train segfaulted) or
    load wrong tokens: the content is checked against the sha256 recorded when it was written."""
    from craftlib.errors import DatasetError

    dsd, data = built
    expected = list(dsd["train"]["tokens"])
    path = _arrow(data)
    raw = bytearray(path.read_bytes())
    i = raw.find(expected[0][0].encode())
    raw[i:i + 4] = b"\xff\xfe\xfd\xfc"
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"data-.*\.arrow is not what was written .*damaged"):
        stages.load("dataset", config.data_spec("quick", "proper", data), build=False)
    capsys.readouterr()
    again = stages.load("dataset", config.data_spec("quick", "proper", data, source=ROOT, progress=False))
    assert "Rebuilding the tagged dataset" in capsys.readouterr().out
    assert list(again["train"]["tokens"]) == expected
    saved = stages.load("dataset", config.data_spec("quick", "proper", data), build=False)
    assert list(saved["train"]["tokens"]) == expected


def test_damaged_dataset_without_a_file_list_is_still_a_clear_error(built):
    """A dataset built before the file list was recorded: the damage is found when loading."""
    from craftlib.errors import DatasetError

    _, data = built
    stats_path = config.processed_dir("quick", "proper", data) / "stats.json"
    stats = json.loads(stats_path.read_text())
    del stats["files"], stats["sha256"]
    stats_path.write_text(json.dumps(stats))
    state = _arrow(data).parent / "state.json"
    state.write_text(state.read_text()[:20])
    with pytest.raises(DatasetError, match="cannot be loaded"):
        stages.load("dataset", config.data_spec("quick", "proper", data), build=False)


def test_saved_tags_that_break_iob2_are_refused_when_loaded(built):
    from craftlib.errors import DatasetError

    dsd, data = built
    out = config.processed_dir("quick", "proper", data)
    rows = dsd["test"].to_dict()
    rows["ner_tags"][0][0] = config.LABEL2ID["I-Protein"]  # an I- without its B-
    dsd["test"] = dsd["test"].from_dict(rows, features=dsd["test"].features)
    import shutil

    dsd.save_to_disk(str(out / "dataset-new"))  # dsd is read from out/dataset: write beside it, then swap
    shutil.rmtree(out / "dataset")
    (out / "dataset-new").rename(out / "dataset")
    stats = json.loads((out / "stats.json").read_text())
    stats["files"] = tags._dataset_files(out / "dataset")  # consistent files: only the tags are wrong
    stats["sha256"] = tags._dataset_checksums(out / "dataset")
    (out / "stats.json").write_text(json.dumps(stats))
    with pytest.raises(DatasetError, match=r"\[test\].*sentence 0 of document 1002 .row 0., token 0: I-Protein "
                                           "follows O"):
        stages.load("dataset", config.data_spec("quick", "proper", data), build=False)


def test_interrupted_build_never_leaves_a_mix_that_looks_valid(built, monkeypatch):
    """Killed while the new dataset replaces the old one: the folder must not look like a complete dataset."""
    import os

    _, data = built
    out = config.processed_dir("quick", "proper", data)
    real_replace = os.replace

    def killed_at_conll(src, dst, *args, **kwargs):
        if os.path.basename(os.fspath(dst)) == "conll" and ".build-" in os.fspath(src) and "old-" not in os.fspath(src):
            raise KeyboardInterrupt
        return real_replace(src, dst, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed_at_conll)
        with pytest.raises(KeyboardInterrupt):
            stages.load("dataset", config.data_spec("quick", "proper", data, source=ROOT, progress=False, policies=tags.TagPolicies(overlap="shortest")), force=True)
    with pytest.raises(CraftlibError, match="No complete tagged dataset"):  # incomplete: refused, not half old / half new
        stages.load("dataset", config.data_spec("quick", "proper", data), build=False)
    dsd = stages.load("dataset", config.data_spec("quick", "proper", data, source=ROOT, progress=False))  # the next run recovers
    assert len(dsd["train"]) == 2 and stages.stats("dataset", config.data_spec("quick", "proper", data))["policies"]["overlap"] == "longest"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------- load if current, else build


def test_dataset_is_reused_with_the_settings_it_was_built_with(tmp_path, monkeypatch, capsys):
    """A caller naming no source or policies (training, the notebooks) reuses the saved dataset as it is."""
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.setenv("CRAFT_SOURCE", str(tmp_path / "elsewhere.tar.gz"))  # never read: the saved source wins
    stages.load("dataset", config.data_spec("quick", "proper", tmp_path, source=ROOT, progress=False, policies=tags.TagPolicies(overlap="shortest")), force=True)
    out = config.processed_dir("quick", "proper", tmp_path)
    before = {p: (out / p).stat().st_mtime_ns for p in ("stats.json", "inputs.json")}
    dsd = stages.load("dataset", config.data_spec("quick", "proper", tmp_path, progress=False))
    assert len(dsd["train"]) == 2 and "Rebuilding" not in capsys.readouterr().out
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before
    assert stages.stats("dataset", config.data_spec("quick", "proper", tmp_path))["policies"]["overlap"] == "shortest"


def test_dataset_is_rebuilt_when_its_corpus_changed(tmp_path, monkeypatch, capsys):
    """The known gap of the reliability issue: a changed CRAFT source used to leave the old tags in place."""
    import shutil

    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    src = tmp_path / "CRAFT-5.0.2"
    shutil.copytree(ROOT, src)
    stages.load("dataset", config.data_spec("quick", "proper", tmp_path / "data", source=src, progress=False), force=True)
    out = config.processed_dir("quick", "proper", tmp_path / "data")
    built_at = json.loads((out / "stats.json").read_text())["created"], (out / "inputs.json").stat().st_mtime_ns
    for f in (src / "articles" / "txt" / "1001.txt", src / "structural-annotation/dependency/conllu/1001.conllu"):
        f.write_text(f.read_text().replace("Shh", "SHH"))  # another release of the corpus, same offsets
    dsd = stages.load("dataset", config.data_spec("quick", "proper", tmp_path / "data", progress=False))
    assert "Rebuilding the tagged dataset" in capsys.readouterr().out
    assert "SHH" in [t for row in dsd["train"]["tokens"] for t in row]
    assert (out / "inputs.json").stat().st_mtime_ns != built_at[1]
    assert json.loads((out / "inputs.json").read_text())["inputs"]["source"]["path"] == str(src.resolve())
    # current again: the next load reuses it
    stages.load("dataset", config.data_spec("quick", "proper", tmp_path / "data", progress=False))
    assert "Rebuilding" not in capsys.readouterr().out


def test_dataset_without_a_record_is_rebuilt_with_its_own_settings(built, capsys):
    """A dataset of an older craftlib (no inputs.json) is rebuilt once, from the source and policies it names."""
    _, data = built
    out = config.processed_dir("quick", "proper", data)
    (out / "inputs.json").unlink()
    with pytest.raises(CraftlibError, match="No complete tagged dataset"):
        stages.load("dataset", config.data_spec("quick", "proper", data), build=False)
    dsd = stages.load("dataset", config.data_spec("quick", "proper", data, progress=False))
    assert "Rebuilding the tagged dataset" in capsys.readouterr().out and len(dsd["train"]) == 2
    assert (out / "inputs.json").is_file()


# ------------------------------------------------------------------------------------------ typography


def test_italic_flags_follow_the_typography_layer():
    """Italic Shh and Fgf8 (document 1001's typography layer) are flagged; "The Shh protein" is not."""
    records, _ = tags.tag_document(corpus.read_document(ROOT, "1001"))
    rows = {"doc_id": [r["doc_id"] for r in records], "sentence_id": [r["sentence_id"] for r in records],
            "tokens": [r["tokens"] for r in records]}
    flags = tags.italic_flags(rows, ROOT)
    assert [len(f) for f in flags] == [len(t) for t in rows["tokens"]]
    italic_words = {w for toks, fl in zip(rows["tokens"], flags) for w, f in zip(toks, fl) if f}
    assert {"Shh", "Fgf8"} <= italic_words and not {"gene", "protein", "The"} & italic_words
    assert flags[1][rows["tokens"][1].index("Shh")] is False  # "The Shh protein": roman


def test_italic_flags_refuse_sentences_that_are_not_the_corpus():
    rows = {"doc_id": ["1001"], "sentence_id": [next(iter(corpus.read_document(ROOT, "1001").sentences)).sentence_id],
            "tokens": [["not", "the", "tokens"]]}
    with pytest.raises(CraftlibError, match="does not match the CRAFT corpus"):
        tags.italic_flags(rows, ROOT)
