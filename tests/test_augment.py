"""craftlib.augment invariants over many synthetic sentences, and the augmented stage (stages.load) on the miniature CRAFT."""

from __future__ import annotations

import json
import random

import pytest

from craftlib import augment, bio, config, stages, tags
from craftlib.errors import CraftlibError
from tests.conftest import FIXTURES

CRAFT = FIXTURES / "craft" / "CRAFT-5.0.2"

LISTS = {
    "Sequence": ["gene", "promoter", "5'-UTR"],
    "Cell": ["neuron", "T-cell", "fibroblast", "nerve cell"],
    "Protein": ["sonic hedgehog protein", "interleukin-2 (IL-2)", "FGF-8"],
    "Gene": ["Shh", "Fgf8", "Pax6"],
    "Taxon": ["mouse", "Mouse", "rat"],  # "Mouse" dedups to "mouse" only in built lists; here both exist
    "Chemical": ["water"],  # a single term: a mention "water" has no candidate
}


def make_dsd(splits: dict[str, list[tuple[list[str], list[str]]]]):
    """DatasetDict with the project's features from ``{split: [(tokens, tags), ...]}`` (missing splits empty)."""
    from datasets import Dataset, DatasetDict

    feats = tags.features()
    out = {}
    for split in ("train", "validation", "test"):
        rows = splits.get(split, [])
        out[split] = Dataset.from_dict({
            "tokens": [r[0] for r in rows],
            "ner_tags": [[config.LABEL2ID[t] for t in r[1]] for r in rows],
            "doc_id": [f"d{i // 10}" for i in range(len(rows))],
            "sentence_id": [i % 10 for i in range(len(rows))],
        }, features=feats)
    return DatasetDict(out)


SURFACES = {
    "Sequence": [["gene"], ["promoter"], ["exon"]],
    "Cell": [["neurons"], ["T", "-", "cell"]],
    "Protein": [["Shh", "protein"], ["IL", "-", "2"]],
    "Gene": [["Shh"], ["Pax6"]],
    "Taxon": [["mouse"], ["mice"]],
    "Chemical": [["water"]],
}


def random_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        toks, tg = [], []
        for _ in range(rng.randint(0, 4)):
            words = [rng.choice(["the", "of", "in", "expression", "and", ",", "."]) for _ in range(rng.randint(0, 3))]
            toks += words
            tg += ["O"] * len(words)
            kind = rng.choice(list(SURFACES))
            surface = rng.choice(SURFACES[kind])
            toks += surface
            tg += [f"B-{kind}"] + [f"I-{kind}"] * (len(surface) - 1)
        toks.append(".")
        tg.append("O")
        out.append((toks, tg))
    return out


@pytest.fixture(scope="module")
def dsd():
    return make_dsd({"train": random_sentences(3000), "validation": random_sentences(50, 1), "test": random_sentences(50, 2)})


@pytest.fixture(scope="module")
def augmented(dsd):
    return augment.augment_dataset(dsd, LISTS, ratio=0.2, seed=42, return_stats=True)


def names(ds) -> list[str]:
    return ds.features["ner_tags"].feature.names


def test_realised_ratio_within_tolerance(augmented):
    _, stats = augmented
    assert stats["mentions"] > 4000
    # "water" (Chemical) mentions can never be replaced: expected overall ratio is 0.2 × the other mentions' share
    replaceable = stats["mentions"] - stats["per_type"]["Chemical"]["mentions"]
    assert abs(stats["realised_ratio"] - 0.2 * replaceable / stats["mentions"]) < 0.015
    for t in ("Sequence", "Cell", "Protein", "Gene", "Taxon"):
        assert abs(stats["per_type"][t]["realised_ratio"] - 0.2) < 0.05, t
    ch = stats["per_type"]["Chemical"]
    assert ch["replaced"] == 0 and ch["no_candidate"] > 0


def test_structure_provenance_and_validity(dsd, augmented):
    from craftlib.ontology import craft_tokenize

    out, stats = augmented
    train = out["train"]
    n = len(dsd["train"])
    assert train.column_names == ["tokens", "ner_tags", "doc_id", "sentence_id", "origin", "replacements"]
    assert train["origin"][:n] == ["original"] * n and set(train["origin"][n:]) == {"augmented"}
    assert train["tokens"][:n] == dsd["train"]["tokens"] and train["ner_tags"][:n] == dsd["train"]["ner_tags"]
    assert stats["augmented_sentences"] == len(train) - n > 0
    label_names = names(train)
    for row in train:
        tag_strs = [label_names[i] for i in row["ner_tags"]]
        bio.validate_iob2(tag_strs)
        reps = json.loads(row["replacements"])
        assert bool(reps) == (row["origin"] == "augmented")
        for r in reps:
            span = row["tokens"][r["start"]:r["end"]]
            assert " ".join(span) == r["replacement"]
            assert tag_strs[r["start"]] == f"B-{r['type']}"
            assert all(t == f"I-{r['type']}" for t in tag_strs[r["start"] + 1:r["end"]])
            assert r["replacement"].casefold() != r["original"].casefold()  # never the original (any case)
            assert r["replacement"] in {" ".join(craft_tokenize(x)) for x in LISTS[r["type"]]}


def test_o_tokens_unchanged_and_copies_match_their_original(dsd, augmented):
    from craftlib.bio import bio_spans

    out, _ = augmented
    train, n = out["train"], len(dsd["train"])
    by_key = {}
    for r in dsd["train"]:
        by_key.setdefault((r["doc_id"], r["sentence_id"]), []).append(r)
    label_names = names(train)
    checked = 0
    for row in train.select(range(n, len(train))):
        reps = json.loads(row["replacements"])
        # rebuild the original from the copy: swap each replacement back
        toks, tg = list(row["tokens"]), [label_names[i] for i in row["ner_tags"]]
        for r in reversed(reps):
            orig = r["original"].split(" ")
            toks[r["start"]:r["end"]] = orig
            tg[r["start"]:r["end"]] = [f"B-{r['type']}"] + [f"I-{r['type']}"] * (len(orig) - 1)
        candidates = by_key[(row["doc_id"], row["sentence_id"])]
        assert any(c["tokens"] == toks and [label_names[i] for i in c["ner_tags"]] == tg for c in candidates)
        # spans that were not replaced keep their tokens; O tokens are identical in number and content
        orig = next(c for c in candidates if c["tokens"] == toks)
        o_orig = [t for t, g in zip(orig["tokens"], orig["ner_tags"]) if g == 0]
        o_new = [t for t, g in zip(row["tokens"], row["ner_tags"]) if g == 0]
        assert o_orig == o_new
        assert len(bio_spans(tg)) == len(bio_spans([label_names[i] for i in row["ner_tags"]]))
        checked += 1
    assert checked > 100


def test_dev_and_test_untouched(dsd, augmented):
    out, _ = augmented
    for split in ("validation", "test"):
        assert out[split] is dsd[split]
        assert out[split].to_dict() == dsd[split].to_dict()
        assert "origin" not in out[split].column_names


def test_deterministic_for_a_seed_and_different_across_seeds(dsd, augmented):
    again = augment.augment_dataset(dsd, LISTS, ratio=0.2, seed=42)
    assert again["train"].to_dict() == augmented[0]["train"].to_dict()
    other = augment.augment_dataset(dsd, LISTS, ratio=0.2, seed=7)
    assert other["train"]["replacements"] != again["train"]["replacements"]


def test_ratio_zero_one_and_keep_unchanged(dsd):
    _, s0 = augment.augment_dataset(dsd, LISTS, ratio=0.0, return_stats=True)
    assert s0["replaced"] == 0 and s0["realised_ratio"] == 0.0
    _, s1 = augment.augment_dataset(dsd, LISTS, ratio=1.0, return_stats=True)
    per = s1["per_type"]
    assert all(per[t]["replaced"] == per[t]["mentions"] for t in ("Sequence", "Cell", "Protein", "Gene", "Taxon"))
    keep, sk = augment.augment_dataset(dsd, LISTS, ratio=0.2, keep_unchanged=True, return_stats=True)
    assert len(keep["train"]) == 2 * len(dsd["train"]) and sk["augmented_sentences"] == len(dsd["train"])
    with pytest.raises(CraftlibError, match="ratio"):
        augment.augment_dataset(dsd, LISTS, ratio=1.5)


def test_empty_list_means_no_replacement(dsd):
    _, stats = augment.augment_dataset(dsd, {**LISTS, "Gene": []}, ratio=1.0, return_stats=True)
    assert stats["per_type"]["Gene"]["replaced"] == 0
    assert stats["per_type"]["Gene"]["no_candidate"] == stats["per_type"]["Gene"]["mentions"] > 0


def test_load_augmented_saves_reuses_and_rebuilds(tmp_path, monkeypatch, capsys):
    from craftlib import ontology

    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.setenv(ontology.SOURCES_ENV, ";".join(f"{t}=" for t in ontology.TYPE_PREFIX))  # train fallback
    aug = stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=1.0, seed=1, source=CRAFT))
    out = config.processed_dir("quick", "proper", tmp_path) / "augmented"
    stats = json.loads((out / "stats.json").read_text())
    assert (out / "dataset").is_dir() and stats["ratio"] == 1.0 and stats["seed"] == 1
    assert stats["original_sentences"] == 2 and len(aug["train"]) == 2 + stats["augmented_sentences"]
    assert stats["entity_list_fallback"] == list(ontology.TYPE_PREFIX)
    base = stages.load("dataset", config.data_spec("quick", "proper", tmp_path), build=False)
    assert aug["test"]["tokens"] == base["test"]["tokens"] and aug["test"]["ner_tags"] == base["test"]["ner_tags"]
    again = stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=1.0, seed=1), build=False)
    assert again["train"].to_dict() == aug["train"].to_dict()
    capsys.readouterr()
    stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=0.5, seed=1))
    assert "Rebuilding the augmented set" in (msg := capsys.readouterr().out) and "inputs changed: ratio" in msg
    assert stages.stats("augmented", config.data_spec("quick", "proper", tmp_path))["ratio"] == 0.5
    with pytest.raises(CraftlibError, match="python -m craftlib augment"):
        stages.load("augmented", config.data_spec("quick", "proper", tmp_path / "none"), build=False)


def test_cli_augment(tmp_path, monkeypatch, capsys):
    from craftlib import ontology
    from craftlib.cli import main

    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.setenv(ontology.SOURCES_ENV, ";".join(f"{t}=" for t in ontology.TYPE_PREFIX))
    assert main(["augment", "--profile", "quick", "--data-dir", str(tmp_path), "--source", str(CRAFT),
                 "--ratio", "1", "--seed", "3"]) == 0
    assert "realised ratio" in capsys.readouterr().out
    assert stages.stats("augmented", config.data_spec("quick", "proper", tmp_path))["seed"] == 3
    args = ["augment", "--profile", "quick", "--data-dir", str(tmp_path), "--ratio", "1", "--seed", "3"]
    assert main(args) == 0 and "reused" in capsys.readouterr().out
    assert main(args + ["--keep-unchanged", "--sampling", "uniform"]) == 0 and "wrote" in capsys.readouterr().out
    stats = stages.stats("augmented", config.data_spec("quick", "proper", tmp_path))
    assert (stats["variant"], stats["sampling"]) == ("full-copy", "uniform")


# ------------------------------------------------------------------------------ length-matched sampling

LONG_LISTS = {  # one short term and several long ones per type: uniform draws are mostly long
    "Sequence": ["exon", "untranslated region of the transcript", "long terminal repeat element"],
    "Cell": ["neuron", "retinal ganglion cell of the eye", "smooth muscle cell of the aorta"],
    "Protein": ["FGF-8", "sonic hedgehog protein precursor", "paired box protein Pax-6"],
    "Gene": ["Shh", "Fgf8", "Pax6"],
    "Taxon": ["rat", "Mus musculus domesticus", "Danio rerio zebrafish strain"],
    "Chemical": ["water", "ethanol", "sodium dodecyl sulfate solution"],
}


def test_length_sampling_matches_token_counts(dsd):
    from craftlib.ontology import craft_tokenize

    _, uni = augment.augment_dataset(dsd, LONG_LISTS, ratio=0.5, seed=3, return_stats=True, sampling="uniform")
    out, ln = augment.augment_dataset(dsd, LONG_LISTS, ratio=0.5, seed=3, return_stats=True, sampling="length")
    for t in ("Sequence", "Cell", "Protein", "Taxon"):
        u, m = uni["per_type"][t], ln["per_type"][t]
        assert u["mean_tokens_replacement"] > u["mean_tokens_replaced"] + 1, t  # uniform: far longer
        assert abs(m["mean_tokens_replacement"] - m["mean_tokens_replaced"]) < abs(
            u["mean_tokens_replacement"] - u["mean_tokens_replaced"]), t
    checked = 0
    for row in out["train"]:
        for r in json.loads(row["replacements"]):
            n_orig, n_new = len(r["original"].split(" ")), r["end"] - r["start"]
            # the nearest token count among the terms that differ from the mention (the same term is never
            # drawn: "exon" is the only 1-token Sequence term, so an "exon" mention gets a longer one)
            others = [craft_tokenize(x) for x in LONG_LISTS[r["type"]] if x.casefold() != r["original"].casefold()]
            assert abs(n_new - n_orig) == min(abs(len(x) - n_orig) for x in others), r
            checked += 1
    assert checked > 1000
    assert ln["sampling"] == "length" and uni["sampling"] == "uniform"
    with pytest.raises(CraftlibError, match="sampling"):
        augment.augment_dataset(dsd, LONG_LISTS, sampling="frequency")


def test_pool_draws_nearest_length_and_never_the_mention():
    pool = augment.ReplacementPool({"Cell": ["neuron", "nerve cell", "T - cell of blood"]}, "length")
    rng = random.Random(0)
    assert {pool.draw("Cell", ["glia"], rng)[0] for _ in range(20)} == {"neuron"}
    assert {pool.draw("Cell", ["neuron"], rng)[0] for _ in range(20)} == {"nerve cell"}  # next length
    assert {pool.draw("Cell", ["a", "b", "c", "d"], rng)[0] for _ in range(20)} == {"T - cell of blood"}
    assert pool.draw("Gene", ["Shh"], rng) is None
    single = augment.ReplacementPool({"Chemical": ["water"]}, "length")
    assert single.draw("Chemical", ["water"], rng) is None


def test_variants_sizes(dsd):
    _, part = augment.augment_dataset(dsd, LISTS, ratio=0.2, seed=42, return_stats=True)
    _, full = augment.augment_dataset(dsd, LISTS, ratio=0.2, seed=42, keep_unchanged=True, return_stats=True)
    n = len(dsd["train"])
    assert part["variant"] == "replaced-only" and n < part["train_sentences"] < 2 * n
    assert full["variant"] == "full-copy" and full["train_sentences"] == 2 * n
    # the same draws: the replaced sentences are the same in both variants
    assert full["replaced"] == part["replaced"]


def test_negative_seed_is_refused(dsd, capsys):
    from craftlib.cli import main

    with pytest.raises(CraftlibError, match="seed"):
        augment.augment_dataset(dsd, LISTS, seed=-1)
    with pytest.raises(SystemExit) as exc:
        main(["augment", "--seed", "-1"])
    assert exc.value.code == 2 and "from 0 to 4294967295" in capsys.readouterr().err


# ------------------------------------------------------------------------------ cache keyed on inputs


def test_full_profile_defaults_to_the_full_copy(tmp_path, monkeypatch):
    from craftlib import ontology

    assert config.get_profile("full").augment_keep_unchanged and not config.get_profile("quick").augment_keep_unchanged
    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    monkeypatch.setenv(ontology.SOURCES_ENV, ";".join(f"{t}=" for t in ontology.TYPE_PREFIX))
    full = stages.load("augmented", config.data_spec("full", "proper", tmp_path, ratio=0.2, seed=1, source=CRAFT))
    stats = stages.stats("augmented", config.data_spec("full", "proper", tmp_path))
    assert stats["variant"] == "full-copy" and len(full["train"]) == 2 * stats["original_sentences"]
    # quick shares the dataset folder: its replaced-only set replaces the full copy (the variant is an input)
    quick = stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=0.2, seed=1, source=CRAFT))
    assert stages.stats("augmented", config.data_spec("quick", "proper", tmp_path))["variant"] == "replaced-only"
    assert len(quick["train"]) < len(full["train"])


def test_augmented_set_rebuilt_when_the_lists_change(tmp_path, monkeypatch, capsys):
    from craftlib import ontology

    monkeypatch.delenv("CRAFT_SHA256", raising=False)
    none = ";".join(f"{t}=" for t in ontology.TYPE_PREFIX)
    monkeypatch.setenv(ontology.SOURCES_ENV, none)
    first = stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=1.0, seed=1, source=CRAFT))
    out = stages.folder("augmented", config.data_spec("quick", "proper", tmp_path))
    mtime = (out / "stats.json").stat().st_mtime_ns
    again = stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=1.0, seed=1, source=CRAFT))
    assert (out / "stats.json").stat().st_mtime_ns == mtime and again["train"].to_dict() == first["train"].to_dict()
    capsys.readouterr()
    # a Cell ontology now: the lists are rebuilt, and so is the augmented set
    monkeypatch.setenv(ontology.SOURCES_ENV, none.replace("Cell=", f"Cell={FIXTURES / 'obo' / 'cl_mini.obo'}"))
    second = stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=1.0, seed=1, source=CRAFT))
    msg = capsys.readouterr().out
    assert "Rebuilding the entity lists" in msg and "Rebuilding the augmented set" in msg and "entity_lists" in msg
    assert stages.stats("augmented", config.data_spec("quick", "proper", tmp_path))["per_type"]["Cell"]["list_terms"] == 6
    assert second["train"].to_dict() != first["train"].to_dict()
    # saved lists changed behind the augmented set's back: build_if_missing=False refuses the stale set
    monkeypatch.setenv(ontology.SOURCES_ENV, none)
    stages.load("entity_lists", config.data_spec("quick", "proper", tmp_path, source=CRAFT))
    with pytest.raises(CraftlibError, match="inputs changed: entity_lists"):
        stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=1.0, seed=1), build=False)
    # the seed and the variant are inputs too
    stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=1.0, seed=2, source=CRAFT))
    assert stages.stats("augmented", config.data_spec("quick", "proper", tmp_path))["seed"] == 2
    stages.load("augmented", config.data_spec("quick", "proper", tmp_path, ratio=1.0, seed=2, source=CRAFT, keep_unchanged=True))
    assert stages.stats("augmented", config.data_spec("quick", "proper", tmp_path))["variant"] == "full-copy"


def test_replace_prob_zero_is_the_same_copies_without_names(dsd):
    """The control: at ratio 0 the same sentences are copied as at the reference's 0.2 (same draws), but each copy
    is its original word for word; the picked mentions are counted as kept, not replaced."""
    ref, s_ref = augment.augment_dataset(dsd, LISTS, ratio=0.2, seed=3, return_stats=True)
    ctl, s_ctl = augment.augment_dataset(dsd, LISTS, ratio=0.0, seed=3, return_stats=True)

    def copies(d):
        return [r for r in d["train"] if r["origin"] == "augmented"]

    assert s_ref["replaced"] > 0 and s_ref["kept"] == 0
    assert s_ctl["replaced"] == 0 and s_ctl["kept"] == s_ref["replaced"]
    assert [(r["doc_id"], r["sentence_id"]) for r in copies(ctl)] == [(r["doc_id"], r["sentence_id"])
                                                                    for r in copies(ref)]
    originals = {(r["doc_id"], r["sentence_id"]): r for r in dsd["train"]}
    for r in copies(ctl):
        o = originals[(r["doc_id"], r["sentence_id"])]
        assert (r["tokens"], r["ner_tags"], r["replacements"]) == (o["tokens"], o["ner_tags"], "[]")
    assert any(r["tokens"] != originals[(r["doc_id"], r["sentence_id"])]["tokens"] for r in copies(ref))
    # between 0 and the floor: the reference's copies, fewer names
    half, s_half = augment.augment_dataset(dsd, LISTS, ratio=0.1, seed=3, return_stats=True)
    assert len(half["train"]) == len(ref["train"]) and s_half["replaced"] + s_half["kept"] == s_ref["replaced"]


def test_fresh_replacements_draw_a_new_copy_set_per_epoch(dsd):
    """``draws``: draw 0 is the one set of ``draws=1`` (byte for byte), later draws use their own streams, so the
    copies differ between epochs; the originals come once, and ``draw`` says which set each row belongs to."""
    one = augment.augment_dataset(dsd, LISTS, ratio=0.2, seed=5)
    three, stats = augment.augment_dataset(dsd, LISTS, ratio=0.2, seed=5, draws=3, return_stats=True)
    train = three["train"]
    draw = train["draw"]
    n = len(dsd["train"])
    assert draw[:n] == [-1] * n and train["origin"][:n] == ["original"] * n
    assert sorted(set(draw[n:])) == [0, 1, 2] and draw[n:] == sorted(draw[n:])
    assert stats["draws"] == 3 and stats["augmented_sentences_per_draw"] == [draw.count(d) for d in range(3)]
    assert stats["augmented_sentences"] == draw.count(0) == len(one["train"]) - n
    cols = ["tokens", "ner_tags", "replacements", "doc_id", "sentence_id"]
    first = train.select([i for i, d in enumerate(draw) if d == 0])
    assert [first[c] for c in cols] == [one["train"].select(range(n, len(one["train"])))[c] for c in cols]
    second = train.select([i for i, d in enumerate(draw) if d == 1])
    assert set(map(tuple, first["tokens"])) != set(map(tuple, second["tokens"]))
    for rows in (first, second):  # every copy of every draw holds a replacement (replaced-only)
        assert all(json.loads(r) for r in rows["replacements"])
    assert "draw" not in one["train"].column_names  # one draw: the set of before, no new column
    with pytest.raises(CraftlibError, match="draws"):
        augment.augment_dataset(dsd, LISTS, draws=0)
