"""craftlib.ontology on hand-written OBO fixtures (tests/fixtures/obo) and the miniature CRAFT folder.

The fixtures exercise: an obsolete term, terms of foreign prefixes (CHEBI/NCBITaxon in the PR file,
UBERON in the CL file), every synonym scope (EXACT/RELATED/BROAD/NARROW), PR short labels (gene,
proteoform ``FGF8/SigPep-``, family ``fam:HH``), an organism-specific PR term, whitespace, duplicates
differing by case, too-short / too-long / punctuation-only names. ``.obo.gz`` and ``.obo.zip`` copies are
made from the same text in each test.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from craftlib import config, ontology, stages
from craftlib.errors import CraftlibError, OntologyError
from tests.conftest import FIXTURES

OBO = FIXTURES / "obo"
CRAFT = FIXTURES / "craft" / "CRAFT-5.0.2"
ALL_NONE = {t: [] for t in ontology.TYPE_PREFIX}


def gz_copy(src: Path, dest: Path) -> Path:
    dest.write_bytes(gzip.compress(src.read_bytes()))
    return dest


def zip_copy(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(src, arcname=src.name)
    return dest


def test_read_keeps_prefix_drops_obsolete_and_parses_synonyms():
    terms = {t.id: t for t in ontology.read_obo_terms(OBO / "pr_mini.obo", "PR")}
    assert "PR:000099999" not in terms  # obsolete
    assert all(i.startswith("PR:") for i in terms)  # no CHEBI / NCBITaxon
    shh = terms["PR:000014841"]
    assert shh.name == "sonic hedgehog protein" and shh.category == "gene"
    scopes = {s.text: (s.scope, s.type) for s in shh.synonyms}
    assert scopes["SHH"] == ("EXACT", "PRO-short-label")
    assert scopes["HHG-1"][0] == "RELATED" and scopes["hedgehog"][0] == "BROAD" and scopes["Shh-N"][0] == "NARROW"
    assert set(terms) == {"PR:000000001", "PR:000014841", "PR:000007499", "PR:000050000", "PR:Q62226"}


def test_foreign_prefix_is_readable_on_its_own():
    taxa = ontology.read_obo_terms(OBO / "pr_mini.obo", "NCBITaxon")
    assert [t.name for t in taxa] == ["Mus musculus"]


@pytest.mark.parametrize("wrap", ["plain", "gz", "zip"])
def test_gzip_and_zip_read_the_same_terms(tmp_path, wrap):
    src = OBO / "cl_mini.obo"
    path = {"plain": lambda: src, "gz": lambda: gz_copy(src, tmp_path / "cl_mini.obo.gz"),
            "zip": lambda: zip_copy(src, tmp_path / "cl_mini.obo.zip")}[wrap]()
    terms = ontology.read_obo_terms(path, "CL")
    assert sorted(t.id for t in terms) == ["CL:0000000", "CL:0000002", "CL:0000057", "CL:0000540"]


def test_missing_and_broken_files_raise_clear_errors(tmp_path):
    with pytest.raises(OntologyError, match="not found"):
        ontology.read_obo_terms(tmp_path / "nope.obo", "CL")
    bad = tmp_path / "bad.obo.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("readme.txt", "no ontology here")
    with pytest.raises(OntologyError, match="no .obo file"):
        ontology.read_obo_terms(bad, "CL")


def test_types_take_the_right_strings():
    terms = ontology.read_obo_terms(OBO / "pr_mini.obo", "PR")
    gene = ontology.normalize_terms(ontology.terms_for_type(terms, "Gene"))
    protein = ontology.normalize_terms(ontology.terms_for_type(terms, "Protein"))
    # short labels that look like gene symbols only; no proteoform/family/organism-specific labels
    assert gene == ["FGF8", "SHH"]
    # names + EXACT synonyms that are not short labels; no RELATED/BROAD/NARROW, no organism-specific term
    assert protein == ["FGF-8", "fibroblast growth factor 8", "hedgehog family", "protein",
                       "sonic hedgehog homolog", "sonic hedgehog protein"]
    cells = ontology.normalize_terms(ontology.terms_for_type(ontology.read_obo_terms(OBO / "cl_mini.obo", "CL"), "Cell"))
    # case-insensitive dedup (first spelling), whitespace collapsed, 1-char / punctuation-only / too long dropped,
    # RELATED "neurons" not taken
    assert cells == ["cell", "fibro blast", "fibroblast", "nerve cell", "neuron", "neurone"]
    so = ontology.normalize_terms(ontology.terms_for_type(ontology.read_obo_terms(OBO / "so_mini.obo", "SO"), "Sequence"))
    assert so == ["exon", "exon region", "gene", "promoter", "promoter sequence"]  # "_" → space


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("T-cell surface antigen T4/Leu-3", ["T", "-", "cell", "surface", "antigen", "T4", "/", "Leu", "-", "3"]),
        ("interleukin-2 (IL-2)", ["interleukin", "-", "2", "(", "IL", "-", "2", ")"]),
        ("anti-mouse IgG", ["anti-mouse", "IgG"]),
        ("2-fold", ["2-fold"]),
        ("Sam68+ cells, 1,000 of them.", ["Sam68", "+", "cells", ",", "1,000", "of", "them", "."]),
        ("5'-UTR", ["5", "'", "-", "UTR"]),
        ("Mus musculus", ["Mus", "musculus"]),
        ("   ", []),
    ],
)
def test_craft_tokenize(text, tokens):
    assert ontology.craft_tokenize(text) == tokens


def test_resolve_sources_from_directory_by_file_name(tmp_path):
    d = tmp_path / "onto"
    d.mkdir()
    gz_copy(OBO / "so_mini.obo", d / "so_mini.obo.gz")
    zip_copy(OBO / "cl_mini.obo", d / "cl_terms.obo.zip")
    (d / "pr_mini.obo").write_text((OBO / "pr_mini.obo").read_text())
    (d / "sox9.obo").write_text((OBO / "so_mini.obo").read_text())  # "sox" is not "so"
    (d / "notes.txt").write_text("not an ontology")
    found = ontology.resolve_sources(ontology_dir=d, craft_root=CRAFT)
    names = {t: [s.path.name for s in v] for t, v in found.items()}
    assert names == {"Sequence": ["so_mini.obo.gz"], "Cell": ["cl_terms.obo.zip"], "Protein": ["pr_mini.obo"],
                     "Gene": ["pr_mini.obo"], "Taxon": [], "Chemical": []}
    explicit = ontology.resolve_sources(ontology_dir=d, craft_root=CRAFT, sources={"Cell": [], "Taxon": ["x.obo"]})
    assert explicit["Cell"] == [] and [s.kind for s in explicit["Taxon"]] == ["explicit"]
    with pytest.raises(CraftlibError, match="Unknown entity type"):
        ontology.resolve_sources(craft_root=CRAFT, sources={"Disease": []})
    with pytest.raises(OntologyError, match="does not exist"):
        ontology.resolve_sources(ontology_dir=tmp_path / "missing", craft_root=CRAFT)


def test_sources_from_environment(monkeypatch):
    monkeypatch.setenv(ontology.SOURCES_ENV, "Gene=a.obo,b.obo; Taxon=")
    found = ontology.resolve_sources(craft_root=CRAFT)
    assert [s.path.name for s in found["Gene"]] == ["a.obo", "b.obo"] and found["Taxon"] == []


def test_parse_source_options():
    assert ontology.parse_source_options(["Gene=a.obo", "Gene=b.obo", "Taxon="]) == {"Gene": ["a.obo", "b.obo"], "Taxon": []}
    with pytest.raises(CraftlibError, match="TYPE=PATH"):
        ontology.parse_source_options(["a.obo"])


@pytest.fixture
def fallback_build(tmp_path, monkeypatch, capsys):
    """Entity lists of the miniature CRAFT with NO ontology: every type falls back to train annotations."""
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.delenv(ontology.SOURCES_ENV, raising=False)
    lists = stages.load("entity_lists", config.data_spec("quick", "proper", tmp_path, source=CRAFT, sources=ALL_NONE))
    return lists, tmp_path, capsys.readouterr().out


def test_fallback_uses_train_class_labels_only_and_says_so(fallback_build):
    lists, data, out = fallback_build
    # document 1001 (train): italic Shh/Fgf8 → Gene, "The Shh protein" → Protein
    assert lists["Gene"] == ["fibroblast growth factor 8", "sonic hedgehog protein"]
    assert lists["Protein"] == ["sonic hedgehog protein"]
    assert lists["Cell"] == ["neuron"]
    assert lists["Sequence"] == ["DNA", "gene"]
    # document 1002 (test) mentions Pax-2 and tubulins: never in a list
    everything = {x for v in lists.values() for x in v}
    assert not {"paired box protein Pax-2", "tubulin alpha", "tubulin beta"} & everything
    assert out.count("WARNING: no ontology source") == 6 and "train-split" in out
    stats = json.loads((config.processed_dir("quick", "proper", data) / "entity_lists" / "stats.json").read_text())
    assert stats["fallback"] == list(ontology.TYPE_PREFIX)
    assert stats["types"]["Gene"]["sources"][0]["kind"].startswith("fallback")


def test_lists_files_stats_coverage_and_reload(fallback_build, tmp_path):
    lists, data, _ = fallback_build
    out = config.processed_dir("quick", "proper", data) / "entity_lists"
    assert (out / "Gene.txt").read_text().splitlines() == lists["Gene"]
    stats = json.loads((out / "stats.json").read_text())
    assert {t: v["terms"] for t, v in stats["types"].items()} == {t: len(v) for t, v in lists.items()}
    cov = stats["coverage"]
    # train Cell mention is "retinal neurons" (the outer CL mention wins): not the label "neuron"
    assert cov["Cell"]["train"] == {"mentions": 1, "covered": 0, "share": 0.0, "distinct": 1,
                                    "distinct_covered": 0, "distinct_share": 0.0}
    # class labels are ontology names ("deoxyribonucleic acid"), not the surface strings ("DNA"): nothing covered
    assert {t: (v["train"]["mentions"], v["test"]["mentions"]) for t, v in cov.items()} == {
        "Sequence": (1, 0), "Cell": (1, 0), "Protein": (1, 2), "Gene": (1, 0), "Taxon": (0, 1), "Chemical": (2, 0)}
    assert all(v[s]["covered"] == 0 for v in cov.values() for s in ("train", "test"))
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".entity_lists")]
    assert stages.load("entity_lists", config.data_spec("quick", "proper", data), build=False) == lists
    with pytest.raises(OntologyError, match="entity-lists"):
        stages.load("entity_lists", config.data_spec("quick", "proper", tmp_path / "empty"), build=False)


def test_build_from_obo_sources_and_cli(tmp_path, monkeypatch, capsys):
    from craftlib.cli import main

    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.delenv(ontology.SOURCES_ENV, raising=False)
    monkeypatch.delenv("CRAFTLIB_ONTOLOGY_DIR", raising=False)  # CI points it at full ontology slices
    gz = gz_copy(OBO / "cl_mini.obo", tmp_path / "cl_mini.obo.gz")
    args = ["entity-lists", "--profile", "quick", "--data-dir", str(tmp_path / "data"), "--source", str(CRAFT),
            "--obo", f"Cell={gz}", "--obo", f"Gene={OBO / 'pr_mini.obo'}",
            "--obo", f"Protein={OBO / 'pr_mini.obo'}", "--obo", f"Sequence={OBO / 'so_mini.obo'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "TRAIN FALLBACK" in out and "cl_mini.obo.gz" in out
    stats = stages.stats("entity_lists", config.data_spec("quick", "proper", tmp_path / "data"))
    assert sorted(stats["fallback"]) == ["Chemical", "Taxon"]
    assert stats["types"]["Gene"]["terms"] == 2 and stats["types"]["Cell"]["terms"] == 6
    assert stats["types"]["Cell"]["sources"][0]["ontology_terms"] == 4
    assert "typed_synonym" in out and "charged_form" in out  # the filter-count table
    assert main(args) == 0 and "reused" in capsys.readouterr().out  # same inputs
    assert main(args + ["--skip-filter", "charged_form"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert stages.stats("entity_lists", config.data_spec("quick", "proper", tmp_path / "data"))["filters"] == [
        f for f in ontology.FILTERS if f != "charged_form"]


def test_coverage_counts_mentions_and_distinct_surface_strings():
    from tests.test_augment import make_dsd

    dsd = make_dsd({
        "train": [(["Mouse", "and", "mouse", "and", "rat", "cells"], ["B-Taxon", "O", "B-Taxon", "O", "B-Taxon", "B-Cell"])],
        "test": [(["T", "-", "cell", "of", "mice"], ["B-Cell", "I-Cell", "I-Cell", "O", "B-Taxon"])],
    })
    cov = ontology.coverage({"Taxon": ["mouse"], "Cell": ["T-cell"]}, dsd)
    assert cov["Taxon"]["train"] == {"mentions": 3, "covered": 2, "share": 2 / 3, "distinct": 2,
                                     "distinct_covered": 1, "distinct_share": 0.5}
    assert cov["Cell"]["train"]["covered"] == 0 and cov["Cell"]["test"]["covered"] == 1
    assert cov["Taxon"]["test"] == {"mentions": 1, "covered": 0, "share": 0.0, "distinct": 1,
                                    "distinct_covered": 0, "distinct_share": 0.0}
    assert cov["Gene"]["train"]["mentions"] == 0


# ------------------------------------------------------------------------------------ name filters
# One hand-written fixture per filter (tests/fixtures/obo/filters): the filter removes (or, for
# ncbi_qualifier, shortens) exactly the strings that are not names, counts them, and skipping it brings
# them back.

FILTER_OBO = OBO / "filters"


def _strings(fixture: str, prefix: str, entity_type: str, filters=ontology.FILTERS):
    counts = __import__("collections").Counter()
    terms = ontology.read_obo_terms(FILTER_OBO / fixture, prefix)
    out = ontology.normalize_terms(ontology.terms_for_type(terms, entity_type, filters, counts=counts),
                                   filters=filters, counts=counts)
    return out, counts


def _without(name):
    return tuple(f for f in ontology.FILTERS if f != name)


def test_filter_typed_synonym_drops_tool_and_code_synonyms():
    kept, counts = _strings("typed_synonym.obo", "SO", "Sequence")
    assert kept == ["intergenic variant", "proline", "pseudouridine"]
    assert counts["typed_synonym"] == 6  # 3 VAR tool codes, 2 RNAMOD codes, 1 aa3 code
    off, off_counts = _strings("typed_synonym.obo", "SO", "Sequence", _without("typed_synonym"))
    assert {"Pro", "m1Y"} <= set(off) and off_counts["typed_synonym"] == 0
    # "Y" is too short; the VAR codes are then caught by the next filter, tool_code
    assert off_counts["tool_code"] == 3 and "Y" not in off


def test_filter_typed_synonym_keeps_name_types():
    kept, counts = _strings("ncbi_qualifier.obo", "NCBITaxon", "Taxon")
    # common name (OMO:0003003), GenBank common name and scientific name kept; RELATED never; dubious_name typed
    assert {"mouse", "fruit flies", "Mus"} <= set(kept) and "mice" not in kept
    assert "Mus (genus)" not in kept and counts["typed_synonym"] == 1


def test_filter_tool_code_keeps_lipid_notation():
    kept, counts = _strings("tool_code.obo", "SO", "Sequence")
    assert kept == ["C24:1-sphinganine", "downstream gene variant", "fatty acid 18:1", "upstream gene variant"]
    assert counts["tool_code"] == 3
    off, _ = _strings("tool_code.obo", "SO", "Sequence", _without("tool_code"))
    assert "snpEff:UPSTREAM" in off


def test_filter_imgt_label():
    kept, counts = _strings("imgt_label.obo", "SO", "Sequence")
    assert kept == ["AFLP-PCR", "CDEIII", "J gene segment", "VJ C cluster"]
    assert counts["imgt_label"] == 4
    off, _ = _strings("imgt_label.obo", "SO", "Sequence", _without("imgt_label"))
    assert {"(VJ)-J-C-CLUSTER", "J-GENE"} <= set(off)


def test_filter_ncbi_qualifier_strips_and_merges():
    kept, counts = _strings("ncbi_qualifier.obo", "NCBITaxon", "Taxon")
    assert kept == ["Cryptococcus", "Drosophila", "fruit flies", "mouse", "Mus"]
    assert counts["ncbi_qualifier"] == 3 and counts["duplicate"] == 1  # "Mus <genus>" → "Mus" = the synonym
    off, _ = _strings("ncbi_qualifier.obo", "NCBITaxon", "Taxon", _without("ncbi_qualifier"))
    assert "Drosophila <flies,genus>" in off
    # ChEBI's linkage notation is not a qualifier
    assert ontology.normalize_terms(["glucosyl-(1<->1)-ceramide"]) == ["glucosyl-(1<->1)-ceramide"]


def test_filter_charged_form():
    kept, counts = _strings("charged_form.obo", "CHEBI", "Chemical")
    assert kept == ["(+)-abscisate", "citric acid", "NAD(+)", "uric acid"]
    assert counts["charged_form"] == 3
    off, _ = _strings("charged_form.obo", "CHEBI", "Chemical", _without("charged_form"))
    assert {"urate(1-)", "sphingosine(1+)", "citrate(3-) residue"} <= set(off)


@pytest.mark.parametrize("fixture, message", [("empty.obo", "is empty"), ("headerless.obo", "no OBO header"),
                                              ("header_only.obo", "no \\[Term\\] stanza")])
def test_empty_or_headerless_obo_is_refused(fixture, message, tmp_path):
    with pytest.raises(OntologyError, match=message):
        ontology.read_obo_terms(FILTER_OBO / fixture, "CL")
    with pytest.raises(OntologyError, match=message):  # the same through gzip
        ontology.read_obo_terms(gz_copy(FILTER_OBO / fixture, tmp_path / (fixture + ".gz")), "CL")


def test_stats_record_filter_counts_per_type(tmp_path, monkeypatch):
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.delenv(ontology.SOURCES_ENV, raising=False)
    srcs = {**ALL_NONE, "Sequence": [FILTER_OBO / "typed_synonym.obo", FILTER_OBO / "imgt_label.obo"],
            "Taxon": [FILTER_OBO / "ncbi_qualifier.obo"], "Chemical": [FILTER_OBO / "charged_form.obo"]}
    stages.load("entity_lists", config.data_spec("quick", "proper", tmp_path, source=CRAFT, sources=srcs))
    stats = stages.stats("entity_lists", config.data_spec("quick", "proper", tmp_path))
    fc = {t: v["filter_counts"] for t, v in stats["types"].items()}
    assert fc["Sequence"]["typed_synonym"] == 6 and fc["Sequence"]["imgt_label"] == 4
    assert fc["Taxon"]["ncbi_qualifier"] == 3 and fc["Chemical"]["charged_form"] == 3
    assert fc["Chemical"]["typed_synonym"] == 0 and stats["filters"] == list(ontology.FILTERS)
    # skipping a filter is a different build: the lists are rebuilt and the count is 0
    stages.load("entity_lists", config.data_spec("quick", "proper", tmp_path, source=CRAFT, sources=srcs, filters=_without("charged_form")))
    stats = stages.stats("entity_lists", config.data_spec("quick", "proper", tmp_path))
    assert stats["types"]["Chemical"]["filter_counts"]["charged_form"] == 0
    assert "urate(1-)" in stages.load("entity_lists", config.data_spec("quick", "proper", tmp_path), build=False)["Chemical"]
    with pytest.raises(CraftlibError, match="Unknown entity-list filter"):
        stages.load("entity_lists", config.data_spec("quick", "proper", tmp_path, source=CRAFT, sources=srcs, filters=["nope"]))


# ------------------------------------------------------------------------------------ cache keyed on inputs


def test_lists_rebuilt_when_the_ontology_dir_changes(tmp_path, monkeypatch, capsys):
    """Issue 13's case: lists built without a ChEBI file must not stay cached once the right folder is given."""
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.delenv(ontology.SOURCES_ENV, raising=False)
    monkeypatch.delenv("CRAFTLIB_ONTOLOGY_DIR", raising=False)
    empty, full = tmp_path / "no-chebi", tmp_path / "with-chebi"
    empty.mkdir()
    full.mkdir()
    (full / "chebi_mini.obo").write_text((FILTER_OBO / "charged_form.obo").read_text())
    data = tmp_path / "data"
    first = stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT, ontology_dir=empty))
    assert "citric acid" not in first["Chemical"] and "Chemical" in stages.stats("entity_lists", config.data_spec("quick", "proper", data))["fallback"]
    out = stages.folder("entity_lists", config.data_spec("quick", "proper", data))
    mtime = (out / "stats.json").stat().st_mtime_ns
    capsys.readouterr()
    # same inputs: reused as they are
    assert stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT, ontology_dir=empty)) == first
    assert (out / "stats.json").stat().st_mtime_ns == mtime and "Rebuilding" not in capsys.readouterr().out
    # the right folder: rebuilt, with the ChEBI terms, and the reason printed
    second = stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT, ontology_dir=full))
    assert "citric acid" in second["Chemical"] and "Rebuilding" in capsys.readouterr().out
    assert "Chemical" not in stages.stats("entity_lists", config.data_spec("quick", "proper", data))["fallback"]
    # the same file changed in place (size and modification time): rebuilt again
    (full / "chebi_mini.obo").write_text((FILTER_OBO / "charged_form.obo").read_text().replace("citric acid", "malic acid"))
    third = stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT, ontology_dir=full))
    assert "malic acid" in third["Chemical"] and "citric acid" not in third["Chemical"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".build-")]


def test_lists_rebuilt_when_an_explicit_source_changes(tmp_path, monkeypatch):
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.delenv(ontology.SOURCES_ENV, raising=False)
    data = tmp_path / "data"
    a = stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT, sources={**ALL_NONE, "Cell": [OBO / "cl_mini.obo"]}))
    b = stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT, sources={**ALL_NONE, "Cell": []}))
    assert "nerve cell" in a["Cell"] and b["Cell"] == ["neuron"]  # the train fallback
    inputs = json.loads((stages.folder("entity_lists", config.data_spec("quick", "proper", data)) / "inputs.json").read_text())["inputs"]
    assert inputs["sources"]["Cell"] == [] and set(inputs["dataset"]) == {"train", "validation", "test"}


def test_a_caller_naming_no_source_keeps_the_saved_source_settings(tmp_path, monkeypatch, capsys):
    """Training loads the entity_lists stage without sources: lists built with --ontology-dir X stay built from X."""
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.delenv(ontology.SOURCES_ENV, raising=False)
    monkeypatch.delenv("CRAFTLIB_ONTOLOGY_DIR", raising=False)
    odir = tmp_path / "onto"
    odir.mkdir()
    (odir / "chebi_mini.obo").write_text((FILTER_OBO / "charged_form.obo").read_text())
    data = tmp_path / "data"
    built = stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT, ontology_dir=odir))
    assert "citric acid" in built["Chemical"]
    assert stages.stats("entity_lists", config.data_spec("quick", "proper", data))["settings"]["ontology_dir"] == str(odir)
    capsys.readouterr()
    assert stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT)) == built
    assert "Rebuilding" not in capsys.readouterr().out
    # a file of that folder changes: rebuilt, still from that folder
    (odir / "chebi_mini.obo").write_text((FILTER_OBO / "charged_form.obo").read_text().replace("citric", "malic"))
    again = stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT))
    assert "malic acid" in again["Chemical"] and "Rebuilding" in capsys.readouterr().out
    # a source named explicitly wins: no ChEBI file → the train fallback
    other = stages.load("entity_lists", config.data_spec("quick", "proper", data, source=CRAFT, sources={"Chemical": []}))
    assert "malic acid" not in other["Chemical"]


def test_obo_with_a_utf8_byte_order_mark_is_read(tmp_path):
    bom = tmp_path / "cl_bom.obo"
    bom.write_bytes(b"\xef\xbb\xbf" + (OBO / "cl_mini.obo").read_bytes())
    expected = [t.id for t in ontology.read_obo_terms(OBO / "cl_mini.obo", "CL")]
    assert expected and [t.id for t in ontology.read_obo_terms(bom, "CL")] == expected
    gz = gz_copy(bom, tmp_path / "cl_bom.obo.gz")
    assert [t.id for t in ontology.read_obo_terms(gz, "CL")] == expected


def test_a_corrupt_obo_gz_is_called_a_corrupt_gzip(tmp_path):
    data = bytearray(gzip.compress((OBO / "pr_mini.obo").read_bytes() * 20))
    for i in range(200, len(data) - 40, 97):  # damage the deflate stream, keep the gzip header
        data[i] ^= 0x5A
    bad = tmp_path / "pr_bad.obo.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(OntologyError, match="corrupt gzip") as err:
        ontology.read_obo_terms(bad, "PR")
    assert "Copy it again" in str(err.value)
    cut = tmp_path / "pr_cut.obo.gz"  # cut short: its end (and checksum) missing
    cut.write_bytes(gzip.compress((OBO / "pr_mini.obo").read_bytes())[:-30])
    with pytest.raises(OntologyError, match="corrupt gzip"):
        ontology.read_obo_terms(cut, "PR")


def test_an_ontology_dir_of_unrecognised_files_is_named_once(tmp_path):
    """On the command line (no logging handler: Python's last-resort handler prints warnings) each warning shows
    once, and the files of the folder that nothing reads are named with why."""
    import os
    import subprocess
    import sys

    odir = tmp_path / "ont"
    odir.mkdir()
    (odir / "empty.obo").write_text("")
    (odir / "notes.txt").write_text("x")
    env = {k: v for k, v in os.environ.items() if k not in ("CRAFT_SHA256", ontology.SOURCES_ENV)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    run = subprocess.run([sys.executable, "-m", "craftlib", "entity-lists", "--profile", "quick", "--data-dir",
                          str(tmp_path / "data"), "--source", str(CRAFT), "--ontology-dir", str(odir)],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert out.count(f"no file of the ontology folder {odir} is used") == 1
    assert "empty.obo: its name starts with no ontology prefix" in out
    assert "notes.txt: not an ontology file" in out
    assert out.count("no ontology source for Cell") == 1
