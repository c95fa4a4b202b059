"""Error analysis: taxonomy on hand-made cases, exact accounting, agreement with seqeval, paired comparison."""

from __future__ import annotations

import argparse
import json
import random

import pandas as pd
import pytest
from seqeval.metrics.sequence_labeling import get_entities

from craftlib import config, pipeline, runs
from craftlib import evaluate as ev
from craftlib.config import ENTITY_TYPES, LABELS
from craftlib.errors import CraftlibError


def rec(gold, pred, doc="d1", sid=1, tokens=None):
    tokens = tokens or [f"t{i}" for i in range(len(gold))]
    return {"doc_id": doc, "sentence_id": sid, "tokens": tokens, "gold": gold, "pred": pred}


def cats(m, side):
    sub = m[m["side"] == side].sort_values("start")
    return list(zip(sub["start"], sub["end"], sub["type"], sub["category"]))


# ------------------------------------------------------------------------------------------- taxonomy

def test_every_category_on_hand_made_sentence():
    gold = ["B-Gene", "I-Gene", "O", "B-Cell", "O", "B-Taxon", "O", "B-Chemical", "O", "B-Sequence", "I-Sequence", "O"]
    pred = ["B-Gene", "I-Gene", "O", "B-Protein", "O", "O", "B-Cell", "B-Chemical", "I-Chemical", "O", "B-Protein", "O"]
    m = ev.mention_table([rec(gold, pred)])
    assert cats(m, "gold") == [
        (0, 2, "Gene", "correct"),
        (3, 4, "Cell", "wrong_type"),
        (5, 6, "Taxon", "missed"),
        (7, 8, "Chemical", "wrong_boundary"),
        (9, 11, "Sequence", "wrong_type_boundary"),
    ]
    assert cats(m, "pred") == [
        (0, 2, "Gene", "correct"),
        (3, 4, "Protein", "wrong_type"),
        (6, 7, "Cell", "spurious"),
        (7, 9, "Chemical", "wrong_boundary"),
        (10, 11, "Protein", "wrong_type_boundary"),
    ]
    gold_rows = m[m["side"] == "gold"].set_index("start")
    assert gold_rows.loc[3, "confused_with"] == "Protein"
    assert gold_rows.loc[5, "confused_with"] == "O"
    assert gold_rows.loc[9, "pred_text"] == "t10"
    assert gold_rows.loc[7, "predicted"] == "Chemical"


def test_prediction_overlapping_two_gold_spans_counts_once_on_pred_side():
    # one predicted Gene span covers a gold Gene and the adjacent gold Protein
    gold = ["B-Gene", "B-Protein", "O"]
    pred = ["B-Gene", "I-Gene", "O"]
    m = ev.mention_table([rec(gold, pred)])
    assert cats(m, "gold") == [(0, 1, "Gene", "wrong_boundary"), (1, 2, "Protein", "wrong_type_boundary")]
    assert cats(m, "pred") == [(0, 2, "Gene", "wrong_boundary")]
    g = ev.category_counts(m, "gold")
    p = ev.category_counts(m, "pred")
    assert g.loc["total", "gold_total"] == 2 and p.loc["total", "pred_total"] == 1
    assert ev.confusion_matrix(m).loc["Protein", "Gene"] == 1  # confused with the overlapping type


def test_wrong_type_boundary_picks_largest_overlap():
    gold = ["B-Cell", "I-Cell", "I-Cell", "O"]
    pred = ["B-Taxon", "B-Chemical", "I-Chemical", "I-Chemical"]
    m = ev.mention_table([rec(gold, pred)])
    row = m[m["side"] == "gold"].iloc[0]
    assert row["category"] == "wrong_type_boundary"
    assert row["confused_with"] == "Chemical"
    assert row["predicted"] == "Taxon|Chemical"


def test_stray_inside_tag_opens_a_span_like_seqeval_default():
    m = ev.mention_table([rec(["O", "I-Gene", "O"], ["O", "B-Gene", "O"])])
    assert cats(m, "gold") == [(1, 2, "Gene", "correct")]


# ------------------------------------------------------------------------------------- accounting

def random_tags(rng, n):
    return [rng.choice(LABELS) if rng.random() < 0.45 else "O" for _ in range(n)]


def random_records(seed, n_sent=60):
    rng = random.Random(seed)
    out = []
    for s in range(n_sent):
        n = rng.randint(1, 25)
        gold = random_tags(rng, n)
        # predictions: mostly copy gold with perturbations, so every category occurs
        pred = [g if rng.random() < 0.6 else rng.choice(LABELS) for g in gold]
        out.append(rec(gold, pred, doc=f"d{s % 4}", sid=s))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_totals_add_up_to_gold_and_pred_spans(seed):
    records = random_records(seed)
    m = ev.mention_table(records)
    g, p = ev.category_counts(m, "gold"), ev.category_counts(m, "pred")
    for t in ENTITY_TYPES:
        n_gold = sum(1 for r in records for e in get_entities(r["gold"]) if e[0] == t)
        n_pred = sum(1 for r in records for e in get_entities(r["pred"]) if e[0] == t)
        assert g.loc[t, "gold_total"] == n_gold == sum(g.loc[t, c] for c in ev.GOLD_CATEGORIES)
        assert p.loc[t, "pred_total"] == n_pred == sum(p.loc[t, c] for c in ev.PRED_CATEGORIES)
        assert g.loc[t, "correct"] == p.loc[t, "correct"]
    assert (m.groupby("side").size() == [g.loc["total", "gold_total"], p.loc["total", "pred_total"]]).all()
    # every category occurs in this random data, so the test exercises all of them
    assert set(m["category"]) == set(ev.CATEGORIES)
    cm = ev.confusion_matrix(m)
    assert (cm.drop(index="O").sum(axis=1) == g.loc[list(ENTITY_TYPES), "gold_total"]).all()
    assert cm.loc["O"].sum() == p.loc["total", "spurious"]
    assert cm.loc["O", "O"] == 0
    errs = ev.errors_table(m)
    assert len(errs) == g.loc["total", "gold_total"] - g.loc["total", "correct"] + p.loc["total", "spurious"]
    counts = ev.error_counts(m)
    assert counts.loc["total", "spurious"] == p.loc["total", "spurious"]


@pytest.mark.parametrize("seed", [10, 11, 12, 13, 14])
def test_taxonomy_metrics_agree_with_seqeval(seed):
    records = random_records(seed, n_sent=40)
    m = ev.mention_table(records)
    ours = ev.span_metrics(m)
    ref = ev.score([r["gold"] for r in records], [r["pred"] for r in records])
    assert ref["mode"] == "default"
    for t in ENTITY_TYPES:
        for k in ("precision", "recall", "f1", "support"):
            assert ours[t][k] == pytest.approx(ref["per_type"][t][k]), (t, k)
    for k in ("precision", "recall", "f1"):
        assert ours["micro"][k] == pytest.approx(ref[k])


def test_strict_and_default_modes_are_labelled_and_differ():
    gold, pred = [["B-Gene", "I-Gene", "O"]], [["I-Gene", "I-Gene", "O"]]
    default, strict = ev.score(gold, pred), ev.score(gold, pred, strict=True)
    assert (default["mode"], strict["mode"]) == ("default", "strict-IOB2")
    assert default["f1"] == 1.0 and strict["f1"] == 0.0
    table = ev.scores_table({"sys": [rec(gold[0], pred[0])]})
    assert table.loc[("sys", "default"), "f1"] == 1.0
    assert table.loc[("sys", "strict-IOB2"), "f1"] == 0.0


def test_merged_strict_and_all_o_on_hand_made_predictions():
    gold = [["B-Gene", "I-Gene", "O", "B-Protein", "O", "B-Cell"], ["O", "O", "B-Taxon", "O"]]
    pred = [["B-Protein", "I-Protein", "O", "B-Protein", "O", "I-Cell"], ["O", "O", "B-Taxon", "O"]]
    s = ev.score(gold, pred)
    # default: 4 gold, 4 predicted spans; right: Protein, Cell (stray I- opens a span), Taxon -> 3
    assert (s["precision"], s["recall"]) == (0.75, 0.75)
    # merged: Gene->Protein becomes right as well: 4 of 4
    assert s["merged"] == {"types": ["Gene", "Protein"], "precision": 1.0, "recall": 1.0, "f1": 1.0}
    # strict IOB2 drops the stray I-Cell: 3 predicted spans, 2 right (Protein, Taxon); recall 2/4
    assert s["strict"]["precision"] == pytest.approx(2 / 3) and s["strict"]["recall"] == 0.5
    assert s["all_o_accuracy"] == pytest.approx(5 / 10)  # 5 of the 10 gold tags are O
    assert s["accuracy"] == pytest.approx(7 / 10)
    st = ev.score(gold, pred, strict=True)
    assert st["strict"] == {k: st[k] for k in ("precision", "recall", "f1")}
    assert st["merged"]["precision"] == pytest.approx(3 / 3) and st["merged"]["recall"] == 0.75
    assert ev.score([["O", "O"]], [["O", "O"]])["all_o_accuracy"] == 1.0
    assert json.loads(json.dumps(s)) == s  # stored as-is in metrics.json
    counts = ev.stray_inside_spans([rec(g, p) for g, p in zip(gold, pred)])
    assert counts == {"pred_spans": 4, "stray_spans": 1, "stray_correct": 1}


def valid_iob2(tags):
    out = ["O"] * len(tags)
    for kind, start, end in get_entities(tags):
        out[start:end + 1] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start)
    return out


@pytest.mark.parametrize("seed", [20, 21])
def test_strict_mode_is_default_without_the_stray_predicted_spans(seed):
    records = [dict(r, gold=valid_iob2(r["gold"])) for r in random_records(seed, n_sent=80)]
    d = ev.score([r["gold"] for r in records], [r["pred"] for r in records])
    st = ev.stray_inside_spans(records)
    g = ev.category_counts(ev.mention_table(records), "gold").loc["total"]
    assert st["stray_spans"] > st["stray_correct"] > 0  # the random data has both kinds
    assert d["precision"] == pytest.approx(g["correct"] / st["pred_spans"])
    tp_strict = g["correct"] - st["stray_correct"]
    assert d["strict"]["precision"] == pytest.approx(tp_strict / (st["pred_spans"] - st["stray_spans"]))
    assert d["strict"]["recall"] == pytest.approx(tp_strict / g["gold_total"])


def test_nervaluate_scenarios_on_hand_made_sentence():
    gold = [["B-Gene", "O", "B-Cell", "I-Cell", "O", "B-Taxon", "O", "B-Chemical"]]
    pred = [["B-Protein", "O", "B-Cell", "O", "O", "B-Taxon", "O", "O"]]
    nv = ev.nervaluate_scores(gold, pred)
    assert set(nv) == set(ev.NERVALUATE_SCENARIOS) == set(ev.NERVALUATE_MEANING)
    # strict: Taxon correct; Gene (type) and Cell (boundary) incorrect; Chemical missed
    assert {k: nv["strict"][k] for k in ("correct", "incorrect", "partial", "missed", "spurious")} == {
        "correct": 1, "incorrect": 2, "partial": 0, "missed": 1, "spurious": 0}
    assert nv["exact"]["correct"] == 2  # Gene's boundaries are right
    assert nv["partial"]["correct"] == 2 and nv["partial"]["partial"] == 1
    assert nv["partial"]["precision"] == pytest.approx((2 + 0.5) / 3)
    assert nv["ent_type"]["correct"] == 2  # Cell: right type, overlapping
    # strict scenario = seqeval's exact-match precision and recall
    s = ev.score(gold, pred)
    assert nv["strict"]["precision"] == pytest.approx(s["precision"]) and nv["strict"]["recall"] == pytest.approx(
        s["recall"])


def test_double_penalty_a_near_miss_scores_below_silence():
    gold = [["B-Gene", "O", "B-Cell", "I-Cell"]]
    near_miss = ev.score(gold, [["B-Gene", "O", "O", "B-Cell"]])  # Cell found, wrong boundary: 1 FP + 1 FN
    silent = ev.score(gold, [["B-Gene", "O", "O", "O"]])  # Cell not predicted: 1 FN
    assert near_miss["f1"] == 0.5 and silent["f1"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------- bootstrap

def test_document_counts_sum_to_seqeval_micro_scores():
    records = random_records(30, n_sent=50)
    docs, counts = ev.document_counts(records)
    assert docs == ["d0", "d1", "d2", "d3"] and counts.shape == (4, 3)
    tp, fp, fn = counts.sum(axis=0)
    s = ev.score([r["gold"] for r in records], [r["pred"] for r in records])
    assert tp / (tp + fp) == pytest.approx(s["precision"]) and tp / (tp + fn) == pytest.approx(s["recall"])
    _, merged = ev.document_counts(records, merge=True)
    tp, fp, fn = merged.sum(axis=0)
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(s["merged"]["f1"])


def _systems(seed: int) -> dict:
    base = random_records(seed, n_sent=120)
    for i, r in enumerate(base):
        r["doc_id"] = f"doc{i % 12}"
    rng = random.Random(seed)
    better = [dict(r, pred=[g if rng.random() < 0.9 else p for g, p in zip(r["gold"], r["pred"])]) for r in base]
    return {"a": base, "b": better}


def test_bootstrap_is_deterministic_and_contains_the_point_estimate():
    systems = _systems(40)
    one = ev.bootstrap(systems, n=500, seed=7)
    assert one == ev.bootstrap(systems, n=500, seed=7)
    assert one != ev.bootstrap(systems, n=500, seed=8)
    assert one["documents"] == 12 and one["sentences"] == 120 and one["n_resamples"] == 500
    for name, recs in systems.items():
        v = one["systems"][name]
        assert v["f1"] == pytest.approx(ev.score([r["gold"] for r in recs], [r["pred"] for r in recs])["f1"])
        assert v["low"] <= v["f1"] <= v["high"] and v["low"] < v["high"]
    (d,) = one["differences"]
    assert (d["a"], d["b"]) == ("a", "b") and d["low"] <= d["difference"] <= d["high"]
    assert d["difference"] == pytest.approx(one["systems"]["b"]["f1"] - one["systems"]["a"]["f1"])
    assert d["verdict"] == "b higher" and d["low"] > 0  # b copies most gold tags: clearly better
    assert json.loads(json.dumps(one)) == one
    systems_df, diffs_df = ev.bootstrap_tables(one)
    assert list(systems_df.index) == ["a", "b"] and diffs_df.loc["b - a", "verdict"] == "b higher"


def test_bootstrap_difference_of_a_system_with_itself_is_zero():
    systems = _systems(41)
    res = ev.bootstrap({"a": systems["a"], "a again": systems["a"], "b": systems["b"]}, n=300,
                       pairs=[("a", "a again"), ("b", "a")])
    same, reverse = res["differences"]
    assert (same["difference"], same["low"], same["high"], same["verdict"]) == (0.0, 0.0, 0.0, "indistinguishable")
    assert reverse["verdict"] == "b higher" and reverse["high"] < 0
    one_doc = {k: [dict(r, doc_id="only") for r in v] for k, v in systems.items()}
    assert ev.bootstrap(one_doc, n=50)["differences"][0]["verdict"].startswith("undetermined")
    with pytest.raises(CraftlibError, match="unknown systems"):
        ev.bootstrap(systems, pairs=[("a", "c")])
    with pytest.raises(CraftlibError, match="at least 1"):
        ev.bootstrap(systems, n=0)


def test_build_plan_says_what_would_be_built(tmp_path):
    write_jsonl(tmp_path / "models" / "dictionary-smoke" / "predictions_test.jsonl", random_records(1, n_sent=2))
    (tmp_path / "results" / "single-minilm-smoke-case-viterbi").mkdir(parents=True)
    (tmp_path / "results" / "single-minilm-smoke-case-viterbi" / "metrics.json").write_text(
        json.dumps({"train_seconds": 12.5}))
    plan = pipeline.build_plan(["dictionary", "single"], config.data_spec("smoke"), models_dir=tmp_path / "models",
                               results_dir=tmp_path / "results")
    assert [(p["run"], p["action"]) for p in plan] == [("dictionary-smoke", "read"), ("single-minilm-smoke-case-viterbi", "build")]
    assert plan[0]["command"] == "python -m craftlib baseline --profile smoke"
    assert plan[1]["command"].startswith("python -m craftlib train --recipe single --profile smoke")
    assert plan[1]["measured_train_s"] == 12.5 and plan[0]["measured_train_s"] is None


# ---------------------------------------------------------------------------------------- slices

def test_slices_seen_entity_list_multi_token_and_gene_protein():
    train = [{"tokens": ["the", "Pax6", "gene", "in", "mice"], "ner_tags": [0, LABELS.index("B-Gene"), 0, 0,
                                                                           LABELS.index("B-Taxon")]}]
    surfaces = ev.train_surfaces(train)
    assert "pax6" in surfaces["Gene"] and "mice" in surfaces["Taxon"]
    lists = {"Chemical": ["alpha-tubulin inhibitor", "water"], "Gene": []}
    tokens = ["PAX6", "and", "alpha", "-", "tubulin", "inhibitor", "in", "mice", "water"]
    gold = ["B-Gene", "O", "B-Chemical", "I-Chemical", "I-Chemical", "I-Chemical", "O", "B-Taxon", "O"]
    pred = ["B-Protein", "O", "B-Chemical", "I-Chemical", "I-Chemical", "I-Chemical", "O", "O", "B-Chemical"]
    m = ev.mention_table([rec(gold, pred, tokens=tokens)], train_surfaces=surfaces, entity_lists=lists)
    g = m[m["side"] == "gold"].set_index("text")
    assert bool(g.loc["PAX6", "seen_in_train"]) is True  # case-insensitive surface match, same type
    assert bool(g.loc["alpha - tubulin inhibitor", "in_entity_list"]) is True  # whitespace-insensitive
    assert bool(g.loc["mice", "in_entity_list"]) is False  # no Taxon list given
    spur = m[m["category"] == "spurious"].iloc[0]
    assert spur["text"] == "water" and bool(spur["in_entity_list"]) is True
    seen = ev.slice_table(m, "seen_in_train")
    assert seen.loc[True, "gold_total"] == 2 and seen.loc[True, "missed"] == 1 and seen.loc[True, "recall"] == 0
    multi = ev.slice_table(m, "multi_token")
    assert multi.loc[True, "recall"] == 1.0 and multi.loc[False, "gold_total"] == 2
    gp = ev.gene_protein_confusions(m)
    assert list(gp["text"]) == ["PAX6"] and list(gp["confused_with"]) == ["Protein"]
    with pytest.raises(KeyError):
        ev.slice_table(ev.mention_table([rec(gold, pred)]), "seen_in_train")


# ------------------------------------------------------------------------------ paired comparison

def test_compare_runs_on_hand_made_case():
    gold1 = ["B-Gene", "O", "B-Protein", "I-Protein", "O", "B-Cell"]
    gold2 = ["B-Taxon", "O", "B-Gene"]
    a = [rec(gold1, ["B-Gene", "O", "B-Protein", "O", "O", "O"], sid=1),       # Gene ok, Protein bnd, Cell missed
         rec(gold2, ["B-Taxon", "B-Chemical", "B-Protein"], sid=2)]           # Taxon ok, spurious Chem, Gene type
    b = [rec(gold1, ["O", "O", "B-Protein", "I-Protein", "O", "B-Cell"], sid=1),  # Gene broken, Protein+Cell fixed
         rec(gold2, ["B-Taxon", "O", "B-Gene"], sid=2)]                          # Gene fixed, spurious gone
    table, mentions = ev.compare_runs(a, b, "single", "two-step")
    assert table.loc["total", "fixed"] == 3
    assert table.loc["total", "broken"] == 1
    assert table.loc["total", "net"] == 2
    assert table.loc["total", "both_correct"] == 1  # Taxon
    assert table.loc["total", "both_wrong"] == 0
    assert table.loc["Gene", "fixed"] == 1 and table.loc["Gene", "broken"] == 1 and table.loc["Gene", "net"] == 0
    assert table.loc["Protein", "net"] == 1 and table.loc["Cell", "net"] == 1
    assert table.loc["Chemical", "spurious_single"] == 1 and table.loc["Chemical", "spurious_two-step"] == 0
    assert table.loc["total", "gold"] == 5 == len(mentions)
    # net change = change in true positives, i.e. in seqeval's recall numerator
    tp = {n: ev.category_counts(ev.mention_table(r), "gold").loc["total", "correct"] for n, r in (("a", a), ("b", b))}
    assert tp["b"] - tp["a"] == table.loc["total", "net"]
    row = mentions[(mentions["sentence_id"] == 2) & (mentions["type"] == "Gene")].iloc[0]
    assert (row["category_single"], row["category_two-step"], row["change"]) == ("wrong_type", "correct", "fixed")


def test_align_runs_uses_common_sentences_and_rejects_different_gold():
    a = [rec(["B-Gene"], ["O"], sid=1), rec(["O"], ["O"], sid=2)]
    b = [rec(["O"], ["O"], sid=2), rec(["B-Gene"], ["B-Gene"], sid=1), rec(["O"], ["O"], sid=3)]
    aligned = ev.align_runs({"a": a, "b": b})
    assert [r["sentence_id"] for r in aligned["b"]] == [1, 2] == [r["sentence_id"] for r in aligned["a"]]
    with pytest.raises(CraftlibError, match="different gold"):
        ev.align_runs({"a": a, "b": [rec(["B-Cell"], ["O"], sid=1)]})
    with pytest.raises(CraftlibError, match="share no sentence"):
        ev.align_runs({"a": a, "b": [rec(["O"], ["O"], sid=9)]})


# --------------------------------------------------------------------------------- files and CLI

def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_read_predictions_checks_shape(tmp_path):
    good = [rec(["B-Gene", "O"], ["O", "O"])]
    write_jsonl(tmp_path / "ok.jsonl", good)
    assert ev.read_predictions(tmp_path / "ok.jsonl") == good
    with pytest.raises(CraftlibError, match="No predictions file"):
        ev.read_predictions(tmp_path / "missing.jsonl")
    write_jsonl(tmp_path / "bad.jsonl", [rec(["B-Gene", "O"], ["O"])])
    with pytest.raises(CraftlibError, match="different lengths"):
        ev.read_predictions(tmp_path / "bad.jsonl")
    (tmp_path / "nokey.jsonl").write_text(json.dumps({"doc_id": "d", "tokens": []}) + "\n")
    with pytest.raises(CraftlibError, match="missing field"):
        ev.read_predictions(tmp_path / "nokey.jsonl")


def test_export_errors_csv(tmp_path):
    records = random_records(5, n_sent=20)
    m = ev.mention_table(records, train_surfaces={t: set() for t in ENTITY_TYPES}, entity_lists={})
    path = ev.export_errors(m, tmp_path / "sub" / "errors.csv")
    df = pd.read_csv(path)
    assert list(df.columns) == list(ev.ERROR_COLUMNS)
    assert len(df) == len(ev.errors_table(m)) > 0
    assert "correct" not in set(df["category"])
    assert set(df["category"]) <= set(ev.CATEGORIES) - {"correct"}
    assert not list(tmp_path.glob("sub/*.tmp"))
    spur = df[df["category"] == "spurious"]
    assert (spur["gold"] == "O").all()
    missed = df[df["category"] == "missed"]
    assert (missed["predicted"] == "O").all()


def test_examples_and_descriptions_come_from_the_data():
    records = random_records(7, n_sent=40)
    m = ev.mention_table(records, train_surfaces={"Gene": {"t1"}}, entity_lists={"Gene": ["t1"]})
    errs = ev.errors_table(m)
    ex = ev.pick_examples(errs, n=10, seed=3)
    assert len(ex) == 10
    assert set(ex["category"]) == set(errs["category"])  # round-robin covers every category present
    assert ex.equals(ev.pick_examples(errs, n=10, seed=3))
    for _, row in ex.iterrows():
        text = ev.describe_error(row)
        assert row["text"] in text
        assert ("training split" in text) and ("entity list" in text)
    missed = errs[errs["category"] == "missed"].iloc[0]
    assert "missed" in ev.describe_error(missed) and missed["gold"] in ev.describe_error(missed)


def test_evaluate_command_writes_errors(tmp_path, capsys):
    records = random_records(9, n_sent=10)
    write_jsonl(tmp_path / "models" / "run-a" / "predictions_test.jsonl", records)
    write_jsonl(tmp_path / "models" / "run-b" / "predictions_test.jsonl",
                [dict(r, pred=r["gold"]) for r in records])
    parser = argparse.ArgumentParser()
    ev.add_commands(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "--run", "run-a", "--compare", "run-b", "--models-dir",
                              str(tmp_path / "models"), "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    assert (tmp_path / "out" / "errors-run-a.csv").is_file()
    assert "strict-IOB2" in capsys.readouterr().out


def test_predictions_reads_the_run_folder(tmp_path):
    records = random_records(4, n_sent=3)
    write_jsonl(tmp_path / "dictionary-smoke" / "predictions_test.jsonl", records)
    run, got = pipeline.predictions("dictionary", config.data_spec("smoke"), models_dir=tmp_path,
                                    build_if_missing=False)
    assert run == "dictionary-smoke" and got == records
    with pytest.raises(CraftlibError, match="No predictions file"):
        pipeline.predictions("dictionary", config.data_spec("quick"), models_dir=tmp_path, build_if_missing=False)
    with pytest.raises(CraftlibError, match="Unknown system"):
        pipeline.predictions("crf++", config.data_spec("smoke"), models_dir=tmp_path)
    assert runs.system_run_name("two-step", "quick") == "two-step-minilm-quick-drop0-case-viterbi"


def _fake_metrics(run, system, recipe, f1, profile="quick"):
    split = {"precision": f1 + 0.01, "recall": f1 - 0.01, "f1": f1, "accuracy": 0.9}
    return {"run": run, "system": system, "recipe": recipe, "profile": profile,
            "base_model": "minilm" if system == "transformer" else None,
            "dev": split, "test": split, "train_seconds": 12.4, "command": f"python -m craftlib train --recipe {recipe}"}


def test_results_markdown_lists_runs_in_order_with_commands(tmp_path):
    for run, system, recipe, f1 in [("two-step-minilm-quick", "transformer", "two-step", 0.61),
                                    ("dictionary-quick", "dictionary", None, 0.21),
                                    ("single-minilm-quick", "transformer", "single", 0.55),
                                    ("crf-quick", "crf", None, 0.7)]:
        (tmp_path / run).mkdir()
        (tmp_path / run / "metrics.json").write_text(json.dumps(_fake_metrics(run, system, recipe, f1)))
    (tmp_path / "not-a-run").mkdir()  # folders without metrics.json are ignored
    md = runs.results_markdown(tmp_path)
    body = [line for line in md.splitlines() if line.startswith("| `")]
    assert [line.split("`")[1] for line in body] == ["dictionary-quick", "crf-quick", "single-minilm-quick",
                                                                "two-step-minilm-quick"]
    # older metrics.json (no merged / strict / all-O fields): empty cells, nothing invented
    assert "| 0.6200 | 0.6000 | 0.6100 |  |  | 0.9000 |  | 0.6100 | 12 |" in body[-1]
    assert "not measured here" in md and "0.8439" in md and "evaluation set" in md
    assert "`python -m craftlib train --recipe single`" in md
    assert "No bootstrap intervals committed yet" in md
    header = md.splitlines()[0]
    assert "F1 Gene+Protein merged" in header and "strict F1" in header and "all-O token acc." in header
    assert all(line.count("|") == header.count("|") for line in md.splitlines()[:7])  # every row has every cell


def test_results_markdown_shows_new_fields_and_bootstrap(tmp_path):
    recs = {"single-minilm-quick": [rec(["B-Gene", "O", "B-Cell"], ["B-Protein", "O", "B-Cell"], doc="d1", sid=1),
                                    rec(["B-Taxon", "O"], ["O", "O"], doc="d2", sid=1)],
            "two-step-minilm-quick": [rec(["B-Gene", "O", "B-Cell"], ["B-Gene", "O", "B-Cell"], doc="d1", sid=1),
                                      rec(["B-Taxon", "O"], ["B-Taxon", "O"], doc="d2", sid=1)]}
    for run, rs in recs.items():
        m = _fake_metrics(run, "transformer", run.split("-minilm")[0], 0.5)
        m["test"] = ev.score([r["gold"] for r in rs], [r["pred"] for r in rs])
        (tmp_path / run).mkdir()
        (tmp_path / run / "metrics.json").write_text(json.dumps(m))
    md = runs.results_markdown(tmp_path)
    single = next(line for line in md.splitlines() if line.startswith("| `single"))
    # single: 1 of 2 predicted, 1 of 3 gold spans right (F1 0.4); merged: Gene->Protein is right too (P 1, R 2/3,
    # F1 0.8); strict = default here; token acc. 3 of 5; all-O floor: 2 of 5 gold tags are O
    assert "| 0.5000 | 0.3333 | 0.4000 | 0.8000 | 0.4000 | 0.6000 | 0.4000 |" in single
    models = tmp_path / "models"
    for run, rs in recs.items():
        write_jsonl(models / run / "predictions_test.jsonl", rs)
    parser = argparse.ArgumentParser()
    ev.add_commands(parser.add_subparsers())
    out = tmp_path / "bootstrap-quick.json"
    args = parser.parse_args(["compare", "--runs", *recs, "--models-dir", str(models), "--n", "200",
                              "--out", str(out)])
    assert args.func(args) == 0
    saved = json.loads(out.read_text())
    assert saved["documents"] == 2 and saved["n_resamples"] == 200 and "--n 200" in saved["command"]
    assert "tokens" not in json.dumps(saved) and "t0" not in json.dumps(saved)  # no corpus text
    md = runs.results_markdown(tmp_path)
    assert "No bootstrap intervals" not in md and "Paired bootstrap over the 2 test documents" in md
    assert "| `two-step-minilm-quick` | 1.000 | [1.000, 1.000] |" in md
    assert "| `two-step-minilm-quick` − `single-minilm-quick` | +0.600 |" in md
    with pytest.raises(CraftlibError, match="RUN_A:RUN_B"):
        args = parser.parse_args(["compare", "--runs", *recs, "--models-dir", str(models), "--pairs", "x",
                                  "--out", str(out)])
        args.func(args)


def test_update_readme_rewrites_only_the_block(tmp_path):
    results = tmp_path / "results"
    (results / "single-minilm-quick").mkdir(parents=True)
    (results / "single-minilm-quick" / "metrics.json").write_text(
        json.dumps(_fake_metrics("single-minilm-quick", "transformer", "single", 0.5)))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- RESULTS -->\nold table\n<!-- /RESULTS -->\noutro\n")
    assert runs.update_readme(readme, results) is True
    text = readme.read_text()
    assert text.startswith("intro\n<!-- RESULTS -->\n| run |") and text.endswith("<!-- /RESULTS -->\noutro\n")
    assert "old table" not in text and "0.5000" in text
    assert runs.update_readme(readme, results) is False  # idempotent
    readme.write_text("no markers")
    with pytest.raises(CraftlibError, match="RESULTS"):
        runs.update_readme(readme, results)


def test_rescore_rewrites_only_the_scores(tmp_path):
    import json

    from craftlib import evaluate

    run = tmp_path / "two-step-x"
    run.mkdir()
    rec = {"doc_id": "d", "sentence_id": 1, "tokens": ["Pax6", "gene"], "gold": ["B-Gene", "O"], "pred": ["B-Protein", "O"]}
    for split in ("validation", "test"):
        (run / f"predictions_{split}.jsonl").write_text(json.dumps(rec) + "\n")
    old = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.9}
    (run / "metrics.json").write_text(json.dumps({
        **runs.metrics_core("two-step-x", "transformer", "smoke", 42, "craft-proper-smoke", "two-step", "minilm"),
        "dev": old, "test": old, "command": "python -m craftlib train ..."}))
    m = evaluate.rescore(run)
    assert m["test"]["f1"] == 0.0 and m["test"]["merged"]["f1"] == 1.0
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["command"] == "python -m craftlib train ..." and saved["rescored"]["command"].endswith("two-step-x")


def test_seed_aware_bootstrap_means_over_seeds_and_widens_with_seed_noise():
    systems = _systems(42)
    a, b = systems["a"], systems["b"]
    plain = ev.bootstrap({"a": a, "b": b}, n=400, seed=3)
    # the same run twice as two "seeds": the same F1, sd 0, and the same document interval
    twice = ev.bootstrap({"a": [a, a], "b": b}, n=400, seed=3)
    va = twice["systems"]["a"]
    assert va["seeds"] == 2 and va["sd"] == 0.0 and va["seed_f1"] == [plain["systems"]["a"]["f1"]] * 2
    assert (va["f1"], va["low"], va["high"]) == pytest.approx(
        (plain["systems"]["a"]["f1"], plain["systems"]["a"]["low"], plain["systems"]["a"]["high"]))
    assert "over its seeds" in twice["method"] and "mean over seeds" in twice["score"]
    # two seeds far apart (a and b): the mean is their mean, the sd theirs, and the interval wider than either's
    mixed = ev.bootstrap({"ab": [a, b], "b": b}, n=400, seed=3)
    v = mixed["systems"]["ab"]
    fa, fb = plain["systems"]["a"]["f1"], plain["systems"]["b"]["f1"]
    assert v["f1"] == pytest.approx((fa + fb) / 2) and v["sd"] == pytest.approx(abs(fb - fa) / 2 ** 0.5)
    width = v["high"] - v["low"]
    assert width > plain["systems"]["a"]["high"] - plain["systems"]["a"]["low"]
    assert width > plain["systems"]["b"]["high"] - plain["systems"]["b"]["low"]
    assert mixed["systems"]["b"]["sd"] is None and mixed["systems"]["b"]["seeds"] == 1
    (d,) = mixed["differences"]
    assert d["difference"] == pytest.approx(fb - v["f1"])


def test_paired_seeds_resample_the_jth_runs_together():
    """A system and a copy of it, over two different seeds: unpaired, the seed draws differ and so does the
    difference; paired by seed position, every resample compares each seed with itself: exactly 0."""
    systems = _systems(42)
    a, b = systems["a"], systems["b"]
    unpaired = ev.bootstrap({"x": [a, b], "y": [a, b]}, n=400, seed=3)
    paired = ev.bootstrap({"x": [a, b], "y": [a, b]}, n=400, seed=3, paired_seeds=True)
    (du,), (dp,) = unpaired["differences"], paired["differences"]
    assert du["low"] < 0 < du["high"] and dp["low"] == dp["high"] == 0.0
    assert "paired by seed position" in paired["method"] and "per system" in unpaired["method"]
    # the systems' own intervals are those of the unpaired draw's kind: the mean of two seeds over documents
    assert paired["systems"]["x"]["f1"] == unpaired["systems"]["x"]["f1"]
    # without the option nothing changes (the committed comparisons' numbers)
    assert ev.bootstrap({"x": [a, b], "y": [a, b]}, n=400, seed=3) == unpaired


def test_compare_groups_expand_seeds_and_named_systems():
    groups = ev.compare_groups(["two-step-minilm-quick", "single-minilm-quick"], [42, 1, 2], ["crf=crf-quick"])
    assert groups == {"two-step-minilm-quick": ["two-step-minilm-quick", "two-step-minilm-quick-seed1",
                                                "two-step-minilm-quick-seed2"],
                      "single-minilm-quick": ["single-minilm-quick", "single-minilm-quick-seed1",
                                              "single-minilm-quick-seed2"],
                      "crf": ["crf-quick"]}
    assert ev.compare_groups(["a", "b"]) == {"a": ["a"], "b": ["b"]}
    with pytest.raises(CraftlibError, match="NAME=RUN"):
        ev.compare_groups([], None, ["crf"])
    with pytest.raises(CraftlibError, match="seed-42 name"):
        ev.compare_groups(["single-minilm-quick-seed1"], [42, 1])
    with pytest.raises(CraftlibError, match="several systems"):
        ev.compare_groups(["a"], None, ["x=a"])
    with pytest.raises(CraftlibError, match="needs runs"):
        ev.compare_groups([])


def test_compare_command_with_seeds_writes_means_and_renders_them(tmp_path):
    base = _systems(43)
    models = tmp_path / "models"
    runs_of = {"single-minilm-quick": base["a"], "single-minilm-quick-seed1": base["a"],
               "two-step-minilm-quick": base["b"], "two-step-minilm-quick-seed1": base["a"], "crf-quick": base["b"]}
    for run, rs in runs_of.items():
        write_jsonl(models / run / "predictions_test.jsonl", rs)
    parser = argparse.ArgumentParser()
    ev.add_commands(parser.add_subparsers())
    out = tmp_path / "results" / "bootstrap-quick.json"
    args = parser.parse_args(["compare", "--runs", "single-minilm-quick", "two-step-minilm-quick", "--seeds", "42",
                              "1", "--systems", "crf=crf-quick", "--models-dir", str(models), "--n", "200",
                              "--out", str(out)])
    assert args.func(args) == 0
    saved = json.loads(out.read_text())
    assert saved["runs"]["two-step-minilm-quick"] == ["two-step-minilm-quick", "two-step-minilm-quick-seed1"]
    assert "--seeds 42 1 --systems crf=crf-quick" in saved["command"]
    assert saved["systems"]["two-step-minilm-quick"]["seeds"] == 2
    md = runs.bootstrap_markdown(tmp_path / "results")
    assert "| system | seeds | test F1 (mean ± sd) |" in md and "its seeds with replacement" in md
    assert "| `crf` | 1 |" in md and "| `two-step-minilm-quick` | 2 | " in md and " ± " in md


def test_vote_takes_each_words_majority_and_breaks_ties_by_the_first_run():
    gold = ["B-Gene", "I-Gene", "O", "B-Cell"]
    rec = {"doc_id": "d", "sentence_id": 0, "tokens": ["a", "b", "c", "d"], "gold": gold}
    r1 = [dict(rec, pred=["B-Gene", "O", "O", "B-Cell"])]
    r2 = [dict(rec, pred=["B-Gene", "I-Gene", "B-Taxon", "O"])]
    r3 = [dict(rec, pred=["O", "I-Gene", "O", "B-Chemical"])]
    (voted,) = ev.vote([r1, r2, r3])
    # word 4: three different tags, a tie of one vote each -> the first run's
    assert voted["pred"] == ["B-Gene", "I-Gene", "O", "B-Cell"] and voted["gold"] == gold
    assert ev.vote([r2, r1])[0]["pred"] == r2[0]["pred"]  # two runs disagreeing: the first one wins every tie
    with pytest.raises(CraftlibError, match="at least 2 runs"):
        ev.vote([r1])


def test_compare_vote_is_a_system_beside_the_seed_means(tmp_path):
    base = _systems(44)
    models = tmp_path / "models"
    for run, rs in {"two-step-minilm-quick": base["b"], "two-step-minilm-quick-seed1": base["b"],
                    "two-step-minilm-quick-seed2": base["a"], "crf-quick": base["a"]}.items():
        write_jsonl(models / run / "predictions_test.jsonl", rs)
    parser = argparse.ArgumentParser()
    ev.add_commands(parser.add_subparsers())
    out = tmp_path / "results" / "bootstrap-quick-vote.json"
    members = "two-step-minilm-quick,two-step-minilm-quick-seed1,two-step-minilm-quick-seed2"
    args = parser.parse_args(["compare", "--runs", "two-step-minilm-quick", "--seeds", "42", "1", "2",
                              "--systems", "crf=crf-quick", "--vote", f"vote={members}",
                              "--pairs", "two-step-minilm-quick:vote", "crf:vote",
                              "--models-dir", str(models), "--n", "200", "--out", str(out)])
    assert args.func(args) == 0
    saved = json.loads(out.read_text())
    assert saved["votes"] == {"vote": members.split(",")} and f"--vote vote={members}" in saved["command"]
    assert "| `vote` | majority vote of 3 | " in runs.bootstrap_markdown(tmp_path / "results")
    f1_b = ev.score([r["gold"] for r in base["b"]], [r["pred"] for r in base["b"]])["f1"]
    assert saved["systems"]["vote"]["seeds"] == 1 and saved["systems"]["vote"]["f1"] == pytest.approx(f1_b)  # 2 of 3
    for bad in (["--vote", "x=crf-quick"], ["--vote", "crf=crf-quick,crf-quick"],
                ["--systems", "crf=crf-quick", "--vote", f"crf={members}"]):
        args = parser.parse_args(["compare", *bad, "--models-dir", str(models), "--out", str(out)])
        with pytest.raises(CraftlibError):
            args.func(args)
