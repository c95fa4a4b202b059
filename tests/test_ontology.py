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

from craftlib import config, ontology
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
    lists = ontology.build_entity_lists("quick", data_dir=tmp_path, source=CRAFT, sources=ALL_NONE)
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
    assert ontology.load_entity_lists("quick", data_dir=data, build_if_missing=False) == lists
    with pytest.raises(OntologyError, match="entity-lists"):
        ontology.load_entity_lists("quick", data_dir=tmp_path / "empty", build_if_missing=False)


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
    stats = ontology.load_stats("quick", data_dir=tmp_path / "data")
    assert sorted(stats["fallback"]) == ["Chemical", "Taxon"]
    assert stats["types"]["Gene"]["terms"] == 2 and stats["types"]["Cell"]["terms"] == 6
    assert stats["types"]["Cell"]["sources"][0]["ontology_terms"] == 4


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
