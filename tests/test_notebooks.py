"""Execute every notebook in order with papermill (smoke profile) and check what each one wrote.

The notebooks share one temporary workspace (data/, models/, results/), as a learner's checkout
would, so later notebooks find what earlier ones wrote. Run alone with ``pytest -m notebooks``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import require_local_craft
from tests.notebook_expectations import problems

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tutorial")
    dirs = {name: root / name for name in ("data", "models", "results", "executed")}
    for d in dirs.values():
        d.mkdir()
    return dirs


def readme_data_example() -> dict[str, str]:
    """The README's data example (``export CRAFT_SOURCE=../shared/...``) exactly as written, when the files it
    names exist beside this checkout (as in CI); else ``{}``."""
    from craftlib import config

    text = (NOTEBOOKS.parent / "README.md").read_text()
    exports = dict(re.findall(r"^export (CRAFT_SOURCE|CRAFTLIB_ONTOLOGY_DIR)=(\S+)$", text, re.MULTILINE))
    assert set(exports) == {"CRAFT_SOURCE", "CRAFTLIB_ONTOLOGY_DIR"}, "the README's data example changed"
    return exports if all(config.resolve_path(v).exists() for v in exports.values()) else {}


def run_notebook(name: str, workspace: dict[str, Path], env: dict[str, str] | None = None, **parameters) -> dict:
    """Execute ``notebooks/<name>`` into the workspace with the smoke profile (and the environment ``env``);
    return the executed nb."""
    import papermill as pm

    require_local_craft()
    defaults = {
        "PROFILE": "smoke",
        "DATA_DIR": str(workspace["data"]),
        "MODELS_DIR": str(workspace["models"]),
        "RESULTS_DIR": str(workspace["results"]),
    }
    declared = pm.inspect_notebook(str(NOTEBOOKS / name))  # pass only what the notebook declares
    params = {k: v for k, v in defaults.items() if k in declared}
    params.update(parameters)
    out = workspace["executed"] / name
    # the kernel draws figures as a learner's does (inline images), whatever MPLBACKEND the test process has
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        for var, value in (env or {}).items():
            mp.setenv(var, value)
        nb = pm.execute_notebook(
            str(NOTEBOOKS / name),
            str(out),
            parameters=params,
            kernel_name="python3",
            cwd=str(NOTEBOOKS),
            progress_bar=False,
        )
    # every promised figure and entity view is there, no error and no red output (tests/notebook_expectations.py)
    assert problems(name, nb.cells) == [], f"{name} executed into {out}"
    return nb


def load_json(path: Path) -> dict:
    assert path.is_file(), f"expected {path} to be written"
    return json.loads(path.read_text())


# One test per notebook, in the order a learner runs them. Each asserts on what its notebook wrote.
# --- 01_explore_craft ---
def test_01_explore_craft(workspace):
    from craftlib import corpus

    # the README's relative example as written (the kernel starts in notebooks/: it must still mean the
    # repository root), when ../shared holds the files
    nb = run_notebook("01_explore_craft.ipynb", workspace, env=readme_data_example())
    # a folder source is read in place; an archive is extracted into the workspace cache with its marker
    src = Path(require_local_craft())
    root = corpus.fetch_craft(str(src), data_dir=workspace["data"]) if src.is_dir() else workspace["data"] / "raw" / "CRAFT-5.0.2"
    if not src.is_dir():
        assert (root / corpus.MARKER).is_file(), "notebook 01 should have extracted the corpus into DATA_DIR/raw"
    assert {k: len(v) for k, v in corpus.read_split_ids(root).items()} == {"train": 60, "dev": 7, "test": 30}
    summary = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Profile smoke: 6 documents" in summary


# --- 02_normalize_tags ---
def test_02_normalize_tags(workspace):
    from craftlib import bio, config, stages, tags

    nb = run_notebook("02_normalize_tags.ipynb", workspace)
    out = config.processed_dir("smoke", "proper", workspace["data"])
    dsd = stages.load("dataset", config.data_spec("smoke", "proper", workspace["data"]), build=False)
    assert set(dsd) == {"train", "validation", "test"}
    names = dsd["train"].features["ner_tags"].feature.names
    assert names == list(config.LABELS) and len(names) == 13
    stats = load_json(out / "stats.json")
    for name, split in dsd.items():
        s = stats["splits"][name]
        assert s["documents"] == len(set(split["doc_id"])) > 0
        assert s["sentences"] == len(split)
        assert s["tokens"] == sum(len(t) for t in split["tokens"])
        counts = {t: 0 for t in config.ENTITY_TYPES}
        for row in split["ner_tags"]:
            seq = [names[i] for i in row]
            bio.validate_iob2(seq)
            for _, _, t in bio.bio_spans(seq):
                counts[t] += 1
        assert counts == s["entities"]
    assert stats["total"]["gene_rule"]["Gene"] > 0
    conll = (out / "conll" / "train.conll").read_text().split("\n\n")
    assert len([b for b in conll if b.strip()]) == len(dsd["train"])
    assert stats["policies"]["gene_rule"] == tags.TagPolicies().gene_rule == "italic+context"
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    # the per-document Gene share figure, and the rules measured side by side
    figure = next(c for c in nb.cells if "Per-document Gene share" in c.source)
    assert any("image/png" in o.get("data", {}) for o in figure.get("outputs", []))
    html = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
    assert all(rule in html for rule in tags.GENE_RULE_CHOICES) and "contradictions" in html
    # the toy tags one hand-made sentence under several policies, before the corpus-wide counts
    toy = next(i for i, c in enumerate(nb.cells) if c.source.startswith("toy = "))
    counts = next(i for i, c in enumerate(nb.cells) if "policy_counts = " in c.source)
    assert toy < counts and "discontinuous=covering" in "".join(
        o.get("data", {}).get("text/html", "") for o in nb.cells[toy].get("outputs", []))


# --- 03_augment_with_ontologies ---
def test_03_augment_with_ontologies(workspace):
    from craftlib import config, stages
    from craftlib.evaluate import score

    nb = run_notebook("03_augment_with_ontologies.ipynb", workspace)
    out = config.processed_dir("smoke", "proper", workspace["data"])
    lstats = load_json(out / "entity_lists" / "stats.json")
    lists = stages.load("entity_lists", config.data_spec("smoke", "proper", workspace["data"]), build=False)
    assert set(lists) == set(config.ENTITY_TYPES) and all(lists[t] for t in ("Sequence", "Cell"))  # bundled CL/SO
    for t, terms in lists.items():
        assert lstats["types"][t]["terms"] == len(terms) and len({x.casefold() for x in terms}) == len(terms)
        assert (t in lstats["fallback"]) == (not any(s["path"] for s in lstats["types"][t]["sources"]))
    assert set(lstats["coverage"]["Taxon"]) == {"train", "test"}

    astats = load_json(out / "augmented" / "stats.json")
    assert astats["ratio"] == 0.2 and astats["seed"] == 42 and 0.1 < astats["realised_ratio"] < 0.3
    aug = stages.load("augmented", config.data_spec("smoke", "proper", workspace["data"]), build=False)
    dsd = stages.load("dataset", config.data_spec("smoke", "proper", workspace["data"]), build=False)
    assert len(aug["train"]) == len(dsd["train"]) + astats["augmented_sentences"] > len(dsd["train"])
    for split in ("validation", "test"):
        assert aug[split]["tokens"] == dsd[split]["tokens"] and aug[split]["ner_tags"] == dsd[split]["ner_tags"]

    run = workspace["models"] / "dictionary-smoke"
    metrics = load_json(run / "metrics.json")
    assert metrics["system"] == "dictionary" and metrics["dataset"] == "craft-proper-smoke"
    rows = [json.loads(x) for x in (run / "predictions_test.jsonl").read_text().splitlines()]
    assert metrics["test"] == score([r["gold"] for r in rows], [r["pred"] for r in rows])
    assert metrics["test"]["f1"] > 0  # the lists do find some gold mentions
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "overall realised ratio" in text and "dev/test unchanged: True" in text


# --- 04_two_step_transfer ---
def test_04_two_step_transfer(workspace):
    from craftlib import config
    from craftlib.runs import run_name

    nb = run_notebook("04_two_step_transfer.ipynb", workspace)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "step 1 on augmented" in text and "step 2 on original" in text  # the visible two-step toy run
    runs = {r: workspace["models"] / run_name(r, "minilm", "smoke") for r in ("single", "augmented", "two-step")}
    for recipe, run_dir in runs.items():
        m = load_json(run_dir / "metrics.json")
        assert (m["run"], m["recipe"], m["profile"], m["seed"], m["system"]) == (run_dir.name, recipe, "smoke", 42,
                                                                                 "transformer")
        for split in ("dev", "test"):
            assert {"precision", "recall", "f1", "accuracy", "macro_f1", "per_type"} <= set(m[split])
            assert set(m[split]["per_type"]) == set(config.ENTITY_TYPES) and m[split]["sentences"] > 0
        assert m["dev_epochs"] and m["train_seconds"] > 0 and m["tokens_per_second"] > 0
        assert m["command"].startswith("python -m craftlib train --recipe " + recipe)
        assert m["versions"]["transformers"] and m["hardware"]
        preds = [json.loads(x) for x in (run_dir / "predictions_test.jsonl").read_text().splitlines()]
        assert len(preds) == m["test"]["sentences"]
        assert sum(len(p["pred"]) for p in preds) == m["test"]["tokens"]  # every token predicted
        assert all(len(p["pred"]) == len(p["tokens"]) for p in preds)
        for name in ("config.json", "model.safetensors", "training_log.csv", "learning_curve.png", "README.md"):
            assert (run_dir / name).is_file(), name
        assert f"{m['test']['f1']:.4f}" in (run_dir / "README.md").read_text()
    two = load_json(runs["two-step"] / "metrics.json")
    assert two["steps"][0]["reused"] is True and two["steps"][0]["run"] == runs["augmented"].name
    assert [e["step_name"] for e in two["dev_epochs"]][-1] == "step2"
    summary = load_json(workspace["results"] / "two_step_transfer-smoke" / "summary.json")
    assert set(summary["test"]) >= {"dictionary baseline", "single-step", "augmented, one step", "two-step"}
    assert summary["test"]["two-step"]["f1"] == pytest.approx(two["test"]["f1"])
    assert summary["test"]["two-step"]["f1 Gene+Protein merged"] == pytest.approx(two["test"]["merged"]["f1"])
    boot = summary["bootstrap"]
    assert set(boot["systems"]) == set(summary["test"]) - {"reference card (quoted)"}
    assert all(v["low"] <= v["f1"] <= v["high"] for v in boot["systems"].values())
    assert len(boot["differences"]) == 3 and boot["n_resamples"] == 2000
    assert (workspace["results"] / "two_step_transfer-smoke" / "learning_curves.png").is_file()
    # section 6: the two controls, trained on smoke, and the comparison they enter
    controls = summary["controls"]
    assert controls["two-step, no names (p = 0)"] == "two-step-minilm-smoke-p0-case-viterbi"
    assert re.fullmatch(r"single-minilm-smoke-steps\d+-case-viterbi", controls["single, as many sub-tokens"])
    p0 = load_json(workspace["models"] / "two-step-minilm-smoke-p0-case-viterbi" / "metrics.json")
    assert p0["hyperparameters"]["replace_prob"] == 0.0 and two["hyperparameters"]["replace_prob"] == 0.2
    assert p0["steps"][0]["train_sentences"] == two["steps"][0]["train_sentences"]  # the same copies, no names
    matched = load_json(workspace["models"] / controls["single, as many sub-tokens"] / "metrics.json")
    assert abs(matched["tokens_seen"] / two["tokens_seen"] - 1) < 0.1  # as many sub-tokens as two-step
    seeds = summary["seed_comparison"]
    assert set(seeds["systems"]) == {"single-step", "augmented, one step", "two-step", *summary["controls"]}
    assert all(v["low"] <= v["f1"] <= v["high"] for v in seeds["systems"].values())
    assert (workspace["results"] / "two_step_transfer-smoke" / "seed_scores.png").is_file()


# --- 05_error_analysis ---
def test_05_error_analysis(workspace):
    import pandas as pd

    from craftlib import evaluate, pipeline

    nb = run_notebook("05_error_analysis.ipynb", workspace)
    out = workspace["results"] / "error_analysis-smoke"
    summary = load_json(out / "summary.json")
    assert set(summary["runs"]) == set(pipeline.SYSTEMS) and summary["sentences"] > 0
    for name, run in summary["runs"].items():
        assert summary["errors_csv"][name] == f"errors-{run}.csv"
        counts = summary["error_counts"][name]["total"]
        scores = summary["scores"][name]
        assert scores["default"]["mode"] == "default" and scores["strict-IOB2"]["mode"] == "strict-IOB2"
        # the taxonomy's gold side adds up to seqeval's support, its correct count gives seqeval's recall
        gold_total = sum(counts[c] for c in evaluate.GOLD_CATEGORIES)
        assert gold_total == sum(v["support"] for v in scores["default"]["per_type"].values()) > 0
        assert counts["correct"] / gold_total == pytest.approx(scores["default"]["recall"])
        pred = summary["pred_counts"][name]["total"]
        assert pred["pred_total"] == sum(pred[c] for c in evaluate.PRED_CATEGORIES)
        errors = pd.read_csv(out / summary["errors_csv"][name])
        assert list(errors.columns) == list(evaluate.ERROR_COLUMNS)
        assert len(errors) == gold_total - counts["correct"] + counts["spurious"]
        assert set(errors["category"]) <= set(evaluate.CATEGORIES) - {"correct"}
        assert errors["seen_in_train"].isin([True, False]).all() and errors["in_entity_list"].isin([True, False]).all()
        assert (errors[errors["category"] == "missed"]["predicted"] == "O").all()
    cm = summary["confusion_matrix"]
    assert sum(cm["O"].values()) == summary["error_counts"][summary["main_system"]]["total"]["spurious"]
    for png in ("f1_per_type.png", "error_categories.png", "confusion_matrix.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
    assert set(summary["figures"]) >= {"f1_per_type.png", "error_categories.png", "confusion_matrix.png"}
    n_errors = len(pd.read_csv(out / summary["errors_csv"][summary["main_system"]]))
    assert len(summary["examples"]) == min(10, n_errors)
    assert all(ex["text"] in ex["interpretation"] for ex in summary["examples"])
    html = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
    assert html.count("<h4>") == len(summary["examples"])
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    # what was read or built is said first; the hand-written category rule agrees with craftlib's
    assert [p["run"] for p in summary["build_plan"]] == [summary["runs"][s] for s in pipeline.SYSTEMS]
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "same categories as craftlib: True" in text
    for name, scores in summary["scores"].items():  # nervaluate's strict scenario = seqeval's default mode
        assert summary["nervaluate"][name]["strict"]["f1"] == pytest.approx(scores["default"]["f1"])
        stray = summary["stray_inside_spans"][name]
        assert stray["stray_correct"] <= stray["stray_spans"] <= stray["pred_spans"]
    # the main run is read with Viterbi (the default): valid IOB2 only, so both modes agree; the same weights read
    # with argmax are decoded beside it, and score what that run's metrics say
    main = summary["main_system"]
    argmax, viterbi = summary["decoding"][f"{main} (argmax)"], summary["decoding"][f"{main} (viterbi)"]
    assert summary["runs"][main].endswith("-case-viterbi")
    assert viterbi["f1"] == pytest.approx(summary["scores"][main]["default"]["f1"])
    assert viterbi["stray I- spans"] == 0 == summary["stray_inside_spans"][main]["stray_spans"]
    assert viterbi["f1"] == pytest.approx(viterbi["strict f1"])
    assert summary["decoded_run"] == summary["runs"][main].removesuffix("-viterbi")
    decoded = json.loads((workspace["models"] / summary["decoded_run"] / "metrics.json").read_text())
    assert decoded["hyperparameters"]["decode"] == "argmax" and decoded["decoded_from"]["run"] == summary["runs"][main]
    assert argmax["f1"] == pytest.approx(decoded["test"]["f1"])
    assert "viterbi: ['O', 'B-Gene']" in text
    boot = summary["bootstrap"]
    assert set(boot["systems"]) == set(pipeline.SYSTEMS) and len(boot["differences"]) == 4
    for name, v in boot["systems"].items():
        assert v["f1"] == pytest.approx(summary["scores"][name]["default"]["f1"]) and v["low"] <= v["f1"] <= v["high"]


# --- 06_compare_toolkits ---
def test_06_compare_toolkits(workspace):
    run_notebook("06_compare_toolkits.ipynb", workspace)
    report = load_json(workspace["results"] / "peers-smoke.json")
    rows = {r["system"]: r for r in report["systems"]}
    assert list(rows) == ["dictionary", "crf", "spacy", "single", "augmented", "two-step"]
    for name in ("crf", "spacy"):
        assert rows[name]["status"] == "ok", rows[name].get("note")
        assert rows[name]["train_seconds"] > 0 and rows[name]["peak_memory_mb"] > 0
        assert (workspace["models"] / f"{name}-smoke" / "predictions_test.jsonl").is_file()
    for name, row in rows.items():  # runs written by earlier notebooks are re-scored on the same sentences
        if (workspace["models"] / row["run"] / "predictions_test.jsonl").is_file():
            assert row["status"] == "ok" and row["same_sentences"] is True, (name, row.get("note"))
        else:
            assert row["status"] == "not run" and row["command"].startswith("python -m craftlib ")
    md = (workspace["results"] / "peers-smoke.md").read_text()
    assert "| crf | ok |" in md and "## Test P / R / F1 per type" in md
    crf_row = next(line for line in md.split("## Test P / R / F1 per type")[1].splitlines() if line.startswith("| crf |"))
    assert crf_row.count(" / ") == 2 * 6  # precision / recall / F1 for each of the six types
    assert (workspace["results"] / "peers-smoke.png").stat().st_size > 0



# --- 07_use_your_model ---
def test_07_use_your_model(workspace):
    from craftlib import engines, export

    nb = run_notebook("07_use_your_model.ipynb", workspace, BENCH_SENTENCES=40)
    out = workspace["results"] / "use_your_model-smoke"
    summary = load_json(out / "summary.json")
    article = summary["article"]
    # the model's and the gold mentions of the article read back the same from BioC (XML, JSON) and brat
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for name in ("model", "gold"):
        assert f"{name}: " in text and "read back the same: BioC XML True, BioC JSON True, brat True" in text
        docs = export.read_bioc(out / f"{article}-{name}.bioc.xml")
        assert len(docs) == 1 and docs[0].id == article
        for doc in (docs[0], export.read_brat(out / f"brat-{name}" / f"{article}.txt")):
            export.check_offsets(doc)
    gold = export.read_bioc(out / f"{article}-gold.bioc.xml")[0]
    assert len(gold.entities) > 100 and all(e.ids for e in gold.entities)
    assert "text[start:end] == mention for every one: True" in text
    # every engine ran on the same sentences; ONNX fp32 tags like torch; the figure was saved
    rows = {r["engine"]: r for r in summary["engines"]}
    assert {"torch", "onnx", "onnx-int8"} <= set(rows) and all(r["sentences"] == 40 for r in rows.values())
    assert rows["onnx"]["same_tags"] > 0.99 and rows["onnx-int8"]["size_mb"] < rows["onnx"]["size_mb"] / 2
    assert summary["auto_engine"] == "onnx-int8" and summary["hardware"]["cores"] >= 1
    assert engines.choose_engine(workspace["models"] / summary["run"]) == "onnx-int8"
    assert (out / "engines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    acc = summary["linking_on_gold_spans_article"]["all"]
    assert acc["mentions"] > 100 and 0 < acc["accuracy"] <= acc["gold_in_candidates"] <= 1
    for fmt in ("pubtator.txt", "conll", "html", "jsonl"):
        assert (out / f"{article}-model.{fmt}").is_file(), fmt
