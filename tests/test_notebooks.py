"""Execute every notebook in order with papermill (smoke profile) and check what each one wrote.

The notebooks share one temporary workspace (data/, models/, results/), as a learner's checkout
would, so later notebooks find what earlier ones wrote. Run alone with ``pytest -m notebooks``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require_local_craft

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tutorial")
    dirs = {name: root / name for name in ("data", "models", "results", "executed")}
    for d in dirs.values():
        d.mkdir()
    return dirs


def run_notebook(name: str, workspace: dict[str, Path], **parameters) -> dict:
    """Execute ``notebooks/<name>`` into the workspace with the smoke profile; return the executed nb."""
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
    nb = pm.execute_notebook(
        str(NOTEBOOKS / name),
        str(out),
        parameters=params,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    return nb


def load_json(path: Path) -> dict:
    assert path.is_file(), f"expected {path} to be written"
    return json.loads(path.read_text())


# One test per notebook, in the order a learner runs them. Each asserts on what its notebook wrote.
# --- 01_explore_craft ---
def test_01_explore_craft(workspace):
    from craftlib import corpus

    nb = run_notebook("01_explore_craft.ipynb", workspace)
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
    from craftlib import config, tags

    run_notebook("02_normalize_tags.ipynb", workspace)
    out = config.processed_dir("smoke", "proper", workspace["data"])
    dsd = tags.load_dataset("smoke", "proper", data_dir=workspace["data"], build_if_missing=False)
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
            tags.validate_iob2(seq)
            for _, _, t in tags.bio_entities(seq):
                counts[t] += 1
        assert counts == s["entities"]
    assert stats["total"]["gene_rule"]["Gene"] > 0
    conll = (out / "conll" / "train.conll").read_text().split("\n\n")
    assert len([b for b in conll if b.strip()]) == len(dsd["train"])


# --- 03_augment_with_ontologies ---

# --- 04_two_step_transfer ---

# --- 05_error_analysis ---
def test_05_error_analysis(workspace):
    import pandas as pd

    from craftlib import evaluate

    nb = run_notebook("05_error_analysis.ipynb", workspace)
    out = workspace["results"] / "error_analysis-smoke"
    summary = load_json(out / "summary.json")
    assert set(summary["runs"]) == set(evaluate.SYSTEMS) and summary["sentences"] > 0
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


# --- 06_compare_toolkits ---
